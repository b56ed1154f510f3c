"""`clvtools evaluate`: the churn walk and the outcomes by hand, the statistics against scipy
and by hand, and the whole loop on a generated base with a simulated campaign: the CLI, a plan
with no control group, customers missing from the new log, an early read-out, and the next
analyze reading the measured settings."""
import datetime as dt
import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats.contingency import relative_risk

from clvtools.api import analyze, evaluate
from clvtools.cli import main
from clvtools.config import load_settings
from clvtools.data.campaign_outcomes import campaign_outcomes
from clvtools.data.campaign_simulation import simulate_campaign
from clvtools.data.generator import generate_customer_base
from clvtools.data.lifecycle import first_declaration
from clvtools.data.transactions import read_transactions
from clvtools.report.campaign import EVALUATION_FILES
from clvtools.targeting.campaign import measure_campaign, risk_ratio

T0 = dt.date(2024, 12, 31)
UPLIFT = {"push": {"protect": 0.3, "maintain": 0.5, "retain_cheaply": 0.4, "monitor": 0.2},
          "pull": 0.1}
REACTIVATION = {"push": 0.2, "pull": 0.05}


def test_first_declaration_walks_to_the_first_long_gap():
    # churn after 15 days; customer 0: 0, 10, 30 (gap of 20 after 10) -> 25;
    # customer 1: no later purchase -> 5 + 15; customer 2: 3, 14, 28 (no long gap) -> 43
    declared = first_declaration(np.array([0, 5, 3]), np.array([0, 2, 0, 2]),
                                 np.array([30, 28, 10, 14]), 15)
    np.testing.assert_array_equal(declared, [25, 20, 43])


def test_risk_ratio_of_one_stratum_is_katz_as_scipy_computes_it():
    for a, n1, c, n0 in [(30, 200, 60, 180), (5, 40, 12, 35), (90, 100, 95, 100)]:
        ours = risk_ratio([a], [n1], [c], [n0])
        ref = relative_risk(a, n1, c, n0)
        ci = ref.confidence_interval(0.95)
        np.testing.assert_allclose(ours, (ref.relative_risk, ci.low, ci.high), rtol=1e-9)
    # a zero count is corrected, not infinite; no control events: nothing to say
    assert np.isfinite(risk_ratio([0], [50], [10], [50])).all()
    assert np.isnan(risk_ratio([3], [50], [0], [0])).all()


def test_mantel_haenszel_pools_strata_by_hand():
    a, n1, c, n0 = np.array([10, 40]), np.array([100, 100]), np.array([20, 60]), np.array([50,
                                                                                           200])
    n = n1 + n0
    expected = np.sum(a * n0 / n) / np.sum(c * n1 / n)
    assert risk_ratio(a, n1, c, n0)[0] == pytest.approx(expected, rel=1e-12)
    # not the crude pooled ratio, which the unequal control shares would bias
    assert expected != pytest.approx((50 / 200) / (80 / 250), rel=1e-3)


def _frame(group, churned, revenue, action="push", cell="protect", came_back=None):
    n = len(group)
    return pd.DataFrame({
        "action": action, "group": group, "cell": cell, "churn_probability": 0.5,
        "assumed_uplift": 0.2, "assumed_reactivation": 0.05, "saved_revenue": 10.0,
        "expected_cost": 25.0, "expected_net_benefit": 3.0, "churned": churned,
        "came_back": came_back if came_back is not None else [False] * n,
        "purchases": 1, "revenue": revenue})


def test_measured_cost_revenue_and_conclusions_by_hand():
    frame = _frame(["treatment"] * 3 + ["control"] * 2, [True, False, False, True, True],
                   [0.0, 100.0, 50.0, 0.0, 20.0])
    economics = {"push": {"cost": 20.0, "incentive": 10.0}, "pull": {"cost": 1, "incentive": 5}}
    row = measure_campaign(frame, economics).iloc[0]
    assert row["treated"] == 3 and row["control"] == 2
    assert row["churn_treated"] == pytest.approx(1 / 3) and row["churn_control"] == 1.0
    assert row["uplift"] == pytest.approx(1 - (1 / 3) / 1.0)
    # conditional: 3 contacts and the 2 treated who stayed take the incentive
    assert row["cost"] == 3 * 20 + 2 * 10
    unconditional = measure_campaign(frame, economics, offer="unconditional").iloc[0]
    assert unconditional["cost"] == 3 * 20 + 3 * 10
    assert row["revenue_saved_per_treated"] == pytest.approx(50.0 - 10.0)
    assert row["revenue_saved"] == pytest.approx(3 * 40.0)
    assert row["net_benefit"] == pytest.approx(120.0 - 80.0)
    assert row["predicted_net_benefit"] == 9.0 and row["predicted_cost"] == 75.0
    assert row["conclusion"] == "uplift: too small to say"
    assert row["read_out"] == "final"
    # no control group: outcomes, but no uplift
    alone = measure_campaign(frame.assign(group="treatment"), economics, final=False).iloc[0]
    assert np.isnan(alone["uplift"]) and alone["treated"] == 5
    assert alone["conclusion"] == "no control group: uplift cannot be measured"
    assert alone["read_out"] == "early"


def test_outcomes_by_hand_full_and_partial_logs():
    d = lambda days: T0 + dt.timedelta(days=days)   # noqa: E731
    plan = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "E"],
        "cell": ["protect", "monitor", "churned", "churned", "maintain"],
        "last_purchase": pd.to_datetime([d(-10), d(-5), d(-300), d(-400), d(-20)])})
    history = [("A", d(-10), 5.0), ("B", d(-5), 5.0), ("C", d(-300), 5.0), ("D", d(-400), 5.0)]
    after = [("A", d(100), 30.0), ("B", d(90), 10.0), ("B", d(180), 10.0), ("B", d(270), 10.0),
             ("B", d(360), 10.0), ("C", d(50), 70.0), ("C", d(400), 99.0)]
    frame = pd.DataFrame(history + after, columns=["customer_id", "date", "amount"])
    log = read_transactions(frame)
    out = campaign_outcomes(plan, log, plan_end=T0, horizon_days=364, churn_days=182)
    table = out.table.set_index("customer_id")
    # E is absent from a full log: missing, not a churner
    assert out.missing == ["E"] and "E" not in table.index and out.counts["full_log"]
    # A: from 100 no purchase within 182 days -> declared on day 282, within the horizon
    assert table.loc["A", "churned"] and table.loc["A", "declared_at"] == pd.Timestamp(d(282))
    assert not table.loc["B", "churned"] and table.loc["B", "purchases"] == 4
    assert table.loc["C", "came_back"] and not table.loc["D", "came_back"]
    # the purchase after the horizon does not count
    assert table.loc["C", "revenue"] == 70.0 and out.counts["occasions_after_window"] == 1
    assert out.final and out.window_end == d(364)
    # 150 days in: A's declaration has not fallen yet; the read-out is early
    early = campaign_outcomes(plan, read_transactions(frame[frame["date"] <= d(150)]),
                              plan_end=T0, horizon_days=364, churn_days=182)
    assert not early.final and not early.table.set_index("customer_id").loc["A", "churned"]
    # only the rows since the plan: an absent customer has bought nothing, not gone missing
    since = campaign_outcomes(plan, read_transactions(pd.DataFrame(after, columns=frame.columns)),
                              plan_end=T0, horizon_days=364, churn_days=182)
    assert since.missing == [] and not since.counts["full_log"]
    assert since.table.set_index("customer_id").loc["E", "purchases"] == 0


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A generated base, its analysis with a control group, and a simulated campaign."""
    root = tmp_path_factory.mktemp("campaign")
    base = generate_customer_base(3000, seed=5, start="2022-01-01", observation_end=T0,
                                  follow_up=400)
    customers = base.customers.drop(columns=["acquisition_date"])
    run = analyze(base.transactions, customers=customers, seed=5, observation_end=T0,
                  value_model="bgnbd", control_share=0.3, push_cost=0.5, push_incentive=0.0,
                  pull_cost=0.0, pull_incentive=0.0)
    run.write(root / "run")
    simulated = simulate_campaign(base, run.plan, uplift=UPLIFT, reactivation=REACTIVATION,
                                  churn_days=182, horizon_days=364, seed=1)
    full = pd.concat([base.transactions, simulated.transactions], ignore_index=True)
    full.to_csv(root / "full.csv", index=False)
    return {"root": root, "base": base, "run": run, "sim": simulated, "full": full,
            "customers": customers}


def test_cli_evaluates_and_the_next_analyze_reads_the_measured_rates(campaign, tmp_path):
    root = campaign["root"]
    out = tmp_path / "eval"
    assert main(["evaluate", str(root / "run"), str(root / "full.csv"), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == set(EVALUATION_FILES)
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["read_out"] == "final" and summary["missing"] == 0
    assert summary["evaluated_customers"] == 3000
    measures = pd.read_csv(out / "evaluation.csv")
    push = measures[(measures["action"] == "push") & (measures["cell"] == "all")].iloc[0]
    # every customer's group and outcome is accounted for
    plan = campaign["run"].plan
    assert push["treated"] == ((plan["action"] == "push") & (plan["group"] == "treatment")).sum()
    assert push["control"] == ((plan["action"] == "push") & (plan["group"] == "control")).sum()
    settings = tomllib.loads((out / "measured_settings.toml").read_text())
    assert "observation_end" not in settings
    text = (out / "measured_settings.toml").read_text()
    measured = [line for line in text.splitlines() if ": measured," in line]
    assert measured, text
    # the measured push uplift in the largest cell is written where the allocation reads it
    big = measures[(measures["action"] == "push") & ~measures["cell"].isin(["all", "churned"])
                   & (measures["uplift_enough"] == True)]     # noqa: E712 (NaN is not False)
    cell = big.sort_values("treated").iloc[-1]
    assert settings["push_uplift"][cell["cell"]] == pytest.approx(
        np.clip(cell["uplift"], 0, 1), rel=1e-9)
    # the loop: the next analyze runs with these settings (the same log, here), and its
    # report shows the evaluation
    again = analyze(campaign["base"].transactions, customers=campaign["customers"],
                    config=out / "measured_settings.toml", observation_end=T0, evaluation=out)
    assert again.settings.push_uplift == load_settings(out / "measured_settings.toml").push_uplift
    assert isinstance(again.settings.push_uplift, dict)
    shown = again.analysis.last_campaign
    assert shown["measured_uplift"].tolist() == pytest.approx(measures["uplift"].tolist(),
                                                              nan_ok=True)
    report = (again.write(tmp_path / "next") / "report.html").read_text(encoding="utf-8")
    assert "Last campaign evaluation" in report and "measured against predicted" in report


def test_no_control_group_missing_customers_and_an_early_read_out(campaign, tmp_path):
    root, full = campaign["root"], campaign["full"]
    # a plan whose control group was contacted after all: nothing to compare with
    alone = tmp_path / "alone"
    shutil.copytree(root / "run", alone)
    plan = pd.read_parquet(alone / "plan.parquet")
    plan.loc[plan["action"] != "none", "group"] = "treatment"
    plan.to_parquet(alone / "plan.parquet")
    result = evaluate(alone, full)
    rows = result.measures
    assert rows["uplift"].isna().all() and (rows["control"] == 0).all()
    assert rows["conclusion"].str.startswith("no control group").all()
    assert (rows["revenue_per_treated"].notna()).all()
    assert any("no control group" in n for n in result.summary["notes"])
    assert result.measured_settings.push_reactivation == campaign["run"].settings.push_reactivation
    # customers deleted from the source: counted, named, left out
    gone = plan["customer_id"].iloc[:7].tolist()
    partial = evaluate(root / "run", full[~full["customer_id"].isin(gone)])
    assert partial.summary["missing"] == 7 and partial.summary["missing_customers"] == gone
    assert partial.summary["evaluated_customers"] == 3000 - 7
    assert partial.customers.set_index("customer_id").loc[gone, "missing"].all()
    # 60 days in: an early read-out that says so
    early = evaluate(root / "run", full, end=T0 + dt.timedelta(days=60))
    assert early.summary["read_out"] == "early" and (early.measures["read_out"] == "early").all()
    assert any(n.startswith("Early read-out") for n in early.summary["notes"])


def test_user_mistakes_exit_2_with_a_message(campaign, tmp_path, capsys):
    root = campaign["root"]
    assert main(["evaluate", str(tmp_path), str(root / "full.csv"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "plan.parquet" in capsys.readouterr().err
    before = campaign["base"].transactions
    before.to_csv(tmp_path / "old.csv", index=False)
    assert main(["evaluate", str(root / "run"), str(tmp_path / "old.csv"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "nothing that followed the plan" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    assert main(["evaluate", str(root / "run"), str(root / "full.csv"), "--out",
                 str(tmp_path / "busy")]) == 2
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    # analyze --evaluation with a folder that is no evaluation: refused before the work
    assert main(["analyze", str(root / "full.csv"), "--evaluation", str(tmp_path / "busy"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "evaluation.csv" in capsys.readouterr().err


def test_readme_lists_exactly_the_files_evaluate_writes():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| evaluate's file | content |"):]
    table = table[:table.index("\n\n")]
    names = {re.findall(r"`([^`]+)`", row.split("|")[1])[0]
             for row in table.splitlines()[2:]}
    assert names == set(EVALUATION_FILES)

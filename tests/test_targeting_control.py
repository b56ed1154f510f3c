"""Control groups: the split (shares per stratum, seeded, no customer in both groups), the
power table by hand, and in the main job the contact list is the treatment, the plan's figures
are the treated part's and the plan is saved for `clvtools evaluate`."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.targeting.control import CONTROL, TREATMENT, assign_control, power_table


def _plan(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    action = rng.choice(["push", "pull", "none"], n, p=[0.1, 0.4, 0.5])
    cell = rng.choice(["protect", "maintain", "monitor", "churned"], n)
    p = np.where(cell == "churned", np.nan, rng.uniform(0.1, 0.9, n))
    return pd.DataFrame({"action": action, "cell": cell, "churn_probability": p,
                         "reactivation": np.where(action == "push", 0.05, 0.01)})


def test_split_holds_out_the_share_of_each_stratum_at_random():
    plan = _plan()
    group = assign_control(plan, 0.2, seed=7)
    assert set(group[plan["action"] == "none"]) == {""}
    chosen = plan.assign(group=group)[plan["action"] != "none"]
    assert set(chosen["group"]) == {TREATMENT, CONTROL}     # one group each, never both
    for _, part in chosen.groupby(["action", "cell"]):
        assert (part["group"] == CONTROL).sum() == int(np.floor(0.2 * len(part) + 0.5))
    # seeded: the same seed the same customers, another seed others
    np.testing.assert_array_equal(group, assign_control(plan, 0.2, seed=7))
    # one str object per label, shared by the rows (memory at a million customers)
    assert len({id(g) for g in group}) == 3
    assert (group != assign_control(plan, 0.2, seed=8)).any()
    # no control group
    none = assign_control(plan, 0.0)
    assert set(none[plan["action"] != "none"]) == {TREATMENT}
    with pytest.raises(ValueError, match="share"):
        assign_control(plan, 1.0)


def test_split_is_the_one_drawn_stratum_by_stratum_in_sorted_order():
    # the strata on arrays give the draw of the rule: per (action, cell) in sorted order,
    # round(share x size) positions drawn from the stratum's rows in plan order
    plan = _plan(n=2000, seed=3)
    plan.loc[5, "cell"] = None      # a missing cell forms no stratum: its customer is treated
    group = assign_control(plan, 0.3, seed=11)
    rng = np.random.default_rng(11)
    expected = np.where(plan["action"] == "none", "", TREATMENT).astype(object)
    chosen = plan[(plan["action"] != "none") & plan["cell"].notna()]
    for _, part in sorted(chosen.groupby(["action", "cell"]).groups.items()):
        rows = np.asarray(part)
        expected[rng.choice(rows, size=int(np.floor(0.3 * len(rows) + 0.5)), replace=False)] = (
            CONTROL)
    np.testing.assert_array_equal(group, expected)
    assert group[5] == ("" if plan.loc[5, "action"] == "none" else TREATMENT)


def test_power_table_by_hand():
    # 5 pushed live customers (3 treated, 2 control), 40 declared-churned pulled (30, 10)
    plan = pd.DataFrame({"action": ["push"] * 5 + ["pull"] * 40,
                         "cell": ["protect"] * 5 + ["churned"] * 40,
                         "churn_probability": [0.5, 0.6, 0.7, 0.4, 0.3] + [np.nan] * 40,
                         "reactivation": [0.05] * 5 + [0.2] * 40})
    group = np.array([TREATMENT] * 3 + [CONTROL] * 2 + [TREATMENT] * 30 + [CONTROL] * 10,
                     dtype=object)
    table = power_table(plan, group).set_index(["action", "cell"])
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    live = table.loc[("push", "protect")]
    d = z * np.sqrt(0.5 * 0.5 * (1 / 3 + 1 / 2))
    assert live["treated"] == 3 and live["control"] == 2
    assert live["expected_churn"] == pytest.approx(0.5)
    # d / p = 2.3 > 1: no uplift can be told from none with 2 controls
    assert d / 0.5 > 1 and np.isnan(live["min_detectable_uplift"])
    gone = table.loc[("pull", "churned")]
    assert gone["min_detectable_reactivation"] == pytest.approx(
        z * np.sqrt(0.2 * 0.8 * (1 / 30 + 1 / 10)), rel=1e-12)
    assert np.isnan(gone["min_detectable_uplift"])
    # a large live stratum: uplift = d / p
    big = pd.DataFrame({"action": "push", "cell": "maintain", "churn_probability": 0.4,
                        "reactivation": 0.05}, index=range(1000))
    split = np.array([TREATMENT] * 900 + [CONTROL] * 100, dtype=object)
    row = power_table(big, split).iloc[0]
    assert row["min_detectable_uplift"] == pytest.approx(
        z * np.sqrt(0.4 * 0.6 * (1 / 900 + 1 / 100)) / 0.4, rel=1e-12)


@pytest.fixture(scope="module")
def run():
    base = generate_customer_base(3000, seed=6)
    return analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                   config=Settings(horizon=26, control_share=0.2, seed=4))


def test_contact_list_is_the_treatment_and_figures_are_its_own(run, tmp_path):
    t = run.analysis.targets
    customers = t.customers
    treated = customers["group"] == TREATMENT
    control = customers["group"] == CONTROL
    assert treated.any() and control.any()
    assert set(t.targets["customer_id"]) == set(customers.loc[treated, "customer_id"])
    assert t.targets["priority_rank"].tolist() == list(range(1, treated.sum() + 1))
    assert customers.loc[control, "priority_rank"].isna().all()
    s = t.summary
    assert s["push"] + s["pull"] == treated.sum()
    assert s["push_control"] + s["pull_control"] == control.sum()
    assert s["expected_net_benefit"] == pytest.approx(
        customers.loc[treated, "expected_net_benefit"].sum())
    assert s["control_forgone_net_benefit"] == pytest.approx(
        customers.loc[control, "expected_net_benefit"].sum())
    power = t.control_power
    assert power["treated"].sum() == treated.sum() and power["control"].sum() == control.sum()
    # the saved plan reads back with its types
    out = run.write(tmp_path / "out")
    plan = pd.read_parquet(out / "plan.parquet")
    assert len(plan) == len(customers)
    assert str(plan["priority_rank"].dtype) == "Int64"
    assert pd.api.types.is_datetime64_any_dtype(plan["last_purchase"])
    np.testing.assert_array_equal(plan["group"], customers["group"])
    meta = json.loads((out / "plan.json").read_text())
    assert meta["control_share"] == 0.2
    assert meta["observation_end"] == run.analysis.timeline.observation_end.isoformat()
    assert meta["control"]["push"] == s["push_control"]

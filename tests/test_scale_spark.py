"""clvtools.scale on a real Spark in local mode: ``clvtools analyze --engine spark`` runs end
to end, and its per-customer scores, cells and plan are the single-machine pipeline's."""
import json

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import assert_scores_match, assert_tables_match

from clvtools import api, btyd, survival
from clvtools.cli import main
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.value_models import VALUE_MODELS
from clvtools.report.output_folder import OWNERSHIP_FILE
from clvtools.report.outputs import OUTPUTS, write_folder

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

#: Both engines run with these settings (a fixed purchase model: the single-machine engine
#: chooses on a holdout, a Spark run by BIC; a capacity: the plan Spark ranks globally).
SETTINGS = {"value_model": "bgnbd", "push_capacity": 10}
SCORES = ["p_alive", "expected_purchases", "expected_average_spend", "churn_probability",
          "revenue_if_retained", "expected_revenue", "revenue_at_risk", "lapsed_revenue",
          "preventable_revenue", "net_benefit_push", "net_benefit_pull",
          "expected_net_benefit"]


@pytest.fixture(scope="module")
def transactions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark_input")
    tx = generate_customer_base(1500, seed=3).transactions
    tx.to_csv(folder / "transactions.csv", index=False)
    return tx, folder / "transactions.csv"


@pytest.fixture(scope="module")
def spark_out(spark, transactions, tmp_path_factory):
    """``clvtools analyze FILE --engine spark`` (the session is the fixture's, which the CLI
    finds active), and its exit status."""
    out = tmp_path_factory.mktemp("spark_run") / "out"
    status = main(["analyze", str(transactions[1]), "--engine", "spark", "--out", str(out),
                   "--value-model", SETTINGS["value_model"],
                   "--push-capacity", str(SETTINGS["push_capacity"])])
    return status, out


@pytest.fixture(scope="module")
def single_run(transactions):
    return api.analyze(transactions[0], **SETTINGS)


@pytest.fixture(scope="module")
def single(single_run):
    return single_run.customers.set_index("customer_id")


def test_the_cli_runs_end_to_end_on_spark(spark_out):
    status, out = spark_out
    assert status == 0
    # folders of part files
    datasets = {"customers.parquet", "targets.parquet", "win_back.parquet",
                "early_warning.parquet"}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and not datasets & set(p.parts)}
    assert written == {"matrix.csv", "plan_summary.csv", "control_power.csv", "kpis.csv",
                       "cohorts.csv", "churn_by_segment.csv", "churn_drivers.csv",
                       "forecast.csv", "forecast_backtest.csv",
                       "forecast.xlsx", "report.html", "survival_curves.csv",
                       "median_time_to_churn.csv", "holdout_summary.csv",
                       "holdout_by_frequency.csv", "holdout_by_month.csv",
                       "models/value.json", "models/spend.json", "models/churn.json",
                       "data_quality.json", "config.toml", OWNERSHIP_FILE}
    assert datasets <= set(json.loads((out / OWNERSHIP_FILE).read_text())["files"])
    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["engine"] == "spark" and quality["transactions"]["customers"] == 1500
    assert quality["transactions"]["source"].endswith("transactions.csv")
    customers = pd.read_parquet(out / "customers.parquet")
    assert len(customers) == 1500 and customers["customer_id"].is_unique
    assert (customers["action"] == "push").sum() == SETTINGS["push_capacity"]
    # the contact list: the push and pull customers of the treatment (the default control
    # group held out), part files in priority order
    targets = pd.read_parquet(out / "targets.parquet")
    assert targets["priority_rank"].tolist() == list(range(1, len(targets) + 1))
    assert customers["group"].eq("control").any()
    contacted = customers[customers["group"] == "treatment"].set_index("customer_id")
    assert set(targets["customer_id"]) == set(contacted.index)
    assert targets.set_index("customer_id")["action"].equals(
        contacted.loc[targets["customer_id"], "action"])
    assert targets["action"].tolist() == sorted(targets["action"], key=lambda a: a != "push")
    # the model files are the single-machine engine's documents (schema-checked on load)
    assert btyd.load_model(out / "models" / "value.json").params_["r"] > 0
    assert survival.load_model(out / "models" / "churn.json").hazard_ratios_.size > 3
    matrix = pd.read_csv(out / "matrix.csv").set_index("cell")
    assert matrix.loc["total", "customers"] == 1500
    # written to the cent
    np.testing.assert_allclose(matrix.loc["total", "revenue_at_risk"],
                               customers["revenue_at_risk"].sum(), rtol=0, atol=0.005)


def test_spark_scores_equal_the_single_machine_scores(spark_out, single):
    customers = (pd.read_parquet(spark_out[1] / "customers.parquet").set_index("customer_id")
                 .loc[single.index])
    assert_scores_match(customers, single, SCORES, ("churn_model", "cell", "action"))
    assert single["churn_model"].eq("cox").any() and single["cell"].eq("churned").any()


def test_forecast_csv_equals_the_standard_engines_file(spark_out, single_run, tmp_path):
    """forecast.csv summed over Spark's partitions, the value models' delta method on the
    standard engine's sample: the standard engine's file, text exactly, figures to 1e-9
    or one cent (money is written to the cent)."""
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name == "forecast.csv"}, tmp_path / "standard")
    got, expected = (pd.read_csv(folder / "forecast.csv", keep_default_na=False,
                                 na_values=[""])
                     for folder in (spark_out[1], tmp_path / "standard"))
    assert len(expected) > 10
    assert (expected["expected_revenue_hi95"] > expected["expected_revenue"]).all()
    assert_tables_match(got, expected, atol=0.0100001)


def test_forecast_backtest_csv_equals_the_standard_engines_file(spark_out, single_run,
                                                                tmp_path):
    """forecast_backtest.csv: at each origin the models refitted on Spark's compressed rows,
    the forecast summed over partitions and the actual revenue summed in Spark: the standard
    engine's file, text exactly, figures to 1e-9 or one cent."""
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name == "forecast_backtest.csv"}, tmp_path / "standard")
    got, expected = (pd.read_csv(folder / "forecast_backtest.csv", keep_default_na=False,
                                 na_values=[""])
                     for folder in (spark_out[1], tmp_path / "standard"))
    assert expected["origin"].nunique() >= 1 and len(expected) > 10
    assert (expected["actual_revenue"] > 0).all()
    assert_tables_match(got, expected, atol=0.0100001)


def test_cohorts_and_churn_by_segment_are_the_standard_engines_files(spark_out, single_run,
                                                                     tmp_path):
    """cohorts.csv and churn_by_segment.csv (value tiers) counted in Spark SQL: the standard
    engine's files byte for byte."""
    names = ("cohorts.csv", "churn_by_segment.csv")
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name in names}, tmp_path / "standard")
    for name in names:
        expected = (tmp_path / "standard" / name).read_bytes()
        assert expected.count(b"\n") > 20, name
        assert (spark_out[1] / name).read_bytes() == expected, name


@pytest.mark.parametrize("name", ["survival_curves.csv", "median_time_to_churn.csv",
                                  "holdout_summary.csv", "holdout_by_frequency.csv",
                                  "holdout_by_month.csv"])
def test_the_survival_and_holdout_files_equal_the_standard_files(spark_out, single_run,
                                                                 tmp_path, name):
    """The Kaplan-Meier curves and medians from the landmark table counted per duration and
    event by a Spark groupBy, and the value model's holdout summed over partitions
    (mapInPandas): the standard engine's files (no attributes here, so no log-rank tests
    nor holdout by segment; with attributes: test_scale_spark_attributes.py)."""
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name == name}, tmp_path / "standard")
    got, expected = (pd.read_csv(folder / name, keep_default_na=False, na_values=[""])
                     for folder in (spark_out[1], tmp_path / "standard"))
    assert len(expected) >= 1
    if "by" in expected:
        assert set(expected["by"]) == {"all"}
    assert_tables_match(got, expected, atol=0.0)


def _sheets(path) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book}
    finally:
        book.close()


def test_the_workbook_shows_the_standard_forecast_lists_kpis_and_matrix(spark_out, single_run,
                                                                        tmp_path):
    """forecast.xlsx read back with openpyxl: the forecast, the two lists (the first rows of
    each, read by rank from Spark's contact list), the KPIs and the matrix are the standard
    workbook's, cell by cell (money to the cent)."""
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name == "forecast.xlsx"}, tmp_path / "standard")
    got, expected = (_sheets(folder / "forecast.xlsx")
                     for folder in (spark_out[1], tmp_path / "standard"))
    assert list(got) == list(expected)
    for name in ("Forecast", "Forecast by cell", "Push list", "Pull list", "KPIs", "Matrix"):
        assert len(got[name]) == len(expected[name]) > 5, name
        for row, wanted in zip(got[name], expected[name], strict=True):
            for cell, other in zip(row, wanted, strict=True):
                if isinstance(other, float):
                    assert cell == pytest.approx(other, rel=1e-9, abs=0.0100001), name
                else:
                    assert cell == other, name


#: The standard page's sections; a Spark run's page has them all.
SECTIONS = ("summary", "data", "kpis", "models", "survival", "matrix", "targets", "forecast")


@pytest.fixture(scope="module")
def pages(spark_out, single_run, tmp_path_factory):
    """The Spark run's and the standard run's report.html loaded in a headless Chromium, with
    what the Spark page logged and requested."""
    from test_report_html import CHROMIUM, CHROMIUM_ARGS

    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/setup-test"
    from playwright.sync_api import sync_playwright

    standard = tmp_path_factory.mktemp("standard_report")
    write_folder({o.name: (lambda o=o: o.content(single_run.analysis, {})) for o in OUTPUTS
                  if o.name == "report.html"}, standard)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        loaded = {}
        for name, path in {"spark": spark_out[1] / "report.html",
                           "standard": standard / "report.html"}.items():
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            events = {"console": [], "failed": [], "requests": []}
            page.on("console", lambda m, e=events: e["console"].append((m.type, m.text)))
            page.on("requestfailed", lambda r, e=events: e["failed"].append(r.url))
            page.on("request", lambda r, e=events: e["requests"].append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            loaded[name] = (page, events, path)
        yield loaded
        browser.close()


def test_the_report_loads_offline_with_every_section_and_figure(pages):
    page, events, path = pages["spark"]
    assert page.title() == "Customer value and churn report"
    assert [m for m in events["console"] if m[0] in ("error", "warning")] == []
    assert events["failed"] == []
    assert [u for u in events["requests"] if not u.startswith("data:")] == [path.as_uri()]
    assert tuple(page.eval_on_selector_all("main > section", "s => s.map(e => e.id)")) \
        == SECTIONS
    shown = page.eval_on_selector_all(
        "figure", """fs => fs.map(f => { const i = f.querySelector('img');
            return {id: f.closest('section').id, w: i.naturalWidth, h: i.naturalHeight,
                    complete: i.complete, caption: f.querySelector('figcaption').innerText}; })""")
    # the KPIs, the matrix (from counts binned in Spark), the forecast and its backtest
    assert {f["id"] for f in shown} >= {"kpis", "matrix", "forecast"}
    for f in shown:
        assert f["complete"] and f["w"] > 300 and f["h"] > 200, f
        assert f["caption"].strip().endswith("."), f


def test_the_reports_headline_and_matrix_equal_the_standard_report(pages):
    def read(name):
        page = pages[name][0]
        numbers = page.locator("#summary .headline .number").all_inner_texts()
        plan = page.locator("#summary > p:not(.note)").all_inner_texts()
        matrix = page.locator("#matrix .table", has_text="Per cell and in total")
        return numbers, plan, matrix.locator("tbody").inner_text()
    spark_page, standard = read("spark"), read("standard")
    assert len(spark_page[0]) == 4
    assert spark_page == standard


def test_the_survival_curves_and_medians_equal_the_standard_report(pages):
    """The Kaplan-Meier figure and the medians table from Spark's counts: as on the
    standard page."""
    def read(name):
        page = pages[name][0]
        medians = page.locator("#survival .table", has_text="Median time to declared churn")
        return page.locator("#survival figure").count(), medians.locator("tbody").inner_text()
    spark_page = read("spark")
    assert spark_page[0] == 1 and "all" in spark_page[1]
    assert spark_page == read("standard")


def test_the_value_models_holdout_table_and_charts_equal_the_standard_report(pages):
    """The holdout totals (summed over partitions) and its two charts, as on the standard
    page."""
    def read(name):
        page = pages[name][0]
        totals = page.locator("#models .table", has_text="Holdout totals per candidate")
        titles = page.eval_on_selector_all("#models figure img", "is => is.map(i => i.alt)")
        return totals.locator("tbody").inner_text(), [t for t in titles if "Holdout" in t]
    spark_page = read("spark")
    assert "bgnbd" in spark_page[0] and len(spark_page[1]) == 2
    assert spark_page == read("standard")


def test_each_part_a_spark_run_does_not_compute_is_stated_where_it_would_be(pages):
    from clvtools.scale.spark_report import NOT_COMPUTED, NOT_COMPUTED_LINE

    page = pages["spark"][0]
    for section, parts in NOT_COMPUTED.items():
        notes = page.locator(f"#{section} .note", has_text=NOT_COMPUTED_LINE)
        assert notes.count() == len(parts), section
        text = " ".join(notes.all_inner_texts()).lower()
        assert all(part.lower() in text for part in parts), section
    assert page.locator(".note", has_text=NOT_COMPUTED_LINE).count() == sum(
        map(len, NOT_COMPUTED.values()))


def test_the_matrix_bins_count_every_live_customer(spark, single):
    """The figure's grid counted by a Spark groupBy: every live customer with finite figures
    once, each inside the axes' span."""
    from clvtools.scale.spark_report import spark_matrix_bins

    frame = spark.createDataFrame(
        single.reset_index()[["customer_id", "cell", "churn_probability",
                              "revenue_if_retained"]])
    binned = spark_matrix_bins(frame, "revenue_if_retained")
    live = single[single["cell"] != "churned"]
    assert binned["customers"].sum() == len(live) > 100
    assert binned["churn_probability"].between(0, 1).all()
    assert (binned["revenue_if_retained"] <= live["revenue_if_retained"].max() * 1.05).all()
    assert len(binned) > 20


def test_the_control_group_is_the_standard_draw(spark_out, single, single_run):
    """The default control group: the single machine's groups, ranks over the treatment,
    control_power.csv and plan_summary.csv's control fields, drawn on the driver over the
    chosen customers that Spark collects."""
    out = spark_out[1]
    customers = (pd.read_parquet(out / "customers.parquet").set_index("customer_id")
                 .loc[single.index])
    assert customers["group"].eq("control").sum() >= 5
    assert (customers["group"] == single["group"]).all()
    np.testing.assert_array_equal(customers["priority_rank"].to_numpy(float),
                                  single["priority_rank"].to_numpy(float))
    targets = single_run.analysis.targets
    power = pd.read_csv(out / "control_power.csv")
    pd.testing.assert_frame_equal(power, targets.control_power, check_dtype=False, rtol=1e-12)
    summary = pd.read_csv(out / "plan_summary.csv").iloc[0]
    for key in ("control_share", "push", "pull", "push_control", "pull_control"):
        assert summary[key] == targets.summary[key], key
    for key in ("cost", "expected_net_benefit", "control_forgone_net_benefit"):
        assert summary[key] == pytest.approx(targets.summary[key], rel=1e-9), key


def test_settings_spark_cannot_honour_are_errors(transactions, tmp_path, capsys):
    # per-customer uplifts are read by the single machine's plan only
    assert main(["analyze", str(transactions[1]), "--engine", "spark", "--out",
                 str(tmp_path / "a"), "--push-uplift-column", "uplift"]) == 2
    assert "does not support the settings ['push_uplift_column']" in capsys.readouterr().err
    assert main(["analyze", str(transactions[1]), "--engine", "flink", "--out",
                 str(tmp_path / "b")]) == 2
    assert "--engine must be 'duckdb', 'chunked' or 'spark'" in capsys.readouterr().err


def test_compressed_statistics_fit_the_single_machine_models(spark, single_run):
    """The distinct RFM rows and their counts, in the order of their first customer, are the
    arrays the single-machine fit collapses the customers into: the same estimates, to the
    last bit; ``auto`` keeps the lowest BIC."""
    from clvtools.scale.spark_fit import fit_value_from_spark

    rfm = single_run.analysis.value.rfm
    frame = spark.createDataFrame(rfm.reset_index())
    models, chosen, _ = fit_value_from_spark(frame, "bgnbd")
    expected = single_run.analysis.value.models
    assert chosen == "bgnbd"
    assert models.purchases.params_.equals(expected.purchases.params_)
    assert models.spend.params_.equals(expected.spend.params_)
    _, chosen, notes = fit_value_from_spark(frame, "auto")
    bic = {name: fitter().fit(rfm["frequency"], rfm["recency"], rfm["T"]).BIC_
           for name, fitter in VALUE_MODELS.items()}
    assert chosen == min(bic, key=bic.get)
    assert f"Purchase model {chosen} chosen by BIC" in " ".join(notes)


@pytest.fixture(scope="module")
def decisions(spark, single, single_run):
    """The demo's decisions as a Spark run's plan step receives them: the single machine's
    scores through the pipeline's own ``decide_chunk``, in pandas (customer order) and as a
    Spark DataFrame."""
    from clvtools.config import Settings
    from clvtools.pipeline.scoring import decide_chunk
    from clvtools.scale.run_files import actions

    # push and pull cheaper than the defaults, so that about 190 customers gain by push and
    # 140 by pull (the defaults' 20 pushes of 1,500 would leave the knapsacks little to
    # choose)
    push, pull = actions(Settings(push_cost=5.0, pull_incentive=1.0))
    summary = single_run.analysis.targets.summary
    customers = single.sort_index()
    frame = decide_chunk(customers, cut_points={"value": summary["value_cut_point"],
                                                "risk": summary["risk_cut_point"]},
                         value_axis="revenue_if_retained", push=push, pull=pull, margin=1.0,
                         offer="conditional")
    return (customers.assign(cell=frame["cell"]), spark.createDataFrame(frame.reset_index()),
            push, pull)


@pytest.mark.parametrize("limit", ["push_budget", "total_budget"])
@pytest.mark.parametrize("solver", ["milp", "greedy_lp", "all_fit"])
def test_the_plan_under_a_budget_is_the_standard_engines(decisions, limit, solver,
                                                         monkeypatch):
    """Under a push or total budget a Spark run's plan is the standard engine's: the exact
    knapsack on the candidates collected to the driver up to EXACT_MAX_CUSTOMERS, its greedy
    LP solution by a global ranking with a running cost in Spark beyond (made to apply here
    by lowering the limit for both engines), every candidate when all fit."""
    from clvtools.scale.spark_budget import plan_under_limit
    from clvtools.targeting import knapsack
    from clvtools.targeting.allocation import allocate

    customers, decided, push, pull = decisions
    unconstrained = allocate(customers, push, pull).summary
    spent = unconstrained["push_cost" if limit == "push_budget" else "cost"]
    budget = 1e9 if solver == "all_fit" else 0.3 * spent
    if solver != "milp":
        monkeypatch.setattr(knapsack, "EXACT_MAX_CUSTOMERS", 0)
    expected = allocate(customers, push, pull, **{limit: budget})
    assert expected.summary["solver"] == solver
    context = decided.sparkSession.sparkContext._jsc
    before = context.getPersistentRDDs().size()
    plan, solved = plan_under_limit(decided, **{limit: budget})
    # the plan computed and cached, the frames the knapsack persisted unpersisted
    assert plan.is_cached and not decided.is_cached
    assert context.getPersistentRDDs().size() == before + 1
    got = (plan.select("customer_id", "action", "priority_rank").toPandas()
           .set_index("customer_id").loc[customers.index])
    assert (got["action"] == expected.plan["action"]).all()
    assert got["action"].eq("push").sum() > 10 and got["action"].eq("pull").sum() > 10
    np.testing.assert_array_equal(got["priority_rank"].to_numpy(float),
                                  expected.plan["priority_rank"].to_numpy(float))
    assert solved["constraint"] == limit and solved["solver"] == solver
    for key in ("bound", "gap"):
        assert solved[key] == pytest.approx(expected.summary[key], rel=1e-9, abs=1e-6), key
    plan.unpersist()

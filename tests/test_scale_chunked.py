"""``clvtools analyze --engine chunked``: the customers scored a chunk at a time from tables kept
in DuckDB give the standard engine's scores, cells, actions, control group, ranks, matrix,
plan, customers.csv and KPIs; the Cox sample is the standard engine's draw; unsupported
settings are refused; and the standard engine refuses early a base that clearly exceeds
``memory_limit``."""
import json
import sys

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import assert_scores_match, assert_tables_match

from clvtools import api
from clvtools.cli import main
from clvtools.config import Settings
from clvtools.data.chunked_plan import parts
from clvtools.data.chunked_tables import store_rfm
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.pipeline.campaign import read_plan
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.memory_budget import (
    check_standard_engine_fits,
    memory_bytes,
    release_unused_memory,
)
from clvtools.pipeline.risk import fit_churn_model
from clvtools.pipeline.structural import churn_model_inputs
from clvtools.pipeline.timeline import build_timeline
from clvtools.report.output_folder import OWNERSHIP_FILE
from clvtools.report.outputs import OUTPUTS, write_folder
from clvtools.report.sections.matrix import alive_grid, lorenz_curve
from clvtools.report.sections.summary import things_to_do
from clvtools.report.sections.targets import list_tables
from clvtools.scale.chunked_churn import churn_training
from clvtools.scale.chunked_report import list_tops
from clvtools.scale.chunked_report import things_to_do as chunked_things_to_do
from clvtools.scale.chunked_run import CHUNKED_OUTPUTS, memory_plan
from clvtools.scale.chunked_spread import alive_grid_of, linear_quantile, lorenz_curve_of
from clvtools.scale.holdout_sums import HOLDOUT_FILES

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("scale_chunked")

#: Both engines: BG/NBD named (the standard engine would choose on a holdout), a capacity
#: (ranked over the whole base), the default control group (drawn over the whole plan).
SETTINGS = {"value_model": "bgnbd", "push_capacity": 25}
#: Customers a chunk: several chunks on the demo.
CHUNK_ROWS = 400
SCORES = ["frequency", "recency", "T", "monetary_value", "p_alive", "expected_purchases",
          "expected_average_spend", "churn_probability", "revenue_if_retained",
          "expected_revenue", "revenue_at_risk", "lapsed_revenue", "preventable_revenue",
          "net_benefit_push", "net_benefit_pull", "expected_net_benefit"]


@pytest.fixture(scope="module")
def base():
    """A demo base with timestamps holding a time of day and string ids, and its attributes."""
    demo = generate_customer_base(1800, seed=5)
    tx = demo.transactions.copy()
    seconds = np.random.default_rng(5).integers(0, 86_400, len(tx))
    tx["date"] = pd.to_datetime(tx["date"]) + pd.to_timedelta(seconds, "s")
    return tx, demo.customers


@pytest.fixture(scope="module", params=["without", "with"])
def runs(request, base):
    """The standard run and the chunked run, without and with the customer attributes."""
    tx, customers = base
    attributes = customers if request.param == "with" else None
    standard = api.analyze(tx, customers=attributes, **SETTINGS)
    chunked = api.analyze_chunked(tx, customers=attributes, chunk_rows=CHUNK_ROWS, **SETTINGS)
    return standard, chunked


def test_chunked_scores_cells_actions_and_ranks_equal_the_standard_run(runs):
    standard, chunked = runs
    assert chunked.chunks >= 4
    expected = standard.customers.set_index("customer_id")
    got = chunked.customers_relation().df().set_index("customer_id")
    assert list(got.index) == sorted(expected.index)
    expected = expected.loc[got.index]
    assert_scores_match(got, expected, SCORES,
                        ("churn_model", "cell", "action", "group", "lifecycle", "last_purchase"))
    np.testing.assert_array_equal(got["priority_rank"].to_numpy(float),
                                  expected["priority_rank"].to_numpy(float))
    assert (got["action"] == "push").sum() == SETTINGS["push_capacity"]
    assert list(got.columns) == list(expected.columns)      # the attributes included


def test_the_control_group_is_the_standard_draw(runs):
    standard, chunked = runs
    got = chunked.customers_relation().df()
    assert (got["group"] == "control").sum() > 0
    targets = standard.analysis.targets
    pd.testing.assert_frame_equal(chunked.control_power, targets.control_power)
    for key in ("control_share", "push_control", "pull_control"):
        assert chunked.summary[key] == targets.summary[key], key
    assert chunked.summary["control_forgone_net_benefit"] == pytest.approx(
        targets.summary["control_forgone_net_benefit"], abs=1e-6 * len(got))


def _read_both(name: str, root) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(root / engine / name, keep_default_na=False, na_values=[""])
                 for engine in ("chunked", "standard"))


@pytest.fixture(scope="module")
def written(runs, tmp_path_factory):
    """Both runs' files: the chunked run's folder, and the standard run's customers.csv,
    early_warning.csv, win_back.csv, targets.csv, its plan, forecast.csv, cohorts.csv and
    churn_by_segment.csv as its manifest writes them."""
    standard, chunked = runs
    root = tmp_path_factory.mktemp("written")
    chunked.write(root / "chunked")
    names = ("customers.csv", "early_warning.csv", "win_back.csv", "targets.csv",
             "plan.parquet", "plan.json", "forecast.csv", "forecast.xlsx",
             "forecast_backtest.csv", "cohorts.csv",
             "churn_by_segment.csv", "concentration.csv", "sensitivity.csv",
             *SURVIVAL_FILES, *HOLDOUT_FILES, "value_checks.csv")
    write_folder({o.name: (lambda o=o: o.content(standard.analysis, {})) for o in OUTPUTS
                  if o.name in names}, root / "standard")
    return root


#: The rows a file must have for the comparison to mean something (others: more than 10).
_FEWEST_ROWS = {"concentration.csv": 6, "sensitivity.csv": 10}


@pytest.mark.parametrize("name", ["customers.csv", "early_warning.csv", "win_back.csv",
                                  "targets.csv", "forecast.csv", "forecast_backtest.csv",
                                  "cohorts.csv",
                                  "churn_by_segment.csv", "concentration.csv",
                                  "sensitivity.csv"])
def test_the_chunked_csv_files_equal_the_standard_files(written, name):
    got, expected = _read_both(name, written)
    # concentration.csv has 6 rows (its shares of customers), sensitivity.csv about 10
    assert len(expected) >= _FEWEST_ROWS.get(name, 11)
    assert list(got.columns) == list(expected.columns)
    numbers = [c for c in got.columns if pd.api.types.is_float_dtype(expected[c])]
    # money is written to the cent: a figure 1e-9 away may round to the next cent
    for column in numbers:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=0.0100001,
                                   equal_nan=True, err_msg=column)
    text = [c for c in got.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[text], expected[text], check_dtype=False)


#: The Kaplan-Meier files (the log-rank tests only with attributes: between their segments).
SURVIVAL_FILES = ("survival_curves.csv", "median_time_to_churn.csv", "logrank_tests.csv")


def _neither_wrote(written, name: str, by_attribute: str, with_attributes: bool) -> bool:
    """Whether ``name`` is the file made only by attribute, in a run without attributes:
    then neither engine wrote it (asserted)."""
    if name != by_attribute or with_attributes:
        return False
    assert not (written / "standard" / name).exists()
    assert not (written / "chunked" / name).exists()
    return True


@pytest.mark.parametrize("name", SURVIVAL_FILES)
def test_the_survival_files_from_duckdb_counts_equal_the_standard_files(runs, written, name):
    """The curves, medians and log-rank tests overall and per categorical attribute, from
    the landmark table counted per segment, duration and event in DuckDB: the standard
    files (none of the standard's rows is by matrix cell here: those come with the
    targeting evaluation, which the chunked page states as not computed)."""
    with_attributes = runs[0].analysis.inputs.attributes is not None
    if _neither_wrote(written, name, "logrank_tests.csv", with_attributes):
        return
    got, expected = _read_both(name, written)
    assert len(expected) >= {"survival_curves.csv": 100, "median_time_to_churn.csv": 1,
                             "logrank_tests.csv": 6}[name]
    groupings = {"channel", "region", "plan"} if with_attributes else set()
    assert set(expected["by"]) == groupings | ({"all"} if name != "logrank_tests.csv" else set())
    assert_tables_match(got, expected, atol=0.0)


@pytest.mark.parametrize("name", HOLDOUT_FILES)
def test_the_holdout_files_summed_over_chunks_equal_the_standard_files(runs, written, name):
    """The value model refitted on the calibration window's compressed rows, its customers
    scored a chunk at a time and only sums kept: the standard holdout files (the summary's
    AUC from counts per distinct P(alive); by segment only with attributes)."""
    with_attributes = runs[0].analysis.inputs.attributes is not None
    if _neither_wrote(written, name, "holdout_by_segment.csv", with_attributes):
        return
    got, expected = _read_both(name, written)
    assert len(expected) >= {"holdout_summary.csv": 1, "holdout_by_frequency.csv": 10,
                             "holdout_by_month.csv": 12, "holdout_by_segment.csv": 8}[name]
    assert_tables_match(got, expected, atol=0.0)
    if name == "holdout_summary.csv":
        assert 0.5 < expected.loc[0, "p_alive_auc"] < 1
        assert got.loc[0, "chosen"] and got.loc[0, "basis"] == "all customers"


#: value_checks.csv's columns holding figures (the rest is text).
FIGURES = ["value", "df", "p_value"]


def assert_checks_equal(got: dict, expected: dict) -> None:
    """Two checks dicts: the same keys and text, figures to 1e-9."""
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, dict):
            assert_checks_equal(got[name], value)
        elif isinstance(value, list):       # the frequency fit's table, as records
            assert len(got[name]) == len(value) > 3, name
            for row, row_expected in zip(got[name], value, strict=True):
                assert_checks_equal(row, row_expected)
        elif isinstance(value, float):
            assert got[name] == pytest.approx(value, rel=1e-9, abs=0.0), name
        else:
            assert got[name] == value, name


def test_value_checks_csv_equals_the_standard_file(runs, written):
    """Text exactly, figures to 1e-9: the holdout's AUC, the spend-frequency correlation and
    the frequency fit (with attributes, of the BG/NBD with covariates)."""
    got, expected = (pd.read_csv(written / engine / "value_checks.csv", keep_default_na=False,
                                 na_values=[""]) for engine in ("chunked", "standard"))
    assert expected["check"].tolist() == ["p_alive_auc_holdout", "spend_frequency_correlation",
                                          "frequency_fit"]
    text = [c for c in expected.columns if c not in FIGURES]
    pd.testing.assert_frame_equal(got[text], expected[text])
    for column in FIGURES:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=0.0,
                                   equal_nan=True, err_msg=column)
    standard, chunked = runs
    with_attributes = standard.analysis.inputs.attributes is not None
    assert type(chunked.scorers.value.purchases).__name__ == (
        "BetaGeoCovariatesFitter" if with_attributes else "BetaGeoFitter")


def test_data_quality_json_holds_the_standard_value_checks(runs):
    standard, chunked = runs
    assert_checks_equal(chunked.data_quality()["value_checks"], standard.analysis.value.checks)


def test_the_contacts_and_their_reasons_equal_the_standard_list(runs, written):
    standard, _ = runs
    contacts = pd.read_parquet(written / "chunked" / "targets.parquet")
    listed = standard.analysis.targets.targets
    assert list(contacts.columns) == list(listed.columns)
    labels = ["customer_id", "action", "cell", "reason_1", "reason_2", "reason_3"]
    pd.testing.assert_frame_equal(contacts[labels], listed[labels])
    assert contacts["priority_rank"].tolist() == list(range(1, len(listed) + 1))


def test_the_saved_plan_equals_the_standard_plan(written):
    got, expected = (read_plan(written / engine) for engine in ("chunked", "standard"))
    assert got[1] == expected[1]                              # plan.json
    got, expected = got[0], expected[0]
    assert list(got.columns) == list(expected.columns)
    assert got["assumed_uplift"].notna().sum() > 100
    numbers = [c for c in got.columns if pd.api.types.is_float_dtype(expected[c])]
    for column in numbers:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=1e-9,
                                   equal_nan=True, err_msg=column)
    text = [c for c in got.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[text], expected[text], check_dtype=False)


@pytest.fixture(scope="module")
def follow_up():
    """The purchases of the base's customers in the 200 days after its observation end (the
    generator's other tables do not depend on the follow-up)."""
    return generate_customer_base(1800, seed=5, follow_up=200).future_transactions


def test_evaluate_reads_a_chunked_plan_as_the_standard_one(written, follow_up):
    got, expected = (api.evaluate(written / engine, follow_up)
                     for engine in ("chunked", "standard"))
    assert got.summary["evaluated_customers"] == 1800
    assert (got.measures["treated"] > 0).any()
    pd.testing.assert_frame_equal(got.measures, expected.measures, rtol=1e-9)
    pd.testing.assert_frame_equal(got.customers, expected.customers)


def test_the_forecast_summed_over_chunks_equals_the_standard_forecast(runs):
    """Means, the customers' variances and the churners' gradients summed over the chunks,
    the value models' delta method on the same sample: every figure and interval to 1e-9."""
    standard, chunked = runs
    got, expected = chunked.forecast.table, standard.analysis.forecast.table
    assert chunked.chunks >= 4 and list(got.columns) == list(expected.columns)
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    assert (expected["expected_revenue_hi95"] > expected["expected_revenue"]).all()
    for column in numbers:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=1e-9,
                                   err_msg=column)
    text = [c for c in expected.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[text], expected[text])
    assert chunked.forecast.notes == standard.analysis.forecast.notes


def test_the_backtest_refitted_on_compressed_rows_equals_the_standard_backtest(runs):
    standard, chunked = runs
    got, expected = chunked.backtest.table, standard.analysis.backtest.table
    assert len(expected) > 10 and list(got.columns) == list(expected.columns)
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    for column in numbers:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, atol=1e-9,
                                   err_msg=column)
    text = [c for c in expected.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[text], expected[text])


def _sheets(path) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book}
    finally:
        book.close()


def test_the_workbook_shows_the_standard_forecast_lists_kpis_and_matrix(written):
    """forecast.xlsx read back with openpyxl: the forecast, the two lists (the first rows of
    each, read by rank), the KPIs and the matrix are the standard workbook's, cell by cell
    (money to the cent); the plan sheet shows the chunked run's own summary."""
    got, expected = (_sheets(written / engine / "forecast.xlsx")
                     for engine in ("chunked", "standard"))
    assert list(got) == list(expected)
    for name in ("Forecast", "Forecast by cell", "Push list", "Pull list", "KPIs", "Matrix"):
        assert len(got[name]) == len(expected[name]) > 5, name
        for row, wanted in zip(got[name], expected[name], strict=True):
            for cell, other in zip(row, wanted, strict=True):
                if isinstance(other, float):
                    assert cell == pytest.approx(other, rel=1e-9, abs=0.0100001), name
                else:
                    assert cell == other, name


def test_the_p_alive_map_and_lorenz_curve_from_sql_equal_the_standard_ones(runs):
    """The report's P(alive) bins and Lorenz curve, summed in DuckDB over the decided parts,
    equal the standard report's from the customers table."""
    standard, chunked = runs
    customers = standard.analysis.targets.customers
    decided = parts(chunked.work / "decided")
    expected, got = alive_grid(customers), alive_grid_of(chunked.log.con, decided)
    assert got.top == expected.top
    np.testing.assert_array_equal(got.x_edges, expected.x_edges)
    np.testing.assert_array_equal(got.y_edges, expected.y_edges)
    np.testing.assert_array_equal(got.customers, expected.customers)
    assert (got.customers >= 3).sum() > 20       # a map with content, not an empty grid
    np.testing.assert_allclose(got.alive_sum, expected.alive_sum, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(lorenz_curve_of(chunked.log.con, decided),
                               lorenz_curve(customers["expected_revenue"]), rtol=1e-12,
                               atol=1e-14)


def test_thelinear_quantile_from_value_counts_is_numpys():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100, 101, 1001, 12345):
        sample = rng.poisson(3.0, n).astype(float)
        values, counts = np.unique(sample, return_counts=True)
        for q in (0.0, 0.01, 0.5, 0.99, 1.0):
            assert linear_quantile(values, counts, q) == np.quantile(sample, q), (n, q)


def test_the_report_list_tables_read_by_rank_equal_the_standard_ones(runs):
    """The top of each contact list, read by rank from the chunked run's tables, gives the
    standard report's tables (text exactly: ids, ranks, reasons, attributes, money)."""
    standard, chunked = runs
    s, t = standard.settings, standard.analysis.targets
    expected = list_tables(s, t.targets, {a: int((t.targets["action"] == a).sum())
                                          for a in ("push", "pull")},
                           t.early_warning, len(t.early_warning), t.win_back, len(t.win_back))
    got = list_tables(chunked.settings, *list_tops(chunked))
    assert len(expected) == 4
    assert [(b.caption, b.columns, b.rows) for b in got] == [
        (b.caption, b.columns, b.rows) for b in expected]


def test_the_three_things_to_do_from_sql_totals_equal_the_standard_ones(runs):
    standard, chunked = runs
    expected = things_to_do(standard.analysis)
    assert len(expected) == 3 and "early-warning" in expected[2]
    assert chunked_things_to_do(chunked) == expected


def test_the_lists_counts_equal_the_standard_run(runs):
    standard, chunked = runs
    expected = standard.analysis.targets.summary
    counted = [k for k in expected if k.startswith(("early_warning_", "win_back_"))]
    assert len(counted) == 6
    assert {k: chunked.summary[k] for k in counted} == {k: expected[k] for k in counted}


@pytest.mark.parametrize("budget", [{"push_budget": 150.0}, {"total_budget": 400.0}])
def test_the_plan_under_a_budget_is_the_standard_knapsacks(base, budget):
    """Under a push or total budget the chunked run hands the standard knapsack the same
    candidates in the same order: the same actions, solver, bound and gap."""
    tx, _ = base
    settings = {"value_model": "bgnbd", "control_share": 0.0, **budget}
    standard = api.analyze(tx, **settings)
    chunked = api.analyze_chunked(tx, chunk_rows=CHUNK_ROWS, **settings)
    expected = standard.analysis.targets.summary
    assert expected["solver"] == "milp" and expected["push"] > 0
    got = chunked.customers_relation().df().set_index("customer_id")
    wanted = standard.customers.set_index("customer_id").loc[got.index]
    pd.testing.assert_series_equal(got["action"], wanted["action"])
    for key in ("constraint", "limit", "solver", "push", "pull"):
        assert chunked.summary[key] == expected[key], key
    # the chunked plan's money is summed in micro-units: within 1e-6 a customer
    for key in ("bound", "gap", "cost", "expected_net_benefit"):
        assert chunked.summary[key] == pytest.approx(expected[key], rel=1e-9,
                                                     abs=1e-6 * len(got)), key
    # the sensitivity's scenarios under a moved budget: the same knapsacks on the candidates
    assert_sensitivity_equal(chunked.sensitivity, standard.analysis.targets.sensitivity)


def assert_sensitivity_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """sensitivity.csv's counts and overlaps exactly, its money to 1e-9."""
    assert len(expected) == 10 and list(got.columns) == list(expected.columns)
    money = ["cost", "expected_saved_revenue", "expected_net_benefit"]
    pd.testing.assert_frame_equal(got.drop(columns=money), expected.drop(columns=money),
                                  check_dtype=False)
    np.testing.assert_allclose(got[money], expected[money], rtol=1e-9, atol=1e-9)


def test_the_sensitivity_on_the_candidates_read_by_chunk_equals_the_standard_one(runs):
    standard, chunked = runs
    expected = standard.analysis.targets.sensitivity
    assert expected["push_added"].sum() > 0 and (expected["push_kept"] < 1).any()
    assert_sensitivity_equal(chunked.sensitivity, expected)


def test_the_sensitivity_with_uplifts_by_cell_equals_the_standard_one(base):
    """Uplifts given per cell: each chunk's cells (kept as a category) resolve them as the
    standard engine's strings do."""
    tx, _ = base
    settings = {"value_model": "bgnbd", "push_capacity": 25, "control_share": 0.0,
                "push_uplift": {"protect": 0.3, "maintain": 0.2, "retain_cheaply": 0.25,
                                "monitor": 0.1}}
    standard = api.analyze(tx, **settings)
    chunked = api.analyze_chunked(tx, chunk_rows=CHUNK_ROWS, **settings)
    expected = standard.analysis.targets.sensitivity
    assert expected["push_added"].sum() > 0
    assert_sensitivity_equal(chunked.sensitivity, expected)


def test_the_cox_sample_is_the_standard_engines_draw(base):
    """Past churn_sample_rows, the chunked run draws from four fetched columns the sample the
    standard engine (risk_step) draws from its whole table: the same model."""
    tx, _ = base
    # three landmarks a quarter apart: a table of about 3,000 rows
    s = Settings(**SETTINGS, landmarks=3, horizon=13, churn_sample_rows=1000)
    inputs = read_inputs(tx, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    table, _, _ = churn_model_inputs(
        landmark_table(inputs.log, landmarks=list(timeline.landmarks), **rule),
        scoring_table(inputs.log, **rule), inputs.log, horizon=s.horizon, seed=s.seed, **rule)
    assert len(table) > 2 * s.churn_sample_rows
    expected, _ = fit_churn_model(table, time_unit=s.time_unit, seed=s.seed,
                                  sample_rows=s.churn_sample_rows)
    chunked = api.analyze_chunked(tx, config=s, chunk_rows=CHUNK_ROWS)
    got = chunked.scorers.churn
    assert chunked.survival_rows == len(table)
    assert got.sample_ == expected.sample_ and got.sample_["rows"] < len(table)
    pd.testing.assert_series_equal(got.params_, expected.params_, rtol=1e-9)
    # with a budget: once the landmark table is built DuckDB holds the run's smaller share
    # beside the fetched rows, and the model is the same
    store_rfm(inputs.log, time_unit=s.time_unit, into="rfm_for_training")
    training = churn_training(inputs.log, list(timeline.landmarks), rfm_table="rfm_for_training",
                              horizon=s.horizon, seed=s.seed, sample_rows=s.churn_sample_rows,
                              python_limit="300MB", **rule)
    limit = inputs.log.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit == "286.1 MiB"       # 300 MB in DuckDB's units
    fitted, _ = training.fit(time_unit=s.time_unit, seed=s.seed)
    pd.testing.assert_series_equal(fitted.params_, expected.params_, rtol=1e-9)


def test_the_cli_writes_the_chunked_runs_files(base, tmp_path):
    tx, _ = base
    tx.to_csv(tmp_path / "tx.csv", index=False)
    out = tmp_path / "out"
    status = main(["analyze", str(tmp_path / "tx.csv"), "--engine", "chunked", "--out", str(out),
                   "--value-model", "bgnbd", "--push-capacity", "25",
                   "--memory-limit", "2GB"])
    assert status == 0
    # this two-year demo is too short for the churn model's out-of-time validation (as in
    # the standard run; test_scale_chunked_validation.py writes it on a longer history), and
    # so for the targeting evaluation, which scores with that model
    # (test_scale_chunked_evaluation.py)
    too_short = {"churn_validation.csv", "churn_calibration.csv", "targeting_evaluation.csv",
                 "profit_curve.csv"}
    # without attributes: no segments to test or to sum the holdout by
    by_segment = {"logrank_tests.csv", "holdout_by_segment.csv"}
    assert {p.name for p in out.iterdir()} == {n.split("/")[0] for n in CHUNKED_OUTPUTS} \
        - too_short - by_segment | {OWNERSHIP_FILE}
    assert not too_short & {p.name for p in out.iterdir()}
    customers = pd.read_parquet(out / "customers.parquet")
    assert len(customers) == customers["customer_id"].nunique() == tx["customer_id"].nunique()
    targets = pd.read_parquet(out / "targets.parquet")
    assert targets["priority_rank"].tolist() == list(range(1, len(targets) + 1))
    quality = json.loads((out / "data_quality.json").read_text())
    assert quality["engine"] == "chunked" and quality["transactions"]["rows_read"] == len(tx)


@pytest.mark.parametrize("flags, named", [
    (["--push-uplift-column", "uplift"], "push_uplift_column"),
    (["--customer-intervals"], "customer_intervals"),
    (["--config", "{tmp}/valid_from.toml"], "attributes_valid_from_col"),
])
def test_the_cli_refuses_what_the_chunked_run_cannot_honour(base, tmp_path, capsys, flags,
                                                            named):
    tx, _ = base
    tx.head(50).to_csv(tmp_path / "tx.csv", index=False)
    (tmp_path / "valid_from.toml").write_text('attributes_valid_from_col = "since"\n')
    status = main(["analyze", str(tmp_path / "tx.csv"), "--engine", "chunked",
                   "--out", str(tmp_path / "out"), *[f.format(tmp=tmp_path) for f in flags]])
    err = capsys.readouterr().err
    assert status == 2 and named in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_memory_limits_read_as_duckdb_reads_them():
    assert memory_bytes("6GB") == 6_000_000_000
    assert memory_bytes("512MiB") == 512 * 2**20
    assert 0 < memory_bytes("50%") < memory_bytes("100%")
    plan = memory_plan("6GB")
    assert plan.sql_limit == "3600MB" and plan.python_limit == "1500MB"
    assert 10_000 <= plan.chunk_rows <= 500_000
    assert memory_plan(None, 123).chunk_rows == 123


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; glibc's malloc_trim")
def test_freed_memory_goes_back_to_the_system_between_chunked_steps():
    # 2,000 blocks of 96 kB: on glibc's heap (below its mmap threshold); the last one kept
    # pins the heap's top, so glibc keeps the 190 MB freed below it until trimmed
    blocks = [np.ones(12_000) for _ in range(2_000)]
    kept = blocks[-1]
    del blocks
    before = _resident_mb()
    release_unused_memory()
    assert before - _resident_mb() > 100        # measured: 183 MB returned
    assert kept.sum() == 12_000


def test_the_standard_engine_refuses_early_a_base_larger_than_its_limit(base, capsys,
                                                                        tmp_path):
    check_standard_engine_fits(1_000_000, "6GB")          # 4 GB: fits
    check_standard_engine_fits(10_000_000, None)          # no limit: no check
    with pytest.raises(ClvInputError, match="--engine chunked"):
        check_standard_engine_fits(10_600_000, "6GB")     # about 42 GB
    tx, _ = base
    # 18,000 customers at 4 kB: 72 MB, against 32 MB (within which DuckDB reads the file)
    copies = [tx.assign(customer_id=tx["customer_id"] + f"-{k}") for k in range(10)]
    pd.concat(copies).to_csv(tmp_path / "tx.csv", index=False)
    status = main(["analyze", str(tmp_path / "tx.csv"), "--out", str(tmp_path / "out"),
                   "--memory-limit", "32MB"])
    err = capsys.readouterr()
    assert status == 2 and "--engine chunked" in err.err and "Traceback" not in err.err
    assert "Fitting" not in err.out                        # stopped before any fit

"""The Spark engine's gaps closed, on a demo with customer attributes: ``analyze_spark(...,
customers=FILE)`` (``--customers`` of ``clvtools analyze --engine spark``) types the
attributes as the single-machine reader does, fits the value and churn models with them as
covariates (the value model on compressed statistics per attribute pattern) and scores every
customer as a single-machine run does; the contact reasons, the win-back list and matrix.csv
are the single machine's."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_scores_match, assert_tables_match

from clvtools import api
from clvtools.datasets import generate_customer_base
from clvtools.report.outputs import OUTPUTS, write_folder

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

#: Both engines fit BG/NBD with the attributes (the single machine would otherwise choose on
#: a holdout); a push budget: the standard engine's knapsack, solved on the driver; the
#: default control group.
SETTINGS = {"value_model": "bgnbd", "push_budget": 150.0}
SCORES = ["p_alive", "expected_purchases", "expected_average_spend", "churn_probability",
          "revenue_if_retained", "expected_revenue", "revenue_at_risk", "net_benefit_push",
          "net_benefit_pull", "expected_net_benefit"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A demo base with its attributes (channel, region, plan and a date), as CSV files;
    the customers file lacks a few buyers, whom both engines fill in, and has a contactable
    column: every third customer no (in words of each kind), a few blanks (no), the rest
    yes."""
    folder = tmp_path_factory.mktemp("spark_attributes")
    base = generate_customer_base(1500, seed=3)
    base.transactions.to_csv(folder / "transactions.csv", index=False)
    customers = base.customers.iloc[5:]
    words = np.array(["yes", "True", "1", "no", "False", "0"], dtype=object)
    rows = np.arange(len(customers))
    flags = np.where(rows % 3 == 0, words[3 + rows % 3], words[rows % 3])
    flags[7:12] = None
    customers.assign(contactable=flags).to_csv(folder / "customers.csv", index=False)
    return folder / "transactions.csv", folder / "customers.csv"


@pytest.fixture(scope="module")
def single(files):
    return api.analyze(files[0], customers=files[1], **SETTINGS)


@pytest.fixture(scope="module")
def spark_run(spark, files):
    return api.analyze_spark(str(files[0]), customers=str(files[1]), spark=spark,
                             **SETTINGS)


@pytest.fixture(scope="module")
def spark_out(spark_run, tmp_path_factory):
    return spark_run.write(tmp_path_factory.mktemp("spark_attributes_run") / "out")


@pytest.fixture(scope="module")
def cached_for_the_workbook(spark_run, spark_out):
    """Whether the contact list was cached when forecast.xlsx read it, and after the write
    (a second write, watched)."""
    from clvtools.scale import spark_run as module

    seen = []
    workbook_of = module.workbook_of

    def watched(run, *args):
        seen.append(run.targets.is_cached)
        return workbook_of(run, *args)

    module.workbook_of = watched
    try:
        spark_run.write(spark_out.parent / "again")
    finally:
        module.workbook_of = workbook_of
    return seen, spark_run.targets.is_cached


def test_attributes_are_typed_and_completed_as_on_one_machine(spark_out, single):
    quality = json.loads((spark_out / "data_quality.json").read_text())["customers"]
    expected = single.analysis.data_quality()["customers"]
    assert quality["typed"] == expected["typed"]
    assert quality["typed"]["acquisition_date"]["action"] == "duration_days"
    assert quality["matching"] == expected["matching"]
    assert quality["filled_for_models"] == expected["filled_for_models"]
    assert quality["filled_for_models"]["filled_customers"] == 5


@pytest.mark.parametrize("name", ["survival_curves", "median_time_to_churn", "logrank_tests",
                                  "holdout_by_segment", "holdout_summary"])
def test_survival_and_holdout_by_segment_from_spark_equal_the_single_machine(
        spark_out, single, tmp_path, name):
    """Kaplan-Meier curves, medians and log-rank tests overall and per categorical attribute
    (a Spark groupBy per attribute, duration and event), and the value model's holdout by
    segment (sums per partition): the single machine's files."""
    write_folder({o.name: (lambda o=o: o.content(single.analysis, {})) for o in OUTPUTS
                  if o.name == f"{name}.csv"}, tmp_path / "standard")
    got, expected = (pd.read_csv(folder / f"{name}.csv", keep_default_na=False,
                                 na_values=[""]) for folder in (spark_out, tmp_path / "standard"))
    column = "attribute" if name == "holdout_by_segment" else "by"
    if name != "holdout_summary":
        assert {"channel", "region", "plan"} <= set(expected[column])
    assert_tables_match(got, expected, atol=0.0)


def test_models_with_attributes_equal_the_single_machine_fits(spark_out, single):
    from clvtools import btyd, survival

    value = btyd.load_model(spark_out / "models" / "value.json")
    expected = single.analysis.value.models.purchases.model
    assert any(name.startswith("dropout:plan=") for name in value.params_.index)
    pd.testing.assert_series_equal(value.params_, expected.params_, rtol=1e-9)
    churn = survival.load_model(spark_out / "models" / "churn.json")
    reference = single.analysis.risk.model
    assert "plan=premium" in churn.hazard_ratios_.index
    pd.testing.assert_series_equal(churn.hazard_ratios_, reference.hazard_ratios_, rtol=1e-9)


def test_the_forecast_with_attributes_equals_the_single_machine_forecast(spark_run, single):
    """The covariate purchase model bound to each partition's customers and to the delta
    method's sample: every figure and interval of forecast.csv to 1e-9, the same notes."""
    got, expected = spark_run.forecast.table, single.analysis.forecast.table
    assert (expected["expected_churners_hi95"] > expected["expected_churners"]).any()
    assert_tables_match(got, expected, atol=1e-9)
    assert spark_run.forecast.notes == single.analysis.forecast.notes


def test_the_backtest_with_attributes_equals_the_single_machine_backtest(spark_run, single):
    """forecast_backtest.csv: the covariate purchase model refitted at each origin on Spark's
    compressed rows per attribute pattern, forecast per partition: every figure to 1e-9."""
    got, expected = spark_run.backtest.table, single.analysis.backtest.table
    assert len(expected) > 10 and (expected["actual_revenue"] > 0).all()
    assert_tables_match(got, expected, atol=1e-9)


def test_spark_scores_with_attributes_equal_the_single_machine_scores(spark_out, single):
    expected = single.customers.set_index("customer_id")
    customers = (pd.read_parquet(spark_out / "customers.parquet").set_index("customer_id")
                 .loc[expected.index])
    assert_scores_match(customers, expected, SCORES)


def test_the_plan_under_a_push_budget_is_the_single_machines(spark_run, single):
    """The knapsack's plan and the control group drawn over it: the same actions, groups
    and ranks, and plan_summary.csv's constraint and solver."""
    expected = single.customers.set_index("customer_id")
    found = spark_run.customers.toPandas().set_index("customer_id").loc[expected.index]
    for column in ("action", "group"):
        assert (found[column] == expected[column]).all(), column
    np.testing.assert_array_equal(found["priority_rank"].to_numpy(float),
                                  expected["priority_rank"].to_numpy(float))
    assert found["action"].eq("push").sum() >= 3
    summary, reference = spark_run.summary, single.analysis.targets.summary
    for key in ("constraint", "limit", "solver", "push", "pull", "push_control",
                "pull_control"):
        assert summary[key] == reference[key], key
    assert summary["bound"] == pytest.approx(reference["bound"], rel=1e-9)


def test_contact_reasons_equal_the_single_machine_reasons(spark_out, single):
    """targets.parquet is targets.csv's list (the treatment, in priority order), with its
    reasons."""
    reasons = ["reason_1", "reason_2", "reason_3"]
    spark_targets = pd.read_parquet(spark_out / "targets.parquet")
    expected = single.targets
    assert len(expected) > 20
    assert spark_targets["customer_id"].tolist() == expected["customer_id"].tolist()
    spark_targets = spark_targets.set_index("customer_id")
    expected = expected.set_index("customer_id")
    found = spark_targets.loc[expected.index, reasons]
    pd.testing.assert_frame_equal(found, expected[reasons].astype(object), check_dtype=False)
    assert found["reason_2"].str.contains("risk ×").any()


def test_matrix_money_sums_equal_the_single_machine_matrix(spark_run, spark_out, single):
    """Both engines sum each cell's micro-units exactly: the same doubles, bit for bit, and
    the same file (money to the cent)."""
    expected = single.analysis.targets.matrix
    pd.testing.assert_frame_equal(spark_run.matrix, expected, check_exact=True)
    written = pd.read_csv(spark_out / "matrix.csv")
    np.testing.assert_array_equal(written["revenue_at_risk"],
                                  expected["revenue_at_risk"].round(2))


def test_the_win_back_list_is_the_single_machine_list(spark_out, single):
    """win_back.parquet holds win_back.csv's rows in its order: the single machine's list
    function per partition, ranked over the whole base."""
    expected = single.analysis.targets.win_back
    found = pd.read_parquet(spark_out / "win_back.parquet")
    assert len(expected) > 20 and list(found.columns) == list(expected.columns)
    assert found["customer_id"].tolist() == expected["customer_id"].tolist()
    assert found["win_back_rank"].tolist() == list(range(1, len(found) + 1))
    for column in ["net_benefit", "net_benefit_push", "net_benefit_pull", "lapsed_revenue",
                   "lifetime_spend", "purchases", "acquisition_date"]:
        np.testing.assert_allclose(found[column].to_numpy(float),
                                   expected[column].to_numpy(float), rtol=1e-9, err_msg=column)
    for column in ["best_offer", "action", "channel", "plan"]:
        assert (found[column] == expected[column]).all(), column
    for column in ["last_purchase", "declared_at"]:
        assert (pd.to_datetime(found[column]) == pd.to_datetime(expected[column])).all()


def test_the_early_warning_list_is_the_single_machine_list(spark_out, single):
    """early_warning.parquet holds early_warning.csv's rows in its order: the churn model
    scored again through the log one KPI period earlier, per partition."""
    expected = single.analysis.targets.early_warning
    found = pd.read_parquet(spark_out / "early_warning.parquet")
    assert len(expected) > 20 and list(found.columns) == list(expected.columns)
    assert found["customer_id"].tolist() == expected["customer_id"].tolist()
    assert found["early_warning_rank"].tolist() == list(range(1, len(found) + 1))
    for column in ["churn_probability", "churn_probability_before", "rise", "value_at_stake"]:
        np.testing.assert_allclose(found[column].to_numpy(float),
                                   expected[column].to_numpy(float), rtol=1e-9, err_msg=column)
    for column in ["driver_1", "driver_2"]:
        assert (found[column] == expected[column].fillna("")).all(), column
    assert found["driver_1"].str.contains("was").any()


def test_a_contactable_column_restricts_the_plan_as_on_one_machine(spark_run, single, files):
    """``contactable``: the single machine's plan (compared customer for customer above),
    the customers marked no, or blank, left out, the same count in plan_summary.csv and the
    same note; the column is not an attribute of the models on either engine."""
    found = spark_run.customers.toPandas().set_index("customer_id")
    assert spark_run.summary["not_contactable"] == single.analysis.targets.summary[
        "not_contactable"] > 400
    flags = pd.read_csv(files[1], dtype={"contactable": str}).set_index(
        "customer_id")["contactable"]
    marked_no = flags.index[flags.isna() | flags.isin(["no", "False", "0"])]
    assert (found.loc[marked_no, "action"] == "none").all()
    reachable = found.loc[flags.index.difference(marked_no), "action"]
    assert reachable.eq("push").sum() >= 3 and reachable.eq("pull").sum() >= 20
    note = next(n for n in spark_run.notes if "not contactable" in n)
    assert note in single.analysis.targets.notes
    assert "contactable" not in spark_run.attributes_quality["typed"]
    assert spark_run.attributes_quality["typed"] == single.analysis.data_quality()[
        "customers"]["typed"]


def test_a_contactable_value_neither_yes_nor_no_is_an_error(spark_run, files, tmp_path):
    from clvtools.data.spark_attributes import spark_read_customers
    from clvtools.errors import ClvInputError
    from clvtools.scale.spark_run import _contactable

    path = tmp_path / "customers.csv"
    pd.read_csv(files[1]).assign(contactable="maybe").to_csv(path, index=False)
    attributes = spark_read_customers(spark_run.log, str(path), set_aside=("contactable",))
    with pytest.raises(ClvInputError, match=r"not yes or no: \['maybe'\]"):
        _contactable(spark_run.log, attributes)


def test_the_contact_list_is_computed_once_for_its_file_and_the_workbook(
        cached_for_the_workbook):
    """targets.parquet and forecast.xlsx read one cached contact list (its reasons computed
    once), released once written."""
    seen, cached_after = cached_for_the_workbook
    assert seen == [True]
    assert not cached_after


def test_churn_by_segment_by_attribute_is_the_standard_engines_file(spark_out, single,
                                                                     tmp_path):
    """churn_by_segment.csv with the categorical attributes (channel, region, plan) beside
    the value tiers, and cohorts.csv: the standard engine's files byte for byte."""
    from clvtools.report.outputs import OUTPUTS, write_folder

    names = ("cohorts.csv", "churn_by_segment.csv")
    write_folder({o.name: (lambda o=o: o.content(single.analysis, {})) for o in OUTPUTS
                  if o.name in names}, tmp_path / "standard")
    expected = pd.read_csv(tmp_path / "standard" / "churn_by_segment.csv")
    assert {"value_tier", "channel", "region"} <= set(expected["by"])
    for name in names:
        assert (spark_out / name).read_bytes() == (tmp_path / "standard" / name).read_bytes()

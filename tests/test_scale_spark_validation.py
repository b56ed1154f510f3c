"""A Spark run's out-of-time validation of the churn model (clvtools.scale.spark_validation):
on a three-year demo with customer attributes, churn_validation and churn_calibration equal
the standard engine's while the evaluation landmark's rows are fewer than
``churn_sample_rows``; past it, the validation model is still the standard one and each
metric on the uniform evaluation sample lies within its stated sampling error."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import assert_tables_match

from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.pipeline import build_timeline, churn_validation
from clvtools.pipeline.inputs import read_inputs

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

SETTINGS = Settings(value_model="bgnbd")


@pytest.fixture(scope="module")
def engines(spark, tmp_path_factory):
    """The same three-year log (the history holds the validation's two landmarks) and its
    attributes, read by both engines, and the timeline."""
    from clvtools.data.spark_attributes import spark_read_customers
    from clvtools.data.spark_reader import spark_occasions

    folder = tmp_path_factory.mktemp("spark_validation")
    base = generate_customer_base(1500, seed=8, start="2022-01-01",
                                  observation_end="2024-12-31")
    base.customers.to_csv(folder / "customers.csv", index=False)
    inputs = read_inputs(base.transactions, folder / "customers.csv", None, SETTINGS)
    log = spark_occasions(spark.createDataFrame(base.transactions))
    attributes = spark_read_customers(log, str(folder / "customers.csv"))
    timeline = build_timeline(dt.date.fromisoformat(log.quality["first_date"]),
                              log.observation_end, SETTINGS)
    return inputs, log, attributes, timeline


def test_the_validation_files_equal_the_standard_engines(engines):
    from clvtools.scale.spark_validation import spark_churn_validation

    inputs, log, attributes, timeline = engines
    expected, note = churn_validation.validate_churn_model(inputs, timeline, SETTINGS)
    got, spark_note = spark_churn_validation(log, timeline, SETTINGS, attributes=attributes)
    assert spark_note == note and set(got) == {"churn_validation", "churn_calibration"}
    for name, table in got.items():
        assert len(expected[name]) >= 6
        assert_tables_match(table, expected[name], atol=1e-12)


def test_past_the_sample_rows_the_metrics_are_within_their_sampling_error(engines,
                                                                          monkeypatch):
    from clvtools.scale import spark_validation

    inputs, log, attributes, timeline = engines
    # below the setting's floor of 1,000 (validated) so that this small demo is sampled on
    # both sides: 433 training rows, 846 evaluation rows
    s = SETTINGS.model_copy(update={"churn_sample_rows": 400})
    # both engines evaluate in churn_validation.validate_on_rows: the models in call order
    evaluated, evaluate = [], churn_validation.validate_out_of_time

    def recorded(model, *args, **kwargs):
        evaluated.append(model)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(churn_validation, "validate_out_of_time", recorded)
    expected, _ = churn_validation.validate_churn_model(inputs, timeline, s)
    got, note = spark_validation.spark_churn_validation(log, timeline, s,
                                                        attributes=attributes)
    fitted = dict(zip(("standard", "spark"), evaluated, strict=True))
    # the same training sample, hence the same model
    assert fitted["standard"].sample_ is not None
    pd.testing.assert_series_equal(fitted["spark"].params_, fitted["standard"].params_,
                                   rtol=1e-9)
    rows = int(got["churn_calibration"]["n"].sum())
    assert rows == 400 < int(expected["churn_calibration"]["n"].sum())
    assert "uniform sample of 400" in note
    assert got["churn_validation"]["note"].str.contains("uniform sample of 400").all()
    metrics = [frame["churn_validation"].set_index("metric")["value"]
               for frame in (got, expected)]
    tolerance = pd.Series(1 / np.sqrt(rows), index=metrics[1].index)
    # a decile's observed share is read on a tenth of the rows
    tolerance["max_abs_calibration_error"] = 1 / np.sqrt(rows / 10)
    gap = (metrics[0] - metrics[1]).abs()
    assert (gap <= tolerance).all(), gap
    assert gap.max() > 0         # evaluated on other rows indeed


def test_rows_at_positions_are_the_sorted_rows_at_those_positions(spark):
    """The draw's rows found on the executors: over several sorted partitions, the rows at
    the drawn positions of the customer id order, and the count."""
    from clvtools.scale.spark_rows import rows_at_positions

    ids = [f"c{i:04d}" for i in np.random.default_rng(3).permutation(997)]
    frame = spark.createDataFrame(pd.DataFrame({"customer_id": ids,
                                                "x": np.arange(997.0)})).repartition(3)
    wanted = np.array([0, 1, 250, 498, 499, 996])
    size, rows = rows_at_positions(frame, "customer_id", lambda n: wanted)
    assert size == 997
    expected = pd.DataFrame({"customer_id": ids, "x": np.arange(997.0)}).sort_values(
        "customer_id", ignore_index=True).iloc[wanted].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected)
    # all positions: the whole frame in order
    assert rows_at_positions(frame, "customer_id", np.arange)[1]["customer_id"].tolist() == \
        sorted(ids)


def test_the_stratified_sample_drawn_on_the_executors_is_the_standard_one(spark):
    """forecast.stratified_sample over every row in memory, and the same draw on Spark's
    executors (candidates only to the driver): the same customers, in the same order, with
    the same weights; strata out of order in the frame, one stratum empty, one past the
    presample (20 x 3 rows) and one under it."""
    from clvtools.forecast import stratified_sample
    from clvtools.scale.spark_rows import stratified_rows

    rng = np.random.default_rng(5)
    strata = ["high", "empty", "low", "mid"]
    cells = np.repeat(["low", "high", "mid"], [500, 40, 230])
    frame = pd.DataFrame({"customer_id": [f"c{i:04d}" for i in rng.permutation(len(cells))],
                          "cell": cells, "revenue": rng.gamma(2.0, 50.0, len(cells))})
    spark_frame = spark.createDataFrame(frame).repartition(3)
    sizes, drawn, weights = stratified_rows(spark_frame, "revenue", 3, stratum="cell",
                                            strata=strata)
    ordered = frame.sort_values("customer_id", ignore_index=True)
    codes = pd.Categorical(ordered["cell"], categories=strata).codes.astype(np.intp)
    positions, expected_weights = stratified_sample(codes, ordered["revenue"].to_numpy(), 3)
    assert sizes.tolist() == [40, 0, 500, 230]
    assert drawn["customer_id"].tolist() == ordered["customer_id"].iloc[positions].tolist()
    np.testing.assert_array_equal(drawn["revenue"], ordered["revenue"].iloc[positions])
    np.testing.assert_array_equal(weights, expected_weights)
    # one stratum: the backtest's draw
    sizes, drawn, weights = stratified_rows(spark_frame, "revenue", 3)
    positions, expected_weights = stratified_sample(np.zeros(len(frame), dtype=np.intp),
                                                    ordered["revenue"].to_numpy(), 3)
    assert sizes.tolist() == [len(frame)]
    assert drawn["customer_id"].tolist() == ordered["customer_id"].iloc[positions].tolist()
    np.testing.assert_array_equal(weights, expected_weights)
    with pytest.raises(ValueError, match="'cell' holds values other than"):
        stratified_rows(spark_frame, "revenue", 3, stratum="cell", strata=["low", "mid"])


def test_past_the_sample_rows_the_main_fit_draws_the_standard_sample_on_the_executors(engines):
    """The main fit's rows past ``churn_sample_rows``: the standard engine's stratified
    sample of its landmark table (event x landmark x recency band, seeded), drawn on Spark's
    executors from a table in four partitions: the same rows, in the same order, with the
    same weights and description; up to the setting, the whole table in the same order."""
    from clvtools.data.spark_summaries import spark_landmark_table
    from clvtools.data.survival_tables import landmark_table
    from clvtools.pipeline.structural import RECENCY_BAND, add_recency_band
    from clvtools.scale.spark_survival_sample import spark_survival_sample
    from clvtools.survival.sampling import SAMPLE_WEIGHT, stratified_sample

    inputs, log, attributes, timeline = engines
    rule = dict(landmarks=list(timeline.landmarks), churn_after=SETTINGS.churn_after,
                time_unit=SETTINGS.time_unit)
    standard = landmark_table(inputs.log, attributes=inputs.attributes, **rule)
    expected = stratified_sample(add_recency_band(standard, SETTINGS.churn_after), 300,
                                 by=["landmark", RECENCY_BAND], seed=3)
    table = spark_landmark_table(log, attributes=attributes, **rule).repartition(4)
    got, drawn = spark_survival_sample(table, 300, churn_after=SETTINGS.churn_after, seed=3)
    assert len(standard) > 800 and drawn.rows == len(expected.table) > 250
    assert drawn.as_dict() == expected.as_dict()
    keys = ["customer_id", "landmark"]
    want = expected.table.reset_index(drop=True)
    assert got["customer_id"].astype(str).tolist() == want["customer_id"].astype(str).tolist()
    assert (pd.to_datetime(got["landmark"]) == pd.to_datetime(want["landmark"])).all()
    np.testing.assert_array_equal(got[SAMPLE_WEIGHT], want[SAMPLE_WEIGHT])
    np.testing.assert_array_equal(got["event"], want["event"])
    whole, none = spark_survival_sample(table, len(standard), churn_after=SETTINGS.churn_after,
                                        seed=3)
    assert none is None and len(whole) == len(standard)
    assert whole[keys].astype(str).equals(standard[keys].astype(str).reset_index(drop=True))

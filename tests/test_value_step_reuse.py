"""The value step's shortcuts give what the long way gives: the strata of the choice's
sample keyed by per-column codes, the attributes aligned once, a covariate fit's own
encoding reused for scoring, and the holdout's expected purchases read from its months."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.data.rfm import rfm_summary
from clvtools.pipeline.holdout import calibration_window, evaluate_candidate
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.timeline import build_timeline
from clvtools.pipeline.value_choice import stratified_positions, stratified_sample
from clvtools.pipeline.value_models import expected_spend, fit_value_models, rows_of


def _sample_by_text_key(index, strata, size, seed):
    """The sample as the choice drew it before this session: strata keyed by the rows' text."""
    key = pd.Series(pd.MultiIndex.from_frame(strata.astype(str)).factorize()[0], index=index)
    order = np.random.default_rng(seed).permutation(len(index))
    shuffled = key.iloc[order]
    rank = shuffled.groupby(shuffled.to_numpy()).cumcount().to_numpy()
    sizes = shuffled.map(shuffled.value_counts()).to_numpy()
    return index[np.sort(order[rank < np.ceil(sizes * size / len(index))])]


@pytest.mark.parametrize("seed", [0, 3])
def test_the_strata_by_codes_draw_the_same_sample_as_by_text(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    strata = pd.DataFrame({
        "frequency": np.minimum(rng.poisson(2.0, n), 10),
        "channel": rng.choice(["store", "online", "referral"], n).astype(object),
        "plan": pd.Categorical(rng.choice(["basic", "premium"], n)),
    }, index=index)
    strata.loc[strata.index[::97], "channel"] = np.nan  # a missing value: a stratum of its own
    drawn = stratified_sample(index, strata, 3_000, seed)
    assert drawn.equals(_sample_by_text_key(index, strata, 3_000, seed))
    assert 2_900 <= len(drawn) <= 3_100
    # the choice takes the sample by position: the same customers
    positions = stratified_positions(strata, 3_000, seed)
    assert index[positions].equals(drawn)
    np.testing.assert_array_equal(stratified_positions(strata, n, seed), np.arange(n))


def test_rows_of_takes_the_frame_itself_only_when_aligned():
    frame = pd.DataFrame({"a": [1, 2, 3]}, index=pd.Index(["x", "y", "z"]))
    assert rows_of(frame, pd.Index(["x", "y", "z"])) is frame
    other = rows_of(frame, pd.Index(["z", "x"]))
    assert other["a"].tolist() == [3, 1] and other.index.tolist() == ["z", "x"]


@pytest.fixture(scope="module")
def window_fit():
    base = generate_customer_base(2500, seed=11)
    s = Settings(horizon=26)
    attributes = base.customers.drop(columns="acquisition_date")
    inputs = read_inputs(base.transactions, attributes, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    frame = rows_of(inputs.attributes.frame(),
                    rfm_summary(inputs.log, time_unit=s.time_unit).index)
    window = calibration_window(inputs.log, timeline, frame[inputs.categorical_attributes])
    models = fit_value_models(window.rfm, "bgnbd", frame)
    return window, models, timeline, frame


def test_a_covariate_fit_keeps_the_encoding_its_scoring_would_make(window_fit):
    window, models, _, frame = window_fit
    bound = models.purchases
    fitter = bound.model
    assert isinstance(fitter, BetaGeoCovariatesFitter)
    again = fitter.encode(rows_of(frame, window.rfm.index))
    assert bound.encoded is fitter.encoded_
    np.testing.assert_array_equal(bound.encoded.purchase, again.purchase)
    np.testing.assert_array_equal(bound.encoded.dropout, again.dropout)
    assert bound.encoded.index.equals(again.index)
    # the same columns on both processes: one encoder's levels, learnt once
    assert fitter.dropout_encoder_.to_dict() == fitter.purchase_encoder_.to_dict()
    assert fitter.dropout_encoder_ is not fitter.purchase_encoder_


def test_the_holdout_expected_purchases_from_its_months_equal_the_direct_expectation(
        window_fit):
    window, models, timeline, _ = window_fit
    duration = window.cal["duration_holdout"].iloc[0]
    assert duration == 26.0  # weeks: the months end at the holdout's end
    row, _ = evaluate_candidate(models, window, horizon=26.0, unit_days=timeline.unit_days,
                                expected_spend=expected_spend(models, window.rfm))
    rfm = window.rfm
    direct = np.asarray(models.purchases.conditional_expected_number_of_purchases_up_to_time(
        duration, rfm["frequency"], rfm["recency"], rfm["T"]), float)
    assert row["expected_purchases"] == pytest.approx(direct.sum(), rel=1e-12)
    assert row["purchases_mae_per_customer"] == pytest.approx(
        np.mean(np.abs(direct - window.actual_purchases)), rel=1e-12)
    # the segments held as categories name the same segments as the attributes' text
    assert all(isinstance(window.segments[c].dtype, pd.CategoricalDtype)
               for c in window.segments.columns)


@pytest.mark.parametrize("model", ["bgnbd", "pnbd"])
def test_the_holdout_tables_without_the_revenue_arrays_equal_the_whole_arrays(model):
    """``evaluate_candidate`` no longer keeps the (n, M) revenue arrays: its tables read the
    revenue totals and sum purchases x spend per month, and the holdout by frequency reuses
    its expected purchases; the same figures as the whole arrays give (the month sums bit
    for bit; the by-frequency means to rounding, the months' sum against one expectation)."""
    from clvtools.btyd.clv import revenue_by_month

    base = generate_customer_base(3000, seed=5)
    s = Settings(horizon=26)
    inputs = read_inputs(base.transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    window = calibration_window(inputs.log, timeline)
    models = fit_value_models(window.rfm, model)
    spend = expected_spend(models, window.rfm)
    _, tables = evaluate_candidate(models, window, horizon=26.0, unit_days=timeline.unit_days,
                                   expected_spend=spend, log=inputs.log, timeline=timeline)
    rfm = window.rfm
    x, tx, age = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    months = revenue_by_month(models.purchases, x, tx, age, spend, 26.0, timeline.unit_days,
                              0.0)
    by_month = tables["holdout_by_month"]
    np.testing.assert_array_equal(by_month["expected_revenue"],
                                  months.expected_revenue.sum(axis=0))
    np.testing.assert_array_equal(by_month["expected_purchases"],
                                  months.expected_purchases.sum(axis=0))
    customers = tables["holdout_customers"]
    np.testing.assert_array_equal(customers["revenue_if_retained"],
                                  months.revenue_if_retained.sum(axis=1))
    np.testing.assert_array_equal(customers["expected_revenue"],
                                  months.expected_revenue.sum(axis=1))
    from clvtools.btyd.validation import calibration_vs_holdout_purchases
    want = calibration_vs_holdout_purchases(models.purchases, window.cal, n=10).reset_index()
    pd.testing.assert_frame_equal(tables["holdout_by_frequency"], want, rtol=1e-12)


def test_the_window_taken_by_positions_is_the_window_looked_up_by_labels(window_fit):
    window = window_fit[0]
    positions = np.sort(np.random.default_rng(2).choice(len(window.cal), 700, replace=False))
    taken, looked_up = window.take(positions), window.subset(window.cal.index[positions])
    pd.testing.assert_frame_equal(taken.cal, looked_up.cal)
    pd.testing.assert_frame_equal(taken.rfm, looked_up.rfm)
    pd.testing.assert_frame_equal(taken.segments, looked_up.segments)
    np.testing.assert_array_equal(taken.actual_revenue, looked_up.actual_revenue)

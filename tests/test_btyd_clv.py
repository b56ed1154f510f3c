"""Revenue if retained (V) and expected revenue (E), as DESIGN.md defines them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary

from clvtools import btyd
from clvtools.btyd import BetaGeoFitter, ModifiedBetaGeoFitter
from clvtools.btyd.clv import project_revenue, revenue_by_month
from clvtools.errors import ClvInputError
from clvtools.units import DAYS_PER_MONTH

CDNOW = load_cdnow_summary(index_col=[0])  # weeks
COLS = (CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
MODELS = [BetaGeoFitter, ModifiedBetaGeoFitter]
if btyd.ParetoNBDFitter is not None:
    MODELS.append(btyd.ParetoNBDFitter)


@pytest.fixture(scope="module", params=MODELS, ids=lambda c: c.__name__)
def model(request):
    return request.param().fit(*COLS)


def test_expected_revenue_never_exceeds_revenue_if_retained(model):
    spend = np.linspace(5, 80, len(CDNOW))
    months = revenue_by_month(model, *COLS, spend, horizon=104, time_unit_days=7,
                              annual_discount_rate=0.1)
    assert months.expected_revenue.shape == (len(CDNOW), 24)
    assert np.all(months.expected_revenue >= 0)
    # month by month (tiny slack for rounding in the increments)
    assert np.all(months.expected_revenue <= months.revenue_if_retained * (1 + 1e-12) + 1e-12)
    totals = project_revenue(model, *COLS, spend, 104, 7, 0.1)
    assert (totals["expected_revenue"] <= totals["revenue_if_retained"]).all()
    # ... and E <= P(alive) V: churn that has already happened is inside E
    p_alive = np.asarray(model.conditional_probability_alive(*COLS))
    assert np.all(
        totals["expected_revenue"] <= p_alive * totals["revenue_if_retained"] * (1 + 1e-9)
    )
    # a customer with many recent purchases is almost surely alive: E close to V at month 1
    best = int(np.argmax(np.asarray(CDNOW["frequency"] - (CDNOW["T"] - CDNOW["recency"]))))
    assert months.expected_revenue[best, 0] > 0.9 * months.revenue_if_retained[best, 0]


def test_closed_forms_without_discounting():
    m = BetaGeoFitter().fit(*COLS)
    r, alpha = m.params_["r"], m.params_["alpha"]
    out = project_revenue(m, *COLS, expected_spend=20.0, horizon=52, time_unit_days=7,
                          annual_discount_rate=0.0)
    assert out.index.equals(CDNOW.index)
    assert list(out.columns) == ["revenue_if_retained", "expected_revenue"]
    # V = (r + x) / (alpha + T) x horizon x spend
    want_v = (r + CDNOW["frequency"]) / (alpha + CDNOW["T"]) * 52 * 20.0
    np.testing.assert_allclose(out["revenue_if_retained"], want_v, rtol=1e-12)
    # E telescopes to the conditional expectation over the whole horizon
    want_e = m.conditional_expected_number_of_purchases_up_to_time(52, *COLS) * 20.0
    np.testing.assert_allclose(out["expected_revenue"], want_e, rtol=1e-10)


def test_months_and_discounting():
    m = BetaGeoFitter().fit(*COLS)
    months = revenue_by_month(m, *COLS, 10.0, horizon=52, time_unit_days=7,
                              annual_discount_rate=0.12)
    # 52 weeks = 364 days: 11 full average months and a cut 12th
    month_weeks = DAYS_PER_MONTH / 7
    assert len(months.period_end) == 12
    np.testing.assert_allclose(months.period_end[:11], np.arange(1, 12) * month_weeks)
    assert months.period_end[-1] == 52
    # end-of-month discounting at 12 % a year
    np.testing.assert_allclose(months.discount, 1.12 ** -(months.period_end * 7 / 365.2425))
    undiscounted = revenue_by_month(m, *COLS, 10.0, 52, 7, 0.0)
    np.testing.assert_allclose(months.revenue_if_retained,
                               undiscounted.revenue_if_retained * months.discount, rtol=1e-12)
    np.testing.assert_allclose(months.expected_revenue,
                               undiscounted.expected_revenue * months.discount, rtol=1e-12)
    # in days, the same horizon gives the same V (rate per day x days)
    days = BetaGeoFitter()
    days.params_ = m.params_.copy()
    days.params_["alpha"] *= 7
    v_days = project_revenue(days, COLS[0], COLS[1] * 7, COLS[2] * 7, 10.0, 364, 1, 0.12)
    v_weeks = project_revenue(m, *COLS, 10.0, 52, 7, 0.12)
    np.testing.assert_allclose(v_days, v_weeks, rtol=1e-9)


def test_bad_arguments():
    m = BetaGeoFitter().fit(*COLS)
    with pytest.raises(ClvInputError, match="'horizon' parameter must be a positive"):
        project_revenue(m, *COLS, 10.0, 0, 7, 0.1)
    with pytest.raises(ClvInputError, match="'annual_discount_rate' parameter"):
        project_revenue(m, *COLS, 10.0, 52, 7, -0.1)
    with pytest.raises(ClvInputError, match="expected spend"):
        project_revenue(m, *COLS, pd.Series(-1.0, index=CDNOW.index), 52, 7, 0.1)


def test_purchase_rate_if_alive():
    m = BetaGeoFitter().fit(*COLS)
    assert isinstance(m.purchase_rate_if_alive(2, 30.0, 38.0), float)
    assert m.purchase_rate_if_alive(2, 30.0, 38.0) == pytest.approx(
        (m.params_["r"] + 2) / (m.params_["alpha"] + 38.0))
    # E[X(t)] / t -> P(alive) x rate as t -> 0 (no dropout within a tiny window)
    t = 1e-6
    e = m.conditional_expected_number_of_purchases_up_to_time(t, *COLS) / t
    want = m.conditional_probability_alive(*COLS) * m.purchase_rate_if_alive(*COLS)
    np.testing.assert_allclose(e, want, rtol=1e-4)


def test_month_arithmetic_in_blocks_equals_whole_arrays(model, monkeypatch):
    """The months computed a block of rows at a time (blocks of 500 here, CDNOW's 2,357
    customers: five blocks, the last one short) are the whole-array arithmetic's, bit for
    bit: increments of the cumulative expectations (written in place over them), revenue =
    purchases x spend x discount, and each customer's totals its row sums (also when the
    per-month revenue is not kept)."""
    from clvtools.btyd import clv

    monkeypatch.setattr(clv, "_BLOCK_ROWS", 500)
    spend = np.linspace(5, 80, len(CDNOW))
    months = revenue_by_month(model, *COLS, spend, horizon=52, time_unit_days=7,
                              annual_discount_rate=0.1)
    cumulative = np.column_stack([
        np.asarray(model.conditional_expected_number_of_purchases_up_to_time(e, *COLS), float)
        for e in months.period_end])
    increments = np.diff(cumulative, axis=1, prepend=0.0)
    np.testing.assert_allclose(months.expected_purchases, increments, rtol=1e-12, atol=0)
    value = spend[:, None] * months.discount[None, :]
    np.testing.assert_array_equal(months.expected_revenue, months.expected_purchases * value)
    np.testing.assert_array_equal(months.revenue_if_retained,
                                  months.purchases_if_retained * value)
    blocked = clv._increments(cumulative.copy(), in_place=True)
    np.testing.assert_array_equal(blocked, increments)
    # the totals, summed a block at a time, kept with or without the per-month arrays
    totals = revenue_by_month(model, *COLS, spend, horizon=52, time_unit_days=7,
                              annual_discount_rate=0.1, per_month_revenue=False)
    assert totals.revenue_if_retained is None and totals.expected_revenue is None
    for name in ("revenue_if_retained", "expected_revenue"):
        row_sums = getattr(months, name).sum(axis=1)
        np.testing.assert_array_equal(getattr(months, f"{name}_total"), row_sums)
        np.testing.assert_array_equal(getattr(totals, f"{name}_total"), row_sums)


def test_scored_months_drop_the_revenue_arrays_summed_into_the_scores(model):
    """score_customers_by_month's months hold the purchases (what the forecast reads) and
    not the revenue arrays; the scores are those arrays' row sums, bit for bit."""
    from clvtools.pipeline.value_models import ValueModels, score_customers_by_month

    rfm = CDNOW[["frequency", "recency", "T"]].assign(monetary_value=0.0)
    scores, months = score_customers_by_month(ValueModels(model, None, []), rfm, horizon=52,
                                              time_unit_days=7, discount_rate=0.1)
    assert months.revenue_if_retained is None and months.expected_revenue is None
    full = revenue_by_month(model, *COLS, 1.0, 52, 7, 0.1)
    np.testing.assert_array_equal(months.expected_purchases, full.expected_purchases)
    np.testing.assert_array_equal(scores["expected_revenue"], full.expected_revenue.sum(axis=1))
    np.testing.assert_array_equal(scores["revenue_if_retained"],
                                  full.revenue_if_retained.sum(axis=1))


def test_p_alive_of_the_months_or_of_the_model(model):
    """``RevenueByMonth.alive`` (the scores' and the holdout's P(alive)): the model's
    ``conditional_probability_alive`` for Pareto/NBD, which leaves ``p_alive`` None, and
    the P(alive) BG/NBD, MBG/NBD and a covariate model computed on the way, bit for bit the
    model's."""
    from clvtools.btyd import BetaGeoCovariatesFitter
    from clvtools.pipeline.value_models import BoundCovariates

    months = revenue_by_month(model, *COLS, 1.0, 52, 7, 0.0)
    assert (months.p_alive is None) == (not hasattr(model, "alive_and_purchases_by_period"))
    np.testing.assert_array_equal(months.alive(model, *COLS),
                                  model.conditional_probability_alive(*COLS))
    group = pd.DataFrame({"group": np.where(np.arange(len(CDNOW)) % 3 == 0, "a", "b")},
                         index=CDNOW.index)
    fitted = BetaGeoCovariatesFitter().fit(*COLS, covariates=group, purchase_covariates=["group"],
                                           dropout_covariates=["group"])
    x, tx, age = (c.to_numpy(float) for c in COLS)
    months = revenue_by_month(BoundCovariates(fitted, group), x, tx, age, 1.0, 52, 7, 0.0)
    assert months.p_alive is not None
    np.testing.assert_array_equal(months.alive(None, x, tx, age),
                                  fitted.conditional_probability_alive(x, tx, age, group))

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

"""DERT (discounted expected residual transactions) and the continuous-time CLV.

Every closed form or numerical rule is checked against an independent computation to 1e-6
relative: ``scipy.integrate.quad`` of the discounted conditional expected purchases (the
fitter's own formula), quadrature over the posterior, the sum over future opportunities
(BG/BB) or mpmath. Parameters are set directly (published estimates), so no test fits.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from clvtools.btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
)
from clvtools.btyd.dert import (
    clv_continuous,
    continuous_discount_rate,
    dert,
    dert_bgbb,
    dert_numerical,
    dert_pareto_nbd,
    per_period_discount_rate,
)
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.errors import ClvInputError

# FHL05 (JMR) estimates on CDNOW, weeks; BG/NBD and MBG/NBD CDNOW fits; FHS10 donations
PNBD = (0.553, 10.578, 0.606, 11.669)
BGNBD = (0.243, 4.414, 0.793, 2.426)
MBGNBD = (0.525, 6.183, 0.891, 1.614)
BGBB = (1.204, 0.750, 0.657, 2.783)
GG = (6.25, 3.74, 15.44)
# FHL05: 15 % a year, weekly, continuously compounded (0.0027); 365.2425 / 7 weeks a year
DELTA = np.log(1.15) * 7 / 365.2425
# (x, t_x, T): no repeat purchase, typical, recent heavy, lapsed heavy, very heavy
CUSTOMERS = [(0, 0.0, 39.0), (2, 30.43, 38.86), (7, 35.0, 39.0), (50, 10.0, 39.0),
             (200, 38.0, 40.0)]


def _model(cls, values):
    names = {ParetoNBDFitter: ("r", "alpha", "s", "beta"),
             BetaGeoFitter: ("r", "alpha", "a", "b"),
             ModifiedBetaGeoFitter: ("r", "alpha", "a", "b"),
             BetaGeoBetaBinomFitter: ("alpha", "beta", "gamma", "delta"),
             GammaGammaFitter: ("p", "q", "v")}[cls]
    m = cls()
    m.params_ = pd.Series(values, index=list(names), dtype=float)
    return m


def _quad_time(model, delta, x, tx, T):
    """delta * int_0^inf e^(-delta t) E[X(T, T+t)] dt by adaptive quadrature (by parts)."""
    def f(t):
        return delta * np.exp(-delta * t) * (
            model.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T))
    return integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-10, limit=400)[0]


# ---- rates ----------------------------------------------------------------------------------
def test_rate_conversions():
    delta = continuous_discount_rate(0.15, 7)
    assert delta == pytest.approx(0.0027, abs=5e-5)  # FHL05's weekly rate
    assert np.exp(delta * 365.2425 / 7) == pytest.approx(1.15, rel=1e-14)
    assert per_period_discount_rate(0.1, 365.2425) == pytest.approx(0.1, rel=1e-14)
    monthly = per_period_discount_rate(0.1, 365.2425 / 12)
    assert (1 + monthly) ** 12 == pytest.approx(1.1, rel=1e-14)
    with pytest.raises(ClvInputError, match="annual_discount_rate"):
        continuous_discount_rate(-0.1, 7)
    with pytest.raises(ClvInputError, match="time_unit_days"):
        continuous_discount_rate(0.1, 0)


# ---- Pareto/NBD -----------------------------------------------------------------------------
@pytest.mark.parametrize("x, tx, T", CUSTOMERS)
def test_pareto_closed_form_matches_integrals(x, tx, T):
    m = _model(ParetoNBDFitter, PNBD)
    r, alpha, s, beta = PNBD
    got = dert_pareto_nbd(m, DELTA, x, tx, T)
    # 1. over time, with the fitter's own conditional expectation (note 009 eq. 41)
    assert got == pytest.approx(_quad_time(m, DELTA, x, tx, T), rel=1e-6)
    # 2. over the posterior of mu given alive, Gamma(s, beta + T): E[1/(mu + delta)]
    post = integrate.quad(lambda mu: stats.gamma.pdf(mu, s, scale=1 / (beta + T)) / (mu + DELTA),
                          0, np.inf, epsabs=0, epsrel=1e-10, limit=400)[0]
    want = m.conditional_probability_alive(x, tx, T) * (r + x) / (alpha + T) * post
    assert got == pytest.approx(want, rel=1e-6)
    # 3. the numerical rule used for BG/NBD agrees with the closed form
    assert dert_numerical(m, DELTA, x, tx, T) == pytest.approx(got, rel=1e-8)


def test_pareto_closed_form_against_mpmath_likelihood_form():
    """FHL05 eq. (2) as printed (with the likelihood L), in 30-digit arithmetic."""
    r, alpha, s, beta = (mp.mpf(v) for v in PNBD)
    x, tx, T = 2, mp.mpf("30.43"), mp.mpf("38.86")
    d = mp.mpf(DELTA)
    a1, b1 = r + s + x, (max(alpha, beta))
    # likelihood, note 009 eqs. (18)-(22): A0 via 2F1 at t_x and T
    def f(t):
        z = (alpha - beta) / (alpha + t) if alpha >= beta else (beta - alpha) / (beta + t)
        second = s + 1 if alpha >= beta else r + x
        return mp.hyp2f1(a1, second, a1 + 1, z) / (b1 + t) ** a1
    A0 = f(tx) - f(T)
    L = (mp.gamma(r + x) * alpha ** r * beta ** s / mp.gamma(r)) * (
        1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / (r + s + x) * A0)
    want = (alpha ** r * beta ** s * d ** (s - 1) * mp.gamma(r + x + 1)
            * mp.hyperu(s, s, d * (beta + T)) / (mp.gamma(r) * (alpha + T) ** (r + x + 1) * L))
    got = dert_pareto_nbd(PNBD, DELTA, 2, 30.43, 38.86)
    assert got == pytest.approx(float(want), rel=1e-8)


def test_pareto_dert_extremes_are_finite_and_ordered():
    m = _model(ParetoNBDFitter, PNBD)
    x = np.array([0, 1, 10, 100, 1000, 1000.0])
    tx = np.array([0, 5, 39, 39, 39, 1.0])
    T = np.full(6, 39.0)
    out = dert_pareto_nbd(m, DELTA, x, tx, T)
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    assert out[4] > out[3] > out[2]    # heavier buyers who bought just now are worth more
    assert out[5] < 1e-6               # 1000 purchases, none for 38 weeks: gone
    # more discounting, less value; daily time unit gives the same answer as weekly
    assert np.all(dert_pareto_nbd(m, 2 * DELTA, x, tx, T) < out)
    daily = (PNBD[0], PNBD[1] * 7, PNBD[2], PNBD[3] * 7)
    np.testing.assert_allclose(dert_pareto_nbd(daily, DELTA / 7, x, tx * 7, T * 7), out,
                               rtol=1e-10)


# ---- BG/BB -------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [0.1, 0.01])
def test_bgbb_closed_form_matches_sum_over_opportunities(d):
    m = _model(BetaGeoBetaBinomFitter, BGBB)
    x = np.array([0, 1, 3, 6, 2, 0.0])
    tx = np.array([0, 1, 5, 6, 2, 0.0])
    n = np.array([6, 6, 6, 6, 6, 30.0])
    got = dert_bgbb(m, d, x, tx, n)
    want = dert(m, d, x, tx, n, method="numerical")  # sum_k (1+d)^-k increments of eq. (13)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.all(np.diff(got[:4]) > 0)  # x = t_x = n is the best customer


@pytest.mark.parametrize("gamma_", [0.657, 1.0, 2.0])
def test_bgbb_against_paper_form_in_mpmath(gamma_):
    """The printed form with 2F1(1, delta+n+1; gamma+delta+n+1; 1/(1+d)), where scipy's hyp2f1
    is wrong for whole gamma (it returns inf for gamma = 2)."""
    a, b, _, dl = BGBB
    params = (a, b, gamma_, dl)
    x, tx, n, d = 3, 5, 6, 0.001
    m = _model(BetaGeoBetaBinomFitter, params)
    p_alive = m.conditional_probability_alive(0, x, tx, n)
    hyp = mp.hyp2f1(1, dl + n + 1, gamma_ + dl + n + 1, 1 / mp.mpf(1 + d))
    want = (p_alive * (a + x) / (a + b + n)
            * float(mp.beta(gamma_, dl + n + 1) / mp.beta(gamma_, dl + n) * hyp / (1 + d)))
    assert dert_bgbb(params, d, x, tx, n) == pytest.approx(want, rel=1e-9)


# ---- BG/NBD and MBG/NBD: numerical --------------------------------------------------------------
def _posterior_dert(cls, params, delta, x, tx, T):
    """P(alive) E[lambda / (delta + p lambda)], lambda ~ Gamma(R = r+x, A = alpha+T),
    p ~ Beta(a, b+x) (MBG/NBD: b+x+1): the discounted purchases of a customer alive at T who
    drops out after each purchase with probability p are
    sum_k (lambda/(lambda+delta))^k (1-p)^(k-1) = lambda / (delta + p lambda).

    The lambda integral is done in closed form, E[lambda/(delta + p lambda)] =
    (R/p) w^R U(R+1, R+1, w) with w = delta A / p (from E[lambda/(lambda+c)] =
    R e^w E_(R+1)(w)), the p integral by adaptive quadrature with the Beta density's
    algebraic endpoint weight p^(a-1) (1-p)^(bb-1)."""
    r, alpha, a, b = params
    bb = b + x + (1 if cls is ModifiedBetaGeoFitter else 0)
    R, A = r + x, alpha + T

    def inner(p):
        if p <= 0:  # quadpack's QAWSE may call the endpoint: the limit is E[lambda] / delta
            return R / (A * delta)
        w = delta * A / p
        return R / p * np.exp(R * np.log(w) + np.log(special.hyperu(R + 1, R + 1, w)))

    val = integrate.quad(inner, 0, 1, weight="alg", wvar=(a - 1, bb - 1), epsabs=0,
                         epsrel=1e-9, limit=200)[0] / special.beta(a, bb)
    return _model(cls, params).conditional_probability_alive(x, tx, T) * val


@pytest.mark.parametrize("cls, params", [(BetaGeoFitter, BGNBD), (ModifiedBetaGeoFitter, MBGNBD)],
                         ids=["bgnbd", "mbgnbd"])
@pytest.mark.parametrize("x, tx, T", CUSTOMERS[:4])
def test_beta_geo_numerical_dert_matches_posterior_and_quad(cls, params, x, tx, T):
    m = _model(cls, params)
    got = dert(m, DELTA, x, tx, T)
    assert got == pytest.approx(_posterior_dert(cls, params, DELTA, x, tx, T), rel=1e-6)
    assert got == pytest.approx(_quad_time(m, DELTA, x, tx, T), rel=1e-6)


def test_bgnbd_numerical_dert_matches_a_coarse_weekly_sum():
    """Weekly increments of E[X(T, T+t)], each discounted at mid-week, over 60 years: a
    midpoint rule whose relative error is of order (delta h)^2 / 24 ~ 1e-6, plus curvature of
    the purchase rate: agree to 1e-4."""
    m = _model(BetaGeoFitter, BGNBD)
    x, tx, T = np.array([0, 2, 7.0]), np.array([0, 30.43, 35]), np.array([39, 38.86, 39.0])
    weeks = np.arange(0, 52 * 60 + 1, dtype=float)
    cum = np.column_stack([m.conditional_expected_number_of_purchases_up_to_time(w, x, tx, T)
                           for w in weeks])
    coarse = (np.diff(cum, axis=1) * np.exp(-DELTA * (weeks[1:] - 0.5))).sum(axis=1)
    np.testing.assert_allclose(dert_numerical(m, DELTA, x, tx, T), coarse, rtol=1e-4)


def test_vectorised_series_and_scalars():
    m = _model(BetaGeoFitter, BGNBD)
    idx = pd.Index(["a", "b", "c", "d"], name="customer_id")
    x = pd.Series([0, 2, 2, 7.0], index=idx)
    tx = pd.Series([0, 30.43, 30.43, 35.0], index=idx)
    T = pd.Series([39, 38.86, 38.86, 39.0], index=idx)
    out = dert(m, DELTA, x, tx, T)
    assert isinstance(out, pd.Series) and out.index.equals(idx)
    assert out["b"] == out["c"] == dert(m, DELTA, 2, 30.43, 38.86)
    assert isinstance(dert(m, DELTA, 2, 30.43, 38.86), float)
    pn = _model(ParetoNBDFitter, PNBD)
    assert isinstance(dert(pn, DELTA, x, tx, T), pd.Series)


def test_bad_inputs_say_what_to_do():
    m = _model(BetaGeoFitter, BGNBD)
    with pytest.raises(ClvInputError, match="discount_rate"):
        dert(m, 0.0, 1, 1, 2)
    with pytest.raises(ClvInputError, match="recency"):
        dert(m, DELTA, 1, 3, 2)
    with pytest.raises(ClvInputError, match="no closed-form"):
        dert(m, DELTA, 1, 1, 2, method="closed_form")
    with pytest.raises(ClvInputError, match="method"):
        dert(m, DELTA, 1, 1, 2, method="exact")
    with pytest.raises(ClvInputError, match="not been fitted"):
        dert(BetaGeoFitter(), DELTA, 1, 1, 2)
    with pytest.raises(ClvInputError, match="purchase model"):
        dert(_model(GammaGammaFitter, GG), DELTA, 1, 1, 2)


# ---- CLV ----------------------------------------------------------------------------------------
def test_clv_is_dert_times_gamma_gamma_spend():
    m, gg = _model(ParetoNBDFitter, PNBD), _model(GammaGammaFitter, GG)
    x, tx, T = np.array([1, 2, 7.0]), np.array([5, 30.43, 35.0]), np.array([39, 38.86, 39.0])
    money = np.array([20.0, 35.0, 50.0])
    out = clv_continuous(m, gg, x, tx, T, money, annual_discount_rate=0.15, time_unit_days=7)
    assert list(out.columns) == ["dert", "expected_spend", "clv"]
    np.testing.assert_allclose(out["dert"], dert_pareto_nbd(m, DELTA, x, tx, T), rtol=1e-14)
    np.testing.assert_allclose(out["expected_spend"],
                               gg.conditional_expected_average_profit(x, money), rtol=1e-14)
    np.testing.assert_allclose(out["clv"], out["dert"] * out["expected_spend"], rtol=1e-14)
    # a fixed spend per purchase is accepted too; BG/BB discounts per opportunity
    fixed = clv_continuous(m, 10.0, x, tx, T, annual_discount_rate=0.15, time_unit_days=7)
    np.testing.assert_allclose(fixed["clv"], 10 * out["dert"], rtol=1e-14)
    bb = clv_continuous(_model(BetaGeoBetaBinomFitter, BGBB), 10.0, 3, 5, 6,
                        annual_discount_rate=0.1, time_unit_days=365.2425)
    assert bb["clv"].iloc[0] == pytest.approx(10 * dert_bgbb(BGBB, 0.1, 3, 5, 6), rel=1e-14)
    with pytest.raises(ClvInputError, match="monetary_value"):
        clv_continuous(m, gg, x, tx, T)
    with pytest.raises(ClvInputError, match="positive"):
        clv_continuous(m, 10.0, x, tx, T, annual_discount_rate=0.0)


@pytest.mark.parametrize("cls, params", [(BetaGeoFitter, BGNBD), (ParetoNBDFitter, PNBD)],
                         ids=["bgnbd", "pnbd"])
def test_clv_against_lifetimes_discrete_monthly_clv(cls, params):
    """lifetimes' CLV discounts each 4.345-week month's purchases at the month's end: over a
    long horizon (200 years, so truncation is below 1e-8) and with the monthly rate matched to
    delta, it lies between clv * exp(-delta M) and clv, close to clv * exp(-delta M / 2)."""
    m, gg = _model(cls, params), _model(GammaGammaFitter, GG)
    x, tx, T = np.array([1, 2, 7.0]), np.array([5, 30.43, 35.0]), np.array([39, 38.86, 39.0])
    money = np.array([20.0, 35.0, 50.0])
    ours = clv_continuous(m, gg, x, tx, T, money, annual_discount_rate=0.15,
                          time_unit_days=7)["clv"].to_numpy()
    M = 4.345  # lifetimes' weeks per month
    monthly = np.expm1(DELTA * M)
    theirs = gg.customer_lifetime_value(m, x, tx, T, money, time=2400, discount_rate=monthly,
                                        freq="W").to_numpy()
    assert np.all(theirs <= ours) and np.all(theirs >= ours * np.exp(-DELTA * M))
    np.testing.assert_allclose(theirs, ours * np.exp(-DELTA * M / 2), rtol=2e-4)

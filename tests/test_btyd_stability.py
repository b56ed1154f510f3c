"""Extreme but valid customers give finite numbers, and the right ones.

Warnings are errors (pyproject.toml), so any overflow/invalid RuntimeWarning fails these tests.
Heavy buyers: frequency up to 10,000 and T up to 10,000 time units. Where lifetimes 0.11.3
returns NaN, the value is checked against an independent computation: the conditional
expectation written as a one-dimensional integral over the dropout probability p,

    E[X(T, T+t) | x, t_x, T] = P(alive) * int Beta(p; a, b + x + k) / p
                                   * (1 - (1 + p t / (alpha + T)) ** -(r + x)) dp,

(k = 0 for BG/NBD, 1 for MBG/NBD: given alive, lambda ~ Gamma(r + x, alpha + T), and a
customer with (lambda, p) makes (1 - exp(-lambda p t)) / p purchases in t on average),
evaluated with mpmath's tanh-sinh quadrature at 30 digits.
"""
from __future__ import annotations

import warnings

import lifetimes
import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtools.btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
)

# CDNOW fits (Fader, Hardie & Lee 2005; BTYDplus for MBG/NBD), weeks
PARAMS = {
    BetaGeoFitter: (0, [0.243, 4.414, 0.793, 2.426]),
    ModifiedBetaGeoFitter: (1, [0.525, 6.183, 0.891, 1.614]),
}
x = np.array([0, 0, 1, 1, 50, 500, 5_000, 10_000, 10_000, 10_000, 10_000])
tx = np.array([0, 0, 0.5, 9_999, 3, 9_000, 10, 9_999, 20, 1, 10_000])
T = np.array([0, 10_000, 10_000, 10_000, 10, 10_000, 10_000, 10_000, 20, 10_000, 10_000])


def _model(cls):
    m = cls()
    m.params_ = pd.Series(PARAMS[cls][1], index=["r", "alpha", "a", "b"])
    return m


def _by_integral(model, shift, t, x, tx, T):
    mp.mp.dps = 30
    r, al, a, b = (mp.mpf(float(v)) for v in model.params_)
    x, t, T = mp.mpf(float(x)), mp.mpf(float(t)), mp.mpf(float(T))
    bb = b + x + shift
    log_beta = mp.log(mp.beta(a, bb))

    def f(p):
        dens = mp.exp((a - 1) * mp.log(p) + (bb - 1) * mp.log1p(-p) - log_beta)
        return dens / p * (1 - (1 + p * t / (al + T)) ** (-(r + x)))

    cuts = sorted({c for c in (1 / bb, 10 / bb, 100 / bb) if c < 1})
    return float(mp.quad(f, [0, *cuts, 1]))


@pytest.mark.parametrize("cls", [BetaGeoFitter, ModifiedBetaGeoFitter])
def test_heavy_buyers_finite_and_correct(cls):
    m = _model(cls)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        pa = m.conditional_probability_alive(x, tx, T)
        assert np.all(np.isfinite(pa)) and np.all((pa >= 0) & (pa <= 1))
        for t in (1.0, 52.0, 10_000.0):
            e = m.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
            assert np.all(np.isfinite(e)) and np.all(e >= 0)
        ll, g = m._loglik_and_grad(m.params_.to_numpy(), m._prepare_data(
            {"frequency": x * 1.0, "recency": tx * 1.0, "T": T * 1.0}, np.ones(len(x))),
            np.ones(len(x)))
        assert np.isfinite(ll) and np.all(np.isfinite(g))
    # the conditional expectation, against the integral (rel. 1e-9)
    shift = PARAMS[cls][0]
    for i in (2, 3, 6, 7, 8):
        for t in (52.0, 10_000.0):
            want = _by_integral(m, shift, t, x[i], tx[i], T[i]) * pa[i]
            got = m.conditional_expected_number_of_purchases_up_to_time(t, x[i], tx[i], T[i])
            assert got == pytest.approx(want, rel=1e-9, abs=1e-300)


def test_lifetimes_mbgnbd_gives_nan_where_we_do_not():
    # lifetimes 0.11.3 evaluates 2F1(r+x, b+x+1; a+b+x; z) directly: for x = 10,000 bought in
    # T = 20 weeks it gets inf * 0 = NaN. Our Euler-transformed form is finite and equals the
    # integral above.
    ref = lifetimes.ModifiedBetaGeoFitter()
    ref.params_ = _model(ModifiedBetaGeoFitter).params_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref.conditional_expected_number_of_purchases_up_to_time(52.0, 10_000, 20, 20)
    assert np.isnan(theirs)
    m = _model(ModifiedBetaGeoFitter)
    ours = m.conditional_expected_number_of_purchases_up_to_time(52.0, 10_000, 20, 20)
    want = _by_integral(m, 1, 52.0, 10_000, 20, 20) * m.conditional_probability_alive(
        10_000, 20, 20)
    assert ours == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("cls", [BetaGeoFitter, ModifiedBetaGeoFitter])
def test_small_a_plus_b_gives_no_nan(cls):
    # With a + b < 1 the Euler-transformed 2F1 turns negative for customers without repeat
    # purchases and long horizons (its third parameter a + b - 1 is negative): its logarithm
    # gave NaN from t = 10 on. Checked against the integral for x = 0, and the new-customer
    # expectation E[X(t)] against the conditional one at x = t_x = T = 0.
    m = cls()
    m.params_ = pd.Series([0.24, 4.4, 0.3, 0.5], index=["r", "alpha", "a", "b"])
    shift = PARAMS[cls][0]
    for t in (1.0, 10.0, 100.0, 10_000.0):
        for T_ in (0.0, 39.0):
            got = m.conditional_expected_number_of_purchases_up_to_time(t, 0, 0, T_)
            want = _by_integral(m, shift, t, 0, 0, T_) * m.conditional_probability_alive(0, 0, T_)
            assert got == pytest.approx(want, rel=1e-9)
        assert m.expected_number_of_purchases_up_to_time(t) == pytest.approx(
            m.conditional_expected_number_of_purchases_up_to_time(t, 0, 0, 0), rel=1e-12)


def test_lapsed_heavy_buyer_is_dead_not_nan():
    # 10,000 purchases, the last at week 1 of 10,000: P(alive) underflows to 0 exactly, and the
    # expected purchases with it; a naive ratio would give 0 / inf or inf / inf.
    for cls in (BetaGeoFitter, ModifiedBetaGeoFitter):
        m = _model(cls)
        assert m.conditional_probability_alive(10_000, 1, 10_000) == 0.0
        assert m.conditional_expected_number_of_purchases_up_to_time(52, 10_000, 1, 10_000) == 0.0


def test_bgbb_long_histories_finite():
    m = BetaGeoBetaBinomFitter()
    m.params_ = pd.Series([1.204, 0.750, 0.657, 2.783], index=["alpha", "beta", "gamma", "delta"])
    xs, txs, ns = np.array([0, 10, 9_000, 9_999]), np.array([0, 20, 9_990, 10_000]), 10_000
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        pa = m.conditional_probability_alive(5, xs, txs, ns)
        e = m.conditional_expected_number_of_purchases_up_to_time(10, xs, txs, ns)
    assert np.all(np.isfinite(pa)) and np.all((pa >= 0) & (pa <= 1))
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    # P(alive) falls with inactivity: same x, later last purchase -> more likely alive
    assert m.conditional_probability_alive(0, 10, 20, 10_000) < m.conditional_probability_alive(
        0, 10, 9_000, 10_000)
    # bought at 9,999 of 10,000 opportunities including the last: buys ~10 in the next 10
    assert 9.9 < e[3] <= 10
    # bought at 9,000 but none of the last 10 (odds ~0.1^10 if alive): as good as gone
    assert e[2] < 1e-3


def test_gamma_gamma_heavy_buyers_finite():
    m = GammaGammaFitter()
    m.params_ = pd.Series([6.25, 3.74, 15.44], index=["p", "q", "v"])
    m.data = pd.DataFrame({"frequency": [1.0], "monetary_value": [1.0], "weights": [1.0]})
    spend = m.conditional_expected_average_profit(np.array([1, 10_000]), np.array([1e6, 35.0]))
    assert np.all(np.isfinite(spend))
    # 10,000 purchases: the estimate is the customer's own mean (weight on it -> 1)
    assert spend[1] == pytest.approx(35.0, rel=1e-3)


# ---- properties over random valid customers ---------------------------------------------


@st.composite
def _customers(draw):
    T_ = draw(st.floats(0.0, 10_000.0))
    x_ = draw(st.integers(0, 10_000))
    tx_ = 0.0 if x_ == 0 else draw(st.floats(0.0, T_))
    return float(x_), tx_, T_


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_customers(), st.floats(0.01, 5_000.0))
def test_predictions_are_probabilities_and_monotone(customer, t):
    """For any valid history: 0 <= P(alive) <= 1, and 0 <= E[X(t)] <= E[X(2t)] <= rate x 2t."""
    for cls in (BetaGeoFitter, ModifiedBetaGeoFitter):
        m = _model(cls)
        pa = m.conditional_probability_alive(*customer)
        e1 = m.conditional_expected_number_of_purchases_up_to_time(t, *customer)
        e2 = m.conditional_expected_number_of_purchases_up_to_time(2 * t, *customer)
        assert 0.0 <= pa <= 1.0
        assert 0.0 <= e1 <= e2 * (1 + 1e-12) + 1e-300
        assert e2 <= pa * m.purchase_rate_if_alive(*customer) * 2 * t * (1 + 1e-9) + 1e-300

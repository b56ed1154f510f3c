"""Pareto/NBD closed forms (clvtools.btyd._pareto_nbd_math): accuracy and stability.

Independent routes used as references:
* mpmath.hyp2f1 at 40 digits on the UN-transformed 2F1 of Fader & Hardie (2005), eqs. 19-20;
* mpmath.quad at 40 digits of the integral I = int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1);
* lifetimes 0.11.3's formulas where they are numerically sound.
"""
from __future__ import annotations

from pathlib import Path

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from clvtools.btyd import _pareto_nbd_math as pm

CDNOW = (0.553, 10.578, 0.606, 11.669)  # Fader, Hardie & Lee (2005), CDNOW estimates


def _lifetimes():
    from lifetimes import ParetoNBDFitter

    m = ParetoNBDFitter()
    m.params_ = pd.Series(CDNOW, index=["r", "alpha", "s", "beta"])
    return m


def _mp_log_F(u, a, b, alpha, beta):
    """log of int_u^inf (alpha+t)^-a (beta+t)^-b dt via the note's 2F1 (eqs. 19-20), 40 digits."""
    with mp.workdps(40):
        m, n = max(alpha, beta), min(alpha, beta)
        p, q = (a, b) if alpha >= beta else (b, a)
        z = mp.mpf(m - n) / (m + u)
        f = mp.hyp2f1(q, p + q - 1, p + q, z, maxterms=10**7)
        return float((1 - p - q) * mp.log(m + u) - mp.log(p + q - 1) + mp.log(f))


def _mp_loglik(params, x, tx, T):
    """Eq. (18) with the integral I by mpmath.quad (40 digits): no 2F1, no series."""
    r, alpha, s, beta = (mp.mpf(v) for v in params)
    with mp.workdps(40):
        a = r + x
        logC = mp.loggamma(a) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
        E = mp.exp(-a * mp.log(alpha + T) - s * mp.log(beta + T))
        def f(t):
            return mp.exp(-a * mp.log(alpha + t) - (s + 1) * mp.log(beta + t))

        # the integrand decays over (alpha + t) / a: split the range geometrically from t_x
        h = float((min(alpha, beta) + tx) / (a + s + 1)) / 8
        pts = [tx] + [tx + h * 2.0**k for k in range(80) if tx + h * 2.0**k < T] + [T]
        integral = mp.quad(f, pts) if tx < T else mp.mpf(0)
        return float(logC + mp.log(E + s * integral)), float(E / (E + s * integral))


# ---- the series --------------------------------------------------------------------------
def test_log_F_matches_mpmath_hyp2f1_including_heavy_buyers():
    rng = np.random.default_rng(20240501)
    worst = 0.0
    for _ in range(60):
        u = rng.uniform(0, 200)
        a = rng.choice([0.3, 2.0, 150.0, 10_000.0]) * rng.uniform(0.5, 1.5)
        b = 1 + rng.uniform(0.05, 3)
        alpha, beta = 10 ** rng.uniform(-1.5, 1.5, 2)
        ours = float(pm.log_F(u, a, b, alpha, beta))
        ref = _mp_log_F(u, a, b, alpha, beta)
        worst = max(worst, abs(ours - ref) / max(1.0, abs(ref)))
    assert worst < 1e-13


def test_log_F_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    for _ in range(6):
        u = rng.uniform(0, 50)
        th0 = np.array([rng.uniform(0.3, 20), rng.uniform(1.1, 3), *10 ** rng.uniform(-1, 1, 2)])

        def f(th, u=u):
            return float(pm.log_F(u, th[0], th[1], th[2], th[3]))

        def g(th, u=u):
            return np.array(pm.log_F(u, th[0], th[1], th[2], th[3], grad=True)[1]).ravel()

        assert check_grad(f, g, th0) < 1e-5 * max(1.0, np.linalg.norm(g(th0)))


def test_absurd_parameters_raise_a_convergence_error_with_advice():
    with pytest.raises(pm.SeriesTooLongError, match="1. check the parameters"):
        pm.loglik((0.5, 1e9, 0.5, 1e-3), [1.0], [0.0], [10.0])
    # ... and the optimiser's objective sees -inf instead (it then backs off)
    ll, g = pm.loglik_and_grad((0.5, 1e9, 0.5, 1e-3), [1.0], [0.0], [10.0])
    assert ll == -np.inf and np.isnan(g).all()


# ---- likelihood --------------------------------------------------------------------------
def test_loglik_matches_lifetimes_on_cdnow_and_the_published_total():
    from lifetimes import ParetoNBDFitter
    from lifetimes.datasets import load_cdnow_summary

    d = load_cdnow_summary(index_col=[0])
    x, tx, T = d["frequency"].to_numpy(float), d["recency"].to_numpy(), d["T"].to_numpy()
    ours = pm.loglik(CDNOW, x, tx, T)
    ref = ParetoNBDFitter._conditional_log_likelihood(CDNOW, x, tx, T)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    # Fader, Hardie & Lee (2005): LL = -9595.0 at the rounded estimates
    assert ours.sum() == pytest.approx(-9595.0, abs=0.05)


@pytest.mark.parametrize(
    "x, tx, T",
    [(0, 0, 38.9), (2, 30.4, 38.9), (150, 190, 200), (500, 199.5, 200), (10_000, 9_000, 10_000),
     (10_000, 10_000, 10_000), (3, 0.5, 10_000), (9_999, 9_999.99, 10_000)],
)
@pytest.mark.parametrize("params", [CDNOW, (2.0, 0.5, 0.3, 50.0), (0.5, 80.0, 1.2, 0.4)])
def test_loglik_and_p_alive_match_direct_quadrature(params, x, tx, T):
    ll_ref, pa_ref = _mp_loglik(params, x, tx, T)
    assert float(pm.loglik(params, x, tx, T)) == pytest.approx(ll_ref, rel=1e-12, abs=1e-9)
    assert float(pm.conditional_probability_alive(params, x, tx, T)) == pytest.approx(
        pa_ref, rel=1e-10, abs=1e-14)


def _heavy_rows(rng, n):
    x = rng.integers(0, 10_001, n).astype(float)
    T = rng.uniform(1, 10_000, n)
    tx = np.where(x > 0, T * rng.uniform(0.99, 1.0, n), 0.0)
    return x, tx, T


@pytest.mark.parametrize("params", [CDNOW, (2.0, 0.5, 0.3, 50.0), (0.5, 80.0, 1.2, 0.4),
                                    (0.2, 2.0, 3.0, 40.0)])
def test_analytic_gradient_check_grad_including_heavy_buyers(params):
    """scipy's check_grad on the mean log-likelihood in log-parameters (seeded points)."""
    rng = np.random.default_rng(11)
    from lifetimes.datasets import load_cdnow_summary

    d = load_cdnow_summary(index_col=[0]).iloc[::5]
    xh, txh, Th = _heavy_rows(rng, 40)
    x = np.r_[d["frequency"].to_numpy(float), xh]
    tx = np.r_[d["recency"].to_numpy(), txh]
    T = np.r_[d["T"].to_numpy(), Th]
    w = rng.integers(1, 5, len(x)).astype(float)
    n = w.sum()

    def f(th):
        return pm.loglik_and_grad(np.exp(th), x, tx, T, w)[0] / n

    def g(th):
        return pm.loglik_and_grad(np.exp(th), x, tx, T, w)[1] / n

    th0 = np.log(params) + rng.normal(0, 0.1, 4)
    g0 = g(th0)
    # forward differences (check_grad): truncation error ~ 1e-7 * curvature, large for heavy
    # buyers, hence 1e-4; then central differences, whose error is ~ 1e-10 * third derivative
    assert check_grad(f, g, th0, epsilon=1e-7) < 1e-4 * max(1.0, np.linalg.norm(g0))
    h = 1e-5
    central = np.array([(f(th0 + h * e) - f(th0 - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(g0, central, rtol=1e-6, atol=1e-7 * np.abs(g0).max())
    # and the value agrees with the per-row function
    assert f(th0) * n == pytest.approx(np.sum(w * pm.loglik(np.exp(th0), x, tx, T)), rel=1e-13)


def test_heavy_buyers_give_finite_values_without_warnings():
    rng = np.random.default_rng(3)
    x, tx, T = _heavy_rows(rng, 2_000)
    x[:5], tx[:5], T[:5] = 10_000, 10_000, 10_000
    tx[5:10] = 0.0
    x[5:10] = 0
    for params in [CDNOW, (2.0, 0.5, 0.3, 50.0), (0.5, 80.0, 1.2, 0.4)]:
        # any overflow, invalid operation or division by zero fails (underflow to 0 is benign)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            ll = pm.loglik(params, x, tx, T)
            llg = pm.loglik_and_grad(params, x, tx, T)
            pa = pm.conditional_probability_alive(params, x, tx, T)
            ce = pm.conditional_expected_number_of_purchases_up_to_time(params, 52, x, tx, T)
        assert np.isfinite(ll).all() and np.isfinite(llg[0]) and np.isfinite(llg[1]).all()
        assert ((pa >= 0) & (pa <= 1)).all() and np.isfinite(ce).all() and (ce >= 0).all()
        np.testing.assert_array_equal(pa[:5], 1.0)  # t_x = T: surely alive


# ---- predictions -------------------------------------------------------------------------
def _mp_conditional_expectation(params, t, x, tx, T):
    """Posterior route: P(alive) (direct quadrature) * E[lambda] * E[(1 - e^{-mu t}) / mu],
    lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T) given alive, by mpmath.quad."""
    r, alpha, s, beta = (mp.mpf(v) for v in params)
    _, pa = _mp_loglik(params, x, tx, T)
    with mp.workdps(40):
        rate = beta + T
        def dens(m):  # Gamma(s, rate beta + T) density of mu
            return mp.exp(s * mp.log(rate) - mp.loggamma(s) + (s - 1) * mp.log(m) - rate * m)

        life = mp.quad(lambda m: dens(m) * -mp.expm1(-m * t) / m, [0, 1 / rate, 10 / rate, mp.inf])
        return float(pa * (r + x) / (alpha + T) * life)


@pytest.mark.parametrize("x, tx", [(132, 200.0), (150, 200.0), (1_000, 200.0), (150, 190.0),
                                   (2_000, 199.0)])
def test_conditional_expectation_where_lifetimes_returns_nan(x, tx):
    """lifetimes gives NaN for x >= 132 at t_x = T = 200 (scipy's hyp2f1 overflows); we match
    an mpmath integration over the posterior of (lambda, mu)."""
    ours = pm.conditional_expected_number_of_purchases_up_to_time(CDNOW, 10.0, x, tx, 200.0)
    ref = _mp_conditional_expectation(CDNOW, 10.0, x, tx, 200.0)
    assert float(ours) == pytest.approx(ref, rel=1e-10)
    if tx == 200.0:
        with np.errstate(all="ignore"):
            theirs = _lifetimes().conditional_expected_number_of_purchases_up_to_time(
                10.0, x, tx, 200.0)
        assert np.isnan(theirs)


def test_lifetimes_is_finite_just_below_its_breakdown_and_agrees():
    lt = _lifetimes()
    x = np.arange(0, 132.0)
    ours = pm.conditional_expected_number_of_purchases_up_to_time(CDNOW, 10.0, x, 200.0, 200.0)
    theirs = lt.conditional_expected_number_of_purchases_up_to_time(10.0, x, 200.0, 200.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_predictions_match_lifetimes_on_cdnow():
    from lifetimes.datasets import load_cdnow_summary

    d = load_cdnow_summary(index_col=[0])
    x, tx, T = d["frequency"].to_numpy(float), d["recency"].to_numpy(), d["T"].to_numpy()
    lt = _lifetimes()
    np.testing.assert_allclose(pm.conditional_probability_alive(CDNOW, x, tx, T),
                               lt.conditional_probability_alive(x, tx, T), rtol=1e-10)
    for t in (1.0, 10.0, 39.0, 78.0):
        np.testing.assert_allclose(
            pm.conditional_expected_number_of_purchases_up_to_time(CDNOW, t, x, tx, T),
            lt.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), rtol=1e-10)
    t = np.linspace(0.5, 100, 50)
    np.testing.assert_allclose(pm.expected_number_of_purchases_up_to_time(CDNOW, t),
                               lt.expected_number_of_purchases_up_to_time(t), rtol=1e-12)
    for n in (0, 1, 2, 5, 10):
        np.testing.assert_allclose(
            pm.conditional_probability_of_n_purchases_up_to_time(CDNOW, n, 10.0, x, tx, T),
            lt.conditional_probability_of_n_purchases_up_to_time(n, 10.0, x, tx, T),
            rtol=1e-7, atol=1e-12)


def test_pmf_sums_to_one_and_its_mean_is_the_conditional_expectation():
    x = np.array([0.0, 1, 5, 30, 150])
    tx = np.array([0.0, 20, 30, 38, 38.5])
    T = 39.0
    n = np.arange(0, 400.0)[:, None]
    pmf = pm.conditional_probability_of_n_purchases_up_to_time(CDNOW, n, 20.0, x, tx, T)
    np.testing.assert_allclose(pmf.sum(axis=0), 1.0, atol=1e-7)
    mean = (n * pmf).sum(axis=0)
    ce = pm.conditional_expected_number_of_purchases_up_to_time(CDNOW, 20.0, x, tx, T)
    np.testing.assert_allclose(mean, ce, rtol=1e-6)


def test_s_equal_one_uses_the_limit():
    p1 = (0.5, 10.0, 1.0, 12.0)
    p2 = (0.5, 10.0, 1.0 + 1e-7, 12.0)
    a = pm.conditional_expected_number_of_purchases_up_to_time(p1, 10, 3, 20, 30)
    b = pm.conditional_expected_number_of_purchases_up_to_time(p2, 10, 3, 20, 30)
    assert np.isfinite(a) and a == pytest.approx(b, rel=1e-6)
    assert pm.expected_number_of_purchases_up_to_time(p1, 10) == pytest.approx(
        0.5 * 12 / 10 * np.log1p(10 / 12), rel=1e-12)


def test_purchase_rate_if_alive():
    assert pm.purchase_rate_if_alive(CDNOW, 4, 20, 30) == pytest.approx((0.553 + 4) / 40.578)


# ---- simulator ---------------------------------------------------------------------------
def test_simulate_rfm_is_seeded_and_consistent():
    a = pm.simulate_rfm(CDNOW, 50_000, 39.0, seed=5)
    truth = dict(zip(("r", "alpha", "s", "beta"), CDNOW, strict=True))
    b = pm.simulate_rfm(truth, 50_000, 39.0, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns[:3]) == ["frequency", "recency", "T"]
    assert ((a["recency"] <= a["T"]) & (a["recency"] >= 0)).all()
    assert (a.loc[a["frequency"] == 0, "recency"] == 0).all()
    # the mean number of purchases matches eq. (27)
    expect = pm.expected_number_of_purchases_up_to_time(CDNOW, 39.0)
    se = a["frequency"].std() / np.sqrt(len(a))
    assert abs(a["frequency"].mean() - expect) < 4 * se


def test_the_three_summation_paths_agree_where_the_series_is_long():
    """beta = 100 alpha: z = 0.99 at t_x = 0, ~5,000 terms. Groups of >= 32 rows per frequency
    use Horner (short series: the block's terms; long ones: each row's own); single rows use
    the recurrence."""
    params = (1.0, 2.0, 0.2, 200.0)
    rng = np.random.default_rng(5)
    x = np.repeat([0.0, 1.0, 3.0, 40.0], 40)
    T = rng.uniform(10, 100, len(x))
    tx = np.where(x > 0, T * rng.uniform(0, 1, len(x)), 0.0)
    batch = pm.loglik(params, x, tx, T)
    single = np.array([pm.loglik(params, [a], [b], [c])[0]
                       for a, b, c in zip(x, tx, T, strict=True)])
    np.testing.assert_allclose(batch, single, rtol=1e-11)
    for i in (0, 45, 130):
        assert batch[i] == pytest.approx(_mp_loglik(params, x[i], tx[i], T[i])[0], rel=1e-11)
    np.testing.assert_allclose(pm.conditional_probability_alive(params, x, tx, T),
                               [pm.conditional_probability_alive(params, a, b, c)
                                for a, b, c in zip(x, tx, T, strict=True)], rtol=1e-10)
    th0 = np.log(params)
    g0 = pm.loglik_and_grad(params, x, tx, T)[1]
    h = 1e-5
    central = [(pm.loglik_and_grad(np.exp(th0 + h * e), x, tx, T)[0]
                - pm.loglik_and_grad(np.exp(th0 - h * e), x, tx, T)[0]) / (2 * h)
               for e in np.eye(4)]
    np.testing.assert_allclose(g0, central, rtol=1e-6, atol=1e-6 * np.abs(g0).max())


@pytest.mark.parametrize("params", [CDNOW, (1.0, 2.0, 0.2, 200.0)], ids=["cdnow", "long-series"])
def test_sums_on_distinct_recencies_and_ages_equal_the_per_row_sums_bit_for_bit(params):
    """Whole days repeat within a frequency: the fit sums each frequency's series once per
    distinct t_x and T (series.distinct_times); every row must get the same number, bit for
    bit, as when each row is summed on its own, whether the series is short (stacked Horner)
    or long (each row's own terms, up to about 5,000 for beta = 100 alpha)."""
    from clvtools.btyd import _pareto_nbd_series as series

    rng = np.random.default_rng(11)
    T = rng.integers(91, 365, 3000) / 7.0
    x = np.minimum(rng.poisson(2.0, len(T)), 12).astype(float)
    tx = np.where(x > 0, np.floor(T * 7.0 * rng.uniform(0, 1, len(T))) / 7.0, 0.0)
    groups = series._group_rows(x)
    distinct = series.distinct_times(tx, T, groups)
    assert any(d is not None for d in distinct)  # the whole days do repeat
    w = rng.integers(1, 5, len(x)).astype(float)
    ll_rows, g_rows = pm.loglik_and_grad(params, x, tx, T, w, groups)
    ll_distinct, g_distinct = pm.loglik_and_grad(params, x, tx, T, w, groups, distinct)
    assert ll_distinct == ll_rows
    np.testing.assert_array_equal(g_distinct, g_rows)


def test_stacked_horner_equals_one_polynomial_at_a_time_bit_for_bit():
    from clvtools.btyd import _pareto_nbd_series as series

    rng = np.random.default_rng(3)
    z = rng.uniform(0, 0.9, 500)
    coefs = [rng.uniform(0, 1, 30), rng.normal(size=30), rng.normal(size=30),
             rng.normal(size=29)]  # the derivative in z has one term fewer
    stacked = series._horner_stacked(coefs, z)
    for row, cf in zip(stacked, coefs, strict=True):
        np.testing.assert_array_equal(row, series._horner(cf, z))


@pytest.mark.parametrize("scoring", [False, True], ids=["fit", "scoring"])
def test_long_series_with_each_rows_own_terms_equal_the_whole_blocks_sums(scoring):
    """A long series (beta = 20 alpha: z up to 0.95, hundreds of terms) summed with only the
    terms each row's z needs equals the block's sums with every term to 1e-15, and a subset of
    the rows with the same largest z gets the same numbers bit for bit (a row's sum depends on
    its z and the block's number of terms alone: the fit sums a unit on its distinct times)."""
    from clvtools.btyd import _pareto_nbd_series as series

    alpha, beta, p, q = 2.0, 40.0, 3.4, 1.6
    u = np.random.default_rng(8).uniform(0, 150, 5000)
    z = (beta - alpha) / (beta + u)
    coefs = series._coefficients(p, q, float(z.max()), grad=not scoring)
    full = series._horner_stacked(coefs, z) if not scoring else [series._horner(coefs[0], z)]
    own = series._horner_trimmed(coefs, z, scoring=scoring)
    assert len(coefs[0]) > 200  # long: the per-row path
    for a, b in zip(own, full, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15 * np.abs(b).max())
    subset = np.union1d(np.flatnonzero(u > 100), [np.argmax(z)])
    part = series._horner_trimmed(coefs, z[subset], scoring=scoring)
    for a, b in zip(part, own, strict=True):
        np.testing.assert_array_equal(a, b[subset])


# ---- z near 1: a fit whose dropout heterogeneity vanishes (s ~ 307, beta ~ 24,600) ------------
# The estimate of the calibration window of tests/test_targeting_attention.py's base (weeks):
# 1 - z = (alpha + u) / (beta + u) is 4.4e-4 at u = 0, up to 130,000 series terms.
NEAR_Z1 = (0.8726784179589073, 10.796012639945967, 307.2503803088342, 24644.503905521495)


def test_long_series_in_blocks_equal_horners_rule():
    """The blocked matrix-product sums equal Horner's rule to 1e-13 (relative to the largest
    sum of each polynomial), and a subset of the rows gets the same numbers bit for bit."""
    from clvtools.btyd import _pareto_nbd_series as series
    from clvtools.btyd._series_blocks import blocked_sums, coefficient_blocks

    z = (24644.5 - 10.8) / (24644.5 + np.random.default_rng(4).uniform(0, 52, 40))
    coefs = series._coefficients(308.25, 1.87, float(z.max()), grad=True)
    assert len(coefs[0]) > 20_000
    blocks, n_terms = coefficient_blocks(coefs), len(coefs[0]) - 1
    blocked = blocked_sums(blocks, n_terms, z)
    for got, cf in zip(blocked, coefs, strict=True):
        ref = series._horner(cf, z)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    np.testing.assert_array_equal(blocked_sums(blocks, n_terms, z[5:9]), blocked[:, 5:9])
    np.testing.assert_array_equal(blocked_sums(blocks, n_terms, z[7:8]), blocked[:, 7:8])


@pytest.mark.parametrize("x, tx, T", [(0, 0.0, 52.0), (0, 0.0, 1 / 7), (2, 3 / 7, 40.0),
                                      (7, 30.0, 50.0), (39, 51.0, 52.0)])
def test_likelihood_near_z_one_matches_mpmath(x, tx, T):
    """log L of single customers (the pooled path, per (p, q) pair) against mpmath.quad."""
    assert float(pm.loglik(NEAR_Z1, x, tx, T)) == pytest.approx(
        _mp_loglik(NEAR_Z1, x, tx, T)[0], rel=1e-11)


def test_log_F_and_its_gradient_near_z_one_match_mpmath():
    """log F and d log F / d(a, b, alpha, beta) at z = 0.99956 against mpmath's hyp2f1
    (its own transformation near z = 1) and numerical derivatives at 30 digits."""
    a, b, alpha, beta, u = 1.87, 308.25, 10.796, 24644.5, 0.0
    got, grad = pm.log_F(u, a, b, alpha, beta, grad=True)
    with mp.workdps(30):
        ref = _mp_log_F(u, a, b, alpha, beta)
        point = [mp.mpf(v) for v in (a, b, alpha, beta)]
        ref_grad = [mp.diff(lambda v, j=j: _mp_log_F_mp(u, *(point[:j] + [v] + point[j + 1:])),
                            point[j]) for j in range(4)]
    assert float(got) == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose([float(g) for g in grad], [float(g) for g in ref_grad], rtol=1e-12)


def _mp_log_F_mp(u, a, b, alpha, beta):
    """:func:`_mp_log_F` at mpmath precision (for mp.diff)."""
    m, n = max(alpha, beta), min(alpha, beta)
    p, q = (a, b) if alpha >= beta else (b, a)
    z = (m - n) / (m + u)
    return (1 - p - q) * mp.log(m + u) - mp.log(p + q - 1) + mp.log(
        mp.hyp2f1(q, p + q - 1, p + q, z, maxterms=10**7))


def test_likelihood_and_gradient_near_z_one_equal_horners_rule(monkeypatch):
    """The fit's likelihood and gradient on rows of that base, blocked sums against the
    one-term-at-a-time Horner and recurrence paths (the code before the blocks). Both give
    log F and its derivatives to 4e-14 of mpmath's (test above); the totals' s and beta
    components are differences of F(t_x) and F(T) terms that nearly cancel here, so they
    agree to 1e-10 relative, the log-likelihood to 1e-13."""
    from clvtools.btyd import _series_pooled, _series_terms

    rows = pd.read_csv(Path(__file__).parent / "data" / "pareto_nbd_near_z1.csv")
    rows = pd.concat([rows[rows.frequency == 0].iloc[::20].head(40),  # a Horner unit
                      rows[rows.frequency > 0].drop_duplicates("frequency").head(8)])  # pooled
    x, tx, T = rows.frequency.to_numpy(float), rows.recency_days / 7.0, rows.T_days / 7.0
    args = (x, tx.to_numpy(), T.to_numpy(), rows.weight.to_numpy(float))
    ll, grad = pm.loglik_and_grad(NEAR_Z1, *args)
    for module in (_series_terms, _series_pooled):  # the Horner and the pooled rows' sums
        monkeypatch.setattr(module, "BLOCKED_TERMS", 10**9)
    ll_ref, grad_ref = pm.loglik_and_grad(NEAR_Z1, *args)
    assert ll == pytest.approx(ll_ref, rel=1e-13)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10)

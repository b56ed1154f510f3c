"""P(alive at T + t | history, no purchase in (T, T + t]).

Identities (t = 0, the RFM shift, the BG/NBD odds update) to 1e-12, and a simulation check per
model: customers are drawn from the prior, kept by rejection when their history matches and
their window (T, T + t] is silent, and the share of them alive at T + t is compared with the
mean prediction over the kept customers (each at its own recency, so the comparison is exact
in expectation by the tower property). The tolerance is 4 binomial standard errors,
sqrt(sum p_i (1 - p_i)) / n: a false alarm has probability about 6e-5 per check.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.btyd import BetaGeoBetaBinomFitter, BetaGeoFitter, ModifiedBetaGeoFitter
from clvtools.btyd.alive_ahead import probability_alive_ahead
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.btyd.simulate import (
    simulate_bgbb,
    simulate_bgnbd,
    simulate_mbgnbd,
    simulate_pareto_nbd,
)
from clvtools.errors import ClvInputError

PARAMS = {
    BetaGeoFitter: ("r", "alpha", "a", "b"), ModifiedBetaGeoFitter: ("r", "alpha", "a", "b"),
    ParetoNBDFitter: ("r", "alpha", "s", "beta"),
    BetaGeoBetaBinomFitter: ("alpha", "beta", "gamma", "delta"),
}
VALUES = {BetaGeoFitter: (0.243, 4.414, 0.793, 2.426),
          ModifiedBetaGeoFitter: (0.525, 6.183, 0.891, 1.614),
          ParetoNBDFitter: (0.553, 10.578, 0.606, 11.669),
          BetaGeoBetaBinomFitter: (1.204, 0.750, 0.657, 2.783)}
CONTINUOUS = [BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter]
X = np.array([0, 1, 2, 5, 30.0])
TX = np.array([0, 10, 20, 30, 38.0])
T = np.full(5, 39.0)


def _model(cls):
    m = cls()
    m.params_ = pd.Series(VALUES[cls], index=list(PARAMS[cls]), dtype=float)
    return m


@pytest.mark.parametrize("cls", CONTINUOUS, ids=lambda c: c.__name__)
def test_t_zero_is_p_alive_and_decreasing_in_t(cls):
    m = _model(cls)
    np.testing.assert_allclose(probability_alive_ahead(m, 0.0, X, TX, T),
                               m.conditional_probability_alive(X, TX, T), rtol=1e-12, atol=0)
    grid = probability_alive_ahead(m, np.array([[0, 1, 4, 13, 52, 520.0]]), X[:, None],
                                   TX[:, None], T[:, None])
    assert grid.shape == (5, 6)
    assert np.all(np.diff(grid, axis=1) <= 1e-15)
    if cls is BetaGeoFitter:
        assert np.all(grid[0] == 1.0)  # no repeat purchase: BG/NBD cannot have dropped out
    else:
        assert np.all(grid[:, -1] < grid[:, 0])


@pytest.mark.parametrize("cls", CONTINUOUS, ids=lambda c: c.__name__)
def test_silent_window_is_the_rfm_summary_with_a_longer_age(cls):
    """For BG/NBD and MBG/NBD the code applies the odds update; it must equal P(alive) at
    (x, t_x, T + t) computed by the fitter."""
    m = _model(cls)
    t = np.array([0.5, 3, 10, 26, 100.0])
    np.testing.assert_allclose(probability_alive_ahead(m, t, X, TX, T),
                               m.conditional_probability_alive(X, TX, T + t), rtol=1e-12)


def test_bgbb_identities():
    m = _model(BetaGeoBetaBinomFitter)
    x, tx, n = np.array([0, 1, 3, 6.0]), np.array([0, 2, 5, 6.0]), np.full(4, 6.0)
    np.testing.assert_allclose(probability_alive_ahead(m, 0, x, tx, n),
                               m.conditional_probability_alive(0, x, tx, n), rtol=1e-12)
    ahead = probability_alive_ahead(m, 3, x, tx, n)
    np.testing.assert_allclose(ahead, m.conditional_probability_alive(0, x, tx, n + 3),
                               rtol=1e-12)
    # silence is news: lower than P(alive at n + 3) without the condition
    assert np.all(ahead < m.conditional_probability_alive(3, x, tx, n))
    with pytest.raises(ClvInputError, match="whole numbers"):
        probability_alive_ahead(m, 1.5, x, tx, n)


def test_pareto_against_the_posterior_derivation():
    """Independent route: given alive at T, lambda ~ Gamma(R = r+x, A = alpha+T) and
    mu ~ Gamma(s, B = beta+T); the window is silent if the customer survives it without buying,
    (A/(A+t))^R (B/(B+t))^s, or dies in it before buying,
    int_0^t s/(B+u) (B/(B+u))^s (A/(A+u))^R du; a customer dead at T is silent. Then
    P = P(alive) S / (1 - P(alive) + P(alive) (S + D)), D the integral, by quad."""
    from scipy import integrate

    m = _model(ParetoNBDFitter)
    r, alpha, s, beta = VALUES[ParetoNBDFitter]
    for (x, tx, T), t in [((0, 0, 39.0), 10.0), ((2, 30.43, 38.86), 4.0), ((7, 35, 39.0), 26.0)]:
        R, A, B = r + x, alpha + T, beta + T
        surv = (A / (A + t)) ** R * (B / (B + t)) ** s
        dies = integrate.quad(
            lambda u, R, A, B: s / (B + u) * (B / (B + u)) ** s * (A / (A + u)) ** R,
            0, t, args=(R, A, B), epsabs=0, epsrel=1e-12)[0]
        pa = m.conditional_probability_alive(x, tx, T)
        want = pa * surv / (1 - pa + pa * (surv + dies))
        assert probability_alive_ahead(m, t, x, tx, T) == pytest.approx(want, rel=1e-9)


def test_bgbb_against_the_posterior_derivation():
    """Given alive at n, p ~ Beta(alpha+x, beta+n-x), theta ~ Beta(gamma, delta+n); m silent
    opportunities: survive them all without buying, E[(1-theta)^m] E[(1-p)^m], or drop out at
    the start of opportunity j after j-1 silent ones, E[(1-theta)^(j-1) theta] E[(1-p)^(j-1)]."""
    from scipy.special import beta as B

    m_ = _model(BetaGeoBetaBinomFitter)
    a, b, g, d = VALUES[BetaGeoBetaBinomFitter]
    for x, tx, n, m in [(0, 0, 6, 3), (2, 3, 6, 1), (4, 6, 6, 5), (1, 1, 10, 8)]:
        ap, bp, gt, dt = a + x, b + n - x, g, d + n
        surv = B(gt, dt + m) / B(gt, dt) * B(ap, bp + m) / B(ap, bp)
        dies = sum(B(gt + 1, dt + j - 1) / B(gt, dt) * B(ap, bp + j - 1) / B(ap, bp)
                   for j in range(1, m + 1))
        pa = m_.conditional_probability_alive(0, x, tx, n)
        want = pa * surv / (1 - pa + pa * (surv + dies))
        assert probability_alive_ahead(m_, m, x, tx, n) == pytest.approx(want, rel=1e-10)


def test_series_scalars_and_errors():
    m = _model(BetaGeoFitter)
    idx = pd.Index(["a", "b", "c"], name="customer_id")
    out = probability_alive_ahead(m, 4.0, pd.Series([0, 2, 5.0], index=idx),
                                  pd.Series([0, 20, 30.0], index=idx),
                                  pd.Series([39, 39, 39.0], index=idx))
    assert isinstance(out, pd.Series) and out.index.equals(idx)
    assert isinstance(probability_alive_ahead(m, 4.0, 2, 20, 39), float)
    with pytest.raises(ClvInputError, match="'t'"):
        probability_alive_ahead(m, -1.0, 2, 20, 39)
    with pytest.raises(ClvInputError, match="recency"):
        probability_alive_ahead(m, 1.0, 2, 40, 39)
    with pytest.raises(ClvInputError, match="not been fitted"):
        probability_alive_ahead(BetaGeoFitter(), 1.0, 2, 20, 39)


def _check(alive, pred):
    n = len(pred)
    assert n > 2_000, n
    se = np.sqrt(np.sum(pred * (1 - pred))) / n
    assert abs(alive.mean() - pred.mean()) < 4 * se, (alive.mean(), pred.mean(), se, n)


@pytest.mark.parametrize("cls, simulate, x0", [
    (BetaGeoFitter, simulate_bgnbd, 2), (ModifiedBetaGeoFitter, simulate_mbgnbd, 0),
    (ModifiedBetaGeoFitter, simulate_mbgnbd, 3), (ParetoNBDFitter, simulate_pareto_nbd, 0),
    (ParetoNBDFitter, simulate_pareto_nbd, 2)], ids=["bgnbd-x2", "mbgnbd-x0", "mbgnbd-x3",
                                                      "pnbd-x0", "pnbd-x2"])
def test_continuous_models_against_rejection_sampling(cls, simulate, x0):
    """300,000 customers of age 40 weeks, window of 10 weeks; keep frequency = x0 and no
    purchase in the window (2,000-60,000 kept)."""
    m, t = _model(cls), 10.0
    sim = simulate(VALUES[cls], 300_000, 40.0, seed=100 + x0, holdout=t)
    kept = sim[(sim["frequency"] == x0) & (sim["frequency_holdout"] == 0)]
    pred = probability_alive_ahead(m, t, kept["frequency"], kept["recency"], kept["T"])
    _check(kept["alive_end"].to_numpy(), pred.to_numpy())
    # power: ignoring the silent window (P(alive) at T) would be off by more than 8 SE
    now = m.conditional_probability_alive(kept["frequency"], kept["recency"], kept["T"])
    se = np.sqrt(np.sum(pred * (1 - pred))) / len(pred)
    assert now.mean() - pred.mean() > 8 * se


@pytest.mark.parametrize("x0, tx0", [(0, 0), (2, 3), (4, 6)])
def test_bgbb_against_exact_rejection(x0, tx0):
    """Discrete opportunities: condition exactly on (x, t_x, n = 6) and on 3 silent ones."""
    m = _model(BetaGeoBetaBinomFitter)
    sim = simulate_bgbb(VALUES[BetaGeoBetaBinomFitter], 300_000, 6, seed=7, holdout=3)
    kept = sim[(sim["frequency"] == x0) & (sim["recency"] == tx0)
               & (sim["frequency_holdout"] == 0)]
    p = probability_alive_ahead(m, 3, x0, tx0, 6)
    _check(kept["alive_end"].to_numpy(), np.full(len(kept), p))

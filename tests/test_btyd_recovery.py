"""Parameter recovery on simulated BG/NBD and MBG/NBD customers with known parameters.

The tolerance is four of the fit's own standard errors, so it shrinks like 1/sqrt(N) as the
base grows, and the test also checks that the standard errors are of the right size (the
coverage replication, marked slow, checks them properly).
"""
from __future__ import annotations

import numpy as np
import pytest

from clvtools.btyd import BetaGeoFitter, ModifiedBetaGeoFitter

TRUE = np.array([0.25, 4.0, 0.8, 2.5])  # r, alpha (weeks), a, b: CDNOW-like


def simulate(n: int, seed: int, modified: bool = False, max_age: float = 78.0):
    """BG/NBD (or MBG/NBD) customers acquired uniformly over ``max_age`` weeks.

    With N(T) ~ Poisson(lambda T) events on [0, T] and dropout after each repeat purchase with
    probability p (MBG/NBD: also right after the first purchase), the customer makes
    x = min(K, N(T)) repeat purchases with K ~ Geometric(p) (MBG/NBD: K - 1), and the x-th
    event time given N(T) = m is T * Beta(x, m - x + 1).
    """
    r, alpha, a, b = TRUE
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(1.0, max_age, n)
    m = rng.poisson(lam * T)
    K = rng.geometric(p) - (1 if modified else 0)
    x = np.minimum(m, K)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = T[pos] * rng.beta(x[pos], m[pos] - x[pos] + 1)
    return x.astype(float), tx, T


@pytest.mark.parametrize("cls, modified", [(BetaGeoFitter, False),
                                           (ModifiedBetaGeoFitter, True)])
def test_recovers_true_parameters(cls, modified):
    x, tx, T = simulate(20_000, seed=11, modified=modified)
    m = cls().fit(x, tx, T)
    err = np.abs(m.params_.to_numpy() - TRUE)
    assert np.all(err < 4 * m.standard_errors_.to_numpy()), (m.params_, m.standard_errors_)
    # and the model predicts the simulated population: mean repeat purchases by age T
    assert m.expected_number_of_purchases_up_to_time(T).mean() == pytest.approx(
        x.mean(), rel=0.05)


@pytest.mark.slow
def test_confidence_intervals_cover_the_truth():
    """Coverage of the 95 % Wald intervals over 100 replications of 3,000 customers: each
    parameter's interval should hold the truth 95 % of the time; accept 86 %-100 % (binomial
    99.9 % band for 100 trials)."""
    hits = np.zeros(4)
    for rep in range(100):
        x, tx, T = simulate(3_000, seed=1000 + rep)
        ci = BetaGeoFitter().fit(x, tx, T).confidence_intervals_
        hits += ((ci["lower 95% bound"].to_numpy() <= TRUE)
                 & (TRUE <= ci["upper 95% bound"].to_numpy()))
    assert np.all(hits >= 86), hits


@pytest.mark.slow
def test_recovery_tightens_with_size():
    errors = []
    for n in (5_000, 500_000):
        x, tx, T = simulate(n, seed=5)
        m = BetaGeoFitter().fit(x, tx, T)
        errors.append(np.abs(m.params_.to_numpy() / TRUE - 1))
        assert np.all(np.abs(m.params_.to_numpy() - TRUE) < 4 * m.standard_errors_.to_numpy())
    # 100x the data: the errors' scale falls about tenfold; demand at least threefold
    assert errors[1].max() < errors[0].max() / 3

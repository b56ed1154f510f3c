"""Every analytic gradient against finite differences (scipy.optimize.check_grad) at seeded
random parameter points, on real data and on heavy buyers."""
from __future__ import annotations

import numpy as np
import pytest
from lifetimes.datasets import (
    load_cdnow_summary,
    load_cdnow_summary_data_with_monetary_value,
    load_donations,
)
from scipy.optimize import check_grad

from clvtools.btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
)
from clvtools.btyd.base import collapse

CDNOW = load_cdnow_summary(index_col=[0])
SPEND = load_cdnow_summary_data_with_monetary_value()
SPEND = SPEND[SPEND["frequency"] > 0]
DONATIONS = load_donations()
HEAVY = {  # heavy and odd but valid customers, appended to CDNOW
    "frequency": np.array([0, 1, 50, 500, 10_000, 10_000]),
    "recency": np.array([0, 0, 3, 9_000, 9_999, 20]),
    "T": np.array([10_000, 10_000, 10, 10_000, 10_000, 20]),
}

DATA = {
    "BetaGeoFitter": (BetaGeoFitter, {c: np.r_[CDNOW[c], HEAVY[c]] for c in HEAVY}, None),
    "ModifiedBetaGeoFitter": (ModifiedBetaGeoFitter,
                              {c: np.r_[CDNOW[c], HEAVY[c]] for c in HEAVY}, None),
    "GammaGammaFitter": (GammaGammaFitter,
                         {"frequency": np.r_[SPEND["frequency"], 10_000],
                          "monetary_value": np.r_[SPEND["monetary_value"], 1e4]}, None),
    "BetaGeoBetaBinomFitter": (BetaGeoBetaBinomFitter,
                               {"frequency": np.r_[DONATIONS["frequency"], 0, 900],
                                "recency": np.r_[DONATIONS["recency"], 0, 990],
                                "n_periods": np.r_[DONATIONS["periods"], 1000, 1000]},
                               np.r_[DONATIONS["weights"], 1, 1]),
}
CENTRES = {  # around the fitted values; points are drawn at exp(N(log centre, 0.7))
    "BetaGeoFitter": [0.24, 4.4, 0.79, 2.4],
    "ModifiedBetaGeoFitter": [0.52, 6.2, 0.89, 1.6],
    "GammaGammaFitter": [6.2, 3.7, 15.4],
    "BetaGeoBetaBinomFitter": [1.2, 0.75, 0.66, 2.8],
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_analytic_gradient_matches_finite_differences(name):
    cls, cols, weights = DATA[name]
    model = cls()
    w = np.ones(len(next(iter(cols.values())))) if weights is None else weights.astype(float)
    distinct, counts = collapse({k: np.asarray(v, float) for k, v in cols.items()}, w)
    prepared = model._prepare_data(distinct, counts)
    n = counts.sum()

    # mean log-likelihood: O(1) values keep finite differences accurate
    def f(p):
        return model._loglik_and_grad(p, prepared, counts)[0] / n

    def g(p):
        return model._loglik_and_grad(p, prepared, counts)[1] / n

    rng = np.random.default_rng(20261126)
    centre = np.log(CENTRES[name])
    for _ in range(5):
        p = np.exp(centre + rng.normal(0, 0.7, len(centre)))
        err = check_grad(f, g, p, epsilon=1e-7 * p)
        assert np.isfinite(f(p))
        assert err <= 1e-5 * max(1.0, np.linalg.norm(g(p))), (p, err, g(p))


def test_gradient_vanishes_at_the_fit():
    m = BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
    assert m.gradient_max_ < 1e-5


def test_bgnbd_analytic_hessian_matches_central_differences():
    """The Hessian that the BG/NBD fit's Newton polish uses, against central differences of
    the analytic gradient at seeded points (CDNOW with heavy buyers); MBG/NBD, whose
    likelihood differs, has none."""
    cls, cols, _ = DATA["BetaGeoFitter"]
    model = cls()
    distinct, counts = collapse({k: np.asarray(v, float) for k, v in cols.items()},
                                np.ones(len(cols["T"])))
    prepared = model._prepare_data(distinct, counts)
    rng = np.random.default_rng(7)
    for _ in range(4):
        p = np.exp(np.log(CENTRES["BetaGeoFitter"]) + rng.normal(0, 0.7, 4))
        H = model._loglik_hessian(p, prepared, counts)
        central = np.empty((4, 4))
        for j in range(4):
            h = np.zeros(4)
            h[j] = 1e-5 * p[j]
            central[:, j] = (model._loglik_and_grad(p + h, prepared, counts)[1]
                             - model._loglik_and_grad(p - h, prepared, counts)[1]) / (2 * h[j])
        np.testing.assert_allclose(H, central, rtol=1e-6, atol=1e-6 * np.abs(central).max())
    assert ModifiedBetaGeoFitter()._loglik_hessian(p, prepared, counts) is None


@pytest.mark.parametrize("pen", [0.0, 0.3])
def test_bgnbd_polish_hessian_is_the_penalised_objectives(pen):
    """The Newton polish's Hessian in log-parameters, assembled from the analytic Hessian,
    the gradient and the penalty, against central differences of the total objective's
    gradient n f'(theta), f = -ll / n + pen * sum(exp(theta)^2)."""
    cls, cols, _ = DATA["BetaGeoFitter"]
    model = cls()
    distinct, counts = collapse({k: np.asarray(v, float) for k, v in cols.items()},
                                np.ones(len(cols["T"])))
    prepared = model._prepare_data(distinct, counts)
    n = float(counts.sum())

    def gradient(theta):   # of the mean objective, in log-parameters
        p = np.exp(theta)
        g = model._loglik_and_grad(p, prepared, counts)[1]
        return -np.asarray(g) * p / n + 2 * pen * p**2

    theta = np.log(CENTRES["BetaGeoFitter"])
    H = model._polish_hessian(theta, prepared, counts, gradient(theta), n, pen)
    central = np.empty((4, 4))
    for j in range(4):
        h = np.zeros(4)
        h[j] = 1e-5
        central[:, j] = n * (gradient(theta + h) - gradient(theta - h)) / 2e-5
    np.testing.assert_allclose(H, central, rtol=1e-6, atol=1e-7 * np.abs(central).max())

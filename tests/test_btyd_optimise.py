"""The one convergence rule of the BTYD fitters (``_optimise.accept``/``settle``), tested on
synthetic optimiser results so that nothing depends on the BLAS kernel that scipy's L-BFGS-B
happens to run on (OPENBLAS_CORETYPE=Haswell stopped a BG/NBD fit "ABNORMAL" at its optimum).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary
from scipy import optimize

from clvtools.btyd import _optimise
from clvtools.btyd._optimise import accept, newton_decrement, settle
from clvtools.btyd.bgnbd import BetaGeoFitter
from clvtools.btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from clvtools.errors import ConvergenceError

CDNOW = load_cdnow_summary(index_col=[0])

# A mean objective with a known optimum: the negative log-likelihood per observation of a
# normal sample with mean MU and variance S2, in (mu, log sigma).
MU, S2 = 1.5, 4.0
OPTIMUM = np.array([MU, np.log(S2) / 2])


def objective(theta):
    mu, log_sigma = theta
    v = np.exp(2 * log_sigma)
    f = log_sigma + ((MU - mu) ** 2 + S2) / (2 * v)
    grad = np.array([(mu - MU) / v, 1 - ((MU - mu) ** 2 + S2) / v])
    return f, grad


def hessian(theta):
    mu, log_sigma = theta
    v = np.exp(2 * log_sigma)
    d = mu - MU
    return np.array([[1 / v, -2 * d / v], [-2 * d / v, 2 * (d**2 + S2) / v]])


def abnormal(x, nit=34):
    """What L-BFGS-B returns when its line search fails, e.g. at the optimum."""
    return optimize.OptimizeResult(x=np.asarray(x, float), success=False, status=2,
                                   message="ABNORMAL: ", nit=nit)


def near(n_total, decrement):
    """A point whose mean gradient is above the old 1e-4 bound, at a given Newton decrement
    of the total objective n_total * f (displaced along the stiffest direction)."""
    H = hessian(OPTIMUM) * n_total
    vals, vecs = np.linalg.eigh(H)
    d = vecs[:, -1] * np.sqrt(2 * decrement / vals[-1])
    return OPTIMUM + d


def never(theta):
    raise AssertionError("an accepted fit must not be retried")


def test_newton_decrement_needs_a_positive_definite_hessian():
    g = np.array([1.0, -2.0])
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert newton_decrement(g, H) == pytest.approx(g @ np.linalg.solve(H, g) / 2)
    assert newton_decrement(g, np.diag([1.0, -1.0])) == np.inf  # a saddle
    assert newton_decrement(g, np.diag([1.0, 0.0])) == np.inf  # a ridge
    assert newton_decrement(g, np.full((2, 2), np.nan)) == np.inf


def test_abnormal_stop_at_the_optimum_is_accepted_without_retry():
    res = abnormal(OPTIMUM)
    theta, f, grad, ok = settle(objective, res.x, restart=never, success=res.success,
                                n_total=29, gtol=1e-4, hessian=hessian)
    assert ok and theta is res.x and f == objective(OPTIMUM)[0]


def test_the_rule_is_on_the_total_log_likelihood():
    # the same mean gradient (1.7e-4, refused by the old bound of 1e-4 on the mean) is at
    # the optimum for 29 customers and far from it for a million
    x = near(29, 1e-6)
    f, grad = objective(x)
    assert np.max(np.abs(grad)) > 1e-4
    assert accept(f, grad, x, n_total=29, gtol=1e-4, hessian=hessian)
    assert not accept(f, grad, x, n_total=1e6, gtol=1e-4, hessian=hessian)
    # the threshold: a decrement just above it is refused
    x = near(29, 2 * _optimise.NEWTON_DECREMENT_TOL)
    assert not accept(*objective(x), x, n_total=29, gtol=1e-4, hessian=hessian)


def test_old_criteria_still_accept_without_a_hessian():
    def no_hessian(theta):
        raise AssertionError("converged fits must not pay for a Hessian")

    x = OPTIMUM + 1e-3
    f, grad = objective(x)
    assert accept(f, grad, x, n_total=1e6, gtol=1e-4, hessian=no_hessian, success=True)
    assert accept(f, grad, x, n_total=1e6, gtol=1.0, hessian=no_hessian)
    assert not accept(np.inf, grad, x, n_total=1, gtol=1.0, hessian=no_hessian, success=True)


def test_not_at_a_minimum_is_refused():
    x = near(29, 1e-6)
    f, grad = objective(x)
    def saddle(theta):
        return np.diag([1.0, -1.0])

    assert not accept(f, grad, x, n_total=29, gtol=1e-4, hessian=saddle)


def test_parameters_at_a_bound_are_left_out():
    x = near(1e6, 1.0)
    f, grad = objective(x)
    bounds = [(None, None), (None, x[1])]  # log sigma held at its upper bound
    assert not accept(f, grad, x, n_total=1e6, gtol=1e-4, hessian=hessian)
    assert accept(f, np.array([0.0, grad[1]]), x, n_total=1e6, gtol=1e-4, hessian=hessian,
                  bounds=bounds)


def test_abnormal_stop_away_from_the_optimum_is_retried():
    res = abnormal(near(1e6, 1.0))
    calls = []

    def restart_to_optimum(theta):
        calls.append(theta)
        return (OPTIMUM, *objective(OPTIMUM), False)

    theta, _, _, ok = settle(objective, res.x, restart=restart_to_optimum,
                             success=res.success, n_total=1e6, gtol=1e-4, hessian=hessian)
    assert ok and len(calls) == 1 and np.array_equal(calls[0], res.x)
    assert np.array_equal(theta, OPTIMUM)

    def restart_stuck(theta):  # L-BFGS-B stopping at once, ABNORMAL again
        return (theta, *objective(theta), False)

    theta, _, _, ok = settle(objective, res.x, restart=restart_stuck, success=res.success,
                             n_total=1e6, gtol=1e-4, hessian=hessian)
    assert not ok and np.array_equal(theta, res.x)


# ---- the same rule inside the fitters (scipy's minimize replaced by synthetic results) ----
@pytest.fixture(scope="module")
def small_fit():
    """A BG/NBD fit on 40 CDNOW customers: data, optimum (log-parameters) and total Hessian."""
    df = CDNOW.head(40).astype(float)
    cols = (df["frequency"], df["recency"], df["T"])
    m = BetaGeoFitter().fit(*cols)
    theta = np.log(m.params_.to_numpy())
    # Hessian of the total negative log-likelihood in log-parameters
    H_log = m._hessian_ * np.outer(m.params_, m.params_)  # (the gradient term is ~0 there)
    return cols, m, theta, H_log


def _displaced(theta, H, decrement):
    vals, vecs = np.linalg.eigh(H)
    return theta + vecs[:, -1] * np.sqrt(2 * decrement / vals[-1])


def _scripted_minimize(monkeypatch, results):
    """Replace scipy's minimize: the next scripted result per call, then the real one."""
    real, calls = optimize.minimize, []

    def fake(fun, x0, *args, **kwargs):
        calls.append(np.array(x0))
        return results.pop(0) if results else real(fun, x0, *args, **kwargs)

    monkeypatch.setattr(optimize, "minimize", fake)
    return calls


def test_fitter_accepts_an_abnormal_stop_at_the_optimum(monkeypatch, small_fit):
    cols, ref, theta, H = small_fit
    x = _displaced(theta, H, 1e-6)
    calls = _scripted_minimize(monkeypatch, [abnormal(x)])
    m = BetaGeoFitter().fit(*cols)
    assert len(calls) == 1  # no retry: accepted where it stopped, then polished by Newton
    np.testing.assert_allclose(np.log(m.params_.to_numpy()), theta, rtol=0, atol=1e-7)
    assert m.gradient_max_ < 1e-10
    assert m.optimizer_message_ == "ABNORMAL: " and m.n_iterations_ == 34
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-5)


def test_fitter_retries_an_abnormal_stop_away_from_the_optimum(monkeypatch, small_fit):
    cols, ref, theta, H = small_fit
    x = _displaced(theta, H, 1.0)
    calls = _scripted_minimize(monkeypatch, [abnormal(x)])  # then the real L-BFGS-B
    m = BetaGeoFitter().fit(*cols)
    assert len(calls) == 2 and np.array_equal(calls[1], x)  # restarted where it stopped
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-6)
    assert m.n_iterations_ > 34


def test_fitter_gives_up_when_the_retry_fails(monkeypatch, small_fit):
    cols, _, theta, H = small_fit
    x = _displaced(theta, H, 1.0)
    calls = _scripted_minimize(monkeypatch, [abnormal(x), abnormal(x, nit=0)])
    with pytest.raises(ConvergenceError, match=r"BetaGeoFitter did not converge: the "
                       r"optimiser stopped after 0 iterations \(ABNORMAL: ; largest gradient"):
        BetaGeoFitter().fit(*cols)
    assert len(calls) == 2


def _count_restarts(monkeypatch):
    """Wrap _optimise.settle to count the retries it makes."""
    real, count = _optimise.settle, []

    def spy(objective, theta, *, restart, **kw):
        def counted(th):
            count.append(1)
            return restart(th)

        return real(objective, theta, restart=counted, **kw)

    monkeypatch.setattr(_optimise, "settle", spy)
    return count


def test_true_non_convergence_is_retried_then_raises(monkeypatch):
    count = _count_restarts(monkeypatch)
    with pytest.raises(ConvergenceError, match="did not converge: the optimiser stopped after 1 "):
        BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"], maxiter=1)
    assert len(count) == 1


def test_covariate_fit_not_converged_is_retried_then_raises(monkeypatch):
    df = CDNOW.head(500).astype(float)
    cov = pd.DataFrame({"z": np.random.default_rng(0).normal(size=len(df))})
    count = _count_restarts(monkeypatch)
    with pytest.raises(ConvergenceError, match="BetaGeoCovariatesFitter did not converge"):
        BetaGeoCovariatesFitter().fit(df["frequency"], df["recency"], df["T"], cov, ["z"],
                                      ["z"], initial_params=np.zeros(6), maxiter=1)
    assert len(count) == 1


@pytest.mark.parametrize("n_above", [0, 30, 500])
def test_subset_holds_the_most_populous_rows_and_a_seeded_sample(n_above):
    """The subset that starts a large fit: the size // 10 rows of largest weight (the earlier
    row first among equal weights, also when fewer rows than that are above the smallest
    weight), then a seeded sample of the others scaled to their total weight; the same rows
    at every call."""
    rng = np.random.default_rng(1)
    counts = np.ones(5000)
    counts[rng.choice(5000, n_above, replace=False)] = rng.integers(2, 9, n_above)
    rows, weights = _optimise.subset_rows(counts, 400)
    top, pick = rows[:40], rows[40:]
    assert len(set(rows)) == len(rows) == 440
    rest = np.setdiff1d(np.arange(5000), top)
    assert counts[top].min() >= counts[rest].max()
    # among the rows of the boundary weight, the earliest are taken
    boundary = counts[top].min()
    assert np.array_equal(np.sort(top[counts[top] == boundary]),
                          np.flatnonzero(counts == boundary)[:np.sum(counts[top] == boundary)])
    np.testing.assert_array_equal(weights[:40], counts[top])
    assert weights.sum() == pytest.approx(counts.sum(), rel=1e-12)
    assert np.isin(pick, rest).all()
    again_rows, again_weights = _optimise.subset_rows(counts, 400)
    np.testing.assert_array_equal(again_rows, rows)
    np.testing.assert_array_equal(again_weights, weights)

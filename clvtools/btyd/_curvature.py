"""The curvature of a BTYD fit, beside :mod:`clvtools.btyd._optimise`: the subset fit whose
Hessian whitens a large fit, the Hessian of the Newton steps that polish the optimum, the
covariance of the estimates and their standard errors.

Used by :class:`clvtools.btyd.base.BTYDFitter` (its methods of the same names call these with
the fitter) and :mod:`clvtools.btyd._covariate_fit` (:func:`covariance_or_nan`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._optimise import forward_hessian, subset_rows

__all__ = ["covariance_or_nan", "precondition", "polish_hessian", "covariance", "inference"]


def covariance_or_nan(cov: np.ndarray) -> np.ndarray:
    """``cov`` if it is a covariance matrix (symmetric part positive definite), else NaN.

    A degenerate fit (a single customer, or every customer with the same purchases) ends where
    the likelihood is flat or on a boundary: the inverse Hessian there has negative variances,
    which are no variances at all; NaN says they are unknown (standard errors and the
    intervals built on them are NaN too, and model files write null).
    """
    cov = np.asarray(cov, dtype=float)
    symmetric = (cov + cov.T) / 2
    if np.all(np.isfinite(symmetric)) and np.linalg.eigvalsh(symmetric).min() > 0:
        return cov
    return np.full(cov.shape, np.nan)


def precondition(fitter, x0, distinct, counts, make_objective):
    """Optimum and curvature of a subset fit, to start and whiten the full fit.

    The subset holds the most populous distinct rows and a seeded random sample of the
    others, whose weights are scaled up so that its mean log-likelihood estimates the full
    one. Its optimum is close to the full optimum and its Hessian H (forward differences
    of the analytic gradient) close to the full one; the full fit then runs L-BFGS-B on
    z with theta = theta_sub + L z, L L' = H^-1. The final answer is the full-data
    optimum either way (same gradient test); the subset only saves iterations. Returns
    ``(x0, None)`` if anything about the subset fit is not usable.
    """
    rows, w = subset_rows(counts)
    sub = {key: val[rows] for key, val in distinct.items()}
    sub_obj = make_objective(fitter._prepare_data(sub, w), w)
    try:
        res = optimize.minimize(sub_obj, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": 500, "gtol": 1e-6, "maxcor": 5})
        theta = res.x
        H = forward_hessian(lambda th: sub_obj(th)[1], theta)
        L = np.linalg.cholesky(np.linalg.inv(H))
    except (np.linalg.LinAlgError, ValueError):
        return x0, None
    if not np.all(np.isfinite(L)):
        return x0, None
    return theta, L


def polish_hessian(fitter, theta, prepared, counts, grad, n_total, pen):
    """Hessian of the TOTAL objective in log-parameters from the fitter's
    ``_loglik_hessian`` (None without one): with f the mean objective, p = exp(theta), H and
    g the natural Hessian and gradient of the log-likelihood, n f'' = -J H J - diag(g p) +
    4 n pen diag(p^2), J = diag(p), and -g p = n (f' - 2 pen p^2)."""
    p = np.exp(theta)
    with np.errstate(all="ignore"):
        H = fitter._loglik_hessian(p, prepared, counts)
    if H is None or not np.all(np.isfinite(H)):
        return None
    return -H * np.outer(p, p) + np.diag(n_total * grad + 2.0 * n_total * pen * p**2)


def covariance(fitter, params, prepared, counts, g0=None) -> pd.DataFrame:
    """Inverse Hessian of the total (penalised) negative log-likelihood, natural scale, as
    a (k, k) frame named by the parameters; the natural Hessian is kept as the fitter's
    ``_hessian_``.

    The Hessian is taken in log-parameters by forward differences of the analytic
    gradient (well scaled whatever the parameters' magnitudes), then mapped back:
    H_nat = J^-1 (H_log - diag(g_log)) J^-1 with J = diag(params).
    """
    k = len(params)
    n = counts.sum()
    pen = float(fitter.penalizer_coef)
    theta = np.log(params)

    def grad_log(th):
        p = np.exp(th)
        with np.errstate(all="ignore"):
            _, g = fitter._loglik_and_grad(p, prepared, counts)
        return -np.asarray(g) * p + 2 * n * pen * p**2

    if g0 is None:
        g0 = grad_log(theta)
    H = forward_hessian(grad_log, theta, g0) - np.diag(g0)
    H_nat = H / np.outer(params, params)
    fitter._hessian_ = H_nat
    try:
        cov = covariance_or_nan(np.linalg.inv(H_nat))
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    names = list(fitter._param_names)
    return pd.DataFrame(cov, index=names, columns=names)


def inference(params: pd.Series, variance: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Standard errors (NaN where the variance is not positive) and 95% normal intervals of
    the estimates ``params`` from their covariance ``variance``."""
    diag = np.diag(variance.to_numpy())
    se = pd.Series(np.sqrt(np.where(diag > 0, diag, np.nan)), index=params.index)
    z = stats.norm.ppf(0.975)
    return se, pd.DataFrame({"lower 95% bound": params - z * se,
                             "upper 95% bound": params + z * se})

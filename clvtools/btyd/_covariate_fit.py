"""The fit loop of the BTYD models with static covariates
(:class:`~clvtools.btyd.covariates.CovariateBTYDFitter`): from the encoded design matrices
to the fitted parameters and their covariance.

The customers' rows are collapsed into distinct (x, t_x, T, z) rows with weights, the
numeric covariates scaled by their standard deviation inside the optimiser (exactly undone
afterwards), then L-BFGS-B with the model's analytic gradient (above 40,000 distinct rows:
a fit on a seeded subset, continued on all rows by Newton iterations with the subset's
Hessian), up to three Newton steps with the full Hessian (:func:`_optimise.newton_polish`),
and the one acceptance rule of every fit (:func:`_optimise.settle`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from ..errors import ClvInputError, ConvergenceError
from . import _optimise
from ._curvature import covariance_or_nan
from ._optimise import single_threaded_blas, subset_rows
from .utils import collapse, distinct_rows

__all__ = ["fit_covariate_model"]


def fit_covariate_model(fitter, cols: dict, index, w: np.ndarray, Zp: np.ndarray,
                        Zd: np.ndarray, *, initial_params=None, verbose=False, tol=1e-7,
                        maxiter=2000):
    """Fit ``fitter`` (a :class:`~clvtools.btyd.covariates.CovariateBTYDFitter` whose
    encoders are fitted) on validated columns and design matrices; sets its fitted
    attributes and returns it.

    Parameters
    ----------
    fitter : CovariateBTYDFitter
    cols : dict of numpy.ndarray, shape (n,)
        ``frequency``, ``recency``, ``T`` (time units), checked.
    index : pandas.Index or None
        The customers' index, for the fitter's saved data.
    w : numpy.ndarray, shape (n,)
        Customers per row.
    Zp, Zd : numpy.ndarray, shape (n, kp) and (n, kd)
        Purchase and dropout design matrices.
    initial_params, verbose, tol, maxiter
        As :meth:`CovariateBTYDFitter.fit`.

    Returns
    -------
    CovariateBTYDFitter
        ``fitter``, fitted.
    """
    kp, kd = Zp.shape[1], Zd.shape[1]
    table = dict(cols)
    table.update({f"p{j}": Zp[:, j] for j in range(kp)})
    # one design for both processes (the same encoders): its columns once in the rows'
    # key; the same distinct rows in the same order, since the dropout columns then repeat
    # the purchase columns
    shared = Zd is Zp
    if not shared:
        table.update({f"d{j}": Zd[:, j] for j in range(kd)})
    distinct, counts = collapse(table, w)
    zp = np.column_stack([distinct[f"p{j}"] for j in range(kp)]) if kp else np.zeros(
        (len(counts), 0))
    zd = zp if shared else np.column_stack([distinct[f"d{j}"] for j in range(kd)]) if kd \
        else np.zeros((len(counts), 0))
    # internal scaling of the covariates (exact: gamma = gamma_scaled / scale)
    sp = _scales(zp)
    sd = _scales(zd)
    data = fitter._prepare({k: distinct[k] for k in ("frequency", "recency", "T")})
    # each row's dropout covariate pattern (integer codes): the rows that share the
    # per-pattern terms of a likelihood (BG/NBD's beta functions)
    data["dropout_pattern"] = (distinct_rows(list(zd.T))[1] if kd
                               else np.zeros(len(counts), dtype=np.int64))
    # and its pattern of both designs: the Hessian sums its rows' curvature by pattern
    # (CovariateBTYDFitter._loglik_hessian)
    data["design_pattern"] = (data["dropout_pattern"] if shared or not kp else
                              distinct_rows(list(zp.T) + list(zd.T))[1])
    names = (list(fitter._param_names)
             + [f"purchase:{c}" for c in fitter.purchase_encoder_.feature_names_]
             + [f"dropout:{c}" for c in fitter.dropout_encoder_.feature_names_])
    k = len(names)
    zps, zds = zp / sp, zd / sd
    n_total = counts.sum()
    pen = float(fitter.penalizer_coef)
    scales = np.concatenate([sp, sd])

    def make_objective(dat, zp_, zd_, cnt):
        n_cnt = cnt.sum()

        def objective(theta):
            with np.errstate(all="ignore"):
                ll, g = fitter._total(theta, zp_, zd_, dat, cnt)
                p = np.exp(theta[:4])
                c = theta[4:] / scales
                f = -ll / n_cnt + pen * (np.sum(p**2) + np.sum(c**2))
                grad = -g / n_cnt
                grad[:4] += 2 * pen * p**2
                grad[4:] += 2 * pen * c / scales
            if not np.isfinite(f) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros(k)
            return f, grad

        return objective

    def make_hessian(dat, zp_, zd_, cnt):
        n_cnt = cnt.sum()

        def hessian(theta):
            with np.errstate(all="ignore"):
                H = -fitter._loglik_hessian(theta, zp_, zd_, dat, cnt) / n_cnt
            diag = np.concatenate([4 * pen * np.exp(theta[:4]) ** 2, 2 * pen / scales**2])
            return H + np.diag(diag)

        return hessian

    objective = make_objective(data, zps, zds, counts)
    # large data: start from a fit on a subset of the distinct rows and whiten the full
    # fit with that fit's Hessian (as BTYDFitter._precondition): a few iterations on all
    # rows instead of forty
    sub, size = None, max(1, int(_optimise.SUBSET_ROWS * fitter._subset_share))
    if len(counts) > 2 * size:
        rows, w_sub = subset_rows(counts, size)
        sub = ({key: v[rows] for key, v in data.items()}, zps[rows], zds[rows], w_sub)
    if initial_params is None:
        src = (data, counts) if sub is None else (
            {key: v[rows] for key, v in distinct.items()}, w_sub)
        theta0 = np.concatenate([np.log(fitter._start(*src)), np.zeros(kp + kd)])
    else:
        theta0 = np.asarray(initial_params, dtype=float).reshape(-1)
        if theta0.shape != (k,) or not np.all(np.isfinite(theta0)):
            raise ClvInputError(
                f"'initial_params' must hold {k} finite values (log-parameters, then "
                f"coefficients: {', '.join(names)}). Got {initial_params!r} instead.")
        theta0 = theta0.copy()
        theta0[4:] *= scales
    options = {"maxiter": maxiter, "ftol": 1e-15, "gtol": tol, "maxcor": 10}

    with single_threaded_blas():
        f0, _ = objective(theta0)
        if not np.isfinite(f0):
            raise ConvergenceError(
                fitter._advice("the log-likelihood is not finite at the start")
            )
        theta, f_end, grad, res = None, np.inf, None, None
        if sub is not None:
            # Newton iterations on all rows with the subset fit's Hessian (a close
            # approximation of the full one: linear convergence at a fast rate)
            sub_obj = make_objective(*sub)
            rs = optimize.minimize(sub_obj, theta0, jac=True, method="L-BFGS-B",
                                   options={**options, "gtol": 1e-6})
            theta_n, n_iter, f_n, g_n = _newton(objective, rs.x, make_hessian(*sub)(rs.x), tol)
            if theta_n is not None:
                # the objective and gradient where the iterations stopped, as they computed
                # them: evaluating every row again there cost a full pass
                theta, f_end, grad = theta_n, f_n, g_n
        if theta is None:
            res = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                    options=options)
            theta, n_iter = res.x, int(res.nit)
            f_end, grad = objective(theta)
        if verbose:
            print(res if res is not None else f"Newton iterations from a subset fit: {n_iter}")
        hessian = make_hessian(data, zps, zds, counts)

        def polish(th, f, g):  # the full Hessian at th (total scale), then Newton steps
            H = hessian(th) * n_total
            return (H, *_optimise.newton_polish(objective, th, f, g, H, n_total))

        def restart(th):  # L-BFGS-B afresh from where the fit stopped, then polish
            nonlocal res, n_iter, H
            res = optimize.minimize(objective, th, jac=True, method="L-BFGS-B",
                                    options=options)
            n_iter += int(res.nit)
            if verbose:
                print(res)
            H, th, f, g = polish(res.x, *objective(res.x))
            return th, f, g, False  # success said nothing about the polished point

        H, theta, f_end, grad = polish(theta, f_end, grad)
        # the acceptance rule's Hessian is polish's, at most three short Newton steps away
        # (the covariance below uses it too): a second one would cost seven evaluations of
        # every row's gradient
        theta, f_end, grad, converged = _optimise.settle(
            objective, theta, restart=restart, fg=(f_end, grad), n_total=n_total,
            gtol=max(1e-5, 100 * tol), hessian=lambda _theta: H / n_total)
        gmax = float(np.max(np.abs(grad)))
        if not converged:
            what = (f"L-BFGS-B stopped after {res.nit} iterations ({res.message})"
                    if res is not None else f"{n_iter} Newton iterations")
            raise ConvergenceError(fitter._advice(f"{what}; largest gradient {gmax:.3g}"))
    scale = np.concatenate([np.ones(4), sp, sd])
    params = np.concatenate([np.exp(theta[:4]), theta[4:] / scale[4:]])
    # covariance: delta method from the internal (log, scaled) coordinates
    J = np.concatenate([np.exp(theta[:4]), 1.0 / scale[4:]])
    try:
        cov = covariance_or_nan(np.linalg.inv(H) * np.outer(J, J))
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    ll_total = -(f_end - pen * (np.sum(params[:4] ** 2) + np.sum(params[4:] ** 2))) * n_total
    fitter._record_fit(params, names, pd.DataFrame({**cols, "weights": w}, index=index), ll_total,
                     f_end, n_total, len(counts), n_iter,
                     res.message if res is not None else "Newton", gmax)
    fitter.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
    fitter._set_inference()
    return fitter


def _scales(z: np.ndarray) -> np.ndarray:
    """Per-column scale for the optimiser: the standard deviation (1 if constant)."""
    if z.shape[1] == 0:
        return np.ones(0)
    s = z.std(axis=0)
    return np.where(s > 0, s, 1.0)


def _newton(objective, theta, H, tol, max_iter=50):
    """Minimise ``objective`` by Newton steps with a fixed Hessian ``H`` (of the same mean
    scale) and backtracking.

    Returns
    -------
    (theta, iterations, f, grad)
        At a gradient below ``tol``: the point, the iterations, and the objective and its
        gradient there (shape (k,)); ``theta`` is None if that fails (the caller then runs
        L-BFGS-B).
    """
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None, 0, None, None
    f, g = objective(theta)
    for it in range(max_iter):
        if np.max(np.abs(g)) < tol:
            return theta, it, f, g
        step = Hinv @ g
        decrease = float(g @ step)
        if not (np.all(np.isfinite(step)) and decrease > 0):
            return None, it, None, None
        t = 1.0
        while t > 1e-3:
            trial = theta - t * step
            f_new, g_new = objective(trial)
            if np.isfinite(f_new) and f_new <= f - 1e-4 * t * decrease:
                break
            t /= 2
        else:
            return None, it, None, None
        theta, f, g = trial, f_new, g_new
    converged = np.max(np.abs(g)) < tol
    return (theta, max_iter, f, g) if converged else (None, max_iter, None, None)

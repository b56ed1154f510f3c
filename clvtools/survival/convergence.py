"""The rule that tells whether a Cox fit is at its optimum, judged at the point lifelines
returns rather than by lifelines' own verdict.

lifelines' Newton-Raphson never refuses a fit: where its step size has shrunk below 1e-5 or it
has run 50 steps, it warns "Newton-Raphson failed to converge sufficiently" and returns the last
point. At the optimum that warning is noise: there the log-likelihood no longer changes beyond
its rounding, which depends on the BLAS kernel, so that the step-size rule can fire on one
machine and not on another. Away from the optimum the warning is the only sign of a fit that
is wrong. The rule here judges the point itself: the Newton decrement g' H^-1 g / 2 of the
penalised negative log partial likelihood (g its gradient, H its Hessian, both totals over
the rows) must be below :data:`NEWTON_DECREMENT_TOL`, whatever lifelines said.
:class:`~clvtools.survival.ChurnModel` drops lifelines' warning at an optimum and replaces it
by :func:`shortfall_message` away from one; :func:`check_cox_convergence` refuses such a fit.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import OptimizeResult

from ..errors import ConvergenceError
from ._cox_math import score_residuals

__all__ = ["ADVICE", "NEWTON_DECREMENT_TOL", "accept_cox", "check_cox_convergence",
           "cox_optimum", "shortfall_message"]

#: What to try when a Cox fit fails, in order.
ADVICE = (
    "Try, in order:\n"
    "1. a penalty: ChurnModel(penalizer=0.01);\n"
    "2. drop covariates that are (nearly) collinear or that predict the event "
    "perfectly (a level where every or no customer churned);\n"
    "3. merge rare levels of categorical attributes;\n"
    "4. rescale covariates with very large values.")

#: Largest Newton decrement of the total penalised negative log partial likelihood at which a
#: Cox fit counts as at its optimum: the log-likelihood still to gain under a quadratic model,
#: 5e-6 putting the optimum within 0.003 standard errors of the point in every direction (the
#: value the BTYD fitters use, and Stata's ml default for the same quantity).
NEWTON_DECREMENT_TOL = 5e-6


def cox_optimum(x, t, d, w, beta, variance, *, penalizer: float = 0.0, scale=None,
                strata=None, success: bool = True, message: str = "") -> OptimizeResult:
    """Where a Cox fit stopped, as an optimiser result that :func:`accept_cox` judges.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, p)
        The design matrix the model was fitted on (not normalised).
    t, d, w : numpy.ndarray, shape (n,)
        Durations, events (0/1) and case weights.
    beta : numpy.ndarray, shape (p,)
        The coefficients (on the scale of ``x``).
    variance : numpy.ndarray, shape (p, p)
        The model-based (naive) covariance: the inverse Hessian of the total penalised
        negative log partial likelihood.
    penalizer : float
        lifelines' ridge penalty, ``n * penalizer / 2 * sum((beta * scale)^2)`` with ``n`` the
        number of rows (lifelines penalises the coefficients of its normalised covariates).
    scale : numpy.ndarray, shape (p,), optional
        The covariates' standard deviations lifelines normalised by (``x.std(ddof=1)``).
    strata : numpy.ndarray of int, shape (n,), optional
    success, message
        lifelines' own verdict, kept for the error message.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (the coefficients), ``jac`` (the gradient of the total penalised negative log
        partial likelihood, shape (p,)), ``hess_inv`` (``variance``), ``success``,
        ``message``.
    """
    x = np.asarray(x, dtype=float)
    beta = np.asarray(beta, dtype=float)
    w = np.asarray(w, dtype=float)
    score = (score_residuals(x, t, d, w, beta, strata) * w[:, None]).sum(axis=0)
    s = np.ones(len(beta)) if scale is None else np.asarray(scale, dtype=float)
    grad = -score + len(x) * penalizer * beta * s**2
    return OptimizeResult(x=beta, jac=grad, hess_inv=np.asarray(variance, dtype=float),
                          success=bool(success), message=message)


def newton_decrement(result: OptimizeResult) -> float:
    """``g' H^-1 g / 2`` of ``result``, or ``inf`` unless its inverse Hessian is finite and
    positive definite (otherwise the point is no minimum)."""
    g, v = np.asarray(result.jac, dtype=float), np.asarray(result.hess_inv, dtype=float)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(v))):
        return np.inf
    try:
        np.linalg.cholesky(v)
    except np.linalg.LinAlgError:
        return np.inf
    return float(g @ v @ g) / 2


def accept_cox(result: OptimizeResult, tol: float = NEWTON_DECREMENT_TOL) -> bool:
    """Whether a Cox fit is at its optimum: its Newton decrement is below ``tol``.

    ``result.success`` (lifelines' verdict) plays no part: a step-size or iteration limit at
    the optimum is accepted, a point away from it refused, on every BLAS kernel alike.
    """
    return newton_decrement(result) < tol


def shortfall_message(result: OptimizeResult, tol: float = NEWTON_DECREMENT_TOL) -> str:
    """What a fit that :func:`accept_cox` refuses falls short by, and what to try."""
    decrement = newton_decrement(result)
    gmax = float(np.max(np.abs(result.jac), initial=0.0))
    said = f" lifelines said: {result.message}" if result.message else ""
    return ("The Cox churn model did not converge: the fit stopped short of the maximum of its "
            f"likelihood (Newton decrement {decrement:.3g}, about the log-likelihood still to "
            f"gain; at most {tol:g} at an optimum; largest gradient {gmax:.3g}).{said} "
            + ADVICE)


def check_cox_convergence(result: OptimizeResult, tol: float = NEWTON_DECREMENT_TOL) -> None:
    """Raise :class:`~clvtools.errors.ConvergenceError` unless :func:`accept_cox` accepts."""
    if not accept_cox(result, tol):
        raise ConvergenceError(shortfall_message(result, tol))

"""Pieces shared by the BTYD fitters' optimisers: the subset that starts a large fit,
Hessians by forward differences of an analytic gradient, BLAS held to one thread, and the
one rule that accepts or refuses a fit (:func:`accept`, with one retry: :func:`settle`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

try:  # optional (installed with scikit-learn); see single_threaded_blas
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = ["SUBSET_ROWS", "NEWTON_DECREMENT_TOL", "single_threaded_blas", "subset_rows",
           "forward_hessian", "newton_polish", "free_parameters", "newton_decrement", "accept",
           "settle"]

#: Fits with more than twice this many distinct rows start from a fit on a subset of about
#: this many rows (plus a tenth: the most populous ones).
SUBSET_ROWS = 20_000


def single_threaded_blas():
    """Limit BLAS to one thread while fitting.

    The only BLAS work in a fit is L-BFGS-B's algebra on matrices a few rows wide; OpenBLAS
    threads made each of its iterations ~10 times slower (0.6 ms against 0.06 ms) on a busy
    machine, a fifth of the whole fit on 1M customers. A no-op without threadpoolctl.
    """
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def subset_rows(counts: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of a seeded subset of the distinct rows.

    The subset holds the ``size // 10`` most populous distinct rows and a random sample of
    ``size`` others (fixed seed: fits are reproducible), whose weights are scaled up to the
    others' total weight, so that the subset's mean log-likelihood estimates the full one.

    Parameters
    ----------
    counts : numpy.ndarray, shape (n,)
        Weight of each distinct row; n > ``size + size // 10``.
    size : int, optional
        Rows of the random sample; ``SUBSET_ROWS`` (read at call time) without.

    Returns
    -------
    rows : numpy.ndarray of int, shape (m,)
    weights : numpy.ndarray of float, shape (m,)
    """
    size = SUBSET_ROWS if size is None else size  # read at call time: tests lower it
    top = _most_populous(counts, size // 10)
    others = np.ones(len(counts), dtype=bool)
    others[top] = False
    rest = np.flatnonzero(others)
    pick = np.random.default_rng(0).choice(rest, size, replace=False)
    rows = np.concatenate([top, pick])
    weights = counts[rows].astype(float)
    weights[len(top):] *= counts[rest].sum() / counts[pick].sum()
    return rows, weights


def _most_populous(counts: np.ndarray, n_top: int) -> np.ndarray:
    """The ``n_top`` rows of largest weight, the earlier row first among equal weights.

    Most distinct rows of a large fit hold one customer: a selection over all of them
    (``np.argpartition``, slow on ties: 0.19 s at 764,000 rows) is made among the rows above
    the smallest weight only, topped up with the first rows at it."""
    if n_top <= 0:
        return np.zeros(0, dtype=np.int64)
    above = np.flatnonzero(counts > counts.min())
    if len(above) >= n_top:
        return above[np.argsort(-counts[above], kind="stable")[:n_top]]
    at_least = np.flatnonzero(counts == counts.min())[: n_top - len(above)]
    return np.concatenate([above[np.argsort(-counts[above], kind="stable")], at_least])


def forward_hessian(gradient: Callable[[np.ndarray], np.ndarray], theta: np.ndarray,
                    g0: np.ndarray | None = None, h: float = 1e-6) -> np.ndarray:
    """Symmetrised Hessian by forward differences of an analytic ``gradient`` at ``theta``.

    k gradient evaluations (k + 1 without ``g0``, the gradient at ``theta``): a relative
    error of about 1e-6, far below the standard errors' own sampling error, at half the
    cost of central differences.

    Returns
    -------
    numpy.ndarray, shape (k, k)
    """
    k = len(theta)
    if g0 is None:
        g0 = gradient(theta)
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (gradient(theta + e) - g0) / h
    return (H + H.T) / 2


def newton_polish(objective: Callable, theta: np.ndarray, f: float, grad: np.ndarray,
                  H: np.ndarray, n_total: float, steps: int = 3):
    """Up to ``steps`` Newton steps with a fixed Hessian, each kept if it lowers the objective,
    or leaves it within rounding while bringing the gradient closer to zero: flat directions
    (the covariate likelihoods' s and beta, Gamma-Gamma's p, q and gamma) are then resolved
    to ~1e-9 instead of L-BFGS-B's ~1e-5, the same whatever the BLAS kernel.

    Parameters
    ----------
    objective : callable
        ``objective(theta) -> (f, grad)``, the mean objective.
    theta, f, grad
        The start, its objective and gradient.
    H : numpy.ndarray, shape (k, k)
        Hessian of the TOTAL objective (``n_total`` times the mean).
    n_total : float

    Returns
    -------
    theta, f, grad
    """
    for _ in range(steps):
        try:
            step = np.linalg.solve(H, grad * n_total)
        except np.linalg.LinAlgError:
            break
        if not (np.all(np.isfinite(step)) and np.max(np.abs(step)) < 0.1):
            break  # a long step leaves the region where the quadratic model holds
        f_new, g_new = objective(theta - step)
        # Near the optimum the objective no longer changes beyond its rounding noise, so a
        # step that shrinks the Newton decrement is kept when the objective stays within it
        closer = (abs(f_new - f) <= 1e-12 * max(1.0, abs(f))
                  and newton_decrement(g_new * n_total, H) < newton_decrement(grad * n_total, H))
        if not (np.isfinite(f_new) and (f_new <= f or closer)):
            break
        theta, f, grad = theta - step, f_new, g_new
    return theta, f, grad


#: Largest Newton decrement g' H^-1 g / 2 of the TOTAL negative log-likelihood (g, H its
#: gradient and Hessian) at which a fit counts as at its optimum. For a quadratic model it is
#: the log-likelihood still to gain, and sqrt(g' H^-1 g) the distance to the optimum measured
#: in standard errors (H is the observed information): 5e-6 puts the optimum within 0.003
#: standard errors of the point in every direction, negligible next to the sampling error
#: whatever the number of customers. It is Stata's ml default for the same quantity
#: (nrtolerance(1e-5) on g' H^-1 g). Computed from the gradient and Hessian, it stays
#: measurable where differences of the objective drown in rounding (the cause of L-BFGS-B's
#: "ABNORMAL" stops: ~1e-5 log-likelihood units in a degenerate fit with parameters ~1e7).
NEWTON_DECREMENT_TOL = 5e-6


def free_parameters(theta: np.ndarray, bounds: list | None) -> np.ndarray:
    """Mask of the parameters not held at one of their ``bounds`` (all, without bounds).

    At an active bound the gradient need not vanish, so convergence is judged on the others.
    """
    free = np.ones(len(theta), bool)
    for j, (lo, hi) in enumerate(bounds or ()):
        at_lo = lo is not None and theta[j] <= lo + 1e-8
        at_hi = hi is not None and theta[j] >= hi - 1e-8
        free[j] = not (at_lo or at_hi)
    return free


def newton_decrement(grad: np.ndarray, hess: np.ndarray) -> float:
    """``g' H^-1 g / 2``, or ``inf`` unless ``H`` is finite and positive definite.

    A Hessian that is not positive definite means a saddle, a ridge or a maximum of the
    negative log-likelihood, not its minimum: no finite decrement then.
    """
    if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
        return np.inf
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return np.inf
    half = np.linalg.solve(chol, grad)  # H = C C', so g' H^-1 g = |C^-1 g|^2
    return float(half @ half) / 2


def accept(f: float, grad: np.ndarray, theta: np.ndarray, *, n_total: float, gtol: float,
           hessian: Callable[[np.ndarray], np.ndarray], success: bool = False,
           bounds: list | None = None) -> bool:
    """Whether ``theta`` is the optimum of a fit: the acceptance rule of every BTYD fitter.

    Accepted, in this order, if the objective is finite and

    1. the optimiser reports ``success``, or the largest gradient of a free parameter is
       below ``gtol``: the criteria of every fit accepted so far, kept so that their results
       do not change (and no Hessian is computed for them);
    2. otherwise (typically L-BFGS-B's "ABNORMAL" line-search stop, which it also reports AT
       the optimum once the objective no longer decreases in floating point): the Hessian of
       the TOTAL negative log-likelihood is positive definite and its Newton decrement is
       below :data:`NEWTON_DECREMENT_TOL`, on the free parameters. The total, not the mean
       per customer, because the statistical precision (and so the precision worth
       reaching) grows with the number of customers: a gradient bound on the mean is too
       strict for a small base and too loose for a large one (rule 1 keeps it as sufficient
       only so that the fits it accepted keep their results).

    Parameters
    ----------
    f : float
        The MEAN objective (negative log-likelihood per customer, with any penalty) at theta.
    grad : numpy.ndarray, shape (k,)
        Its gradient.
    theta : numpy.ndarray, shape (k,)
        The point, in the optimiser's coordinates.
    n_total : float
        Number of customers: the total objective is ``n_total * f``.
    gtol : float
        Gradient bound of rule 1, on the mean objective.
    hessian : callable
        ``hessian(theta)``: Hessian of the mean objective, shape (k, k); called only for rule 2.
    success : bool
        The optimiser's own verdict at ``theta``.
    bounds : list of (lower, upper), optional
        Bounds of the optimisation; parameters held at one are left out.

    Returns
    -------
    bool
    """
    if not np.isfinite(f):
        return False
    free = free_parameters(theta, bounds)
    if success or float(np.max(np.abs(grad[free]), initial=0.0)) < gtol:
        return True
    H = np.asarray(hessian(theta))[np.ix_(free, free)] * n_total
    return newton_decrement(grad[free] * n_total, H) < NEWTON_DECREMENT_TOL


def settle(objective: Callable, theta: np.ndarray, *, restart: Callable, fg=None,
           success: bool = False, **rule) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """Judge ``theta`` by :func:`accept`; if refused, retry once from it and judge again.

    Parameters
    ----------
    objective : callable
        ``objective(theta) -> (f, grad)``, the mean objective.
    theta : numpy.ndarray, shape (k,)
        Where the optimiser stopped.
    restart : callable
        ``restart(theta) -> (theta, f, grad, success)``: the retry, e.g. L-BFGS-B restarted
        from ``theta`` (a fresh curvature memory: the usual cure of a line search that failed
        on a stale quasi-Newton model).
    fg : tuple of (float, numpy.ndarray), optional
        ``objective(theta)`` if the caller has it already.
    success : bool
        The optimiser's own verdict at ``theta``.
    **rule
        ``n_total``, ``gtol``, ``hessian`` and ``bounds`` for :func:`accept`.

    Returns
    -------
    theta, f, grad, accepted
        The last point, its objective and gradient, and whether it was accepted.
    """
    f, grad = objective(theta) if fg is None else fg
    if accept(f, grad, theta, success=success, **rule):
        return theta, f, grad, True
    theta, f, grad, success = restart(theta)
    return theta, f, grad, accept(f, grad, theta, success=success, **rule)

"""Pieces shared by the BTYD fitters' optimisers: the subset that starts a large fit, and
Hessians by forward differences of an analytic gradient.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["SUBSET_ROWS", "subset_rows", "forward_hessian"]

#: Fits with more than twice this many distinct rows start from a fit on a subset of about
#: this many rows (plus a tenth: the most populous ones).
SUBSET_ROWS = 20_000


def subset_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of a seeded subset of the distinct rows.

    The subset holds the ``SUBSET_ROWS // 10`` most populous distinct rows and a random
    sample of ``SUBSET_ROWS`` others (fixed seed: fits are reproducible), whose weights are
    scaled up to the others' total weight, so that the subset's mean log-likelihood
    estimates the full one.

    Parameters
    ----------
    counts : numpy.ndarray, shape (n,)
        Weight of each distinct row; n > ``SUBSET_ROWS + SUBSET_ROWS // 10``.

    Returns
    -------
    rows : numpy.ndarray of int, shape (m,)
    weights : numpy.ndarray of float, shape (m,)
    """
    n_top = SUBSET_ROWS // 10  # read at call time: tests lower it to exercise this path
    order = np.argpartition(counts, len(counts) - n_top)  # the n_top largest come last
    top, rest = order[len(counts) - n_top:], order[: len(counts) - n_top]
    pick = np.random.default_rng(0).choice(rest, SUBSET_ROWS, replace=False)
    rows = np.concatenate([top, pick])
    weights = counts[rows].astype(float)
    weights[len(top):] *= counts[rest].sum() / counts[pick].sum()
    return rows, weights


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

"""The pooled rare frequencies of the Pareto/NBD series: rows whose frequency has fewer than
``_SMALL`` customers (:mod:`clvtools.btyd._pareto_nbd_series`) carry their own p and q, and are
summed by the per-row term recurrence, or, for series of thousands of terms, grouped by
(p, q), each group with its own coefficients.

Used by :mod:`clvtools.btyd._pareto_nbd_series` and
:mod:`clvtools.btyd.pareto_nbd_covariates`; the sums themselves are
:mod:`clvtools.btyd._series_terms`'.
"""
from __future__ import annotations

import numpy as np

from ._series_blocks import BLOCKED_TERMS
from ._series_terms import _EPS, _coefficients, _horner_trimmed, _n_terms_bound

__all__ = ["_series_rows"]


def _series_rows(p, q, z, grad: bool):
    """The same sums with per-row p, q (pooled rare frequencies): the term recurrence, or
    for series of thousands of terms the rows grouped by (p, q), each group with its own
    coefficients (:func:`_sums_by_pair`)."""
    K = _n_terms_bound(float(z.max(initial=0.0)))
    if K > BLOCKED_TERMS:
        return _sums_by_pair(p, q, z, grad)
    t = np.ones(z.shape)
    S = np.ones(z.shape)
    if grad:
        dp_acc, dq_acc = np.zeros(z.shape), np.zeros(z.shape)
        Sp, Sq, Sz = np.zeros(z.shape), np.zeros(z.shape), np.zeros(z.shape)
        tz = np.ones(z.shape)  # c_k z^(k-1) without dividing by z
    pq = p + q
    for k in range(K):
        ratio = (p + k) / (pq + k)
        if grad:
            dp_acc += 1.0 / (p + k) - 1.0 / (pq + k)
            dq_acc -= 1.0 / (pq + k)
            tz = tz * ratio if k else ratio * np.ones(z.shape)
            Sz += (k + 1) * tz
            tz = tz * z
        t *= ratio * z
        S += t
        if grad:
            Sp += t * dp_acc
            Sq += t * dq_acc
        if k % 16 == 15 and np.all(t < _EPS * 1e-3 * (1 - z) ** 2):
            break
    return (S, Sp, Sq, Sz) if grad else (S,)


def _sums_by_pair(p, q, z, grad: bool):
    """:func:`_series_rows`'s sums for long series: the rows of each distinct (p, q) summed
    with that pair's coefficients (:func:`_horner_trimmed`), rather than a per-row
    recurrence of one numpy operation per term. p and q depend on the row only through its
    frequency (and, with covariates, which of alpha and beta is larger): few pairs."""
    pairs, inverse = np.unique(np.column_stack(np.broadcast_arrays(p, q, z)[:2]), axis=0,
                               return_inverse=True)
    out = np.empty((4 if grad else 1, len(z)))
    for j, (p_j, q_j) in enumerate(pairs):
        rows = np.flatnonzero(inverse.reshape(-1) == j)
        coefs = _coefficients(p_j, q_j, float(z[rows].max()), grad)
        out[:, rows] = _horner_trimmed(coefs, z[rows])
    return tuple(out)

"""The sums of the Gauss hypergeometric series 2F1(1, p; p+q; z) = sum_k c_k z^k behind the
Pareto/NBD likelihood, for one pair (p, q): the coefficients and their derivatives, how many
terms a given z needs, and Horner's rule over rows (stacked, trimmed to a block's largest z,
per row by its own count of terms).

Used by :mod:`clvtools.btyd._pareto_nbd_series` (which groups the rows by frequency and
explains the method) and :mod:`clvtools.btyd._series_pooled` (the pooled rare frequencies).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError
from ._series_blocks import BLOCKED_TERMS, blocked_sums, coefficient_blocks

__all__ = ["SeriesTooLongError", "horner_per_row"]

_EPS = 1e-17   # relative truncation error of the series (the sum is >= 1)
_MAX_TERMS = 200_000  # beyond this the parameters are absurd for the data (see below)


class SeriesTooLongError(ConvergenceError):
    """The hypergeometric series would need more than ``_MAX_TERMS`` terms."""

    def __init__(self, zmax: float):
        super().__init__(
            f"The Pareto/NBD likelihood needs more than {_MAX_TERMS:,} series terms here "
            f"(z = {zmax:.10f}: max(alpha, beta) is about {1 / max(1 - zmax, 1e-300):.3g} times "
            "min(alpha, beta) + recency). Try, in this order:\n"
            "  1. check the parameters: alpha and beta should be of comparable size in the "
            "time unit of recency and T;\n"
            "  2. refit, or use a coarser time unit (weeks rather than days or hours);\n"
            "  3. fit with a small penalizer, e.g. ParetoNBDFitter(penalizer_coef=0.001)."
        )


def _n_terms_bound(zmax: float) -> int:
    """K with z^K (1 + K) / (1 - z)^2 < eps: enough terms whatever p, q (c_k <= 1)."""
    if zmax <= 0.0:
        return 1
    k = (np.log(_EPS) + 2.0 * np.log1p(-zmax)) / np.log(zmax)
    if not k < _MAX_TERMS:
        raise SeriesTooLongError(zmax)
    return int(np.ceil(1.05 * k + 4))


def _coefficients(p: float, q: float, zmax: float, grad: bool):
    """Coefficients of S = sum c_k z^k up to the last one that matters for z <= zmax.

    Returns ``c`` and, if ``grad``, the coefficients of dS/dp, dS/dq and dS/dz (as
    polynomials in z). dc_k/dp = c_k sum_{j<k} [1/(p+j) - 1/(p+q+j)],
    dc_k/dq = -c_k sum_{j<k} 1/(p+q+j).
    """
    kmax = _n_terms_bound(zmax)
    kk = np.arange(kmax + 1, dtype=float)
    inv_b = 1.0 / (p + q + kk)
    logc = np.concatenate(([0.0], np.cumsum(np.log((p + kk[:-1]) * inv_b[:-1]))))
    if zmax > 0:
        bound = logc + kk * np.log(zmax) + np.log1p(kk) - 2.0 * np.log1p(-zmax)
        hit = np.flatnonzero(bound < np.log(_EPS))
        K = int(hit[0]) if hit.size else kmax
    else:
        K = 0
    c = np.exp(logc[: K + 1])
    if not grad:
        return (c,)
    inc_p = 1.0 / (p + kk[:K]) - inv_b[:K]
    dp = np.concatenate(([0.0], np.cumsum(inc_p)))
    dq = -np.concatenate(([0.0], np.cumsum(inv_b[:K])))
    cz = kk[1 : K + 1] * c[1:] if K > 0 else np.zeros(1)
    return c, c * dp, c * dq, cz


def _horner(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.full(z.shape, coef[-1])
    for ck in coef[-2::-1]:
        out *= z
        out += ck
    return out


def _horner_stacked(coefs, z: np.ndarray) -> np.ndarray:
    """:func:`_horner` of several polynomials at once, shape (len(coefs), len(z)): one numpy
    operation per term for all of them (a sum and its three derivative sums). A shorter
    polynomial is padded with leading zeros, which Horner's rule passes through exactly, so
    each row is the same number as :func:`_horner` gives, bit for bit."""
    C = np.zeros((max(len(cf) for cf in coefs), len(coefs)))
    for j, cf in enumerate(coefs):
        C[: len(cf), j] = cf
    out = np.repeat(C[-1][:, None], len(z), axis=1)
    for ck in C[-2::-1]:
        out *= z
        out += ck[:, None]
    return out


def _horner_trimmed(coefs, z, scoring=False):
    """Horner sums for one block of z: only the terms this block's largest z needs, and one
    evaluation when all z are equal (e.g. t_x = 0 for every customer with x = 0).

    ``scoring``: only S is wanted, to double precision: stop when the tail bound
    c_K z^K / (1 - z) is below 2^-53 (the sum is >= 1); otherwise the stricter bound that
    also covers the derivative sums.
    """
    zmax = float(z.max(initial=0.0))
    c = coefs[0]
    K = len(c) - 1
    if K > 0:
        if zmax == 0.0:
            K = 0
        else:
            with np.errstate(divide="ignore"):
                bound = _tail_bound(c, np.arange(K + 1), np.log(zmax), np.log1p(-zmax), scoring)
            hit = np.flatnonzero(bound < 0)
            K = int(hit[0]) if hit.size else K
    const = len(z) > 1 and float(z.min()) == zmax
    zz = z[:1] if const else z
    trimmed = [cf[: K + 1] if j < 3 else (cf[:K] if K > 0 else np.zeros(1))
               for j, cf in enumerate(coefs)]
    if K > 64:
        vals = _horner_by_terms(trimmed, zz, scoring)
    elif len(trimmed) == 1:
        vals = [_horner(trimmed[0], zz)]
    else:
        vals = list(_horner_stacked(trimmed, zz))
    return [np.full(len(z), v[0]) for v in vals] if const else vals


def _tail_bound(c_k, k, log_z, log1m_z, scoring: bool):
    """The log of :func:`_horner_trimmed`'s tail bound after the terms up to ``k`` (arrays
    broadcast: per term or per row); below 0, those terms are enough."""
    if scoring:
        return np.log(c_k) + k * log_z - log1m_z - np.log(2.0**-53)
    return np.log(c_k) + k * log_z + np.log1p(k) - 2.0 * log1m_z - np.log(_EPS)


def _horner_by_terms(coefs, z, scoring):
    """:func:`_horner_trimmed`'s sums of a long series (K > 64 terms), each row with only
    the terms its own z needs by the same tail bound, in four classes (up to K/8, K/4, K/2
    and K terms): z = (m - n) / (m + u) falls with u, and on a covariate fit's rows about a
    quarter of the block's terms are needed on average. A row's sum differs from the whole
    block's by the terms left out, below the bound (2^-53 or 1e-17 of the sum), and depends
    on its z and K alone: any subset of the rows with the same largest z (a unit's distinct
    times, :func:`distinct_times`) gets the same numbers bit for bit. (On 32,768 rows and
    300 terms, Horner's rule was four times faster than powers of z by cumulative products.)
    """
    K = len(coefs[0]) - 1
    with np.errstate(divide="ignore"):
        log_z, log1m_z = np.log(z), np.log1p(-z)
    edges = [K // 8, K // 4, K // 2]
    terms_class = np.full(len(z), len(edges))
    for j, k in reversed(list(enumerate(edges))):
        terms_class[_tail_bound(coefs[0][k], k, log_z, log1m_z, scoring) < 0] = j
    out = np.empty((len(coefs), len(z)))
    blocks = None
    for j, k in enumerate([*edges, K]):
        rows = np.flatnonzero(terms_class == j)
        if not len(rows):
            continue
        if k > BLOCKED_TERMS:  # thousands of terms (z near 1): Horner's loop would dominate
            if blocks is None:
                blocks = coefficient_blocks(coefs)
            out[:, rows] = blocked_sums(blocks, k, z[rows])
        else:  # (one polynomial stacked: the same numbers as _horner's)
            part = [cf[: k + 1] if i < 3 else cf[:k] for i, cf in enumerate(coefs)]
            out[:, rows] = _horner_stacked(part, z[rows])
    return list(out)


def horner_per_row(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    """S = sum_k c_k z^k to double precision, each row with its own number of terms.

    A row takes the terms up to the first K with z^(K+1) / (1 - z) below 2^-53 (the tail
    bound with c_k <= 1; S >= 1), at most those of ``coef``: a count of the row's own, so
    that a customer's value is the same bit for bit whatever other rows share the call (one
    customer alone, a column or a matrix of customers). Horner's rule from each row's last
    term, the rows sorted by their count so that each step works on those still summing.

    Parameters
    ----------
    coef : numpy.ndarray, shape (K + 1,)
        The coefficients (:func:`_coefficients`), enough for every z given; their number
        must not depend on the rows (:func:`scoring_units`).
    z : numpy.ndarray, shape (n,)
        Arguments in [0, 1).
    """
    if z.size > 1 and float(z.min()) == float(z.max()):   # e.g. t_x = 0 for a whole block
        return np.full(z.shape, horner_per_row(coef, z[:1])[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil((np.log1p(-z) - 53.0 * np.log(2.0)) / np.log(z)) - 1.0
    terms = np.clip(np.where(z > 0.0, need, 0.0), 0, len(coef) - 1).astype(np.intp)
    order = np.argsort(-terms, kind="stable")
    zs, ks = z[order], terms[order]
    # rows still summing at step k: the first (count of terms >= k) in that order
    active = np.searchsorted(-ks, -np.arange(len(coef)), side="right")
    out = np.zeros(z.shape)
    for k in range(int(ks[0]) if len(ks) else -1, -1, -1):
        head = out[: active[k]]
        head *= zs[: active[k]]
        head += coef[k]
    result = np.empty(z.shape)
    result[order] = out
    return result

"""The Gauss hypergeometric series behind the Pareto/NBD likelihood, stable for any frequency.

Used by :mod:`clvtools.btyd._pareto_nbd_math` (the closed forms) and
:mod:`clvtools.btyd.pareto_nbd_covariates` (which reuses its coefficients and sums). The sums
for one (p, q) are in :mod:`clvtools.btyd._series_terms`, those of the pooled rare
frequencies in :mod:`clvtools.btyd._series_pooled`; this module groups the rows.

How the Gauss hypergeometric function is evaluated
--------------------------------------------------
The likelihood (eqs. 18-22) is

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s * I ],

    I = integral_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau = F(t_x) - F(T),

with F(u) = int_u^inf (alpha+tau)^-a (beta+tau)^-b dtau, a = r+x, b = s+1 (the note's A_0 is
(r+s+x)/s * I). Write m = max(alpha, beta), n = min(alpha, beta), let p be the exponent of the
factor with m and q that of the factor with n, and z = (m - n) / (m + u), in [0, 1). Then

    F(u) = (m+u)^(1-p-q) / (p+q-1) * 2F1(q, p+q-1; p+q; z)             (the note's 2F1)
         = (m+u)^-p (n+u)^(1-q) / (p+q-1) * 2F1(1, p; p+q; z)          (Euler's transformation)

and ``2F1(1, p; p+q; z) = sum_k c_k z^k`` with c_0 = 1, c_{k+1} = c_k (p+k)/(p+q+k) < c_k. Every
term is positive and at most z^k, so the sum is >= 1, never overflows, and the truncation
error after K terms is below z^K / (1 - z): no cancellation, whatever x (scipy's ``hyp2f1``,
which lifetimes calls with the un-transformed parameters, overflows or returns inf/nan for
heavy buyers). Derivatives of the sum with respect to p, q and z are summed term by term,
which gives the analytic gradient.

Cost. p and q depend on the customer only through x, so rows are grouped by frequency: the
coefficients (and those of the derivatives) are computed once per distinct x and the sums are
Horner evaluations over blocks of 32,768 rows (no per-row division);
frequencies with fewer than 32 rows are pooled and use the per-row term recurrence. The number
of terms is chosen per group from the largest z and the actual coefficients: about 20 for
CDNOW-like parameters. It grows like 1/(1 - z), 1 - z = (n + u)/(m + u): thousands when one of
alpha, beta is hundreds of times the other and u is small, and above 200,000 terms
:class:`SeriesTooLongError` is raised (the optimiser sees -inf and backs off). A series of
more than 64 terms gives each row only the terms its own z needs (:func:`_horner_by_terms`),
and one of more than a thousand is summed in blocks of terms as a matrix product
(:mod:`clvtools.btyd._series_blocks`), as are the pooled rows' long series, grouped by
(p, q): a fit whose dropout heterogeneity vanishes (s ~ 300, beta ~ 25,000 weeks) needs up
to 130,000 terms, which one numpy operation per term took 98 s to fit.
"""
from __future__ import annotations

import numpy as np

from ._series_pooled import _series_rows
from ._series_terms import (  # noqa: F401 - the series' sums, re-exported for its readers
    SeriesTooLongError,
    _coefficients,
    _horner,
    _horner_stacked,
    _horner_trimmed,
    horner_per_row,
)

__all__ = ["SeriesTooLongError", "log_F", "distinct_times"]

_CH = 32768    # rows per unit of work: temporaries of 256 KiB (few numpy calls per row)
_SMALL = 32    # frequencies with fewer rows are pooled and summed row by row


# ----------------------------------------------------------------------------------------
# Rows grouped by frequency; the sums (:mod:`clvtools.btyd._series_terms`) per group
# ----------------------------------------------------------------------------------------
def _group_rows(key):
    """Sort rows by ``key`` (the frequency): ``(distinct keys, order, bounds)``.

    Rows ``order[bounds[g]:bounds[g + 1]]`` share the key ``distinct[g]``. Small whole numbers
    use numpy's radix sort.
    """
    key = np.asarray(key, dtype=float).reshape(-1)
    if key.size and key.min() >= 0 and key.max() < 65536 and np.all(key == np.round(key)):
        order = np.argsort(key.astype(np.uint16), kind="stable")
    else:
        order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]]) if ks.size else np.zeros(0, int)
    return ks[starts], order, np.r_[starts, ks.size]


def _sums(p, q, z, grad, coefs, split=None):
    """Series sums for one unit: Horner with scalar coefficients, else the recurrence.

    ``split``: z holds two blocks (z at t_x, then at T) summed separately with their own
    number of terms.
    """
    if coefs is not None:
        if split is None:
            return tuple(_horner(c, z) for c in coefs)
        a_, b_ = _horner_trimmed(coefs, z[:split]), _horner_trimmed(coefs, z[split:])
        return tuple(np.concatenate((u, v)) for u, v in zip(a_, b_, strict=True))
    return _series_rows(p, q, z, grad)


def _log_F_sums(u, p, q, m, mn, sums, grad):
    """log F(u) from the series sums (Euler-transformed form), and its partial derivatives
    with respect to (p, q, m, mn): see the module docstring."""
    mu, nu = m + u, mn + u
    lmu, lnu = np.log(mu), np.log(nu)
    pq1 = p + q - 1.0
    S = sums[0]
    out = -p * lmu - (q - 1.0) * lnu - np.log(pq1) + np.log(S)
    if not grad:
        return out, None
    inv_s = 1.0 / S
    d_p = -lmu - 1.0 / pq1 + sums[1] * inv_s
    d_q = -lnu - 1.0 / pq1 + sums[2] * inv_s
    gz = sums[3] * inv_s  # d log S / dz
    d_m = -p / mu + gz * nu / mu**2
    d_mn = -(q - 1.0) / nu - gz / mu
    return out, (d_p, d_q, d_m, d_mn)


def scoring_units(x, params):
    """Units for scoring (no gradient): one per distinct frequency, never pooled, with that
    frequency's coefficients, whose values depend on the frequency only; with
    :func:`horner_per_row` a customer's prediction does not depend on the rows scored with
    it. Yields ``(row indices, r + x, (coefficients,))``."""
    r, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    ux, order, bounds = _group_rows(x)
    for g in range(len(ux)):
        idx = order[bounds[g] : bounds[g + 1]]
        a = r + ux[g]
        p, q = (a, s + 1.0) if big else (s + 1.0, a)
        # as many coefficients as the frequency's largest possible z (t_x = 0) needs: their
        # number then depends on the frequency only, not on the rows scored
        coefs = _coefficients(p, q, (m - mn) / m, False)
        for c0 in range(0, len(idx), _CH):
            yield idx[c0 : c0 + _CH], a, coefs


def _unit_rows(groups):
    """The rows of each unit of work, in the order :func:`_units` yields them: ``(g, rows)``
    for chunks of frequency group ``g``, then ``(None, rows)`` for the pooled rare ones."""
    ux, order, bounds = groups
    sizes = np.diff(bounds)
    pooled = []
    for g in range(len(ux)):
        idx = order[bounds[g] : bounds[g + 1]]
        if sizes[g] < _SMALL:
            pooled.append(idx)
            continue
        for c0 in range(0, len(idx), _CH):
            yield g, idx[c0 : c0 + _CH]
    if pooled:
        pooled = np.concatenate(pooled)
        for c0 in range(0, len(pooled), _CH):
            yield None, pooled[c0 : c0 + _CH]


def _units(x, t_x, params, grad, groups=None):
    """Split the rows into units of work: (row indices, a scalar or per-row, coefficients).

    Rows are grouped by frequency; within a frequency p and q are scalars, so the series
    coefficients are computed once and the sums are Horner evaluations. Frequencies with
    few rows are pooled and use the per-row recurrence.
    """
    r, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    groups = _group_rows(x) if groups is None else groups
    ux, order, bounds = groups
    if len(ux):
        min_tx = np.minimum.reduceat(t_x[order], bounds[:-1]) if len(order) else ux
    coefs, last = None, None
    for g, idx in _unit_rows(groups):
        if g is None:
            yield idx, r + x[idx], None
            continue
        if g != last:
            a = r + ux[g]
            p, q = (a, s + 1.0) if big else (s + 1.0, a)
            coefs, last = _coefficients(p, q, (m - mn) / (m + min_tx[g]), grad), g
        yield idx, a, coefs


def distinct_times(t_x, T, groups):
    """For each unit of :func:`_units` (same order), its distinct recencies and ages.

    A unit holds one frequency, so its series sums depend on the row only through t_x (and
    T): with ages and recencies in whole days, a few hundred values serve thousands of rows.
    Computed once per fit; a unit summed on its distinct values gives each row the same
    number, bit for bit (the same terms: the largest z of a block is unchanged).

    Returns
    -------
    list
        Per unit ``(t_x values, inverse, T values, inverse)`` (:func:`numpy.unique`), or None
        for a pooled unit or one whose values are nearly all distinct (nothing to save).
    """
    out = []
    for g, idx in _unit_rows(groups):
        if g is None:
            out.append(None)
            continue
        tx_u, tx_i = np.unique(t_x[idx], return_inverse=True)
        T_u, T_i = np.unique(T[idx], return_inverse=True)
        out.append((tx_u, tx_i, T_u, T_i) if len(tx_u) + len(T_u) < 1.5 * len(idx) else None)
    return out


def _unit_pieces(params, a, tx, T, coefs, grad, distinct=None):
    """log E, log(s I), log M and (if grad) d log M / d(r, alpha, s, beta) for one unit.

    ``distinct``: the unit's entry of :func:`distinct_times`, to sum the series once per
    distinct t_x and T rather than once per row.
    """
    _, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    n = len(tx)
    lat, lbt = np.log(alpha + T), np.log(beta + T)
    logE = -a * lat - s * lbt
    b = s + 1.0
    if distinct is None:
        u = np.concatenate((tx, T))
        a2 = np.concatenate((a, a)) if np.ndim(a) else a
        p, q = (a2, b) if big else (b, a2)
        sums = _sums(p, q, (m - mn) / (m + u), grad, coefs, split=n)
        G, dG = _log_F_sums(u, p, q, m, mn, sums, grad)
    else:
        tx_u, tx_i, T_u, T_i = distinct
        u = np.concatenate((tx_u, T_u))
        p, q = (a, b) if big else (b, a)
        sums = _sums(p, q, (m - mn) / (m + u), grad, coefs, split=len(tx_u))
        G, dG = _log_F_sums(u, p, q, m, mn, sums, grad)
        rows = np.concatenate((tx_i, T_i + len(tx_u)))  # each row's two values, as above
        G = G[rows]
        dG = None if dG is None else tuple(d[rows] for d in dG)
    G_tx, G_T = G[:n], G[n:]
    diff = np.minimum(G_T - G_tx, 0.0)  # <= 0 (F decreases); == 0 where t_x == T
    with np.errstate(divide="ignore"):
        logsI = np.log(s) + G_tx + np.log(-np.expm1(diff))  # -inf where t_x == T
    logM = np.logaddexp(logE, logsI)
    if not grad:
        return logE, logsI, logM, None
    d_p, d_q, d_m, d_mn = dG
    d_a, d_b = (d_p, d_q) if big else (d_q, d_p)
    d_al, d_be = (d_m, d_mn) if big else (d_mn, d_m)
    wE = np.exp(logE - logM)
    ls = np.log(s)
    w_tx = np.exp(ls + G_tx - logM)  # s F(t_x) / M  (<= 2)
    w_T = np.exp(ls + G_T - logM)    # s F(T) / M    (<= 1)

    def dI(d):  # s dI / M = [s F(t_x) dlogF(t_x) - s F(T) dlogF(T)] / M
        return w_tx * d[:n] - w_T * d[n:]

    g_r = -wE * lat + dI(d_a)
    g_alpha = -wE * a / (alpha + T) + dI(d_al)
    g_s = -wE * lbt + np.exp(logsI - logM) / s + dI(d_b)
    g_beta = -wE * s / (beta + T) + dI(d_be)
    return logE, logsI, logM, (g_r, g_alpha, g_s, g_beta)


def _params4(params):
    return tuple(float(v) for v in (params[k] for k in ("r", "alpha", "s", "beta"))) \
        if hasattr(params, "keys") else tuple(float(v) for v in params)


def log_F(u, a, b, alpha, beta, grad: bool = False):
    """log F(u), F(u) = integral_u^inf (alpha+tau)^-a (beta+tau)^-b dtau, and its gradient.

    Parameters
    ----------
    u, a : array_like
        Broadcast together; u >= 0 (time units), a > 0.
    b, alpha, beta : float
        b > 0 with a + b > 1; alpha, beta > 0 (time units).
    grad : bool
        Also return the partial derivatives of log F with respect to (a, b, alpha, beta).

    Returns
    -------
    logF : numpy.ndarray
        Shape of the broadcast inputs. With a = r+x and b = s+1, the A_0 of eqs. (19)-(20) of
        Fader & Hardie (2005) is (r+s+x)/s * (F(t_x) - F(T)).
    dlogF : tuple of four numpy.ndarray, only if ``grad``
        d log F / d a, d b, d alpha, d beta.
    """
    u, a = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(a, dtype=float))
    shape = u.shape
    u, a = u.reshape(-1), a.reshape(-1)
    b, alpha, beta = float(b), float(alpha), float(beta)
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    out = np.empty(len(u))
    douts = [np.empty(len(u)) for _ in range(4)]
    # reuse the likelihood's units: "frequency" a, "recency" u
    for idx, a_u, coefs in _units(a, u, (0.0, alpha, b - 1.0, beta), grad):
        p, q = (a_u, b) if big else (b, a_u)
        z = (m - mn) / (m + u[idx])
        G, dG = _log_F_sums(u[idx], p, q, m, mn, _sums(p, q, z, grad, coefs), grad)
        out[idx] = G
        if grad:
            d_a, d_b = (dG[0], dG[1]) if big else (dG[1], dG[0])
            d_al, d_be = (dG[2], dG[3]) if big else (dG[3], dG[2])
            for dst, src in zip(douts, (d_a, d_b, d_al, d_be), strict=True):
                dst[idx] = src
    if not grad:
        return out.reshape(shape)
    return out.reshape(shape), tuple(d.reshape(shape) for d in douts)

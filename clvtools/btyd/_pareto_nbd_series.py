"""The Gauss hypergeometric series behind the Pareto/NBD likelihood, stable for any frequency.

Used by :mod:`clvtools.btyd._pareto_nbd_math` (the closed forms) and
:mod:`clvtools.btyd.pareto_nbd_covariates` (which reuses its coefficients and sums).

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

from ..errors import ConvergenceError
from ._series_blocks import BLOCKED_TERMS, blocked_sums, coefficient_blocks

__all__ = ["SeriesTooLongError", "log_F", "distinct_times"]

_EPS = 1e-17   # relative truncation error of the series (the sum is >= 1)
_CH = 32768    # rows per unit of work: temporaries of 256 KiB (few numpy calls per row)
_SMALL = 32    # frequencies with fewer rows are pooled and summed row by row
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


# ----------------------------------------------------------------------------------------
# 2F1(1, p; p+q; z) = sum_k c_k z^k and its derivatives
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

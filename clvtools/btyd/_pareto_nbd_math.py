"""Pareto/NBD closed forms, vectorised and stable in log space.

Pure functions of ``params = (r, alpha, s, beta)`` and float64 arrays (broadcast together) of
frequency ``x``, recency ``t_x`` and age ``T``, all in the same time unit. ``ParetoNBDFitter``
orchestrates; nothing here reads or writes state.

The model (Schmittlein, Morrison & Colombo 1987) and the expressions used follow
Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(http://brucehardie.com/notes/009/) -- equation numbers below refer to that note -- and
Hardie's note 028, "The Pareto/NBD Conditional PMF", for P(X(T, T+t) = n | x, t_x, T).

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
alpha, beta is hundreds of times the other and u is small (correct, but slow), and above
200,000 terms :class:`SeriesTooLongError` is raised (the optimiser sees -inf and backs off).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betainc, betaincinv, betaln, digamma, gammaln

from ..errors import ConvergenceError
from .simulate import simulate_pareto_nbd

__all__ = [
    "SeriesTooLongError",
    "conditional_expected_number_of_purchases_up_to_time",
    "conditional_probability_alive",
    "conditional_probability_of_n_purchases_up_to_time",
    "expected_number_of_purchases_up_to_time",
    "log_F",
    "loglik",
    "loglik_and_grad",
    "purchase_rate_if_alive",
    "simulate_rfm",
]

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


def _series_rows(p, q, z, grad: bool):
    """The same sums with per-row p, q (pooled rare frequencies): the term recurrence."""
    K = _n_terms_bound(float(z.max(initial=0.0)))
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
            k = np.arange(K + 1)
            with np.errstate(divide="ignore"):
                if scoring:
                    bound = np.log(c) + k * np.log(zmax) - np.log1p(-zmax) - np.log(2.0**-53)
                else:
                    bound = (np.log(c) + k * np.log(zmax) + np.log1p(k) - 2.0 * np.log1p(-zmax)
                             - np.log(_EPS))
            hit = np.flatnonzero(bound < 0)
            K = int(hit[0]) if hit.size else K
    const = len(z) > 1 and float(z.min()) == zmax
    zz = z[:1] if const else z
    trimmed = [cf[: K + 1] if j < 3 else (cf[:K] if K > 0 else np.zeros(1))
               for j, cf in enumerate(coefs)]
    if K > 64:
        vals = _power_sums(trimmed, zz)
    else:
        vals = [_horner(cf, zz) for cf in trimmed]
    return [np.full(len(z), v[0]) for v in vals] if const else vals


def _power_sums(coefs, z):
    """The same sums for long series: powers of z (rows x terms, by cumulative products)
    times the coefficient columns, in row blocks of about 1M entries. Python-level work
    no longer grows with the number of terms."""
    K1 = len(coefs[0])
    C = np.zeros((K1, len(coefs)))
    for j, cf in enumerate(coefs):
        C[: len(cf), j] = cf
    out = np.empty((len(z), len(coefs)))
    step = max(1, (1 << 20) // K1)
    for i in range(0, len(z), step):
        zc = z[i : i + step]
        V = np.empty((len(zc), K1))
        V[:, 0] = 1.0
        V[:, 1:] = zc[:, None]
        np.cumprod(V, axis=1, out=V)
        out[i : i + step] = V @ C
    return [out[:, j] for j in range(len(coefs))]


def _sums(p, q, z, grad, coefs, split=None):
    """Series sums for one unit: Horner with scalar coefficients, else the recurrence.

    ``split``: z holds two blocks (z at t_x, then at T) summed separately with their own
    number of terms.
    """
    if coefs is not None:
        if split is None:
            return tuple(_horner(c, z) for c in coefs)
        a_, b_ = _horner_trimmed(coefs, z[:split]), _horner_trimmed(coefs, z[split:])
        return tuple(np.concatenate((u, v)) for u, v in zip(a_, b_))
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


def _units(x, t_x, params, grad, groups=None):
    """Split the rows into units of work: (row indices, a scalar or per-row, coefficients).

    Rows are grouped by frequency; within a frequency p and q are scalars, so the series
    coefficients are computed once and the sums are Horner evaluations. Frequencies with
    few rows are pooled and use the per-row recurrence.
    """
    r, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    ux, order, bounds = _group_rows(x) if groups is None else groups
    sizes = np.diff(bounds)
    if len(ux):
        min_tx = np.minimum.reduceat(t_x[order], bounds[:-1]) if len(order) else ux
    pooled = []
    for g in range(len(ux)):
        idx = order[bounds[g] : bounds[g + 1]]
        if sizes[g] < _SMALL:
            pooled.append(idx)
            continue
        a = r + ux[g]
        p, q = (a, s + 1.0) if big else (s + 1.0, a)
        coefs = _coefficients(p, q, (m - mn) / (m + min_tx[g]), grad)
        for c0 in range(0, len(idx), _CH):
            yield idx[c0 : c0 + _CH], a, coefs
    if pooled:
        pooled = np.concatenate(pooled)
        for c0 in range(0, len(pooled), _CH):
            idx = pooled[c0 : c0 + _CH]
            yield idx, r + x[idx], None


def _unit_pieces(params, a, tx, T, coefs, grad):
    """log E, log(s I), log M and (if grad) d log M / d(r, alpha, s, beta) for one unit."""
    _, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    n = len(tx)
    lat, lbt = np.log(alpha + T), np.log(beta + T)
    logE = -a * lat - s * lbt
    u = np.concatenate((tx, T))
    z = (m - mn) / (m + u)
    b = s + 1.0
    a2 = np.concatenate((a, a)) if np.ndim(a) else a
    p, q = (a2, b) if big else (b, a2)
    sums = _sums(p, q, z, grad, coefs, split=n)
    G, dG = _log_F_sums(u, p, q, m, mn, sums, grad)
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
            for dst, src in zip(douts, (d_a, d_b, d_al, d_be)):
                dst[idx] = src
    if not grad:
        return out.reshape(shape)
    return out.reshape(shape), tuple(d.reshape(shape) for d in douts)


# ----------------------------------------------------------------------------------------
# Likelihood
# ----------------------------------------------------------------------------------------
def _arrays(*arrays):
    """Broadcast to float64 arrays; returns (shape, flat arrays)."""
    out = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in arrays))
    return out[0].shape, [np.ascontiguousarray(v).reshape(-1) for v in out]


def _pieces(params, x, t_x, T):
    """Per-row log C, log E, log M (1-d inputs): L = C M, P(alive) = E / M."""
    r, alpha, s, beta = params
    logE, logM = np.empty(len(x)), np.empty(len(x))
    for idx, a, coefs in _units(x, t_x, params, False):
        e, _, mm, _ = _unit_pieces(params, a, t_x[idx], T[idx], coefs, False)
        logE[idx], logM[idx] = e, mm
    logC = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return logC, logE, logM


def loglik(params, x, t_x, T):
    """Per-customer Pareto/NBD log-likelihood, eq. (18) of Fader & Hardie (2005).

    Parameters
    ----------
    params : sequence of 4 floats
        (r, alpha, s, beta); alpha and beta in the time unit of t_x and T.
    x, t_x, T : array_like
        Repeat purchases, recency and age (time units), broadcast together.

    Returns
    -------
    numpy.ndarray
        log L_i, shape of the broadcast inputs; finite for every valid row.
    """
    params = _params4(params)
    shape, (x, t_x, T) = _arrays(x, t_x, T)
    logC, _, logM = _pieces(params, x, t_x, T)
    return (logC + logM).reshape(shape)


def loglik_and_grad(params, x, t_x, T, weights=None, groups=None):
    """Total weighted log-likelihood and its analytic gradient w.r.t. log-parameters.

    Parameters
    ----------
    params : sequence of 4 floats
        (r, alpha, s, beta), all > 0.
    x, t_x, T : array_like, shape (n,)
        Distinct (or individual) customers' frequency, recency and age.
    weights : array_like, shape (n,), optional
        Number of customers per row (default 1).
    groups : tuple, optional
        ``_group_rows(x)``, precomputed once per fit.

    Returns
    -------
    ll : float
        sum_i w_i log L_i (eq. 18).
    grad : numpy.ndarray, shape (4,)
        d ll / d log(r, alpha, s, beta).
    """
    params = _params4(params)
    r, alpha, s, beta = params
    _, (x, t_x, T) = _arrays(x, t_x, T)
    w = np.ones(x.shape) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if groups is None:
        groups = _group_rows(x)
    ll, g = 0.0, np.zeros(4)
    try:
        for idx, a, coefs in _units(x, t_x, params, True, groups):
            _, _, logM, grads = _unit_pieces(params, a, t_x[idx], T[idx], coefs, True)
            wi = w[idx]
            ll += float(wi @ logM)
            g += [float(wi @ gi) for gi in grads]
    except SeriesTooLongError:  # absurd trial point of an optimiser: tell it to back off
        return -np.inf, np.full(4, np.nan)
    # log C = lgamma(r + x) - lgamma(r) + r log(alpha) + s log(beta), by distinct frequency
    ux, order, bounds = groups
    wx = np.add.reduceat(w[order], bounds[:-1]) if len(order) else np.zeros(0)
    W = wx.sum()
    ll += float(wx @ (gammaln(r + ux) - gammaln(r))) + W * (r * np.log(alpha) + s * np.log(beta))
    g += [float(wx @ (digamma(r + ux) - digamma(r))) + W * np.log(alpha), W * r / alpha,
          W * np.log(beta), W * s / beta]
    return ll, g * np.array(params)


# ----------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------
def conditional_probability_alive(params, x, t_x, T):
    """P(alive at T | x, t_x, T), eqs. (36)-(37): E / (E + s I) in the notation above.

    Returns
    -------
    numpy.ndarray
        Probabilities in (0, 1], shape of the broadcast inputs (1 where t_x = T).
    """
    params = _params4(params)
    shape, (x, t_x, T) = _arrays(x, t_x, T)
    out = np.empty(len(x))
    for idx, a, coefs in _units(x, t_x, params, False):
        out[idx] = _unit_p_alive(params, a, t_x[idx], T[idx], coefs)
    return out.reshape(shape)


def _unit_p_alive(params, a, tx, T, coefs):
    """P(alive) = 1 / (1 + s I / E) with few transcendental functions (scoring path).

    From the series form of F: s F(T) / E = s/(a+s) S_T rho_T and
    s F(t_x) / E = s/(a+s) X S_tx rho_tx, where
    X = ((alpha+T)/(alpha+t_x))^a ((beta+T)/(beta+t_x))^s and rho_u = 1 if alpha >= beta,
    (alpha+u)/(beta+u) otherwise. The difference is taken after factoring out X, so nothing
    overflows for heavy buyers.
    """
    _, alpha, s, beta = params
    big = alpha >= beta
    m, mn = (alpha, beta) if big else (beta, alpha)
    d = m - mn
    z_tx, z_T = d / (m + tx), d / (m + T)
    if coefs is not None:
        S_tx = _horner_trimmed(coefs, z_tx, scoring=True)[0]
        S_T = _horner_trimmed(coefs, z_T, scoring=True)[0]
    else:
        a2 = np.concatenate((a, a))
        p, q = (a2, s + 1.0) if big else (s + 1.0, a2)
        S = _series_rows(p, q, np.concatenate((z_tx, z_T)), False)[0]
        S_tx, S_T = S[: len(tx)], S[len(tx):]
    if not big:  # rho_u = (alpha+u)/(beta+u) = 1 - z_u
        S_tx *= 1.0 - z_tx
        S_T *= 1.0 - z_T
    logX = np.log((alpha + T) / (alpha + tx))
    logX *= a
    logX += s * np.log((beta + T) / (beta + tx))
    # X > e^700 means P(alive) < 1e-300: clipping keeps exp finite and changes nothing else
    np.minimum(logX, 700.0, out=logX)
    v = np.exp(logX, out=logX)
    v *= S_tx
    v -= S_T
    np.maximum(v, 0.0, out=v)
    v *= s / (a + s)
    v += 1.0
    return np.reciprocal(v, out=v)


def _one_minus_pow_over(k: float, y):
    """(1 - exp(-k y)) / k for y >= 0 and a scalar k, with its limit y at k = 0."""
    if abs(k) < 1e-8:
        return y * (1.0 - k * y / 2.0)
    return -np.expm1(-k * y) / k


def conditional_expected_number_of_purchases_up_to_time(params, t, x, t_x, T):
    """E[X(T, T+t) | x, t_x, T], eq. (41) of Fader & Hardie (2005).

    P(alive) * (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)], with the
    limit (r+x)(beta+T)/(alpha+T) * log(1 + t/(beta+T)) at s = 1.

    Parameters
    ----------
    t : array_like
        Length of the prediction period (time units), >= 0.

    Returns
    -------
    numpy.ndarray
        Expected repeat purchases in (T, T+t], shape of the broadcast inputs.
    """
    params = _params4(params)
    _, alpha, s, beta = params
    shape, (t, x, t_x, T) = _arrays(t, x, t_x, T)
    out = np.empty(len(x))
    for idx, a, coefs in _units(x, t_x, params, False):
        Ti = T[idx]
        bT = beta + Ti
        p_alive = _unit_p_alive(params, a, t_x[idx], Ti, coefs)
        out[idx] = p_alive * (a / (alpha + Ti) * bT) * _one_minus_pow_over(
            s - 1.0, np.log1p(t[idx] / bT))
    return out.reshape(shape)


def expected_number_of_purchases_up_to_time(params, t):
    """E[X(t)] for a new customer, eq. (27): r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
    r, alpha, s, beta = (float(v) for v in params)
    t = np.asarray(t, dtype=float)
    return r * beta / alpha * _one_minus_pow_over(s - 1, np.log1p(t / beta))


def purchase_rate_if_alive(params, x, t_x, T):
    """E[lambda | x, t_x, T, alive] = (r + x) / (alpha + T), purchases per time unit.

    Given the customer is alive, the likelihood in lambda is lambda^x exp(-lambda T), so the
    posterior of lambda is Gamma(r + x, alpha + T).
    """
    r, alpha, _, _ = (float(v) for v in params)
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    return (r + x) / (alpha + T)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)
_GL_X = (_GL_X + 1) / 2
_GL_W = _GL_W / 2


def conditional_probability_of_n_purchases_up_to_time(params, n, t, x, t_x, T):
    """P(X(T, T+t) = n | x, t_x, T), Hardie's note 028 ("The Pareto/NBD conditional pmf").

    Derived here in the integral form, which needs no cancelling sums: with A = alpha+T,
    B = beta+T, a = r+x, b = s+1,

        P(n) = 1{n=0} (1 - P(alive))
               + Gamma(a+n) alpha^r beta^s / (Gamma(r) n! L) * [ t^n (A+t)^-(a+n) (B+t)^-s
                 + s * int_0^t tau^n (A+tau)^-(a+n) (B+tau)^-b dtau ].

    The integral becomes, with y = tau/(A+tau), A^(1-a) B^-b int_0^Y y^n (1-y)^(a+b-2)
    (1 + (A/B - 1) y)^-b dy, Y = t/(A+t): a Beta(n+1, a+b-1) mass below Y times the mean of
    a smooth factor, taken by 48-point Gauss-Legendre in the Beta probability scale.

    Returns
    -------
    numpy.ndarray
        Probabilities, shape of the broadcast inputs; 0 (n > 0) or 1 (n = 0) where t = 0.
    """
    shape, (n, t, x, t_x, T) = _arrays(n, t, x, t_x, T)
    params = _params4(params)
    out = np.empty(len(x))
    step = 1 << 16  # bounds the (rows x 48 nodes) temporaries
    for i in range(0, len(x), step):
        sl = slice(i, i + step)
        out[sl] = _pmf_block(params, n[sl], t[sl], x[sl], t_x[sl], T[sl])
    return out.reshape(shape)


def _pmf_block(params, n, t, x, t_x, T):
    r, alpha, s, beta = params
    logC, logE, logM = _pieces(params, x, t_x, T)
    logL = logC + logM
    p_dead = -np.expm1(logE - logM)
    A, B, a, b = alpha + T, beta + T, r + x, s + 1.0
    tpos = t > 0
    ts = np.where(tpos, t, 1.0)
    logK = gammaln(a + n) - gammaln(n + 1) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    with np.errstate(divide="ignore"):
        term1 = n * np.log(ts) - (a + n) * np.log(A + ts) - s * np.log(B + ts)
        Y = ts / (A + ts)
        c = a + b - 1
        U = betainc(n + 1, c, Y)
        y = betaincinv(n[..., None] + 1, c[..., None], U[..., None] * _GL_X)
        kappa = (A - B) / B
        h = np.exp(-b * np.log1p(kappa[..., None] * y))
        mean_h = h @ _GL_W
        term2 = (np.log(s) + (1 - a) * np.log(A) - b * np.log(B) + betaln(n + 1, c)
                 + np.log(U) + np.log(mean_h))
    alive_part = np.exp(logK + np.logaddexp(term1, term2) - logL)
    out = (n == 0) * p_dead + alive_part
    out = np.where(tpos, out, (n == 0).astype(float))
    return np.clip(out, 0.0, 1.0)


# ----------------------------------------------------------------------------------------
# Simulation
# ----------------------------------------------------------------------------------------
def simulate_rfm(params, n_customers: int, T, seed=None) -> pd.DataFrame:
    """Simulate Pareto/NBD customers' RFM summaries: :func:`clvtools.btyd.simulate.simulate_pareto_nbd`.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``mu``,
        ``alive`` (alive at T).
    """
    return simulate_pareto_nbd(params, n_customers, T, seed=seed)

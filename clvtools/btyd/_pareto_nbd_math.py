"""Pareto/NBD closed forms, vectorised and stable in log space.

Pure functions of ``params = (r, alpha, s, beta)`` and float64 arrays (broadcast together) of
frequency ``x``, recency ``t_x`` and age ``T``, all in the same time unit. ``ParetoNBDFitter``
orchestrates; nothing here reads or writes state.

The model (Schmittlein, Morrison & Colombo 1987) and the expressions used follow
Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(http://brucehardie.com/notes/009/) -- equation numbers below refer to that note -- and
Hardie's note 028, "The Pareto/NBD Conditional PMF", for P(X(T, T+t) = n | x, t_x, T).

The Gauss hypergeometric series that the likelihood needs lives in
:mod:`clvtools.btyd._pareto_nbd_series`.
"""
from __future__ import annotations

from itertools import repeat

import numpy as np
import pandas as pd
from scipy.special import betainc, betaincinv, betaln, digamma, gammaln

from ._pareto_nbd_series import (
    SeriesTooLongError,
    _group_rows,
    _params4,
    _unit_pieces,
    _units,
    horner_per_row,
    log_F,
    scoring_units,
)
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


def loglik_and_grad(params, x, t_x, T, weights=None, groups=None, distinct=None):
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
    distinct : list, optional
        ``distinct_times(t_x, T, groups)``, precomputed once per fit: the series are summed
        once per distinct recency and age of each frequency.

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
        units = _units(x, t_x, params, True, groups)
        for (idx, a, coefs), dist in zip(units, distinct or repeat(None), strict=False):
            _, _, logM, grads = _unit_pieces(params, a, t_x[idx], T[idx], coefs, True, dist)
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
    for idx, a, coefs in scoring_units(x, params):
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
    # each row with its own number of terms: the same value alone or among other customers
    S_tx, S_T = horner_per_row(coefs[0], z_tx), horner_per_row(coefs[0], z_T)
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
    for idx, a, coefs in scoring_units(x, params):
        Ti = T[idx]
        bT = beta + Ti
        p_alive = _unit_p_alive(params, a, t_x[idx], Ti, coefs)
        out[idx] = p_alive * (a / (alpha + Ti) * bT) * _one_minus_pow_over(
            s - 1.0, np.log1p(t[idx] / bT))
    return out.reshape(shape)


def expected_purchases_by_horizon(params, horizons, x, t_x, T):
    """:func:`conditional_expected_number_of_purchases_up_to_time` at several horizons, with
    P(alive) computed once per customer (the costly part) instead of once per horizon.

    Parameters
    ----------
    horizons : numpy.ndarray, shape (k,)
        Lengths of the prediction periods (time units), >= 0.
    x, t_x, T : array_like, shape (n,)

    Returns
    -------
    numpy.ndarray, shape (n, k)
    """
    params = _params4(params)
    _, alpha, s, beta = params
    _, (x, t_x, T) = _arrays(x, t_x, T)
    out = np.empty((len(x), len(horizons)))
    for idx, a, coefs in scoring_units(x, params):
        Ti = T[idx]
        bT = beta + Ti
        p_alive = _unit_p_alive(params, a, t_x[idx], Ti, coefs)
        scale = p_alive * (a / (alpha + Ti) * bT)
        for k, h in enumerate(horizons):
            out[idx, k] = scale * _one_minus_pow_over(s - 1.0, np.log1p(h / bT))
    return out


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
    """Simulate Pareto/NBD customers' RFM summaries:
    :func:`clvtools.btyd.simulate.simulate_pareto_nbd`.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency``, ``recency``, ``T`` and the latent ``lambda``, ``mu``,
        ``alive`` (alive at T).
    """
    return simulate_pareto_nbd(params, n_customers, T, seed=seed)

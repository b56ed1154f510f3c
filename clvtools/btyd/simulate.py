"""Seeded, vectorised simulators of the BTYD models, returning RFM summaries.

Each simulator draws customers from the model's prior (the heterogeneity distributions),
runs their purchase and dropout processes over an observation window and returns one row per
customer in lifetimes' conventions (``frequency`` = repeat purchases, ``recency`` = first to
last purchase, ``T`` = first purchase to the observation end), plus the latent quantities, so
that recovery, coverage and prediction tests have a known truth. With ``holdout > 0`` the
processes continue for ``holdout`` more time units (BG/BB: opportunities) after the end of
observation and the purchases made there are counted in ``frequency_holdout``.

Time units are those of the parameters: ``alpha`` (and ``beta`` for Pareto/NBD) are in the
unit of ``T``. Every function takes ``params`` as a sequence in the fitter's order, a mapping
(e.g. ``fitter.params_``) or a fitted fitter, and ``seed`` as an int or a
``numpy.random.Generator``; the same seed gives the same customers.

Functions
---------
simulate_bgnbd, simulate_mbgnbd, simulate_pareto_nbd
    Continuous-time models, ages ``T`` (scalar or one per customer).
simulate_bgbb
    Discrete opportunities, ``n_periods`` (scalar or one per customer).
simulate_gamma_gamma
    Mean spend of each customer's repeat purchases given their frequency.
simulate_rfm_with_covariates
    Pareto/NBD or BG/NBD customers whose rates depend on covariates (linear predictors).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError

__all__ = [
    "simulate_bgbb",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "simulate_mbgnbd",
    "simulate_pareto_nbd",
    "simulate_rfm_with_covariates",
]


def _params(params, names: tuple[str, ...]) -> tuple[float, ...]:
    """(Sequence | mapping | fitted fitter) -> positive floats in the order ``names``."""
    if hasattr(params, "params_"):
        params = params.params_
    try:
        if hasattr(params, "keys"):
            values = tuple(float(params[n]) for n in names)
        else:
            values = tuple(float(v) for v in params)
    except (KeyError, TypeError, ValueError):
        raise ClvInputError(
            f"The 'params' must hold {len(names)} numbers ({', '.join(names)}). "
            f"Got {params!r} instead.",
            advice="pass a sequence in that order, a mapping with those keys or a fitted model.",
        ) from None
    if len(values) != len(names) or not all(np.isfinite(v) and v > 0 for v in values):
        raise ClvInputError(
            f"The 'params' must be {len(names)} positive numbers ({', '.join(names)}). "
            f"Got {params!r} instead."
        )
    return values


def _n(n_customers) -> int:
    if not (isinstance(n_customers, (int, np.integer)) and n_customers >= 1):
        raise ClvInputError(
            f"The 'n_customers' parameter must be a positive integer. Got {n_customers!r} instead."
        )
    return int(n_customers)


def _ages(T, n: int, name: str = "T", integer: bool = False) -> np.ndarray:
    arr = np.asarray(T, dtype=float)
    if arr.ndim > 1 or (arr.ndim == 1 and len(arr) != n):
        raise ClvInputError(
            f"The {name!r} argument must be one number or one value per customer ({n}). "
            f"Got shape {arr.shape} instead."
        )
    arr = np.broadcast_to(arr, (n,)).copy()
    bad = ~np.isfinite(arr) | (arr <= 0) | (integer & (arr != np.round(arr)))
    if bad.any():
        kind = "positive whole numbers" if integer else "positive numbers"
        raise ClvInputError(f"The {name!r} values must be {kind}.", column=name,
                            n_rows=int(bad.sum()))
    return arr


def _holdout(holdout, integer: bool = False) -> float:
    ok = isinstance(holdout, (int, float, np.integer, np.floating)) and np.isfinite(holdout)
    ok = ok and holdout >= 0 and (not integer or float(holdout).is_integer())
    if not ok:
        kind = "a non-negative whole number" if integer else "a non-negative number"
        raise ClvInputError(f"The 'holdout' parameter must be {kind}. Got {holdout!r} instead.")
    return float(holdout)


def _last_of(x: np.ndarray, m: np.ndarray, T: np.ndarray, rng) -> np.ndarray:
    """Time of the x-th of m uniform events on (0, T]: T * Beta(x, m - x + 1); 0 if x = 0."""
    tx = np.zeros(len(x))
    pos = x > 0
    tx[pos] = T[pos] * rng.beta(x[pos], m[pos] - x[pos] + 1.0)
    return tx


def _dropout_probabilities(rng, a: float, b: float, n: int) -> np.ndarray:
    """n draws of Beta(a, b), each in (0, 1].

    A degenerate fit (every customer with the same purchases: a near 0, b huge) makes numpy's
    sampler return exact zeros, or NaN where both are tiny (0/0), and the geometric dropout
    refuses p = 0. The distribution is then nearly Bernoulli(a / (a + b)) on {0, 1}: NaN
    draws take that, and p = 0 (never drops out) becomes the smallest positive double, whose
    geometric draw is as good as never.
    """
    p = rng.beta(a, b, n)
    lost = np.isnan(p)
    if lost.any():
        p[lost] = (rng.random(int(lost.sum())) < a / (a + b)).astype(float)
    return np.maximum(p, np.finfo(float).tiny)


def _beta_geo(params, n_customers, T, seed, holdout, modified: bool) -> pd.DataFrame:
    r, alpha, a, b = _params(params, ("r", "alpha", "a", "b"))
    n = _n(n_customers)
    T = _ages(T, n)
    h = _holdout(holdout)
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = _dropout_probabilities(rng, a, b, n)
    # purchase events of a customer who never drops out: m1 in (0, T], m2 in (T, T + h]
    m1 = rng.poisson(lam * T)
    m2 = rng.poisson(lam * h) if h > 0 else np.zeros(n, dtype=np.int64)
    # dropout right after the K-th repeat purchase, K ~ Geometric(p) on {1, 2, ...};
    # MBG/NBD can also drop out right after the first purchase: K - 1 on {0, 1, ...}
    K = rng.geometric(p) - (1 if modified else 0)
    x = np.minimum(K, m1)
    tx = _last_of(x, m1, T, rng)
    alive = K > m1
    x_hold = np.where(alive, np.minimum(K - m1, m2), 0)
    out = {"frequency": x.astype(float), "recency": tx, "T": T, "lambda": lam, "p": p,
           "alive": alive}
    if h > 0:
        out["frequency_holdout"] = x_hold.astype(float)
        out["alive_end"] = K > m1 + m2
    return pd.DataFrame(out)


def simulate_bgnbd(params, n_customers, T, seed=None, holdout=0.0) -> pd.DataFrame:
    """Simulate BG/NBD customers (Fader, Hardie & Lee 2005, Marketing Science 24 (2)).

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b). While alive a customer buys as a Poisson
    process of rate lambda; right after each repeat purchase they drop out with probability
    p. Sampled exactly: with m ~ Poisson(lambda T) events in (0, T] and K ~ Geometric(p)
    the index of the fatal purchase, x = min(K, m), and the x-th of m uniform event times is
    T * Beta(x, m - x + 1).

    Parameters
    ----------
    params : sequence (r, alpha, a, b), mapping or fitted BetaGeoFitter
        alpha in the time unit of ``T``.
    n_customers : int
    T : float or array_like, shape (n_customers,)
        Each customer's age at the end of observation (time units, > 0).
    seed : int or numpy.random.Generator, optional
    holdout : float, default 0
        Length of a period after T over which to continue the processes (time units).

    Returns
    -------
    pandas.DataFrame, shape (n_customers, 6 or 8)
        ``frequency``, ``recency``, ``T``, latent ``lambda``, ``p`` and ``alive`` (at T); with
        ``holdout > 0`` also ``frequency_holdout`` (purchases in (T, T + holdout]) and
        ``alive_end`` (alive at T + holdout).
    """
    return _beta_geo(params, n_customers, T, seed, holdout, modified=False)


def simulate_mbgnbd(params, n_customers, T, seed=None, holdout=0.0) -> pd.DataFrame:
    """Simulate MBG/NBD customers (Batislam, Denizel & Filiztekin 2007, IJRM 24 (3)).

    As :func:`simulate_bgnbd`, except that the customer may also drop out right after the
    first purchase (K - 1 with K ~ Geometric(p)), so customers without repeat purchases may be
    dead. Parameters and columns are those of :func:`simulate_bgnbd`.
    """
    return _beta_geo(params, n_customers, T, seed, holdout, modified=True)


def simulate_pareto_nbd(params, n_customers, T, seed=None, holdout=0.0) -> pd.DataFrame:
    """Simulate Pareto/NBD customers (Schmittlein, Morrison & Colombo 1987).

    lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime omega ~ Exponential(mu);
    purchases form a Poisson process of rate lambda on (0, omega]. The count in (0, T] is
    Poisson(lambda min(omega, T)) and, given x > 0 of them, the last is min(omega, T) U^(1/x).

    Parameters
    ----------
    params : sequence (r, alpha, s, beta), mapping or fitted ParetoNBDFitter
        alpha and beta in the time unit of ``T``.
    n_customers, T, seed, holdout
        As in :func:`simulate_bgnbd`.

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``recency``, ``T``, latent ``lambda``, ``mu``, ``alive`` (omega > T);
        with ``holdout > 0`` also ``frequency_holdout`` and ``alive_end``.
    """
    r, alpha, s, beta = _params(params, ("r", "alpha", "s", "beta"))
    n = _n(n_customers)
    T = _ages(T, n)
    h = _holdout(holdout)
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    omega = rng.exponential(1.0, n) / mu
    active = np.minimum(omega, T)
    x = rng.poisson(lam * active)
    u = rng.random(n)
    tx = np.where(x > 0, active * u ** (1.0 / np.maximum(x, 1)), 0.0)
    out = {"frequency": x.astype(float), "recency": tx, "T": T, "lambda": lam, "mu": mu,
           "alive": omega > T}
    if h > 0:
        window = np.clip(np.minimum(omega, T + h) - T, 0.0, None)
        out["frequency_holdout"] = rng.poisson(lam * window).astype(float)
        out["alive_end"] = omega > T + h
    return pd.DataFrame(out)


def simulate_bgbb(params, n_customers, n_periods, seed=None, holdout=0) -> pd.DataFrame:
    """Simulate BG/BB customers (Fader, Hardie & Shang 2010, Marketing Science 29 (6)).

    p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta). At each opportunity t = 1, 2, ... a
    customer alive at t - 1 first drops out with probability theta and, if still alive, buys
    with probability p; P(alive at t) = (1 - theta)^t. Simulated opportunity by opportunity
    (vectorised over customers; cost n_customers x max(n_periods + holdout)).

    Parameters
    ----------
    params : sequence (alpha, beta, gamma, delta), mapping or fitted BetaGeoBetaBinomFitter
    n_customers : int
    n_periods : int or array_like of int, shape (n_customers,)
        Opportunities after the first purchase observed for each customer (>= 1).
    seed : int or numpy.random.Generator, optional
    holdout : int, default 0
        Opportunities after ``n_periods`` over which to continue.

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (opportunities with a purchase), ``recency`` (the last of them, 0 if
        none), ``n_periods``, latent ``p``, ``theta``, ``alive`` (at n_periods); with
        ``holdout > 0`` also ``frequency_holdout`` and ``alive_end``.
    """
    a, b, g, d = _params(params, ("alpha", "beta", "gamma", "delta"))
    n = _n(n_customers)
    n_per = _ages(n_periods, n, name="n_periods", integer=True)
    h = int(_holdout(holdout, integer=True))
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    theta = rng.beta(g, d, n)
    # index of the opportunity at whose start the customer drops out: Geometric(theta)
    death = rng.geometric(theta)
    x = np.zeros(n)
    tx = np.zeros(n)
    x_hold = np.zeros(n)
    for t in range(1, int(n_per.max()) + h + 1):
        buys = (t < death) & (rng.random(n) < p)
        in_obs = t <= n_per
        obs_buy = buys & in_obs
        x += obs_buy
        tx[obs_buy] = t
        x_hold += buys & ~in_obs & (t <= n_per + h)
    out = {"frequency": x, "recency": tx, "n_periods": n_per, "p": p, "theta": theta,
           "alive": death > n_per}
    if h > 0:
        out["frequency_holdout"] = x_hold
        out["alive_end"] = death > n_per + h
    return pd.DataFrame(out)


def simulate_gamma_gamma(params, frequency, seed=None) -> np.ndarray:
    """Simulate each customer's mean spend per repeat purchase under the Gamma-Gamma model.

    nu ~ Gamma(q, rate v) per customer; each purchase is worth z ~ Gamma(p, rate nu), so the
    mean of x purchases is Gamma(p x, rate nu x) (Fader, Hardie & Lee 2005, note 025).

    Parameters
    ----------
    params : sequence (p, q, v), mapping or fitted GammaGammaFitter
        v in currency units.
    frequency : array_like, shape (n,)
        Repeat purchases x (whole numbers >= 0).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    numpy.ndarray, shape (n,)
        Mean spend of the repeat purchases (currency); 0 where x = 0 (lifetimes' convention).
    """
    p, q, v = _params(params, ("p", "q", "v"))
    x = np.asarray(frequency, dtype=float).reshape(-1)
    bad = ~np.isfinite(x) | (x < 0) | (x != np.round(x))
    if bad.any():
        raise ClvInputError("The 'frequency' values must be whole numbers >= 0.",
                            column="frequency", n_rows=int(bad.sum()))
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / v, len(x))
    pos = x > 0
    out = np.zeros(len(x))
    out[pos] = rng.gamma(p * x[pos], 1.0 / (nu[pos] * x[pos]))
    return out


def simulate_rfm_with_covariates(model: str, params, eta_purchase, eta_dropout, T,
                                 seed=None) -> pd.DataFrame:
    """Simulate RFM summaries of customers with known covariate effects (vectorised, seeded).

    Parameters
    ----------
    model : {"pnbd", "bgnbd"}
        Pareto/NBD: lambda ~ Gamma(r, alpha) e^{eta_p}, mu ~ Gamma(s, beta) e^{eta_d},
        lifetime ~ Exponential(mu). BG/NBD: lambda as above, p0 ~ Beta(a, b), dropout after
        each repeat purchase with probability 1 - (1 - p0)^{e^{eta_d}} (the forms that
        :class:`~clvtools.btyd.pareto_nbd_covariates.ParetoNBDCovariatesFitter` /
        :class:`~clvtools.btyd.bgnbd_covariates.BetaGeoCovariatesFitter` estimate and
        :func:`clvtools.data.generator.generate_customer_base` simulates).
    params : sequence of 4 floats
        (r, alpha, s, beta) or (r, alpha, a, b); alpha, beta in time units.
    eta_purchase, eta_dropout : array_like, shape (n,)
        Linear predictors gamma_p' z_i and gamma_d' w_i.
    T : array_like, shape (n,)
        Ages at the end of observation (time units).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``recency``, ``T`` (continuous times), ``alive`` (bool, alive at T).
    """
    if model not in ("pnbd", "bgnbd"):
        raise ClvInputError(f"The 'model' parameter must be 'pnbd' or 'bgnbd'. Got {model!r}.")
    rng = np.random.default_rng(seed)
    ep, ed, T = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                      for v in (eta_purchase, eta_dropout, T)))
    n = len(T)
    r, alpha, c, d = (float(v) for v in params)
    lam = rng.gamma(r, 1.0 / alpha, n) * np.exp(ep)
    if model == "pnbd":
        mu = rng.gamma(c, 1.0 / d, n) * np.exp(ed)
        horizon = np.minimum(rng.exponential(1.0, n) / np.maximum(mu, 1e-300), T)
        x = rng.poisson(lam * horizon)
        with np.errstate(divide="ignore"):
            tx = np.where(x > 0, horizon * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
        alive = horizon >= T
    else:
        p0 = np.minimum(rng.beta(c, d, n), np.nextafter(1.0, 0.0))
        p = -np.expm1(np.exp(ed) * np.log1p(-p0))
        N = rng.poisson(lam * T)
        J = rng.geometric(np.maximum(p, 1e-12))
        x = np.minimum(N, J)
        # the x-th of N uniform order statistics on (0, T)
        tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(N - x + 1, 1)), 0.0)
        alive = J > N
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T, "alive": alive})

"""P(churn declared within a horizon) under a BG/NBD or MBG/NBD purchase process.

Churn is declared ``c`` time units after a customer's last purchase (the churn rule of the
concepts page). Scored at the observation end ``T`` of a customer whose last purchase was
``s = T - t_x`` ago (``s < c``: not declared yet), the current declaration date is
``d = c - s`` ahead. Churn is declared within the horizon ``h`` when some quiet spell of
length ``c`` is complete by ``h``:

* a customer who has already left (probability ``1 - P(alive)``) buys nothing more: declared
  at ``d``, within the horizon iff ``d <= h``;
* an alive customer with purchase rate ``lambda`` who drops out with probability ``p`` after
  each purchase is declared at ``d`` if they buy nothing in ``(0, d]``; after a purchase at
  ``tau`` they are declared at ``tau + c`` if they drop out then, and otherwise the same
  question starts again from ``tau``.

For ``h < c`` that gives ``exp(-lambda d) 1{d <= h}``. For ``c <= h <= 2c`` (the defaults: 26
and 52 weeks) the renewal equation has a closed form; with ``q = 1 - p``, ``m = h - c`` and
``M = min(d, m)``::

    P(declared by h | lambda, p) = exp(-lambda d)
        + (1 + q/p exp(-lambda c)) (1 - exp(-lambda M) - exp(-lambda p m)
                                    + exp(-lambda (p m + q M)))

Given alive, ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + x)`` (``b + x + 1``
for MBG/NBD, whose customers may also leave after the first purchase), independently. Every
term is an exponential in ``lambda``, whose posterior mean is
``L(u) = ((alpha + T) / (alpha + T + u))^(r + x)``; the mean over ``p`` is a Gauss-Jacobi
quadrature (exact for the Beta weight, smooth integrand). Longer horizons (``h > 2c``) are
simulated from the same posterior (:func:`simulate_declared_churn`).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import ClvInputError
from .bgnbd import BetaGeoFitter
from .mbgnbd import ModifiedBetaGeoFitter

__all__ = ["declared_churn_probability", "simulate_declared_churn"]

#: Gauss-Jacobi nodes of the mean over the dropout probability p.
N_NODES = 24
#: Above this posterior b (b + x), p's nodes come from the Gamma limit of the Beta.
_LARGE_B = 400.0


def _posterior(model, frequency, recency, T):
    """(P(alive), k = r + x, beta = alpha + T, Beta(a, b') of p given alive), as arrays."""
    if not isinstance(model, BetaGeoFitter):
        raise ClvInputError(
            "declared_churn_probability needs a fitted BetaGeoFitter or "
            f"ModifiedBetaGeoFitter. Got {type(model).__name__}.")
    x, tx, age = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(frequency, recency, T))
    r, alpha, a, b = (float(model.params_[k]) for k in ("r", "alpha", "a", "b"))
    p_alive = np.asarray(model.conditional_probability_alive(x, tx, age), dtype=float)
    extra = 1.0 if isinstance(model, ModifiedBetaGeoFitter) else 0.0
    return x, tx, age, p_alive, r + x, alpha + age, a, b + x + extra


def _check(horizon, churn_after):
    for name, v in (("horizon", horizon), ("churn_after", churn_after)):
        if not np.isfinite(v) or v <= 0:
            raise ClvInputError(f"The {name!r} parameter must be a positive number of time "
                                f"units. Got {v!r} instead.")


def declared_churn_probability(model, frequency, recency, T, *, horizon: float,
                               churn_after: float, n_nodes: int = N_NODES,
                               n_draws: int = 400, seed: int = 0) -> np.ndarray:
    """P(churn declared within ``horizon`` | history, not declared by ``T``), per customer.

    Parameters
    ----------
    model : BetaGeoFitter or ModifiedBetaGeoFitter
        Fitted on the history up to the scoring date.
    frequency, recency, T : array_like, shape (n,)
        RFM summary at the scoring date (time units); every customer must be live,
        ``T - recency < churn_after``.
    horizon, churn_after : float
        Time units.
    n_nodes : int
        Gauss-Jacobi nodes over the dropout probability.
    n_draws, seed : int
        Posterior draws per customer and their seed, used only when
        ``horizon > 2 churn_after`` (no closed form there).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Probabilities in [0, 1]; exactly 0 where the current declaration date lies beyond a
        horizon shorter than ``churn_after``.
    """
    _check(horizon, churn_after)
    if horizon > 2 * churn_after:
        return simulate_declared_churn(model, frequency, recency, T, horizon=horizon,
                                       churn_after=churn_after, n_draws=n_draws, seed=seed)
    x, tx, age, p_alive, k, beta, a, b_post = _posterior(model, frequency, recency, T)
    c, h = float(churn_after), float(horizon)
    d = c - (age - tx)
    if np.any(d <= 0):
        raise ClvInputError("Some customers are already declared churned (T - recency >= "
                            "churn_after): their churn probability is not defined.")
    within = (d <= h).astype(float)
    if h < c:
        alive_part = _laplace(k, beta, d) * within
    else:
        alive_part = _laplace(k, beta, d) + _renewal_terms(k, beta, a, b_post, c, h - c, d,
                                                          n_nodes)
    return np.clip((1.0 - p_alive) * within + p_alive * alive_part, 0.0, 1.0)


def _laplace(k, beta, u):
    """E[exp(-lambda u)] for lambda ~ Gamma(k, beta): ``(beta / (beta + u))^k``; ``k`` and
    ``beta`` of shape (n,) or (n, 1) broadcast against ``u``."""
    return np.exp(-k * np.log1p(u / beta))


def _beta_nodes(n_nodes, a, b):
    """Nodes and weights (summing to 1) of the mean over p ~ Beta(a, b)."""
    with np.errstate(all="ignore"):
        if b > _LARGE_B:
            # Gauss-Jacobi's normalising constant overflows; p is then near 0 and b p nearly
            # Gamma(a, 1) (error O(1/b)): generalised Gauss-Laguerre
            g, w = special.roots_genlaguerre(n_nodes, a - 1.0)
            nodes, weights = np.minimum(g / b, 1.0), w / w.sum()
        else:
            t, w = special.roots_jacobi(n_nodes, b - 1.0, a - 1.0)  # (1-p)^(b-1) p^(a-1)
            nodes, weights = (1.0 + t) / 2.0, w / w.sum()
    if not (np.all(np.isfinite(nodes)) and np.all(np.isfinite(weights))):
        # a and b so large (a degenerate fit: no heterogeneity in dropout) that the rules
        # overflow; Beta(a, b) is then a point mass at its mean, to O(1 / (a + b))
        return np.array([a / (a + b)]), np.array([1.0])
    return nodes, weights


def beta_nodes(n_nodes: int, a, b) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_beta_nodes` for many (a, b) pairs at once: Golub-Welsch on a stack of Jacobi
    matrices (one batched symmetric eigen-decomposition instead of one scipy call per pair).

    Parameters
    ----------
    n_nodes : int
    a, b : array_like, shape (D,)
        Beta parameters, positive.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray), shapes (D, n_nodes)
        Nodes in [0, 1] and weights summing to 1 per row: the rule of :func:`_beta_nodes`
        (Gauss-Jacobi, generalised Gauss-Laguerre for b above 400, a point mass repeated
        where the rules overflow).
    """
    a = np.asarray(a, dtype=float).reshape(-1)
    b = np.asarray(b, dtype=float).reshape(-1)
    nodes = np.empty((a.size, n_nodes))
    weights = np.empty((a.size, n_nodes))
    large = b > _LARGE_B
    for value in np.unique(a[large]):   # p b nearly Gamma(a, 1): one Laguerre rule per a
        rows = large & (a == value)
        with np.errstate(all="ignore"):
            g, w = special.roots_genlaguerre(n_nodes, value - 1.0)
            w = w / w.sum()
        if np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
            nodes[rows], weights[rows] = np.minimum(g[None, :] / b[rows, None], 1.0), w
        else:   # the rule overflows (a degenerate fit): the point mass at the mean
            nodes[rows] = (value / (value + b[rows]))[:, None]
            weights[rows] = 1.0 / n_nodes
    small = ~large
    if small.any():
        # Jacobi weight (1 - x)^al (1 + x)^be on [-1, 1], al = b - 1, be = a - 1; p = (1 + x)/2
        al, be = b[small, None] - 1.0, a[small, None] - 1.0
        k = np.arange(n_nodes, dtype=float)[None, :]
        s = 2.0 * k + al + be
        with np.errstate(all="ignore"):
            diagonal = np.where(s == 0, (be - al) / (al + be + 2.0),
                                (be**2 - al**2) / (s * (s + 2.0)))
            kk, ss = k[:, 1:], s[:, 1:]
            off = np.sqrt(4.0 * kk * (kk + al) * (kk + be) * (kk + al + be)
                          / (ss**2 * (ss + 1.0) * (ss - 1.0)))
        matrix = np.zeros((diagonal.shape[0], n_nodes, n_nodes))
        idx = np.arange(n_nodes)
        matrix[:, idx, idx] = diagonal
        matrix[:, idx[1:], idx[:-1]] = off
        matrix[:, idx[:-1], idx[1:]] = off
        finite = np.isfinite(matrix).all(axis=(1, 2))
        x, vectors = np.linalg.eigh(np.where(finite[:, None, None], matrix, 0.0))
        w = vectors[:, 0, :] ** 2
        rule_nodes, rule_weights = (1.0 + x) / 2.0, w / w.sum(axis=1, keepdims=True)
        # a degenerate fit (no heterogeneity in dropout): Beta(a, b) is a point mass at its
        # mean, to O(1 / (a + b))
        mean = (a[small] / (a[small] + b[small]))[:, None]
        nodes[small] = np.where(finite[:, None], np.clip(rule_nodes, 0.0, 1.0), mean)
        weights[small] = np.where(finite[:, None], rule_weights, 1.0 / n_nodes)
    return nodes, weights


def _renewal_terms(k, beta, a, b_post, c, m, d, n_nodes):
    """E over lambda and p of the second line of the closed form (module docstring), for
    ``m = h - c`` in [0, c]; shape (n,)."""
    out = np.empty_like(d)
    big_m = np.minimum(d, m)
    # the nodes depend on b' = b + x only: one set per distinct frequency
    uniq, inv = np.unique(b_post, return_inverse=True)
    # each frequency's rows as a slice of one sort (in row order, as a mask would list them),
    # not a mask over every row per frequency: hundreds of frequencies at a million rows
    order = np.argsort(inv.ravel(), kind="stable")
    bounds = np.searchsorted(inv.ravel()[order], np.arange(len(uniq) + 1))
    for j, bb in enumerate(uniq):
        rows = order[bounds[j]:bounds[j + 1]]
        p, w = _beta_nodes(n_nodes, a, bb)
        p = p[None, :]
        q = 1.0 - p
        kk, bt, mm = k[rows, None], beta[rows, None], big_m[rows, None]
        pm = p * m

        def lap(u, kk=kk, bt=bt):
            return _laplace(kk, bt, u)

        first = 1.0 - lap(mm) - lap(pm) + lap(pm + q * mm)
        # q/p times a difference that is O(p): its two halves are O(1) and exact
        second = (lap(c) - lap(c + mm)) - (lap(c + pm) - lap(c + pm + q * mm))
        out[rows] = (first + q / p * second) @ w
    return out


def simulate_declared_churn(model, frequency, recency, T, *, horizon: float,
                            churn_after: float, n_draws: int = 400, seed: int = 0,
                            chunk: int = 2_000_000) -> np.ndarray:
    """P(churn declared within ``horizon``) by simulation from the posterior, per customer.

    Each draw: alive with probability P(alive); if alive, ``lambda`` and ``p`` from their
    posterior given alive (module docstring), then purchases (exponential gaps) and a dropout
    after each with probability ``p``, walked until a quiet spell of ``churn_after`` ends
    (declared) or can no longer end within ``horizon``. Any horizon; used where no closed
    form exists (``horizon > 2 churn_after``) and to check the closed form.

    Parameters
    ----------
    model, frequency, recency, T, horizon, churn_after
        As :func:`declared_churn_probability`.
    n_draws : int
        Draws per customer (the standard error of each probability is at most
        ``0.5 / sqrt(n_draws)``).
    seed : int
        Seed of numpy's ``default_rng``.
    chunk : int
        Draws simulated at once (memory).

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    _check(horizon, churn_after)
    x, tx, age, p_alive, k, beta, a, b_post = _posterior(model, frequency, recency, T)
    c, h = float(churn_after), float(horizon)
    rng = np.random.default_rng(seed)
    n = x.size
    out = np.empty(n)
    per = max(1, chunk // max(n_draws, 1))
    for lo in range(0, n, per):
        idx = np.repeat(np.arange(lo, min(n, lo + per)), n_draws)
        last = tx[idx] - age[idx]  # last purchase, time units from now (<= 0)
        alive = rng.random(idx.size) < p_alive[idx]
        lam = rng.gamma(k[idx], 1.0 / beta[idx])
        p = rng.beta(a, b_post[idx])
        declared = np.where(alive, np.inf, last + c)
        active = np.flatnonzero(alive)
        while active.size:
            # alive now and quiet since the last purchase: by memorylessness the next
            # purchase comes an exponential time after now (after the last one, once past now)
            nxt = np.maximum(last[active], 0.0) + rng.exponential(1.0 / lam[active])
            quiet = nxt - last[active] >= c
            declared[active[quiet]] = last[active[quiet]] + c
            buy = active[~quiet]
            last[buy] = nxt[~quiet]
            leaves = rng.random(buy.size) < p[buy]
            declared[buy[leaves]] = last[buy[leaves]] + c
            stay = buy[~leaves]
            active = stay[last[stay] + c <= h]  # a later declaration cannot fall within h
        out[lo:lo + per] = (declared <= h).reshape(-1, n_draws).mean(axis=1)
    return out

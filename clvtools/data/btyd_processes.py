"""The purchase processes of the simulated customer base over the observation window.

Used by :func:`clvtools.data.generator.generate_customer_base` (see its docstrings for the
models and for how continuous times become dates); :mod:`clvtools.data.follow_up` carries
the same processes on after the observation end. Times are in weeks after acquisition.
"""
from __future__ import annotations

import numpy as np

__all__ = ["bgnbd_purchases", "pnbd_purchases", "sorted_uniforms"]


def bgnbd_purchases(rng, params, lam, lin_dropout, t_obs):
    """Repeat purchases of BG/NBD customers (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    rng : numpy.random.Generator
    params : dict
        ``a`` and ``b`` of the Beta distribution of the dropout probability.
    lam, lin_dropout, t_obs : numpy.ndarray, shape (n,)
        Purchase rates (per week), linear predictors of the dropout, weeks observed.

    Returns
    -------
    owner, tau : numpy.ndarray, shape (n_purchases,)
        Customer index and time (weeks after acquisition) of each repeat purchase,
        grouped by customer, ascending within each customer.
    dropout_time : numpy.ndarray, shape (n,)
        Weeks from acquisition to the dropout (at a repeat purchase, before ``t_obs``);
        NaN if alive at the observation end.
    dropout_probability : numpy.ndarray, shape (n,)
        Each customer's dropout probability after a repeat purchase.
    """
    n = lam.size
    p0 = rng.beta(params["a"], params["b"], size=n)
    # (1 - p0) ** m in log space, accurate for p0 near 0; p0 is kept below 1 because
    # Beta draws with small a or b can round to exactly 1 (log1p(-1) = -inf).
    p0 = np.minimum(p0, np.nextafter(1.0, 0.0))
    p_drop = -np.expm1(np.exp(lin_dropout) * np.log1p(-p0))
    # numpy's geometric needs p > 0; below 1e-12 the customer never leaves in practice.
    n_events = rng.poisson(lam * t_obs)
    leave_after = rng.geometric(np.maximum(p_drop, 1e-12))
    n_kept = np.minimum(n_events, leave_after)
    dead = leave_after <= n_events
    owner, u = sorted_uniforms(rng, n_events)
    starts = np.cumsum(n_events) - n_events
    rank = np.arange(owner.size) - starts[owner]
    keep = rank < n_kept[owner]
    owner, tau = owner[keep], u[keep] * t_obs[owner[keep]]
    # The dropout happens at the J-th repeat purchase, the last one kept.
    dropout_time = np.full(n, np.nan)
    last = np.cumsum(n_kept) - 1
    dropout_time[dead] = tau[last[dead]]
    return owner, tau, dropout_time, p_drop


def pnbd_purchases(rng, params, lam, lin_dropout, t_obs):
    """Repeat purchases of Pareto/NBD customers (Schmittlein, Morrison & Colombo 1987).

    As :func:`bgnbd_purchases`, with ``s`` and ``beta`` of the Gamma distribution of the
    dropout rate in ``params``; the last result is each customer's dropout rate (per week).
    Purchases are not sorted within a customer. ``dropout_time`` is every customer's
    lifetime, also if it ends after ``t_obs`` (the follow-up needs it).
    """
    n = lam.size
    mu = rng.gamma(params["s"], 1.0 / params["beta"], size=n) * np.exp(lin_dropout)
    lifetime = rng.exponential(1.0 / np.maximum(mu, 1e-300))
    window = np.minimum(t_obs, lifetime)
    n_events = rng.poisson(lam * window)
    owner = np.repeat(np.arange(n), n_events)
    tau = rng.random(owner.size) * window[owner]
    return owner, tau, lifetime, mu


def sorted_uniforms(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` uniforms on [0, 1) per customer, ascending within each customer.

    Returns the owner of each draw (shape ``(counts.sum(),)``, grouped by customer) and
    the draws. One global sort of ``owner + u`` orders every customer at once; owner ids
    below 2**23 leave u a resolution of 2**-29 (about 1e-9 weeks), ample for days.
    """
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    key = owner + rng.random(owner.size)
    key.sort()
    return owner, np.clip(key - owner, 0.0, np.nextafter(1.0, 0.0))

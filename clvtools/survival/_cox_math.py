"""Vectorised Cox arithmetic that lifelines does slowly or not at all.

* :func:`score_residuals` and :func:`clustered_sandwich`: the robust (Lin-Wei) variance with
  Efron score residuals summed per customer, O(n p) with cumulative sums instead of
  lifelines' O(n^2) loop (87 s at 100k rows with ``robust=True``; under a second of CPU at 1M
  rows here).
* :func:`schoenfeld_residuals`: Efron Schoenfeld residuals for the proportional-hazards
  test, vectorised (lifelines grows an array row by row: 12.9 s at 100k rows).
* :func:`step_cumhaz`: the Breslow baseline cumulative hazard as the right-continuous step
  function it is, with an optional constant-hazard tail past the follow-up.

Everything here is pure numpy on arrays; the estimator in ``churn_model.py`` orchestrates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["score_residuals", "clustered_sandwich", "schoenfeld_residuals", "step_cumhaz",
           "tail_slope"]


def _revcumsum(a):
    return np.cumsum(a[::-1], axis=0)[::-1]


def _efron_sums(x, t, d, w, r):
    """Risk-set sums of one stratum (rows in any order) under Efron's tie correction.

    For a time with D tied deaths Efron's approximation has D steps k = 0..D-1 whose risk set
    removes the share f_k = k/D of the dying: S0_k = S0 - f_k T0, xbar_k = (S1 - f_k T1) /
    S0_k and hazard step dL_k = (W/D) / S0_k (W the deaths' weight). Every per-time sum over
    the steps is linear in S1 and T1, so only scalar sums over the steps are needed, e.g.
    sum_k dL_k xbar_k = S1 sum_k dL_k / S0_k - T1 sum_k f_k dL_k / S0_k. Rows are never
    reordered or copied per step.

    Returns
    -------
    dict with ``g`` (n,) the distinct-time index of each row; ``ev`` (n_events,) the event
    rows sorted by time (stable); per distinct time: ``a`` = sum_k dL_k, ``b`` = sum_k dL_k
    xbar_k, ``a_dead``, ``b_dead`` (the same with the dying's weight 1 - f_k) and ``x_efron``
    = mean_k xbar_k (the Efron mean the Schoenfeld residuals subtract).
    """
    uniq, g = np.unique(t, return_inverse=True)
    n_g = len(uniq)
    wr = w * r
    s0 = _revcumsum(np.bincount(g, weights=wr, minlength=n_g))
    s1 = np.zeros((n_g, x.shape[1]))
    _group_sum(s1, g, x, wr)
    s1 = _revcumsum(s1)
    t1 = np.zeros((n_g, x.shape[1]))
    _group_sum(t1, g, x, wr * d)
    t0 = np.bincount(g, weights=wr * d, minlength=n_g)
    ie = np.flatnonzero(d)
    ev = ie[np.argsort(g[ie], kind="stable")]
    ge = g[ev]
    n_tied = np.bincount(ge, minlength=n_g).astype(float)
    w_tied = np.bincount(ge, weights=w[ev], minlength=n_g)
    f = (np.arange(len(ge)) - np.searchsorted(ge, ge, side="left")) / n_tied[ge]
    inv_den = 1.0 / (s0[ge] - f * t0[ge])
    dlam = w_tied[ge] / n_tied[ge] * inv_den

    def per_time(v):
        return np.bincount(ge, weights=v, minlength=n_g)

    a, a_dead = per_time(dlam), per_time((1 - f) * dlam)
    c0, c1 = per_time(dlam * inv_den), per_time(f * dlam * inv_den)
    c0d, c1d = per_time((1 - f) * dlam * inv_den), per_time((1 - f) * f * dlam * inv_den)
    e0, e1 = per_time(inv_den), per_time(f * inv_den)
    safe = np.maximum(n_tied, 1)[:, None]
    return {
        "g": g, "ev": ev, "a": a, "a_dead": a_dead,
        "b": s1 * c0[:, None] - t1 * c1[:, None],
        "b_dead": s1 * c0d[:, None] - t1 * c1d[:, None],
        "x_efron": (s1 * e0[:, None] - t1 * e1[:, None]) / safe,
    }


def _score_residuals_one_stratum(x, t, d, w, r):
    """Efron score residuals of one stratum; rows in any order (see :func:`score_residuals`)."""
    z = _efron_sums(x, t, d, w, r)
    g, n_g = z["g"], len(z["a"])
    de = np.asarray(d, dtype=bool)
    ca, cb = np.cumsum(z["a"]), np.cumsum(z["b"], axis=0)
    da, db = z["a"] - z["a_dead"], z["b"] - z["b_dead"]
    # L_i = alpha_i x_i + r_i P[c_i] + Q[c_i] with c_i = (time, died): everyone is at risk
    # with full weight at every event time up to their own; the dying count their own time
    # with Efron's reduced weight and add the event term x_i - x_efron.
    alpha = -r * ca[g] + de * (1.0 + r * da[g])
    code = g + n_g * de
    p_tab = np.concatenate([cb, cb - db])
    q_tab = np.concatenate([np.zeros_like(cb), -z["x_efron"]])
    res = x * alpha[:, None]
    res += r[:, None] * p_tab[code]
    res += q_tab[code]
    return res


def score_residuals(x, t, d, w, beta, strata=None):
    """Per-row score residuals of a Cox model.

    .. math:: L_i = \\delta_i (x_i - \\bar x(t_i))
              - r_i \\sum_{t_m \\le t_i} (x_i - \\bar x(t_m)) \\, d\\Lambda_0(t_m)

    with :math:`r_i = \\exp(x_i \\beta)`, :math:`\\bar x(t) = S_1(t) / S_0(t)` the weighted
    risk-set mean and :math:`d\\Lambda_0(t_m) = dN(t_m) / S_0(t_m)` (Therneau & Grambsch 2000,
    section 4.6; Lin & Wei 1989), with Efron's tie correction as R's ``residuals.coxph`` for
    ``ties = "efron"``: at a time with :math:`D` tied deaths the sum runs over Efron's
    :math:`D` steps, in which each dying customer is at risk with weight :math:`1 - k/D`.
    Their weighted sum is the Efron score, zero at the estimate.

    Parameters
    ----------
    x : ndarray, shape (n, p)
        Design matrix (centring does not change the residuals).
    t : ndarray, shape (n,)
        Durations, in time units.
    d : ndarray, shape (n,)
        Event indicators (0/1).
    w : ndarray, shape (n,)
        Case weights.
    beta : ndarray, shape (p,)
        Fitted coefficients.
    strata : ndarray of int, shape (n,), optional
        Stratum codes; risk sets are formed within strata.

    Returns
    -------
    ndarray, shape (n, p)
        Unweighted score residuals :math:`L_i` (multiply by the weights to sum them).
    """
    x = np.asarray(x, dtype=float)
    d = np.asarray(d, dtype=float)
    w = np.asarray(w, dtype=float)
    t = np.asarray(t, dtype=float)
    eta = x @ beta
    r = np.exp(eta - eta.max())  # the scale cancels in xbar and in r * dLambda
    if strata is None:
        return _score_residuals_one_stratum(x, t, d, w, r)
    out = np.empty_like(x)
    for s in np.unique(strata):
        m = strata == s
        out[m] = _score_residuals_one_stratum(x[m], t[m], d[m], w[m], r[m])
    return out


def clustered_sandwich(x, t, d, w, beta, naive_cov, clusters=None, strata=None):
    """Robust covariance :math:`V (\\sum_c U_c U_c^\\top) V`, with :math:`U_c` the weighted score
    residuals summed over the rows of cluster (customer) ``c`` and ``V`` the model-based
    covariance (R's ``coxph(..., cluster = id)``, ``robust = TRUE``).

    Parameters
    ----------
    x, t, d, w, beta, strata
        As in :func:`score_residuals`.
    naive_cov : ndarray, shape (p, p)
        Inverse of the (penalised) information matrix.
    clusters : ndarray, shape (n,), optional
        Cluster label per row; default: every row its own cluster.

    Returns
    -------
    ndarray, shape (p, p)
    """
    res = score_residuals(x, t, d, w, beta, strata) * np.asarray(w, dtype=float)[:, None]
    if clusters is not None:
        codes, uniq = pd.factorize(np.asarray(clusters))
        summed = np.zeros((len(uniq), res.shape[1]))
        _group_sum(summed, codes, res)
        res = summed
    dfbeta = res @ naive_cov
    return dfbeta.T @ dfbeta


def _group_sum(out, codes, values, weights=None):
    """Add ``weights * values`` rows per code into ``out``: one sparse (n_codes x n) @ (n x p)
    product, 10x faster than np.add.at and 3x faster than a bincount per column."""
    n = len(codes)
    wts = np.ones(n) if weights is None else weights
    m = sparse.csc_matrix((wts, (codes, np.arange(n))), shape=(out.shape[0], n))
    out += m @ values


def tail_slope(times, cumhaz, window):
    """Mean baseline hazard per time unit over the last ``window`` time units of follow-up:
    the slope used to extrapolate the cumulative hazard past the last observed duration."""
    t_end = times[-1]
    start = max(t_end - window, 0.0)
    h_start = step_cumhaz(times, cumhaz, np.array([start]))[0]
    span = t_end - start
    return 0.0 if span <= 0 else (cumhaz[-1] - h_start) / span


def step_cumhaz(times, cumhaz, at, follow_up=None, slope=None):
    """Evaluate a step cumulative hazard :math:`H_0(t)` (right-continuous) at ``at``.

    Parameters
    ----------
    times : ndarray, shape (m,)
        Jump times, increasing.
    cumhaz : ndarray, shape (m,)
        :math:`H_0` at the jump times.
    at : ndarray
        Times to evaluate at, any shape.
    follow_up : float, optional
        Last observed duration; beyond it ``slope`` extrapolates linearly.
    slope : float, optional
        Constant baseline hazard used past ``follow_up``.

    Returns
    -------
    ndarray, same shape as ``at``
    """
    at = np.asarray(at, dtype=float)
    idx = np.searchsorted(times, at, side="right") - 1
    padded = np.r_[0.0, cumhaz]
    h = padded[idx + 1]
    if follow_up is not None and slope is not None:
        beyond = at > follow_up
        if np.any(beyond):
            h = np.where(beyond, padded[-1] + slope * (at - follow_up), h)
    return h


def _schoenfeld_one_stratum(x, t, d, w, r):
    """Efron-tie Schoenfeld residuals of the events of one stratum, sorted by time (stable),
    and their row positions."""
    z = _efron_sums(x, t, d, w, r)
    ev = z["ev"]
    return x[ev] - z["x_efron"][z["g"][ev]], ev


def schoenfeld_residuals(x, t, d, w, beta, strata=None):
    """Schoenfeld residuals with Efron's tie correction (as lifelines computes them, vectorised).

    Parameters
    ----------
    x, t, d, w, beta, strata
        As in :func:`score_residuals`.

    Returns
    -------
    residuals : ndarray, shape (n_events, p)
        :math:`x_i - \\bar x_{\\mathrm{Efron}}(t_i)` of each event.
    order : ndarray, shape (n_events,)
        Row index of each residual's event, in the order lifelines uses: by stratum, then by
        time (stable within ties).
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    d = np.asarray(d, dtype=float)
    w = np.asarray(w, dtype=float)
    eta = x @ beta
    r = np.exp(eta - eta.max())
    if strata is None:
        return _schoenfeld_one_stratum(x, t, d, w, r)
    res, rows = [], []
    for s_ in np.unique(strata):  # lifelines' order: by stratum, then time
        idx = np.flatnonzero(strata == s_)
        if d[idx].sum() == 0:
            continue
        res_s, ev = _schoenfeld_one_stratum(x[idx], t[idx], d[idx], w[idx], r[idx])
        res.append(res_s)
        rows.append(idx[ev])
    return np.concatenate(res), np.concatenate(rows)

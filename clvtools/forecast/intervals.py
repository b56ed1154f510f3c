"""Intervals of forecast totals: customer-level variance plus parameter uncertainty.

Customers are independent given the models' parameters, so the variance of a total over a
set of customers is the sum of their conditional variances (the customers' own randomness:
:mod:`clvtools.forecast.moments`) plus the variance that the parameters' estimation error
induces in the total's conditional mean, which moves every customer together. The latter is
taken by the delta method: ``g' Sigma g``, with ``g`` the gradient of the total's mean with
respect to the parameters (forward differences) and ``Sigma`` their estimated covariance. The
total's distribution is taken as normal (many independent customers; the coverage test on
generated data checks it).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

__all__ = ["LEVELS", "delta_variance", "normal_bounds", "presampled_positions", "size_sample",
           "stratified_sample", "systematic_pick"]

#: Interval levels and their column suffixes.
LEVELS = ((0.80, "80"), (0.95, "95"))
#: A stratum larger than this many times the sample is first subsampled at random.
_PRESAMPLE = 20
#: Relative step of the forward differences of the delta method: the truncation error, of the
#: order of the step relative to the gradient, is far below the covariance's own error, and a
#: forward difference costs one evaluation per parameter where a central one costs two.
_REL_STEP = 1e-4


def delta_variance(evaluate: Callable[[np.ndarray], dict[str, np.ndarray]],
                   theta: np.ndarray, covariance: np.ndarray) -> dict[str, np.ndarray]:
    """Variance of each output of ``evaluate`` from the parameters' covariance (delta method).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(theta)`` -> dict of arrays (any shape, the same for every theta): the
        forecast totals' conditional means at the parameters ``theta``.
    theta : numpy.ndarray, shape (P,)
        The estimates.
    covariance : numpy.ndarray, shape (P, P)
        Their covariance (natural scale).

    Returns
    -------
    dict of numpy.ndarray
        Per output, the variance ``g' Sigma g`` of each element (its units squared). Zeros
        when the covariance is not finite (the notes of the caller say so).
    """
    theta = np.asarray(theta, dtype=float)
    base = evaluate(theta)
    if not np.all(np.isfinite(covariance)):
        return {k: np.zeros_like(v, dtype=float) for k, v in base.items()}
    grads = {k: np.empty((len(theta),) + np.shape(v)) for k, v in base.items()}
    for j in range(len(theta)):
        step = _REL_STEP * max(abs(theta[j]), 1e-2)
        up = theta.copy()
        up[j] += step
        hi = evaluate(up)
        for k in grads:
            grads[k][j] = (np.asarray(hi[k]) - np.asarray(base[k])) / step
    return {k: np.maximum(np.einsum("j...,jk,k...->...", g, covariance, g), 0.0)
            for k, g in grads.items()}


def normal_bounds(mean: np.ndarray, variance: np.ndarray) -> dict[str, np.ndarray]:
    """Normal intervals of non-negative totals at :data:`LEVELS`.

    Returns
    -------
    dict of numpy.ndarray
        ``lo80``, ``hi80``, ``lo95``, ``hi95`` (lower bounds cut at 0: every forecast
        measure is a count or revenue, never negative).
    """
    sd = np.sqrt(np.maximum(variance, 0.0))
    out = {}
    for level, suffix in LEVELS:
        z = stats.norm.ppf(0.5 + level / 2)
        out[f"lo{suffix}"] = np.maximum(mean - z * sd, 0.0)
        out[f"hi{suffix}"] = mean + z * sd
    return out


def stratified_sample(codes: np.ndarray, order_by: np.ndarray, per_stratum: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A systematic sample within each stratum, along ``order_by``, with expansion weights.

    The delta method's gradients need the totals' means at perturbed parameters; on a
    sample spread evenly over each segment's customers sorted by value, the weighted sums
    estimate them closely at a fraction of the cost.

    Parameters
    ----------
    codes : numpy.ndarray of int, shape (n,)
        Stratum of each customer.
    order_by : numpy.ndarray, shape (n,)
        The sample is spread evenly along this (e.g. expected revenue).
    per_stratum : int
        Customers drawn per stratum at most (all of a smaller stratum).

    Returns
    -------
    (numpy.ndarray of int, numpy.ndarray of float)
        Row positions of the sample, and each one's weight (stratum size / sample size).
    """
    rows, weights = [], []
    members_of = [np.flatnonzero(codes == code) for code in np.unique(codes)]
    sizes = [len(members) for members in members_of]
    for members, size, within in zip(members_of, sizes,
                                     presampled_positions(sizes, per_stratum), strict=True):
        members = members[within]
        pick = members[systematic_pick(order_by[members], per_stratum)]
        rows.append(pick)
        weights.append(np.full(len(pick), size / len(pick)))
    return np.concatenate(rows), np.concatenate(weights)


def presampled_positions(sizes, per_stratum: int) -> list[np.ndarray]:
    """The first half of :func:`stratified_sample`: per stratum, the positions among its
    members (in row order) that the systematic sample is spread over.

    Parameters
    ----------
    sizes : sequence of int
        Each stratum's size, in the order of the strata's codes.
    per_stratum : int

    Returns
    -------
    list of numpy.ndarray of int
        Per stratum, increasing positions in ``[0, size)``: all of them, or past
        ``_PRESAMPLE * per_stratum`` a seeded random subset of that many (the same for the
        same sizes: an engine that knows only the sizes draws the same positions).
    """
    rng = np.random.default_rng(0)  # fixed: the same run gives the same intervals
    out = []
    for size in sizes:
        if size > _PRESAMPLE * per_stratum:
            # sorting a random subset spreads the sample as well at a fraction of the cost
            out.append(np.sort(rng.choice(size, _PRESAMPLE * per_stratum, replace=False)))
        else:
            out.append(np.arange(size))
    return out


def systematic_pick(values: np.ndarray, per_stratum: int) -> np.ndarray:
    """The second half of :func:`stratified_sample`: ``per_stratum`` positions (all when
    fewer) of ``values`` (shape (n,), the presampled members' values in row order), evenly
    spread along their stable sort."""
    order = np.argsort(values, kind="stable")
    k = min(per_stratum, len(order))
    return order[((np.arange(k) + 0.5) * len(order) / k).astype(int)]


def size_sample(codes: np.ndarray, size: np.ndarray, per_stratum: int, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """A sample within each stratum with inclusion probabilities proportional to ``size``
    (the largest taken with certainty), and its Horvitz-Thompson weights.

    For a sum of per-customer quantities that ``size`` roughly tracks (the customers' own
    variances of revenue, which a few big spenders dominate), the weighted sum of the sample
    is unbiased and its error is that of the ratio quantity / size, not of the quantity: the
    big spenders that a sample spread evenly over the customers can miss are all in.

    Parameters
    ----------
    codes : numpy.ndarray of int, shape (n,)
        Stratum of each customer.
    size : numpy.ndarray, shape (n,)
        Non-negative size of each customer (a proxy of the quantity to be summed); a floor of
        1e-6 of the stratum's mean keeps every customer's probability above 0.
    per_stratum : int
        Expected sample size per stratum (all of a smaller stratum).
    seed : int, default 0
        Of the systematic selection's random starts (fixed: the same run gives the same
        intervals).

    Returns
    -------
    (numpy.ndarray of int, numpy.ndarray of float)
        Row positions of the sample, and each one's weight (1 / inclusion probability).
    """
    rows, weights = [], []
    rng = np.random.default_rng(seed)
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        if len(members) <= per_stratum:
            rows.append(members)
            weights.append(np.ones(len(members)))
            continue
        q = np.asarray(size, dtype=float)[members]
        q = np.maximum(q, 1e-6 * max(q.mean(), np.finfo(float).tiny))
        # take-all: the t largest, for the smallest t at which the next one's probability
        # (per_stratum - t) q / (the rest's total) falls below 1; they are among the
        # per_stratum largest, the only ones sorted
        top = np.argpartition(-q, per_stratum - 1)[:per_stratum]
        top = top[np.argsort(-q[top], kind="stable")]
        rest = q.sum() - np.concatenate([[0.0], np.cumsum(q[top])[:-1]])
        certain = (per_stratum - np.arange(per_stratum)) * q[top] >= rest
        # (one draw at least is left to the rest, so that every customer may be drawn)
        taken = int(np.argmin(certain)) if not certain.all() else per_stratum - 1
        probability = np.minimum((per_stratum - taken) * q / rest[taken], 1.0)
        probability[top[:taken]] = 1.0
        # systematic selection on the running sum of the others' probabilities (a random
        # start: unbiased in any order of the customers)
        others = np.ones(len(q), dtype=bool)
        others[top[:taken]] = False
        running = np.cumsum(np.where(others, probability, 0.0))
        start = rng.random()
        hits = others & (np.floor(running - start)
                         > np.floor(np.concatenate([[0.0], running[:-1]]) - start))
        chosen = np.flatnonzero(hits | ~others)
        rows.append(members[chosen])
        weights.append(1.0 / probability[chosen])
    return np.concatenate(rows), np.concatenate(weights)

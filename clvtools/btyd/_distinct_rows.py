"""Expectations evaluated once per distinct (frequency, age) pair of an RFM summary: a
million customers in whole days meet a few tens of thousands of pairs, and the
hypergeometric function of BG/NBD's conditional expectation (its costliest part) runs on
those only; with the distinct values of a column found in linear time when they are whole
days (the RFM's counts, and its recency and T in days, weeks or months of whole days).
"""
from __future__ import annotations

import numpy as np

from ..units import DAYS_PER_MONTH


def _distinct(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(v, return_inverse=True)``, in O(n) when ``v`` holds whole numbers of days
    in a modest range (counts, days, or weeks and months of whole days: the RFM's recency
    and T), the usual case, instead of sorting."""
    if len(v):
        days = _whole_days(v)
        if days is not None:
            codes, days_per_unit = days
            lo, hi = codes.min(), codes.max()
            if hi - lo <= 4 * len(v) + 1024:
                offsets = (codes - lo).astype(np.int64)
                present = np.zeros(int(hi - lo) + 1, dtype=bool)
                present[offsets] = True
                rank = np.cumsum(present) - 1
                # v == codes / days_per_unit exactly (checked): the same values as v holds
                uniq = (lo + np.flatnonzero(present).astype(float)) / days_per_unit
                return uniq, rank[offsets]
    uniq, inv = np.unique(v, return_inverse=True)
    return uniq, inv.reshape(-1)


#: Days per time unit of the RFM summaries (day, week, month): a week's recency of 3 days is
#: 3 / 7, whose whole-day code :func:`_whole_days` recovers exactly.
_DAYS_PER_UNIT = (1.0, 7.0, DAYS_PER_MONTH)


def _whole_days(v: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(codes, days_per_unit)`` with ``v == codes / days_per_unit`` exactly and ``codes``
    whole numbers (float, shape (n,)), for the first of :data:`_DAYS_PER_UNIT` that fits;
    None when none does (then ``v`` is sorted: about 0.1 s of CPU on a million values, paid
    by every fit and scoring at a million customers)."""
    if np.array_equal(v, np.floor(v)):
        return v, 1.0
    for days_per_unit in _DAYS_PER_UNIT[1:]:
        codes = np.rint(v * days_per_unit)
        if np.array_equal(codes / days_per_unit, v):
            return codes, days_per_unit
    return None


def _distinct_pairs(x_codes, T_codes):
    """The distinct (x, T) pairs from the distinct values and codes of each
    (:func:`_distinct`): their x and T (shape (p,)) and each row's pair (shape (n,))."""
    (ux, ix), (uT, iT) = x_codes, T_codes
    used, inv = _distinct((ix * len(uT) + iT).astype(float))
    used = used.astype(np.int64)
    return ux[used // len(uT)], uT[used % len(uT)], inv


def _on_distinct_pairs(func, x: np.ndarray, t: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``func(x, t, T)`` evaluated once per distinct (x, T) pair when t is one number.

    Scoring a million customers in whole days meets a few tens of thousands of distinct
    (frequency, age) pairs; the hypergeometric function, the costliest part of the
    conditional expectation, then runs on those only (half the scoring time).
    """
    # whole-number ages only (days, weeks): otherwise finding the pairs means a sort that
    # costs about what it saves
    if (x.ndim == 1 and len(x) > 10_000 and np.all(t == t.flat[0])
            and np.array_equal(T, np.floor(T))):
        x_codes, T_codes = _distinct(x), _distinct(T)
        if len(x_codes[0]) * len(T_codes[0]) <= len(x):
            px, pT, inv = _distinct_pairs(x_codes, T_codes)
            return func(px, t.flat[0], pT)[inv]
    return func(x, t, T)


def _pairs_for_horizons(x: np.ndarray, T: np.ndarray):
    """:func:`_distinct_pairs` of ``x`` and ``T`` when a table by pair and horizon saves
    work (more than 10,000 rows, fewer than half of them distinct), else None.

    With several horizons the pairs are worth finding even when the ages are not whole
    numbers (weeks from days): the sort is paid once, the hypergeometric function then runs
    on a few tens of thousands of pairs per horizon instead of a million customers.
    """
    if len(x) > 10_000:
        px, pT, inv = _distinct_pairs(_distinct(x), _distinct(T))
        if len(px) < len(x) // 2:
            return px, pT, inv
    return None


def _on_distinct_pairs_by_horizon(func, x: np.ndarray, horizons: np.ndarray,
                                  T: np.ndarray) -> np.ndarray:
    """``func(x, h, T)`` for every customer (rows) and horizon (columns), evaluated once per
    distinct (x, T) pair (:func:`_pairs_for_horizons`)."""
    pairs = _pairs_for_horizons(x, T)
    if pairs is not None:
        return func(pairs[0][:, None], horizons[None, :], pairs[1][:, None])[pairs[2]]
    return func(x[:, None], horizons[None, :], T[:, None])


#: Rows gathered per block by :func:`_by_period_on_distinct_pairs`: (rows, periods) blocks of
#: a few MB, multiplied by P(alive) while still in cache.
_GATHER_ROWS = 16_384


def _by_period_on_distinct_pairs(func, x: np.ndarray, period_ends: np.ndarray,
                                 T: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """``p_alive`` times the increments of ``func(x, e, T)`` over the period ends ``e``, for
    every customer (rows) and period (columns), shape (n, k): the expected purchases in each
    period when ``func`` is the expectation given alive.

    The increments are taken on the distinct (x, T) pairs' table
    (:func:`_pairs_for_horizons`) before its rows are gathered, and the gather and
    the product are done a block of rows at a time into the one (n, k) result: on a million
    customers the cumulative array, its product by P(alive) and its differences were three
    passes over arrays of about 100 MB each, freshly allocated. ``p (g_j - g_{j-1})`` rather
    than ``p g_j - p g_{j-1}``: the same to a few units of the last place.
    """
    pairs = _pairs_for_horizons(x, T)
    if pairs is None:
        table = func(x[:, None], period_ends[None, :], T[:, None])
    else:
        table = func(pairs[0][:, None], period_ends[None, :], pairs[1][:, None])
    table = np.asarray(table, dtype=float)
    for start in range(0, len(table), _GATHER_ROWS):  # its differences, in place
        block = table[start:start + _GATHER_ROWS]
        block[:, 1:] = np.diff(block, axis=1)
    out = table if pairs is None else np.empty((len(x), len(period_ends)))
    for start in range(0, len(x), _GATHER_ROWS):
        rows = slice(start, start + _GATHER_ROWS)
        block = out[rows]
        if pairs is not None:
            np.take(table, pairs[2][rows], axis=0, out=block)
        block *= p_alive[rows, None]
    return out

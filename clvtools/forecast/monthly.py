"""Sums of per-customer forecasts by month and segment, with intervals: forecast.csv's table.

Every measure arrives as per-customer arrays over W = M + 1 windows: the M calendar months of
the horizon, then the whole horizon (``all``). Means add up; a total's variance is the sum of
its customers' variances (independent given the parameters) plus the parameter part computed
for that total itself (:func:`clvtools.forecast.intervals.delta_variance`): no interval is
ever summed from the intervals of its parts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import LEVELS, normal_bounds

__all__ = ["MEASURES", "SCENARIOS", "TOTAL", "ALL_MONTHS", "segment_indicator", "segment_sums",
           "with_whole", "monthly_forecast"]

#: The fixed measures of forecast.csv (DESIGN.md), in order.
MEASURES = ("expected_revenue", "revenue_if_retained", "expected_loss", "expected_churners")
#: Scenario measures after the fixed ones.
SCENARIOS = ("saved_by_plan",)
#: The segment of all customers and the month of the whole horizon.
TOTAL, ALL_MONTHS = "total", "all"


def with_whole(by_month: np.ndarray) -> np.ndarray:
    """Months, then their sum (the whole horizon): shape (k, M) to (k, M + 1)."""
    return np.hstack([by_month, by_month.sum(axis=1, keepdims=True)])


def segment_indicator(codes: np.ndarray, n_segments: int) -> np.ndarray:
    """The (n_segments + 1, n) 0/1 matrix of :func:`segment_sums`: one row per segment, then
    a row of ones (the total). Built once per run, shared by every sum."""
    indicator = np.zeros((n_segments + 1, len(codes)))
    indicator[codes, np.arange(len(codes))] = 1.0
    indicator[n_segments] = 1.0
    return indicator


def segment_sums(values: np.ndarray, codes: np.ndarray, n_segments: int,
                 indicator: np.ndarray | None = None) -> np.ndarray:
    """Column sums of ``values`` within each segment, then over everyone.

    Parameters
    ----------
    values : numpy.ndarray, shape (n, W)
    codes : numpy.ndarray of int, shape (n,)
        Segment of each row, in ``range(n_segments)``.
    n_segments : int
    indicator : numpy.ndarray, shape (n_segments + 1, n), optional
        :func:`segment_indicator` of ``codes``, when already built.

    Returns
    -------
    numpy.ndarray, shape (n_segments + 1, W)
        The last row is the total.
    """
    values = np.asarray(values, dtype=float)
    if indicator is None:
        indicator = segment_indicator(codes, n_segments)
    # one matrix product (BLAS) instead of a pass over the customers per column
    return indicator @ values


def monthly_forecast(totals: dict[str, tuple[np.ndarray, np.ndarray]], counts: np.ndarray,
                     segments: list[str], months: pd.DataFrame) -> pd.DataFrame:
    """The forecast table: per month (and ``all``) and segment (and ``total``).

    Parameters
    ----------
    totals : dict of (numpy.ndarray, numpy.ndarray), each of shape (len(segments) + 1, M + 1)
        Per measure (:data:`MEASURES`, then any of :data:`SCENARIOS`): the mean of each
        total and its variance (customer-level and parameter parts together), segments then
        ``total`` down, months then the whole horizon across (:func:`segment_sums`).
    counts : numpy.ndarray of int, shape (len(segments) + 1,)
        Customers per segment, then in total.
    segments : list of str
        Segment names.
    months : pandas.DataFrame
        ``month`` (``YYYY-MM``), ``days``, ``partial``: one row per calendar month.

    Returns
    -------
    pandas.DataFrame
        Columns ``month``, ``segment``, each measure followed by ``_lo80``, ``_hi80``,
        ``_lo95``, ``_hi95``, then ``customers``, ``days`` and ``partial``; rows month by
        month (``all`` last), segments in the given order, ``total`` last.
    """
    n_seg = len(segments)
    n_windows = len(months) + 1
    labels = list(months["month"]) + [ALL_MONTHS]
    names = list(segments) + [TOTAL]
    table = pd.DataFrame({
        "month": np.repeat(labels, n_seg + 1),
        "segment": np.tile(names, n_windows),
    })
    for measure, (mean, var) in totals.items():
        table[measure] = mean.T.reshape(-1)
        bounds = normal_bounds(mean, var)
        for _, suffix in LEVELS:
            for side in ("lo", "hi"):
                table[f"{measure}_{side}{suffix}"] = bounds[f"{side}{suffix}"].T.reshape(-1)
    table["customers"] = np.tile(np.asarray(counts, dtype=int), n_windows)
    table["days"] = np.repeat(list(months["days"]) + [int(months["days"].sum())], n_seg + 1)
    table["partial"] = np.repeat(list(months["partial"]) + [False], n_seg + 1)
    return table

"""The forecast's seasonality: the observed seasonal index of purchases by month of the year,
and the spread of each customer's expected purchases over the forecast's calendar months by
it (each customer's total over the horizon kept), :mod:`.forecasting`'s input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.rfm import purchases_by_period
from .inputs import Inputs
from .timeline import Timeline

__all__ = ["SEASONAL_MONTHS", "Spread", "seasonal_index", "seasonal_spread",
           "seasonality_note"]

#: History needed for a seasonal index: two years of complete calendar months.
SEASONAL_MONTHS = 24


def seasonal_index(inputs: Inputs | None, timeline: Timeline, *,
                   count=None) -> pd.DataFrame | None:
    """The observed seasonal index of purchases by month of the year, or None.

    Purchases per day in each complete calendar month of the history, divided by their
    centred 12-month moving average (2 x 12, so that a growing or shrinking base does not
    read as a season); the ratios averaged by month of the year and scaled to a mean of 1.
    Needs :data:`SEASONAL_MONTHS` complete months.

    ``count``: the purchases in each period ``(starts[i], ends[i]]``, called with the two
    lists of dates (another engine's, e.g. Spark's); default: ``inputs.log``'s, in DuckDB.
    """
    first = pd.Timestamp(timeline.first_date)
    end = pd.Timestamp(timeline.observation_end)
    periods = pd.period_range(first, end, freq="M")
    periods = [p for p in periods if p.start_time >= first and p.end_time.normalize() <= end]
    if len(periods) < SEASONAL_MONTHS:
        return None
    starts = [(p.start_time - pd.Timedelta(days=1)).date() for p in periods]
    ends = [p.end_time.normalize().date() for p in periods]
    counts = (purchases_by_period(inputs.log, starts, ends)["purchases"].to_numpy(float)
              if count is None else np.asarray(count(starts, ends), dtype=float))
    rate = pd.Series(counts / np.array([p.days_in_month for p in periods], float))
    trend = rate.rolling(12, center=True).mean().rolling(2).mean().shift(-1)
    ratio = (rate / trend).replace([np.inf, -np.inf], np.nan)
    by_month = ratio.groupby([p.month for p in periods]).mean().reindex(range(1, 13))
    if by_month.isna().any() or not np.isfinite(by_month).all() or by_month.mean() <= 0:
        return None
    return pd.DataFrame({"month_of_year": range(1, 13),
                         "index": (by_month / by_month.mean()).to_numpy()})


def seasonality_note(season: pd.DataFrame | None) -> str:
    """What forecast.csv's notes say about the seasonal index ``season`` (or its absence)."""
    if season is None:
        return ("No seasonality applied in forecast.csv: the history holds fewer than "
                f"{SEASONAL_MONTHS} complete calendar months.")
    return ("forecast.csv spreads each customer's expected purchases over the months by the "
            "observed seasonal index of purchases (seasonal_index in data_quality.json); each "
            "customer's total over the horizon stays the value model's.")


def seasonal_spread(by_month, season: pd.DataFrame | None, months: pd.DataFrame
                    ) -> Spread | None:
    """The seasonal spread of customers' purchases (``by_month``, a
    :class:`~clvtools.btyd.clv.RevenueByMonth` of n customers) over the forecast's
    ``months`` by the seasonal index ``season``; None without one."""
    if season is None:
        return None
    moy = pd.PeriodIndex(months["month"], freq="M").month.to_numpy()
    weights = season.set_index("month_of_year")["index"].reindex(moy).to_numpy()
    return Spread(weights, _seasonal_levels(by_month.expected_purchases, weights),
                  _seasonal_levels(by_month.purchases_if_retained, weights))


@dataclass(frozen=True)
class Spread:
    """The seasonal spread: customer i's purchases in month m are multiplied by
    ``month_weight[m] * expected_scale[i]`` (``retained_scale[i]`` for purchases if
    retained), which keeps each customer's total over the horizon."""

    month_weight: np.ndarray
    expected_scale: np.ndarray
    retained_scale: np.ndarray


def _seasonal_levels(by_month: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per customer, the scale that keeps the row's sum when month m is weighted by
    ``weights[m]``: ``sum_k x_k / sum_k x_k w_k`` (1 for an all-zero row)."""
    total = by_month.sum(axis=1)
    weighted = by_month @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total > 0) & (weighted > 0), total / weighted, 1.0)

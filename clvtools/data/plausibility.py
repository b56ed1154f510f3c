"""Plausible dates and amounts: where a row stops looking like a purchase and starts looking
like a slip of the export (a date of 9999-12-31 or 0001-01-01, an amount of 1e200).

The bounds are relative to the data itself, so that they hold for a shop open since last
spring and for a dealer with twenty years of history alike, and robust, so that the rows they
are meant to catch cannot move them:

- **dates**: the central 90 % of the rows' dates (5th to 95th percentile) widened on each side
  by ``date_window`` times their span (at least two years). A log of three years accepts rows up
  to about three years before its bulk and three years after it; one row in year 9999 moves
  neither percentile, and is left out before the observation end (the last date) is taken.
- **amounts**: ``amount_outlier_factor`` times the median positive amount. A single amount
  of 1e200 cannot move the median, and a real basket 10,000 times the typical one is rare
  enough to deserve a look.

Both are exact percentiles (those of ``quantile_disc``), so the same data always give the same
bounds.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PlausibleBounds", "bounds_sql", "bounds_from", "bounds_from_dates", "DATE_QUANTILES",
           "MIN_DATE_SPAN_DAYS", "date_percentile"]

#: The percentiles of the rows' dates whose span sets the date window.
DATE_QUANTILES = (0.05, 0.95)
#: The narrowest span the window is widened by, in days: a log whose rows crowd into a few
#: months still accepts a customer who came back a year and a half later.
MIN_DATE_SPAN_DAYS = 730


@dataclass(frozen=True)
class PlausibleBounds:
    """The window of plausible dates and the largest plausible amount of one log.

    Attributes
    ----------
    earliest, latest : datetime.date or None
        First and last plausible day (inclusive); None when the log has no parsable date.
    amount_limit : float or None
        Largest plausible absolute amount, in the log's currency; None without amounts.
    """

    earliest: dt.date | None
    latest: dt.date | None
    amount_limit: float | None
    #: Whether some row lies outside the window, or above the limit (the log's extremes say
    #: it): without any, the conditions are FALSE, and no later scan pays for them.
    dates_outside: bool = True
    amounts_above: bool = True

    def date_condition(self, day: str) -> str:
        """SQL: the DATE expression ``day`` lies outside the window."""
        if self.earliest is None or not self.dates_outside:
            return "FALSE"
        return (f"({day} < DATE '{self.earliest.isoformat()}' "
                f"OR {day} > DATE '{self.latest.isoformat()}')")

    def amount_condition(self, amount: str) -> str:
        """SQL: the DOUBLE expression ``amount`` is larger than plausible."""
        if self.amount_limit is None or not self.amounts_above:
            return "FALSE"
        return f"abs({amount}) > {self.amount_limit!r}"

    def as_dict(self) -> dict:
        """The bounds for data_quality.json (ISO dates)."""
        return {"earliest_date": None if self.earliest is None else self.earliest.isoformat(),
                "latest_date": None if self.latest is None else self.latest.isoformat(),
                "amount_limit": self.amount_limit}


def _shift(day: dt.date, days: int) -> dt.date:
    """``day + days``, clamped to the calendar Python can hold (years 1 to 9999)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return dt.date.min if days < 0 else dt.date.max


def bounds_sql(has_amounts: bool) -> str:
    """The select list (three columns) that :func:`bounds_from` reads, over a view with the
    columns ``ts TIMESTAMP`` and ``amount DOUBLE`` (NULL where unparsable, ignored here).

    The dates come as a histogram (rows per day), from which :func:`bounds_from` takes the
    exact percentiles: a log spans a few thousand days, and counting rows per day costs half
    as much as the two ``quantile_disc`` sorts of every row's date it replaces.
    """
    amount = ("quantile_disc(amount, 0.5) FILTER (WHERE amount > 0), max(abs(amount))"
              if has_amounts else "NULL::DOUBLE, NULL::DOUBLE")
    return f"histogram(ts::DATE), {amount}"


def date_percentile(days: Sequence[dt.date], counts: Sequence[int], q: float) -> dt.date:
    """The ``q`` percentile of the rows' dates from their histogram, as ``quantile_disc``.

    Parameters
    ----------
    days : sequence of datetime.date, length k
        The distinct days, in increasing order.
    counts : sequence of int, length k
        Rows on each day (positive).
    q : float
        The percentile, in [0, 1].

    Returns
    -------
    datetime.date
        The day of the row at 0-based position ``ceil(n q) - 1`` (at least 0) of the n rows
        in date order: the row ``quantile_disc(ts::DATE, q)`` gives.
    """
    position = max(math.ceil(sum(counts) * q) - 1, 0)
    seen = 0
    for day, count in zip(days, counts, strict=True):
        seen += count
        if seen > position:
            return day
    raise ValueError("the histogram holds no rows")


def bounds_from(day_counts: dict[dt.date, int] | None, median: float | None,
                largest: float | None, *, date_window: float,
                amount_outlier_factor: float) -> PlausibleBounds:
    """The plausible window from the row of :func:`bounds_sql`.

    Parameters
    ----------
    day_counts : dict of datetime.date to int, or None
        Rows per day (DuckDB's ``histogram``; None or empty without any date).
    median, largest : float or None
        The median positive amount and the largest absolute one, in the log's currency
        (None without amounts).
    date_window : float
        Widening of the central 90 % of dates on each side, in multiples of their span
        (at least :data:`MIN_DATE_SPAN_DAYS` days).
    amount_outlier_factor : float
        The largest plausible amount, in multiples of the median positive amount.

    Returns
    -------
    PlausibleBounds
    """
    dates = None
    if day_counts:
        days = sorted(day_counts)
        counts = [day_counts[day] for day in days]
        dates = (*(date_percentile(days, counts, q) for q in DATE_QUANTILES), days[0], days[-1])
    return bounds_from_dates(dates, median, largest, date_window=date_window,
                             amount_outlier_factor=amount_outlier_factor)


def bounds_from_dates(dates: tuple[dt.date, dt.date, dt.date, dt.date] | None,
                      median: float | None, largest: float | None, *, date_window: float,
                      amount_outlier_factor: float) -> PlausibleBounds:
    """The plausible window from the dates' percentiles and extremes (an engine that computes
    ``quantile_disc`` itself, Spark's ``percentile_disc``, gives them directly).

    Parameters
    ----------
    dates : (datetime.date, datetime.date, datetime.date, datetime.date) or None
        The :data:`DATE_QUANTILES` percentiles of the rows' dates, then the oldest and the
        newest date (None without any date).
    median, largest, date_window, amount_outlier_factor
        As for :func:`bounds_from`.

    Returns
    -------
    PlausibleBounds
    """
    earliest = latest = None
    if dates is not None:
        first, last, oldest, newest = dates
        margin = round(max((last - first).days, MIN_DATE_SPAN_DAYS) * date_window)
        earliest, latest = _shift(first, -margin), _shift(last, margin)
    limit = None if median is None else float(median) * amount_outlier_factor
    return PlausibleBounds(
        earliest, latest, limit,
        dates_outside=earliest is not None and (oldest < earliest or newest > latest),
        amounts_above=limit is not None and largest is not None and largest > limit)

"""Per-customer revenue over a horizon, month by month (see the concepts page (docs/concepts.rst)).

* **Revenue if retained** V: the purchase rate given alive, ``model.purchase_rate_if_alive``
  ((r + x) / (alpha + T) per time unit for BG/NBD, MBG/NBD and Pareto/NBD), times the length
  of each month, times the expected spend, discounted.
* **Expected revenue** E: the model's conditional expected purchases in each month (increments
  of ``conditional_expected_number_of_purchases_up_to_time``) times the expected spend,
  discounted. P(alive) and future dropout are both inside, so E <= V month by month.

Months are calendar-average months of 365.2425 / 12 days, converted to the model's time unit
with ``time_unit_days``; the last month is cut at the horizon. Cash flows are discounted at
the END of each month with ``(1 + annual_discount_rate) ** -(years elapsed)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from ..units import DAYS_PER_YEAR, month_ends

__all__ = ["RevenueByMonth", "project_revenue", "revenue_by_month"]


@dataclass(frozen=True)
class RevenueByMonth:
    """Month-by-month revenue arrays of ``revenue_by_month``.

    Attributes
    ----------
    period_end : numpy.ndarray, shape (M,)
        End of each month in the model's time units after T.
    discount : numpy.ndarray, shape (M,)
        Discount factor applied to each month.
    purchases_if_retained, expected_purchases : numpy.ndarray, shape (n, M)
        Purchases per month if the customer keeps buying / as the model expects.
    revenue_if_retained, expected_revenue : numpy.ndarray, shape (n, M), or None
        Discounted revenue per month (currency); None when not asked for
        (``per_month_revenue=False``: the scores need only their totals, and on a million
        customers each is an array of about 100 MB).
    index : pandas.Index or None
        The customers' index when Series were given.
    p_alive : numpy.ndarray or None, shape (n,)
        P(alive) of each customer (``conditional_probability_alive``), when the model
        computed it on the way to the expectations (covariate models), else None.
    revenue_if_retained_total, expected_revenue_total : numpy.ndarray, shape (n,)
        Each customer's discounted revenue over all the months (the row sums of the two
        arrays above, bit for bit), currency.
    """

    period_end: np.ndarray
    discount: np.ndarray
    purchases_if_retained: np.ndarray
    expected_purchases: np.ndarray
    revenue_if_retained: np.ndarray | None
    expected_revenue: np.ndarray | None
    index: pd.Index | None = None
    p_alive: np.ndarray | None = None
    revenue_if_retained_total: np.ndarray | None = None
    expected_revenue_total: np.ndarray | None = None

    def alive(self, model, frequency, recency, T) -> np.ndarray:
        """P(alive) of each customer, shape (n,): :attr:`p_alive` where the model computed it
        on the way to the expectations, else ``model.conditional_probability_alive`` on the
        same customers (``frequency``, ``recency``, ``T`` as given to
        :func:`revenue_by_month`, shape (n,), time units)."""
        if self.p_alive is not None:
            return self.p_alive
        return np.asarray(model.conditional_probability_alive(frequency, recency, T),
                          dtype=float)


def _positive(name: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise ClvInputError(
            f"The {name!r} parameter must be a {kind} number. Got {value!r} instead."
        )
    return float(value)


def revenue_by_month(model, frequency, recency, T, expected_spend, horizon, time_unit_days,
                     annual_discount_rate, period_ends=None, per_month_revenue=True):
    """V and E per customer and month (the forecast sums these across customers).

    Parameters
    ----------
    model : fitted BG/NBD, MBG/NBD or Pareto/NBD fitter
        Needs ``purchase_rate_if_alive`` and
        ``conditional_expected_number_of_purchases_up_to_time``; ``expected_purchases_by_horizon``
        (covariate models) is used instead of the latter where the model has it.
    frequency, recency, T : array_like or Series, shape (n,)
        RFM summary in the model's time unit.
    expected_spend : scalar, array_like or Series, shape (n,)
        Expected spend per purchase (e.g. Gamma-Gamma ``conditional_expected_average_profit``),
        currency, >= 0.
    horizon : float
        Horizon in the model's time units (> 0).
    time_unit_days : float
        Days per time unit (1, 7 or 365.2425 / 12).
    annual_discount_rate : float
        Annual discount rate (>= 0), e.g. 0.1 for 10 % a year.
    period_ends : array_like, shape (M,), optional
        Ends of the periods in time units after T, increasing (e.g. calendar months: the
        forecast's); default the calendar-average months of :func:`~clvtools.units.month_ends`
        over ``horizon``. The periods cover (0, period_ends[-1]].
    per_month_revenue : bool, default True
        False: the revenue per customer and month is summed a block of customers at a time
        and not kept (only its totals), two (n, M) arrays fewer.

    Returns
    -------
    RevenueByMonth
    """
    horizon = _positive("horizon", horizon)
    unit = _positive("time_unit_days", time_unit_days)
    rate = _positive("annual_discount_rate", annual_discount_rate, allow_zero=True)
    index = next((v.index for v in (frequency, recency, T) if isinstance(v, pd.Series)), None)
    x, tx, age = (np.asarray(v, dtype=float).reshape(-1) for v in (frequency, recency, T))
    spend = np.broadcast_to(np.asarray(expected_spend, dtype=float), x.shape)
    bad = ~np.isfinite(spend) | (spend < 0)
    if bad.any():
        raise ClvInputError("The expected spend must be finite and non-negative.",
                            column="expected_spend", n_rows=int(bad.sum()),
                            advice="check the Gamma-Gamma fit (q > 1) and the monetary values.")

    ends = month_ends(horizon, unit) if period_ends is None else np.asarray(period_ends, float)
    lengths = np.diff(ends, prepend=0.0)
    discount = (1.0 + rate) ** (-ends * unit / DAYS_PER_YEAR)

    rate_alive = np.asarray(model.purchase_rate_if_alive(x, tx, age), dtype=float).reshape(-1)
    if hasattr(model, "alive_and_purchases_by_period"):
        # BG/NBD and MBG/NBD: the purchases per month directly, and P(alive), which they
        # need, kept for the caller's scores
        p_alive, expected = model.alive_and_purchases_by_period(ends, x, tx, age)
    else:
        p_alive, expected = _by_horizon_increments(model, ends, x, tx, age)
    retained = np.empty(expected.shape)
    revenue_retained = np.empty(retained.shape) if per_month_revenue else None
    revenue_expected = np.empty(expected.shape) if per_month_revenue else None
    total_retained, total_expected = np.empty(len(x)), np.empty(len(x))
    for rows in _row_blocks(len(x)):  # the (n, M) arithmetic a block at a time, in cache
        np.multiply(rate_alive[rows, None], lengths[None, :], out=retained[rows])
        value = spend[rows, None] * discount[None, :]
        for purchases, kept, total in ((retained, revenue_retained, total_retained),
                                       (expected, revenue_expected, total_expected)):
            revenue = np.multiply(purchases[rows], value,
                                  out=None if kept is None else kept[rows])
            np.sum(revenue, axis=1, out=total[rows])
    return RevenueByMonth(ends, discount, retained, expected, revenue_retained, revenue_expected,
                          index, p_alive, total_retained, total_expected)


def _by_horizon_increments(model, ends, x, tx, age):
    """P(alive) (None unless the model computes it on the way) and the expected purchases
    per customer and period, shape (n, M): the increments of the expectations at ``ends``."""
    p_alive, own = None, True  # own: the cumulative array is this function's to change
    if hasattr(model, "alive_and_expected_by_horizon"):
        # covariate models: one pass over all month ends (the BG/NBD quadrature shares its
        # work), and P(alive), which it needs, kept for the caller's scores
        p_alive, cumulative = model.alive_and_expected_by_horizon(ends, x, tx, age)
    elif hasattr(model, "expected_purchases_by_horizon"):
        cumulative, own = np.asarray(model.expected_purchases_by_horizon(ends, x, tx, age),
                                     dtype=float), False
    else:
        cumulative = np.column_stack([
            np.asarray(model.conditional_expected_number_of_purchases_up_to_time(e, x, tx, age),
                       dtype=float).reshape(-1)
            for e in ends
        ])
    return p_alive, _increments(cumulative, in_place=own and cumulative.flags.writeable)


_BLOCK_ROWS = 32_768  # rows per block of the (n, M) arithmetic: temporaries of a few MB


def _row_blocks(n: int):
    """Slices of ``_BLOCK_ROWS`` rows covering ``range(n)``."""
    return (slice(i, i + _BLOCK_ROWS) for i in range(0, n, _BLOCK_ROWS))


def _increments(cumulative: np.ndarray, in_place: bool) -> np.ndarray:
    """``np.diff(cumulative, axis=1, prepend=0)``, shape (n, M): the same numbers, written
    over ``cumulative`` a block of rows at a time when ``in_place`` (no second (n, M) array
    on a million customers: about 100 MB each)."""
    if not in_place:
        return np.diff(cumulative, axis=1, prepend=0.0)
    for rows in _row_blocks(len(cumulative)):
        block = cumulative[rows]
        block[:, 1:] = np.diff(block, axis=1)
    return cumulative


def project_revenue(model, frequency, recency, T, expected_spend, horizon, time_unit_days,
                    annual_discount_rate):
    """Discounted revenue if retained (V) and expected revenue (E) per customer over the horizon.

    Parameters are those of :func:`revenue_by_month`.

    Returns
    -------
    pandas.DataFrame, shape (n, 2)
        Columns ``revenue_if_retained`` and ``expected_revenue`` (currency), indexed like the
        Series given (else 0..n-1). E <= V row by row.
    """
    months = revenue_by_month(model, frequency, recency, T, expected_spend, horizon,
                              time_unit_days, annual_discount_rate)
    return pd.DataFrame(
        {
            "revenue_if_retained": months.revenue_if_retained.sum(axis=1),
            "expected_revenue": months.expected_revenue.sum(axis=1),
        },
        index=months.index,
    )

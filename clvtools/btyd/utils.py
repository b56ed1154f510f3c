"""lifetimes.utils' model-based functions, same names and arguments, vectorised.

``calculate_alive_path``, ``expected_cumulative_transactions`` and ``_customer_lifetime_value``
(also exported as ``customer_lifetime_value``) take a fitted clvtools (or lifetimes) model.
Turning transaction logs into RFM summaries is the job of :mod:`clvtools.data`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices

__all__ = [
    "calculate_alive_path",
    "customer_lifetime_value",
    "expected_cumulative_transactions",
    "_customer_lifetime_value",
]

#: Time units per month in lifetimes' discrete CLV (30 days, 4.345 weeks a month).
CLV_FREQ_FACTOR = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24}


def calculate_alive_path(model, transactions, datetime_col, t, freq="D"):
    """P(alive) of ONE customer at the end of each period since their first purchase.

    Parameters
    ----------
    model : fitted BG/NBD, MBG/NBD or Pareto/NBD fitter
    transactions : pandas.DataFrame
        The customer's transactions.
    datetime_col : str
        Column of transaction dates.
    t : int
        Number of periods to cover after the first one.
    freq : str, default "D"
        pandas frequency of a period (the model's time unit).

    Returns
    -------
    pandas.Series, shape (max(t + 1, periods with history),)
        P(alive) at T = 0, 1, ..., indexed by the period number.
    """
    dates = pd.to_datetime(transactions[datetime_col])
    counts = pd.Series(1, index=pd.DatetimeIndex(dates)).resample(freq).sum().to_numpy()
    bought = np.zeros(max(t + 1, len(counts)), dtype=bool)
    bought[: len(counts)] = counts > 0
    age = np.arange(len(bought), dtype=float)
    frequency = np.cumsum(bought) - 1.0  # the first purchase is not a repeat purchase
    # recency: the last period with a purchase so far (forward fill)
    recency = np.maximum.accumulate(np.where(bought, age, 0.0))
    p = model.conditional_probability_alive(frequency, recency, age)
    return pd.Series(np.asarray(p, dtype=float).reshape(-1), index=pd.RangeIndex(len(age)))


def _customer_lifetime_value(transaction_prediction_model, frequency, recency, T, monetary_value,
                             time=12, discount_rate=0.01, freq="D"):
    """lifetimes' discrete CLV: sum over months k = 1..time of E[purchases in month k] x spend
    / (1 + discount_rate)^k.

    Parameters
    ----------
    transaction_prediction_model : fitted frequency/recency/T fitter
    frequency, recency, T : array_like or Series, shape (n,)
        RFM summary in the time unit ``freq``.
    monetary_value : array_like or Series, shape (n,)
        Spend per purchase (currency).
    time : int, default 12
        Months.
    discount_rate : float, default 0.01
        MONTHLY discount rate.
    freq : {"D", "W", "M", "H"}, default "D"
        Time unit of the data; a month is 30 days / 4.345 weeks / 720 hours, as in lifetimes.

    Returns
    -------
    pandas.Series, shape (n,), name ``clv``
        Indexed like ``frequency`` when it is a Series.
    """
    if freq not in CLV_FREQ_FACTOR:
        raise ClvInputError(f"The 'freq' parameter must be {format_choices(list(CLV_FREQ_FACTOR))}."
                            f" Got {freq!r} instead.")
    index = frequency.index if isinstance(frequency, pd.Series) else None
    x, tx, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    spend = np.asarray(monetary_value, dtype=float)
    factor = CLV_FREQ_FACTOR[freq]
    predict = transaction_prediction_model.conditional_expected_number_of_purchases_up_to_time
    clv = np.zeros(np.broadcast(x, spend).shape)
    previous = np.zeros_like(clv)
    for k in range(1, int(time) + 1):
        cumulative = np.asarray(predict(k * factor, x, tx, age), dtype=float)
        clv = clv + spend * (cumulative - previous) / (1 + discount_rate) ** k
        previous = cumulative
    return pd.Series(clv, index=index, name="clv")


customer_lifetime_value = _customer_lifetime_value


def expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                     datetime_format=None, freq="D", freq_multiplier=1,
                                     set_index_date=False):
    """Actual and model-expected cumulative repeat transactions of a whole customer base.

    Same semantics as lifetimes 0.11.3 (including its alignment: the actual count at step j
    covers periods 0..j*freq_multiplier-1, the expectation customers' ages at period
    j*freq_multiplier), vectorised over first-purchase dates.

    Parameters
    ----------
    model : fitted model with ``expected_number_of_purchases_up_to_time``
    transactions : pandas.DataFrame
        Transaction log.
    datetime_col, customer_id_col : str
    t : int
        Number of periods of ``freq`` to cover from the first transaction in the log.
    datetime_format : str, optional
    freq : str, default "D"
        The model's time unit as a pandas period frequency.
    freq_multiplier : int, default 1
        Periods per reported step (e.g. 7 with daily data for weekly steps).
    set_index_date : bool, default False
        Index the result by period instead of 0, 1, ...

    Returns
    -------
    pandas.DataFrame, columns ``actual`` and ``predicted``, t // freq_multiplier rows
    """
    dates = pd.to_datetime(transactions[datetime_col], format=datetime_format)
    periods = dates.dt.to_period(freq)
    start = periods.min()
    ids = transactions[customer_id_col].to_numpy()
    offset = np.asarray((periods - start).map(lambda d: d.n), dtype=np.int64)
    occ = pd.DataFrame({"id": ids, "k": offset})
    occ = occ[occ["k"] <= t].drop_duplicates()  # one occasion per customer and period
    first = occ.groupby("id")["k"].transform("min")
    is_first = occ["k"].to_numpy() == first.to_numpy()

    first_counts = occ.loc[is_first, "k"].value_counts().sort_index()
    f_k, f_n = first_counts.index.to_numpy(), first_counts.to_numpy(dtype=float)
    steps = np.arange(1, t // freq_multiplier + 1) * freq_multiplier
    ages = (steps[:, None] - f_k[None, :]).astype(float) / freq_multiplier
    valid = ages > 0
    expected = np.zeros_like(ages)
    if valid.any():
        expected[valid] = np.asarray(model.expected_number_of_purchases_up_to_time(ages[valid]),
                                     dtype=float)
    predicted = (expected * f_n[None, :]).sum(axis=1)

    repeat_per_period = np.bincount(occ.loc[~is_first, "k"].to_numpy(), minlength=t + 1)
    cum = np.concatenate([[0], np.cumsum(repeat_per_period)])
    actual = cum[steps]
    if set_index_date:
        index = pd.period_range(start, periods=t + 1, freq=freq)[freq_multiplier - 1 : -1 : freq_multiplier]
    else:
        index = range(0, t // freq_multiplier)
    return pd.DataFrame({"actual": actual, "predicted": predicted}, index=index)

"""The value model's calibration window and its holdout, with each customer's holdout revenue,
in one query: as a pandas frame for the standard engine
(:func:`calibration_holdout_revenue`), or kept as a DuckDB table for a run whose customers
are not held in pandas (the chunked engine, :func:`store_holdout_window`).

:func:`clvtools.data.rfm.calibration_and_holdout` (lifetimes' layout) and
:func:`clvtools.data.rfm.revenue_by_customer` over the same holdout give the same figures in
three queries, whose two customer tables pandas then joins and looks up: on a million
customers that cost about as much as the queries. Here DuckDB joins them.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..units import unit_days
from .chunked_tables import rfm_at_sql
from .engine import fetch_frame, quote_ident
from .rfm import calibration_and_holdout, holdout_query, revenue_by_customer, rfm_query
from .transactions import TransactionLog

__all__ = ["calibration_holdout_revenue", "store_holdout_window", "holdout_duration"]


def calibration_holdout_revenue(log: TransactionLog, calibration_end: dt.date, *,
                                time_unit: str = "week") -> tuple[pd.DataFrame, np.ndarray]:
    """RFM at ``calibration_end``, purchases after it up to the log's observation end, and
    each customer's revenue there.

    Parameters
    ----------
    log : TransactionLog
    calibration_end : datetime.date
        Last day of the calibration window, before the log's observation end.
    time_unit : {"day", "week", "month"}
        Unit of recency, T and the holdout's duration.

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        :func:`~clvtools.data.rfm.calibration_and_holdout`'s frame (daily purchase periods),
        the same figures bit for bit; and the revenue of each of its customers in the
        holdout, shape (n,), currency (occasions without amounts), 0 for a customer without
        a purchase there, as :func:`~clvtools.data.rfm.revenue_by_customer` sums it.
    """
    obs_end = log.observation_end
    if calibration_end >= obs_end:  # the function of three queries says why
        return _in_three_queries(log, calibration_end, time_unit)
    days = unit_days(time_unit)
    cal = rfm_query(log.occasions, observation_end=calibration_end, days_per_unit=days,
                    with_monetary=log.has_amounts, last_day=calibration_end,
                    one_row_per_day=log.one_row_per_day)
    hold = holdout_query(log.occasions, calibration_end=calibration_end, observation_end=obs_end,
                         with_monetary=log.has_amounts, with_revenue=True,
                         one_row_per_day=log.one_row_per_day)
    held = ["frequency_holdout"] + (["monetary_value_holdout"] if log.has_amounts else [])
    frame = fetch_frame(log.con, f"""
        WITH cal AS ({cal}), hold AS ({hold})
        SELECT cal.*, {", ".join(f"hold.{c}" for c in held)}, hold.revenue_holdout,
               hold.customer_id IS NOT NULL AS bought
        FROM cal LEFT JOIN hold USING (customer_id) ORDER BY customer_id""")
    bought = frame.pop("bought").to_numpy(bool)
    if frame.empty or not bought.any():
        # no customer, or none buying in the holdout: the three queries' own errors (or, with
        # only new customers buying there, their figures)
        return _in_three_queries(log, calibration_end, time_unit)
    revenue = frame.pop("revenue_holdout").fillna(0.0).to_numpy(float)
    frame.columns = [c + "_cal" for c in frame.columns[: -len(held)]] + held
    frame = frame.fillna(0.0)
    frame["duration_holdout"] = holdout_duration(calibration_end, obs_end, time_unit)
    return frame, revenue


def _in_three_queries(log: TransactionLog, calibration_end: dt.date,
                      time_unit: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The same, in three queries (and their errors on a window without purchases)."""
    cal = calibration_and_holdout(log, calibration_end, time_unit=time_unit)
    revenue = (revenue_by_customer(log, calibration_end, log.observation_end)
               .reindex(cal.index, fill_value=0.0).to_numpy(float))
    return cal, revenue


def holdout_duration(calibration_end: dt.date, observation_end: dt.date,
                     time_unit: str) -> float:
    """The holdout's length in time units, as
    :func:`~clvtools.data.rfm.calibration_and_holdout`'s ``duration_holdout`` (days, in its
    order of operations)."""
    return (observation_end - calibration_end).days * unit_days("day") / unit_days(time_unit) \
        / 1.0


def store_holdout_window(log: TransactionLog, calibration_end: dt.date, *, time_unit: str,
                         into: str) -> int:
    """Keep the calibration window as the DuckDB table ``into`` (sorted by customer).

    Parameters
    ----------
    log : TransactionLog
    calibration_end : datetime.date
        The holdout's start (its last calibration day).
    time_unit : str
    into : str
        The table's name.

    Returns
    -------
    int
        The window's customers (acquired by ``calibration_end``): the table's rows, with
        ``frequency``, ``recency``, ``T`` (, ``monetary_value``) at ``calibration_end``,
        ``frequency_holdout`` (purchase days after it, up to the observation end) and
        ``revenue_holdout`` (their revenue, currency; purchases without amounts), 0 for a
        customer who bought nothing then.
    """
    end = log.observation_end
    log.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS
        SELECT r.*, coalesce(h.frequency_holdout, 0.0)::DOUBLE AS frequency_holdout,
               coalesce(h.revenue_holdout, 0.0)::DOUBLE AS revenue_holdout
        FROM ({rfm_at_sql(log, time_unit=time_unit, at=calibration_end)}) AS r
        LEFT JOIN ({holdout_query(log.occasions, calibration_end=calibration_end,
                                  observation_end=end, with_monetary=log.has_amounts,
                                  with_revenue=True, one_row_per_day=log.one_row_per_day)}) AS h
               ON r.customer_id = h.customer_id
        ORDER BY r.customer_id""")
    return int(log.con.execute(f"SELECT count(*) FROM {quote_ident(into)}").fetchone()[0])

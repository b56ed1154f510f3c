"""The value model's calibration window kept in DuckDB, for a run whose customers are not
held in pandas (the chunked engine): each customer's RFM at the calibration end beside the
purchase days and revenue of the holdout that followed, the figures
:func:`~clvtools.data.rfm.calibration_and_holdout` and
:func:`~clvtools.data.rfm.revenue_by_customer` give the standard engine.
"""
from __future__ import annotations

import datetime as dt

from ..units import unit_days
from .chunked_tables import rfm_at_sql
from .engine import quote_ident
from .money import money_sum
from .rfm import holdout_query
from .transactions import TransactionLog

__all__ = ["store_holdout_window", "holdout_duration"]


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
    revenue = money_sum("amount") if log.has_amounts else "count(*)"
    log.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS
        SELECT r.*, coalesce(h.frequency_holdout, 0.0)::DOUBLE AS frequency_holdout,
               coalesce(v.revenue, 0.0)::DOUBLE AS revenue_holdout
        FROM ({rfm_at_sql(log, time_unit=time_unit, at=calibration_end)}) AS r
        LEFT JOIN ({holdout_query(log.occasions, calibration_end=calibration_end,
                                  observation_end=end, with_monetary=False)}) AS h
               ON r.customer_id = h.customer_id
        LEFT JOIN (SELECT customer_id, {revenue}::DOUBLE AS revenue FROM {log.occasions}
                   WHERE date > DATE '{calibration_end.isoformat()}'
                     AND date <= DATE '{end.isoformat()}' GROUP BY customer_id) AS v
               ON r.customer_id = v.customer_id
        ORDER BY r.customer_id""")
    return int(log.con.execute(f"SELECT count(*) FROM {quote_ident(into)}").fetchone()[0])

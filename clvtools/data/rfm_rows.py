"""The RFM summary straight from a log's rows (several a day), as lifetimes' utilities give it.

:func:`clvtools.data.rfm.rfm_query` collects each customer's periods and amounts as two
lists, which is fastest when a customer's rows lie together (a log sorted by customer, or the
``occasions`` table). A log read without its occasions table comes in the order it was
written, usually time order, where appending to a million lists scattered over memory costs
twice as much as two plain aggregations: one per customer and period, then one per customer
over those periods, each with fixed-size states. On 9.4M time-ordered rows of 1M customers
this query took about half the CPU time of the lists (3.5 s against 6.8 s; on the same rows
sorted by customer a fifth more, 3.8 s against 3.2 s), with the same counts and times and
amounts equal to about 1e-13 relative (the sums are compensated, fsum, in both).
"""
from __future__ import annotations

import datetime as dt

from .rfm import GRAINS, _period

__all__ = ["rfm_rows_query"]


def rfm_rows_query(
    rows: str,
    *,
    observation_end: dt.date,
    grain: str = "day",
    days_per_unit: float = 1.0,
    multiplier: float = 1.0,
    include_first_transaction: bool = False,
    with_monetary: bool = True,
    key: str = "_key",
) -> str:
    """SQL for the RFM summary of a table of purchase rows, one row per customer.

    Parameters
    ----------
    rows : str
        Table or view with ``date DATE`` and ``amount DOUBLE`` (NULL without amounts) and the
        column ``key``: the log's valid rows (``TransactionLog.occasions`` of a log read with
        ``summarise=False``).
    observation_end, grain, days_per_unit, multiplier, include_first_transaction
        As in :func:`~clvtools.data.rfm.rfm_query` (times divided twice, in lifetimes' order).
    with_monetary : bool
        Add ``monetary_value``: the mean amount of the repeat periods (0 without repeats), or
        of every period with ``include_first_transaction``.
    key : str
        The column grouped by, whose text is the customer id (an integer id's text is made
        once per customer, not once per row).

    Returns
    -------
    str
        A query whose rows are ``customer_id`` (VARCHAR, in order), ``frequency``,
        ``recency``, ``T`` (DOUBLE, output units) and ``monetary_value`` (DOUBLE, currency).
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, got {grain!r}")
    end = _period(observation_end, grain)
    period = "date" if grain == "day" else f"date_trunc('{grain}', date)::DATE"
    first = "" if include_first_transaction else " - 1"
    unit = f"{float(days_per_unit)!r} / {float(multiplier)!r}"
    if not with_monetary:
        monetary = ""
    elif include_first_transaction:
        monetary = ", total / n_periods AS monetary_value"
    else:
        monetary = (", coalesce((total - first_amount) / nullif(n_periods - 1, 0), 0) "
                    "AS monetary_value")
    # fsum (Kahan-Babuska): a period's total does not depend on the order DuckDB's threads
    # meet its rows, so that two runs agree to the last bit. Not the pipeline's micro-units
    # (money.py): this is lifetimes' summary, whose amounts are not rounded, and scaling every
    # amount must scale the monetary value exactly (tests/test_properties.py)
    return f"""
        WITH periods AS (
            SELECT {key} AS _key, {period} AS period, fsum(amount) AS amount
            FROM {rows} WHERE {period} <= {end} GROUP BY ALL
        ), customers AS (
            SELECT _key, count(*) AS n_periods, min(period) AS first_period,
                   max(period) AS last_period, fsum(amount) AS total,
                   arg_min(amount, period) AS first_amount
            FROM periods GROUP BY _key
        )
        SELECT CAST(_key AS VARCHAR) AS customer_id,
               (n_periods{first})::DOUBLE AS frequency,
               datediff('day', first_period, last_period) / {unit} AS recency,
               datediff('day', first_period, {end}) / {unit} AS T
               {monetary}
        FROM customers ORDER BY 1"""

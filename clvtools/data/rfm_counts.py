"""The RFM summary of a log compressed to its distinct (frequency, recency, T) rows, each with
the number of customers it stands for: what a plain BG/NBD is fitted on (its likelihood is a
sum over such rows) and what a per-row score of the summary needs, without a customer id.

A million customers' summary with their ids costs about 3.7 s of CPU to fetch into pandas
(one text id per customer); its distinct rows (about 0.7 million at a million customers with
ages in whole days) cost about 1 s. Recency and age stay whole days here, so that a row of
the summary can be looked up exactly from a landmark table's own columns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..units import unit_days
from .transactions import TransactionLog

__all__ = ["rfm_counts", "rfm_counts_at"]


def rfm_counts(log: TransactionLog, *, time_unit: str = "week") -> pd.DataFrame:
    """Distinct rows of the RFM summary of ``log`` at its observation end, with counts.

    The same figures as :func:`~clvtools.data.rfm.rfm_summary` (lifetimes' conventions:
    repeat purchase days, first to last purchase, first purchase to the observation end),
    grouped.

    Parameters
    ----------
    log : TransactionLog
        Its occasions up to its observation end (several rows a day when
        ``log.one_row_per_day`` is False: each day counts once).
    time_unit : {"day", "week", "month"}
        Unit of ``recency`` and ``T``.

    Returns
    -------
    pandas.DataFrame
        One row per distinct (frequency, recency, T), sorted by them: ``frequency``
        (float), ``recency_days``, ``T_days`` (int64, whole days), ``recency``, ``T``
        (float, time units: the days divided by the unit's days, as ``rfm_summary`` does)
        and ``customers`` (int64, > 0).
    """
    return rfm_counts_at(log, [log.observation_end], time_unit=time_unit)[log.observation_end]


def rfm_counts_at(log: TransactionLog, ends, *, time_unit: str = "week") -> dict:
    """:func:`rfm_counts` of ``log.until(end)`` for each of ``ends``, from one aggregation.

    One pass over the occasions gives each customer's first purchase, and their purchase
    days and last purchase up to every end (aggregates filtered by date), where a query per
    end would aggregate the occasions once each (four ends: the main fit's landmark, the
    observation end and the validation's two landmarks).

    Parameters
    ----------
    log : TransactionLog
    ends : iterable of datetime.date
        On or before ``log.observation_end``.
    time_unit : {"day", "week", "month"}

    Returns
    -------
    dict
        By end (each distinct one): the DataFrame :func:`rfm_counts` returns for
        ``log.until(end)``, the same rows bit for bit.
    """
    ends = sorted(set(ends))
    # purchase days: the rows themselves in a summarised log (one row per customer and day)
    days = "count(*)" if log.one_row_per_day else "count(DISTINCT date)"
    per_end = ",\n                   ".join(
        f"{days} FILTER (WHERE date <= $end_{i}) AS n_{i}, "
        f"max(date) FILTER (WHERE date <= $end_{i}) AS last_{i}" for i in range(len(ends)))
    # a customer is in the summary at an end once their first purchase is on or before it
    stacked = "\n            UNION ALL ".join(
        f"SELECT {i} AS k, n_{i} - 1 AS frequency, datediff('day', first, last_{i}) AS "
        f"recency_days, datediff('day', first, $end_{i}) AS T_days "
        f"FROM per_customer WHERE n_{i} > 0" for i in range(len(ends)))
    sql = f"""
        WITH per_customer AS (
            SELECT min(date) AS first,
                   {per_end}
            FROM {log.occasions} WHERE date <= $end_{len(ends) - 1} GROUP BY customer_id)
        SELECT k, frequency, recency_days, T_days, count(*) AS customers
        FROM ({stacked}) GROUP BY ALL ORDER BY ALL"""
    rows = log.con.execute(sql, {f"end_{i}": end for i, end in enumerate(ends)}).fetchnumpy()
    unit = unit_days(time_unit)
    k = np.asarray(rows["k"])
    out = {}
    for i, end in enumerate(ends):
        at = k == i
        recency_days = np.asarray(rows["recency_days"], dtype=np.int64)[at]
        age_days = np.asarray(rows["T_days"], dtype=np.int64)[at]
        out[end] = pd.DataFrame({
            "frequency": np.asarray(rows["frequency"], dtype=float)[at],
            "recency_days": recency_days,
            "T_days": age_days,
            # one division of whole days, as rfm_summary's SQL: the same doubles
            "recency": recency_days.astype(float) / unit,
            "T": age_days.astype(float) / unit,
            "customers": np.asarray(rows["customers"], dtype=np.int64)[at],
        })
    return out

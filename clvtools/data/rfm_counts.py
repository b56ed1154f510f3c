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

__all__ = ["rfm_counts"]


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
    # purchase days: the rows themselves in a summarised log (one row per customer and day)
    days_bought = "count(*)" if log.one_row_per_day else "count(DISTINCT date)"
    sql = f"""
        WITH per_customer AS (
            SELECT {days_bought} - 1 AS frequency,
                   datediff('day', min(date), max(date)) AS recency_days,
                   datediff('day', min(date), $end) AS T_days
            FROM {log.occasions} WHERE date <= $end GROUP BY customer_id)
        SELECT frequency, recency_days, T_days, count(*) AS customers
        FROM per_customer GROUP BY ALL ORDER BY ALL"""
    rows = log.con.execute(sql, {"end": log.observation_end}).fetchnumpy()
    days = unit_days(time_unit)
    return pd.DataFrame({
        "frequency": np.asarray(rows["frequency"], dtype=float),
        "recency_days": np.asarray(rows["recency_days"], dtype=np.int64),
        "T_days": np.asarray(rows["T_days"], dtype=np.int64),
        # one division of whole days, as rfm_summary's SQL: the same doubles
        "recency": np.asarray(rows["recency_days"], dtype=float) / days,
        "T": np.asarray(rows["T_days"], dtype=float) / days,
        "customers": np.asarray(rows["customers"], dtype=np.int64),
    })

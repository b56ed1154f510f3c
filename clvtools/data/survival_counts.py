"""A landmark table's rows counted per segment value, duration and event, in DuckDB or in
Spark: all the Kaplan-Meier curves, medians and log-rank tests by segment need
(:func:`clvtools.survival.kaplan_meier.segment_rows_from_counts` labels and sorts them as
:func:`~clvtools.survival.kaplan_meier.segment_rows` does the whole table), so that an
engine whose table is too large for pandas draws the standard engine's curves.
"""
from __future__ import annotations

import pandas as pd

from .engine import quote_ident

__all__ = ["COUNT_COLUMN", "segment_counts", "spark_segment_counts"]

#: The column of the counts.
COUNT_COLUMN = "rows"


def segment_counts(con, table: str, by: str | None, *, duration_col: str = "duration",
                   event_col: str = "event") -> pd.DataFrame:
    """Rows of the DuckDB table ``table`` per value of ``by``, duration and event.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    table : str
        A table name (quoted here).
    by : str or None
        A segment column; None: the whole table, one group.

    Returns
    -------
    pandas.DataFrame, shape (groups, 3 or 4)
        ``by`` (as DuckDB hands the column over, so that its labels are those of the table
        fetched whole), ``duration``, ``event`` and :data:`COUNT_COLUMN` (int).
    """
    keys = [quote_ident(c) for c in ([by] if by is not None else []) + [duration_col,
                                                                         event_col]]
    return con.execute(f"SELECT {', '.join(keys)}, count(*) AS {COUNT_COLUMN} "
                       f"FROM {quote_ident(table)} GROUP BY ALL").df()


def spark_segment_counts(frame, by: str | None, *, duration_col: str = "duration",
                         event_col: str = "event") -> pd.DataFrame:
    """Rows of the Spark DataFrame ``frame`` per value of ``by``, duration and event, counted
    on the executors (:func:`segment_counts`' columns and meaning); only the counts reach the
    driver."""
    keys = ([by] if by is not None else []) + [duration_col, event_col]
    return frame.groupBy(*keys).count().withColumnRenamed("count", COUNT_COLUMN).toPandas()

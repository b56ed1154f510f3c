"""Exact money totals of a Spark DataFrame by group: whole micro-units summed as
``DECIMAL(38, 0)`` (:mod:`clvtools.data.money`), handed to the driver as integers, so that a
table of totals (matrix.csv) is the single machine's figure for figure
(:mod:`clvtools.targeting.money_totals` sums the same integers in pandas).
"""
from __future__ import annotations

import pandas as pd

from .money import micro_units

__all__ = ["spark_micro_sums"]


def spark_micro_sums(frame, by: str, columns) -> tuple[pd.Series, pd.DataFrame]:
    """Rows and exact sums of micro-units of ``columns`` per value of ``by``.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
    by : str
        The grouping column (few values: the rows reach the driver).
    columns : sequence of str
        Money columns (DOUBLE, currency units); NaN and NULL are skipped.

    Returns
    -------
    (pandas.Series, pandas.DataFrame)
        Rows per group (int) and, per group, one column of Python ints per money column,
        both indexed by the values of ``by``.
    """
    from pyspark.sql import functions as F

    def q(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    sums = [F.expr(f"sum({micro_units(f'nanvl({q(c)}, CAST(NULL AS DOUBLE))')})").alias(c)
            for c in columns]
    rows = frame.groupBy(by).agg(F.count("*").alias("rows"), *sums).collect()
    index = pd.Index([r[by] for r in rows], name=by)
    counts = pd.Series([int(r["rows"]) for r in rows], index=index)
    micro = pd.DataFrame({c: [0 if r[c] is None else int(r[c]) for r in rows] for c in columns},
                         index=index, dtype=object)
    return counts, micro

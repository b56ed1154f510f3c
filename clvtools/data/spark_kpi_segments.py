"""Churn rates per calendar period within segments in Spark SQL:
:func:`clvtools.data.kpi_segments.churn_by_segment`'s table from a
:class:`~clvtools.data.spark_engine.SparkLog`, over the spells and periods of the Spark KPIs
(:func:`~clvtools.data.spark_kpis.spark_spell_views`).

- Value tiers: each spell is expanded on the executors into its base periods (the periods
  whose start it covers), each base row valued by the customer's spend over the year of
  periods before (summed exactly in integer micro-units, or purchases without amounts, as
  DuckDB sums them). Each period's cut is numpy's linear quantile, as the single-machine
  engine takes it: only the two order statistics it lies between come to the driver (found
  by a rank within each period), where ``numpy.quantile`` interpolates them exactly as over
  the whole period (:func:`tier_threshold`).
- Attributes: the categorical attributes' levels (a missing one ``(missing)``), the spells
  unpivoted by attribute and counted per period, as DuckDB's query counts them.

Only small tables reach the driver: per period its base count, two order statistics and
the counts per segment.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .kpi_segments import _PERIODS_PER_YEAR, segment_table
from .money import micro_units
from .spark_engine import SparkLog
from .spark_kpis import _LABELS, SPARK_PERIODS, spark_spell_views

__all__ = ["spark_churn_by_segment", "tier_threshold"]


def spark_churn_by_segment(log: SparkLog, *, churn_after: float, time_unit: str = "week",
                           period: str = "month", attributes=None, segments=(),
                           value_share: float = 0.2) -> pd.DataFrame:
    """Churn rate per period by value tier and by each categorical attribute.

    Parameters
    ----------
    log : SparkLog
    churn_after, time_unit, period, segments, value_share
        As in :func:`clvtools.data.kpi_segments.churn_by_segment`.
    attributes : SparkAttributes, optional
        The completed attributes (:func:`~clvtools.data.spark_attributes.spark_read_customers`).

    Returns
    -------
    pandas.DataFrame
        churn_by_segment.csv's rows: ``period`` (first day, datetime64), ``label``, ``by``,
        ``segment``, ``active_start``, ``churned``, ``churn_rate``; the single-machine
        engine's table on the same data.
    """
    if not 0 < value_share < 1:
        raise ValueError(f"value_share must be in (0, 1). Got {value_share!r} instead.")
    spells, periods = spark_spell_views(log, churn_after=churn_after, time_unit=time_unit,
                                        period=period)
    frames = [_value_tiers(log, spells, periods, period, 1.0 - value_share)]
    if attributes is not None and segments:
        frames.append(log.spark.sql(_attribute_sql(spells, periods, attributes.view,
                                                   list(segments))).toPandas())
    labels = log.spark.sql(f"SELECT p.ps, {_LABELS[period]} AS label FROM {periods} AS p"
                           ).toPandas()
    for frame in (labels, *frames):
        frame["ps"] = pd.to_datetime(frame["ps"])
    return segment_table(labels, frames)


def _value_tiers(log: SparkLog, spells: str, periods: str, period: str,
                 quantile: float) -> pd.DataFrame:
    """Base and churners per period by value tier (``ps``, ``by``, ``segment``,
    ``active_start``, ``churned``), as :func:`clvtools.data.kpi_segments._value_tiers`."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    unit = SPARK_PERIODS[period][0]
    # DuckDB's round(amount * 1e6) as BIGINT: the same whole micro-units
    amount = (f"CAST({micro_units('o.amount')} AS BIGINT)" if log.has_amounts else "1")
    valued = log.spark.sql(f"""
        WITH spent AS (
            SELECT o.customer_id, p.idx, sum({amount}) AS spent
            FROM {log.occasions} AS o JOIN {periods} AS p ON p.ps = trunc(o.date, '{unit}')
            GROUP BY o.customer_id, p.idx),
        -- a spell is in the base of the periods after its start's, up to the one in which
        -- it is declared (the last period when declared after the observation end)
        ranges AS (
            SELECT s.customer_id, a.idx + 1 AS first,
                   coalesce(d.idx, (SELECT max(idx) FROM {periods})) AS last,
                   d.idx IS NOT NULL AS declared
            FROM {spells} AS s JOIN {periods} AS a ON a.ps = s.start_ps
            LEFT JOIN {periods} AS d ON d.ps = s.declared_ps),
        base AS (
            SELECT r.customer_id, b.idx, r.declared AND b.idx = r.last AS churned
            FROM ranges AS r LATERAL VIEW explode(sequence(r.first, r.last)) b AS idx
            WHERE r.first <= r.last)
        -- spend in the periods [idx - year, idx)
        SELECT b.idx, b.churned, coalesce(sum(s.spent), 0) AS value
        FROM base AS b LEFT JOIN spent AS s
          ON s.customer_id = b.customer_id AND s.idx >= b.idx - {_PERIODS_PER_YEAR[period]}
         AND s.idx < b.idx
        GROUP BY b.customer_id, b.idx, b.churned""").persist()
    try:
        sizes = valued.groupBy("idx").count().toPandas()
        if sizes.empty:
            return pd.DataFrame(columns=["ps", "by", "segment", "active_start", "churned"])
        sizes["position"] = (sizes["count"] - 1) * quantile
        sizes["lower"] = np.floor(sizes["position"]).astype("int64")
        sizes["upper"] = np.minimum(sizes["lower"] + 1, sizes["count"] - 1)
        wanted = log.spark.createDataFrame(sizes[["idx", "lower", "upper"]].astype("int64"))
        ranked = valued.select("idx", "value", (F.row_number().over(
            Window.partitionBy("idx").orderBy("value")) - 1).alias("rank"))
        order = (ranked.join(F.broadcast(wanted), "idx")
                 .where((F.col("rank") == F.col("lower")) | (F.col("rank") == F.col("upper")))
                 .select("idx", "rank", "value").toPandas())
        at = order.set_index(["idx", "rank"])["value"]
        sizes["threshold"] = [
            tier_threshold(at[(i, lo)], at[(i, hi)], n, quantile)
            for i, lo, hi, n in sizes[["idx", "lower", "upper", "count"]].itertuples(index=False)]
        cuts = log.spark.createDataFrame(sizes[["idx", "threshold"]].astype(
            {"idx": "int64", "threshold": "float64"}))
        # a BIGINT against a DOUBLE compares as doubles, as numpy compares int64 to float64
        high = F.col("value") > F.col("threshold")
        counts = (valued.join(F.broadcast(cuts), "idx")
                  .groupBy("idx", F.when(high, "high").otherwise("low").alias("segment"))
                  .agg(F.count("*").alias("active_start"),
                       F.count_if("churned").alias("churned"))
                  .join(F.broadcast(log.spark.table(periods).select("idx", "ps")), "idx")
                  .toPandas())
    finally:
        valued.unpersist()
    counts.insert(1, "by", "value_tier")
    return counts[["ps", "by", "segment", "active_start", "churned"]]


def tier_threshold(lower: float, upper: float, size: int, quantile: float) -> float:
    """``numpy.quantile(values, quantile)`` (linear) of ``size`` values from the two order
    statistics it interpolates, ``lower`` at position ``floor((size - 1) * quantile)`` and
    ``upper`` one after (the same when at the end): numpy's own interpolation of the two,
    at the same fraction, so that the cut is the same double."""
    position = (size - 1) * quantile
    fraction = position - math.floor(position)
    if upper == lower or fraction == 0 or size == 1:
        return float(lower)
    return float(np.quantile(np.array([lower, upper], dtype=np.float64), fraction))


def _attribute_sql(spells: str, periods: str, attributes: str, columns: list[str]) -> str:
    """:func:`clvtools.data.kpi_segments._attribute_sql` in Spark SQL: base and churners per
    period by each attribute's level, every attribute in one pass."""
    names = [f"_by_{i}" for i in range(len(columns))]
    levels = ", ".join(f"coalesce(CAST(a.`{c.replace('`', '``')}` AS STRING), '(missing)') "
                       f"AS {n}" for c, n in zip(columns, names, strict=True))
    label = " ".join(f"WHEN '{n}' THEN {_text(c)}" for c, n in zip(columns, names, strict=True))
    return f"""
        WITH wide AS (SELECT s.start_ps, s.declared_ps, {levels}
                      FROM {spells} AS s LEFT JOIN {attributes} AS a
                        ON a.customer_id = s.customer_id),
        tagged AS (SELECT * FROM wide UNPIVOT (segment FOR attribute IN ({", ".join(names)}))),
        moves AS (SELECT attribute, segment, start_ps AS ps, count(*) AS opened, 0 AS closed
                  FROM tagged GROUP BY attribute, segment, start_ps
                  UNION ALL
                  SELECT attribute, segment, declared_ps AS ps, 0, count(*) FROM tagged
                  WHERE declared_ps IS NOT NULL GROUP BY attribute, segment, declared_ps),
        levels AS (SELECT DISTINCT attribute, segment FROM tagged),
        flow AS (SELECT p.idx, p.ps, l.attribute, l.segment,
                        coalesce(sum(m.opened), 0) AS opened,
                        coalesce(sum(m.closed), 0) AS churned
                 FROM {periods} AS p CROSS JOIN levels AS l
                 LEFT JOIN moves AS m
                   ON m.ps = p.ps AND m.attribute = l.attribute AND m.segment = l.segment
                 GROUP BY p.idx, p.ps, l.attribute, l.segment)
        SELECT ps, CASE attribute {label} END AS by, segment,
               CAST(coalesce(sum(opened - churned) OVER (
                   PARTITION BY attribute, segment ORDER BY idx
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT)
                   AS active_start,
               churned
        FROM flow"""


def _text(value: str) -> str:
    """A Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

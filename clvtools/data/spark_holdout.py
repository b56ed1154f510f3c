"""The value model's calibration window and holdout months in Spark SQL, figure for figure
DuckDB's (:mod:`clvtools.data.holdout_window`, :func:`clvtools.data.rfm.purchases_by_period`):
each customer's RFM at the calibration end beside the purchase days and revenue of the
holdout that followed (money summed by the SQL text DuckDB runs, exactly), and the window's
customers' purchases and revenue per month of the holdout.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from .money import money_sum
from .spark_engine import SparkLog
from .spark_summaries import spark_revenue_by_period, spark_rfm

__all__ = ["spark_holdout_window", "spark_holdout_months"]


def _date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def spark_holdout_window(log: SparkLog, calibration_end: dt.date, *, time_unit: str):
    """The calibration window, one row per customer acquired by ``calibration_end``.

    Returns
    -------
    pyspark.sql.DataFrame
        :func:`~clvtools.data.spark_summaries.spark_rfm`'s columns at ``calibration_end``,
        ``frequency_holdout`` (purchase days after it, up to the observation end) and
        ``revenue_holdout`` (their revenue, currency; purchases without amounts), 0 for a
        customer who bought nothing then: :func:`~clvtools.data.holdout_window.
        store_holdout_window`'s table.
    """
    from pyspark.sql import functions as F

    rfm = spark_rfm(log, time_unit=time_unit, observation_end=calibration_end)
    revenue = money_sum("amount") if log.has_amounts else "count(*)"
    # the occasions are one row per customer and day: a row is a purchase day
    after = log.spark.sql(f"""
        SELECT customer_id, CAST(count(*) AS DOUBLE) AS frequency_holdout,
               CAST({revenue} AS DOUBLE) AS revenue_holdout
        FROM {log.occasions}
        WHERE date > {_date(calibration_end)} AND date <= {_date(log.observation_end)}
        GROUP BY customer_id""")
    return (rfm.join(after, on="customer_id", how="left")
            .fillna(0.0, subset=["frequency_holdout", "revenue_holdout"])
            .withColumn("frequency_holdout", F.col("frequency_holdout").cast("double")))


def spark_holdout_months(log: SparkLog, starts: Sequence[dt.date], ends: Sequence[dt.date],
                         *, customers_acquired_by: dt.date) -> pd.DataFrame:
    """``purchases`` and ``revenue`` of the customers acquired by ``customers_acquired_by``
    in each period ``(starts[i], ends[i]]``, as :func:`~clvtools.data.rfm.purchases_by_period`
    gives them (the occasions counted per day in Spark, then per period on the driver)."""
    days = log.spark.sql(f"""
        SELECT o.date, count(*) AS n FROM {log.occasions} o
        LEFT SEMI JOIN (SELECT customer_id FROM {log.occasions}
                        WHERE date <= {_date(customers_acquired_by)}) a
          ON o.customer_id = a.customer_id
        GROUP BY o.date""").collect()
    purchases = [sum(int(n) for day, n in days if start < day <= end)
                 for start, end in zip(starts, ends, strict=True)]
    revenue = spark_revenue_by_period(log, starts, ends,
                                      customers_acquired_by=customers_acquired_by)
    return pd.DataFrame({"purchases": purchases, "revenue": revenue})

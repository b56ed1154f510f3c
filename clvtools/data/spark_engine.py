"""The Spark engine: a transaction log as purchase occasions in a Spark session.

The second engine of the data layer, beside DuckDB (:mod:`clvtools.data.engine`): the same
occasions (one row per customer and day, amounts summed; read by
:mod:`clvtools.data.spark_reader`) from a Spark DataFrame or from files a Spark session can
read (Parquet or CSV, on a local disk or a cluster file system), for the summaries of
:mod:`clvtools.data.spark_summaries`. pyspark is an optional extra
(``pip install clvtools[spark]``): this module imports it only when it runs.

Two choices make its figures those of DuckDB bit for bit, and reproducible on any cluster:

- amounts are read as doubles, as DuckDB reads them, and money is summed with
  :func:`clvtools.data.money.money_sum`, the SQL text DuckDB runs: whole micro-units summed
  exactly, so a total depends neither on the order in which executors add their partitions
  nor on the engine, and is rounded to a double once;
- the session's time zone is UTC (:func:`configure_session`), so that a timestamp falls on
  the same day on every machine, as in DuckDB's connection.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from ..errors import ClvInputError

__all__ = ["SparkLog", "configure_session", "read_spark_source"]


def configure_session(spark) -> None:
    """Fix the settings of ``spark`` that clvtools' figures depend on.

    The SQL session time zone is UTC (a timestamp's day is the same everywhere). Runtime
    settings only: the session's memory, local directory and log level belong to
    whoever builds the session (spark-submit, Databricks, the tests' fixture).
    """
    spark.conf.set("spark.sql.session.timeZone", "UTC")


@dataclass
class SparkLog:
    """A validated transaction log held in a Spark session (the Spark twin of
    :class:`~clvtools.data.transactions.TransactionLog`).

    Attributes
    ----------
    spark : pyspark.sql.SparkSession
    occasions : str
        Temporary view of the purchase occasions: ``customer_id STRING, date DATE,
        amount DOUBLE`` (the day's exact total, :mod:`clvtools.data.money`; NULL without
        amounts), ``n_rows INT``; one row per customer and day.
    observation_end : datetime.date
        The last day of observation; every occasion is on or before it.
    has_amounts : bool
    quality : dict
        Rows read, used and excluded by reason, customers, occasions, first and last date:
        the keys of ``TransactionLog.quality`` that apply.
    """

    spark: object
    occasions: str
    observation_end: dt.date
    has_amounts: bool
    quality: dict = field(default_factory=dict)

    def until(self, date: dt.date) -> SparkLog:
        """The log as it stood at ``date`` (its occasions up to that day), on the same session.

        Parameters
        ----------
        date : datetime.date
            The new observation end, on or before this log's.
        """
        if date > self.observation_end:
            raise ClvInputError(f"The log cannot be cut at {date}: it ends on "
                                f"{self.observation_end}.",
                                advice="Give a date on or before the observation end.")
        view = f"{self.occasions}_until_{date:%Y%m%d}"
        self.spark.sql(f"SELECT * FROM {self.occasions} WHERE date <= DATE '{date.isoformat()}'"
                       ).createOrReplaceTempView(view)
        return SparkLog(self.spark, view, date, self.has_amounts,
                        {**self.quality, "until": date.isoformat()})


def read_spark_source(spark, source, *, file_format: str | None = None):
    """A Spark DataFrame of the transaction file(s) ``source``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    source : str or list of str
        Paths or globs a Spark session can read (``/data/tx/*.parquet``,
        ``s3://bucket/tx/``, ``dbfs:/...``): Parquet or CSV with a header row.
    file_format : {"parquet", "csv"}, optional
        Default: from the first path's suffix (a folder is read as Parquet).

    Returns
    -------
    pyspark.sql.DataFrame
        CSV columns as text (clvtools, not Spark's inference, decides what a bad date or
        amount is, and ids keep their leading zeros), Parquet columns as typed.
    """
    paths = [os.fspath(source)] if isinstance(source, (str, os.PathLike)) else [
        os.fspath(p) for p in source]
    if not paths:
        raise ClvInputError("No input file was given.", advice="Give a CSV or Parquet file.")
    if file_format is None:
        name = paths[0].lower().rstrip("/")
        file_format = "csv" if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")) else "parquet"
    try:
        if file_format == "csv":
            return spark.read.option("header", True).option("inferSchema", False).csv(paths)
        return spark.read.parquet(*paths)
    except Exception as exc:  # Spark's AnalysisException (path not found) and the like
        first = str(exc).splitlines()[0]
        advice = ("Check the path (a glob, a folder of Parquet files or a CSV file with a "
                  "header row).")
        if "NANOS" in first:
            # pandas writes nanosecond timestamps by default, which Spark does not read
            advice = ("Spark reads no nanosecond timestamps: write the file with "
                      "df.to_parquet(path, coerce_timestamps='us') or the dates as DATE.")
        raise ClvInputError(f"Spark could not read the transactions: {first}",
                            source=", ".join(paths), advice=advice) from None

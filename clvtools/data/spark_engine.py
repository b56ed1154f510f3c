"""The Spark engine: a transaction log as purchase occasions in a Spark session.

The second engine of the data layer, beside DuckDB (:mod:`clvtools.data.engine`): the same
occasions (one row per customer and day, amounts summed) from a Spark DataFrame or from files
a Spark session can read (Parquet or CSV, on a local disk or a cluster file system), for the
summaries of :mod:`clvtools.data.spark_summaries`. pyspark is an optional extra
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
import itertools
import os
from dataclasses import dataclass, field

from ..errors import ClvInputError
from .money import money_sum

__all__ = ["SparkLog", "configure_session", "read_spark_source", "spark_occasions"]

#: Each log registers its views under a name of its own, so that two logs share a session.
_view_numbers = itertools.count(1)


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


def spark_occasions(
    frame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    datetime_format: str | None = None,
    observation_end: dt.date | None = None,
    negative_amounts: str = "drop",
    after_observation_end: str = "error",
    source: str = "Spark DataFrame",
) -> SparkLog:
    """Validate a Spark DataFrame of transactions and summarise it into purchase occasions.

    The rules are those of :func:`~clvtools.data.transactions.read_transactions` with its
    default policies: a missing id or date, an unparsable date or amount is an error;
    negative amounts are dropped (``"keep"``: netted within the day; ``"error"``), zero
    amounts kept, duplicates kept, several rows of a day combined; rows after a given
    observation end are an error (``"drop"``: counted and left out).

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per transaction.
    customer_id_col, datetime_col, monetary_value_col : str
        Column names; ``monetary_value_col=None`` reads no amounts.
    datetime_format : str, optional
        Spark's datetime pattern of a text date column (``yyyyMMdd``); ISO dates need none.
    observation_end : datetime.date, optional
        Default: the last date in the data.
    source : str
        How the input is named in messages and in data_quality.json (the files read).

    Returns
    -------
    SparkLog
    """
    spark = frame.sparkSession
    configure_session(spark)
    wanted = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col
                                                else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ClvInputError(f"Columns {missing} are missing from the transactions.",
                            source=source,
                            advice=f"The columns are {frame.columns}; set customer_id_col, "
                                   "datetime_col and monetary_value_col to their names.")
    number = next(_view_numbers)
    raw = f"clv_tx_{number}"
    frame.createOrReplaceTempView(raw)

    def q(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    date_type = dict(frame.dtypes)[datetime_col]
    if date_type == "string":
        fmt = f", '{datetime_format}'" if datetime_format else ""
        day = f"to_date(try_to_timestamp({q(datetime_col)}{fmt}))"
    else:
        day = f"CAST({q(datetime_col)} AS DATE)"
    # a double as DuckDB reads it (schema.number_expr): NULL where not a finite number
    parsed = f"try_cast({q(monetary_value_col)} AS DOUBLE)" if monetary_value_col else "NULL"
    amount = (f"CASE WHEN NOT isnan({parsed}) AND abs({parsed}) < CAST('Infinity' AS DOUBLE) "
              f"THEN {parsed} END" if monetary_value_col else "CAST(NULL AS DOUBLE)")
    spark.sql(f"""SELECT CAST({q(customer_id_col)} AS STRING) AS customer_id, {day} AS date,
                         {amount} AS amount,
                         {q(monetary_value_col) if monetary_value_col else 'NULL'} AS raw_amount
                  FROM {raw}""").createOrReplaceTempView(f"{raw}_parsed")
    end_sql = f"DATE '{observation_end.isoformat()}'" if observation_end else "NULL"
    row = spark.sql(f"""SELECT count(*) AS rows_read,
            count_if(customer_id IS NULL OR trim(customer_id) = '') AS no_id,
            count_if(date IS NULL) AS no_date,
            count_if(raw_amount IS NOT NULL AND amount IS NULL) AS bad_amount,
            count_if(raw_amount IS NULL) AS no_amount,
            max(date) AS last_date,
            count_if(date > {end_sql}) AS late,
            count_if(amount < 0 AND NOT coalesce(date > {end_sql}, FALSE)) AS negative
        FROM {raw}_parsed""").collect()[0]
    if row["rows_read"] == 0:
        raise ClvInputError("The transaction log has no data rows.", source=source)
    problems = [("no_id", "Customer ids are missing.", customer_id_col),
                ("no_date", "Dates are missing or could not be parsed.", datetime_col)]
    if monetary_value_col:
        problems += [("bad_amount", "Amounts are not numbers.", monetary_value_col),
                     ("no_amount", "Amounts are missing.", monetary_value_col)]
    for key, problem, column in problems:
        if row[key]:
            raise ClvInputError(problem, source=source, column=column,
                                n_rows=int(row[key]),
                                advice="Fix or remove these rows (dates in ISO form, or give "
                                       "datetime_format; amounts as plain numbers).")
    excluded: dict[str, int] = {}
    keep = []
    if observation_end is not None and row["late"]:
        if after_observation_end == "error":
            raise ClvInputError(f"Transactions are dated after the observation end "
                                f"{observation_end}.", source=source,
                                column=datetime_col, n_rows=int(row["late"]),
                                advice="Set observation_end to the last day of the data, or "
                                       "after_observation_end = 'drop'.")
    if observation_end is not None:
        keep.append(f"date <= {end_sql}")
        excluded["after_observation_end"] = int(row["late"])
    if monetary_value_col and negative_amounts != "keep":
        if negative_amounts == "error" and row["negative"]:
            raise ClvInputError("Amounts are negative (returns or refunds).",
                                source=source, column=monetary_value_col,
                                n_rows=int(row["negative"]),
                                advice="Set negative_amounts = 'drop' or 'keep'.")
        keep.append("amount >= 0")
        excluded["negative_amounts"] = int(row["negative"])
    occasions = f"clv_occasions_{number}"
    spark.sql(f"""SELECT customer_id, date, {money_sum('amount')} AS amount,
                         CAST(count(*) AS INT) AS n_rows
                  FROM {raw}_parsed WHERE {' AND '.join(keep) or 'TRUE'}
                  GROUP BY customer_id, date""").cache().createOrReplaceTempView(occasions)
    stats = spark.sql(f"""SELECT count(*) AS n, sum(n_rows) AS rows_used,
                                 count(DISTINCT customer_id) AS customers, min(date) AS first,
                                 max(date) AS last FROM {occasions}""").collect()[0]
    if stats["n"] == 0:
        raise ClvInputError("No transactions are left after filtering.",
                            source=source,
                            advice="Check observation_end and the negative amounts policy.")
    obs_end = observation_end or row["last_date"]
    quality = {"source": source, "rows_read": int(row["rows_read"]),
               "rows_used": int(stats["rows_used"]), "rows_excluded": sum(excluded.values()),
               "excluded_by_reason": excluded, "customers": int(stats["customers"]),
               "purchase_occasions": int(stats["n"]), "first_date": stats["first"].isoformat(),
               "last_date": stats["last"].isoformat(), "observation_end": obs_end.isoformat(),
               "engine": "spark"}
    return SparkLog(spark, occasions, obs_end, monetary_value_col is not None, quality)

"""Reading a transaction log in Spark: validation, the reading policies, purchase occasions.

The Spark twin of :func:`clvtools.data.transactions.read_transactions`: the same rules, in
Spark SQL, on a Spark DataFrame, with the same counts in ``data_quality.json``:

- customer ids are read as text, surrounding spaces, tabs and line ends stripped (counted in
  ``ids_stripped``), whole-number floats as integers; a missing id is an error;
- dates: ISO text, or a DATE or TIMESTAMP column; a text with a UTC offset, and a Spark
  ``TIMESTAMP`` (an instant, in Spark's meaning), become the wall-clock time in ``timezone``
  (counted in ``timezone.rows_with_utc_offset``); text without one and ``TIMESTAMP_NTZ``
  are taken as they are; an unparsable date is an error;
- amounts are doubles; a missing, unparsable, NaN or infinite amount is an error;
- the exclusion rules of :meth:`~clvtools.data.transactions.DataPolicies.exclusion_rules`,
  in their order: implausible dates (the window of :mod:`clvtools.data.plausibility`, from
  exact percentiles, which Spark's ``percentile_disc`` computes as DuckDB's ``quantile_disc``
  does), rows after the observation end, negative, zero and outlying amounts;
- same-day rows combined (or an error with ``same_day = "error"``), the day's amounts summed
  exactly (:mod:`clvtools.data.money`).

Exact duplicate rows (the same customer, time and amount) are found as the single-machine
engine finds them, but only when ``duplicate_rows`` asks for it (``"drop"``: one of each kept,
the others counted in ``excluded_by_reason``; ``"error"``: refused with the first of them):
finding them needs a shuffle of every row by customer, time and amount, which a cluster job
should not pay by default, so under ``"keep"`` they are kept and not counted. A
``datetime_format`` is read through Spark's pattern for the same strptime codes
(:mod:`.spark_dates`).
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import asdict

from ..errors import ClvInputError
from .money import MAX_AMOUNT, money_sum
from .plausibility import DATE_QUANTILES, bounds_from_dates
from .schema import N_SHOWN, format_has_offset
from .spark_dates import spark_datetime_pattern
from .spark_engine import SparkLog, configure_session
from .transactions import DataPolicies

__all__ = ["spark_occasions", "customer_id_sql"]

#: Each log registers its views under a name of its own, so that two logs share a session.
_view_numbers = itertools.count(1)

_EPOCH = "DATE '1970-01-01'"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _has_offset(text: str) -> str:
    """Spark SQL of :func:`clvtools.data.schema.has_offset_sql`: the date text ends with a UTC
    offset after a time of day."""
    signs = " OR ".join(f"substr({text}, {i}, 1) IN ('+', '-')" for i in (-3, -5, -6))
    return f"(length({text}) > 16 AND (substr({text}, -1, 1) = 'Z' OR {signs}))"


def customer_id_sql(column: str, spark_type: str) -> tuple[str, str]:
    """Spark SQL of the customer id ``column`` as the text every table is matched on, and
    of its raw text (:func:`clvtools.data.schema.id_expr`'s rules).

    Surrounding spaces, tabs and line ends are stripped; whole-number floats, as a Parquet
    writer stores an id column with a gap, read as integers (``1.0`` is ``1``).
    """
    cid = _q(column)
    raw_id = f"CAST({cid} AS STRING)"
    if spark_type in ("double", "float") or spark_type.startswith("decimal"):
        # a Parquet writer stores an id column with a gap as floats: 1.0 is the customer 1
        # (not a stripped id: the raw text is the id's, as in DuckDB's count)
        raw_id = (f"CASE WHEN {cid} = floor({cid}) AND abs({cid}) < 9e15 "
                  f"THEN CAST(CAST({cid} AS BIGINT) AS STRING) ELSE {raw_id} END")
        return raw_id, raw_id
    return f"trim(BOTH concat(' ', char(9), char(10), char(13)) FROM {raw_id})", raw_id


#: Spark's integer types: read as text through ``datetime_format`` (20240131).
_INTEGER_TYPES = ("tinyint", "smallint", "int", "bigint")


def _parse_sql(types: dict, customer_id_col: str, datetime_col: str,
               monetary_value_col: str | None, datetime_format: str | None,
               timezone: str) -> str:
    """The select list that parses one transaction: ``customer_id``, ``raw_id``, ``ts``,
    ``utc_offset`` (bool), ``amount`` (NULL where not a finite number) and ``raw_amount``."""
    when, zone = _q(datetime_col), timezone.replace("'", "\\'")
    customer, raw_id = customer_id_sql(customer_id_col, types[customer_id_col])
    date_type = types[datetime_col]
    utc_offset = "FALSE"
    # numbers such as 20240131 are dates with a format, as in DuckDB
    if date_type == "string" or (datetime_format and date_type in _INTEGER_TYPES):
        text = f"trim(CAST({when} AS STRING))"
        if datetime_format:
            pattern = spark_datetime_pattern(datetime_format)
            pattern = pattern.replace("\\", "\\\\").replace("'", "\\'")
            ts = f"try_to_timestamp({text}, '{pattern}')"
            if format_has_offset(datetime_format):
                # an instant: the wall-clock time in the zone, as DuckDB's timezone()
                ts = f"from_utc_timestamp({ts}, '{zone}')"
        else:
            # Spark reads the offset and gives the instant in the session's zone (UTC)
            utc_offset = _has_offset(text)
            ts = (f"CASE WHEN {utc_offset} THEN from_utc_timestamp(try_to_timestamp({text}), "
                  f"'{zone}') ELSE try_to_timestamp({text}) END")
    elif date_type == "timestamp":
        ts = f"from_utc_timestamp({when}, '{zone}')"
    elif date_type in ("timestamp_ntz", "date"):
        ts = f"CAST({when} AS TIMESTAMP)"
    else:
        raise ClvInputError(f"Column {datetime_col!r} holds {date_type} values, not dates.",
                            column=datetime_col,
                            advice="Point datetime_col at the date column.")
    if monetary_value_col:
        number = f"try_cast({_q(monetary_value_col)} AS DOUBLE)"
        amount = (f"CASE WHEN NOT isnan({number}) AND abs({number}) < "
                  f"CAST('Infinity' AS DOUBLE) THEN {number} END")
        raw_amount = _q(monetary_value_col)
    else:
        amount, raw_amount = "CAST(NULL AS DOUBLE)", "NULL"
    return (f"{customer} AS customer_id, {raw_id} AS raw_id, {ts} AS ts, "
            f"{utc_offset} AS utc_offset, {amount} AS amount, {raw_amount} AS raw_amount")


def spark_occasions(
    frame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    datetime_format: str | None = None,
    observation_end: dt.date | None = None,
    policies: DataPolicies | None = None,
    timezone: str = "UTC",
    source: str = "Spark DataFrame",
) -> SparkLog:
    """Validate a Spark DataFrame of transactions and summarise it into purchase occasions.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per transaction.
    customer_id_col, datetime_col, monetary_value_col : str
        Column names; ``monetary_value_col=None`` reads no amounts.
    datetime_format : str, optional
        strptime codes of a text or integer date column (``%Y%m%d``), as the single-machine
        engine reads them (:mod:`clvtools.data.spark_dates`); ISO dates need none.
    observation_end : datetime.date, optional
        Default: the last plausible date in the data.
    policies : DataPolicies, optional
        The reading policies (``duplicate_rows``: see the module).
    timezone : str
        IANA time zone whose calendar days count.
    source : str
        How the input is named in messages and in data_quality.json (the files read).

    Returns
    -------
    SparkLog
        ``quality`` holds the keys of ``TransactionLog.quality``; the duplicate counts
        (``duplicate_rows_found``, ``duplicate_rows_policy``) only when ``duplicate_rows`` is
        ``"drop"`` or ``"error"`` (under ``"keep"`` they are not looked for).

    Raises
    ------
    ClvInputError
        A missing column, id or date, an unparsable date or amount, an amount of
        :data:`~clvtools.data.money.MAX_AMOUNT` or more, rows that a policy set to
        ``"error"`` meets (exact duplicates among them), no row left.
    """
    policies = policies or DataPolicies()
    spark = frame.sparkSession
    configure_session(spark)
    types = dict(frame.dtypes)
    wanted = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col
                                                else [])
    missing = [c for c in wanted if c not in types]
    if missing:
        raise ClvInputError(f"Columns {missing} are missing from the transactions.",
                            source=source,
                            advice=f"The columns are {frame.columns}; set customer_id_col, "
                                   "datetime_col and monetary_value_col to their names.")
    number = next(_view_numbers)
    raw, parsed = f"clv_tx_{number}", f"clv_tx_{number}_parsed"
    frame.createOrReplaceTempView(raw)
    spark.sql(f"""SELECT *, CAST(ts AS DATE) AS date FROM (
                      SELECT {_parse_sql(types, customer_id_col, datetime_col,
                                         monetary_value_col, datetime_format, timezone)}
                      FROM {raw})""").createOrReplaceTempView(parsed)
    low, high = DATE_QUANTILES
    day = f"datediff(date, {_EPOCH})"
    # one scan: the problems, the plausible bounds (plausibility.bounds_sql) and the counts
    row = spark.sql(f"""SELECT count(*) AS rows_read,
            count_if(customer_id IS NULL OR customer_id = '') AS no_id,
            count_if(date IS NULL) AS no_date,
            count_if(raw_amount IS NOT NULL AND amount IS NULL) AS bad_amount,
            count_if(raw_amount IS NULL) AS no_amount,
            percentile_disc({low}) WITHIN GROUP (ORDER BY {day}) AS first,
            percentile_disc({high}) WITHIN GROUP (ORDER BY {day}) AS last,
            min(date) AS oldest, max(date) AS newest,
            percentile_disc(0.5) WITHIN GROUP (ORDER BY CASE WHEN amount > 0 THEN amount END)
                AS median, max(abs(amount)) AS largest,
            count_if(customer_id <> raw_id) AS ids_stripped, count_if(utc_offset) AS with_offset
        FROM {parsed}""").collect()[0]
    if row["rows_read"] == 0:
        raise ClvInputError("The transaction log has no data rows.", source=source)
    problems = [("no_id", "Customer ids are missing.", customer_id_col),
                ("no_date", "Dates are missing or could not be parsed.", datetime_col)]
    if monetary_value_col:
        problems += [("bad_amount", "Amounts are not numbers.", monetary_value_col),
                     ("no_amount", "Amounts are missing.", monetary_value_col)]
    for key, problem, column in problems:
        if row[key]:
            raise ClvInputError(problem, source=source, column=column, n_rows=int(row[key]),
                                advice="Fix or remove these rows (dates in ISO form, or give "
                                       "datetime_format; amounts as plain numbers).")

    def as_date(days):
        return None if days is None else dt.date(1970, 1, 1) + dt.timedelta(days=int(days))

    dates = None if row["oldest"] is None else (
        as_date(row["first"]), as_date(row["last"]), row["oldest"], row["newest"])
    bounds = bounds_from_dates(dates, row["median"], row["largest"],
                               date_window=policies.date_window,
                               amount_outlier_factor=policies.amount_outlier_factor)
    rules = policies.exclusion_rules(bounds, observation_end,
                                     has_amounts=bool(monetary_value_col), day="date")
    counts, prior = [], []
    for name, cond, policy, _problem, _advice in rules:
        counts.append(f"count_if({' AND '.join(prior + [cond])}) AS {name}")
        if policy != "keep":
            prior.append(f"NOT ({cond})")
    too_large = f"abs(amount) >= {MAX_AMOUNT!r}" if monetary_value_col else "FALSE"
    found = spark.sql(f"""SELECT {', '.join(counts)},
            max(date) FILTER (WHERE NOT {bounds.date_condition('date')}) AS last_date,
            count_if({' AND '.join(prior + [too_large])}) AS too_large
        FROM {parsed}""").collect()[0]
    excluded: dict[str, int] = {}
    keep: list[str] = []
    for name, cond, policy, problem, advice in rules:
        n = int(found[name])
        if policy == "error" and n:
            raise ClvInputError(problem, source=source, n_rows=n, advice=advice,
                                column=datetime_col if name.endswith("_dates")
                                or name.startswith("after") else monetary_value_col)
        if policy != "keep":
            excluded[name] = n
            if n:
                keep.append(f"NOT ({cond})")
    if found["too_large"]:
        raise ClvInputError(f"Amounts are {MAX_AMOUNT:.0e} or more in absolute value.",
                            source=source, column=monetary_value_col,
                            n_rows=int(found["too_large"]),
                            advice="Correct these amounts, or set amount_outliers = 'drop' to "
                                   "exclude them (counted in data_quality.json).")
    kept = f"clv_tx_{number}_kept"
    spark.sql(f"SELECT * FROM {parsed} WHERE {' AND '.join(keep) or 'TRUE'}"
              ).createOrReplaceTempView(kept)
    duplicates = {}
    if policies.duplicate_rows != "keep":
        found_twice = _duplicate_rows(spark, kept, policies.duplicate_rows, source=source,
                                      datetime_col=datetime_col,
                                      monetary_value_col=monetary_value_col)
        duplicates = {"duplicate_rows_found": found_twice,
                      "duplicate_rows_policy": policies.duplicate_rows}
        if policies.duplicate_rows == "drop":
            # one row of each: the day's total is then the exact sum of the rows kept
            excluded["duplicate_rows"] = found_twice
            if found_twice:
                kept = f"(SELECT DISTINCT customer_id, date, ts, amount FROM {kept})"
    occasions = f"clv_occasions_{number}"
    spark.sql(f"""SELECT customer_id, date, {money_sum('amount')} AS amount,
                         CAST(count(*) AS INT) AS n_rows
                  FROM {kept} GROUP BY customer_id, date""").cache().createOrReplaceTempView(
        occasions)
    stats = spark.sql(f"""SELECT count(*) AS n, sum(n_rows) AS rows_used,
                                 count(DISTINCT customer_id) AS customers, min(date) AS first,
                                 max(date) AS last, count_if(n_rows > 1) AS multi_days,
                                 sum(n_rows - 1) AS merged
                          FROM {occasions}""").collect()[0]
    if stats["n"] == 0:
        raise ClvInputError("No transactions are left after filtering "
                            f"({', '.join(f'{k}: {v:,}' for k, v in excluded.items() if v)}).",
                            source=source,
                            advice="Check observation_end and the policies for negative and "
                                   "zero amounts.")
    if stats["multi_days"] and policies.same_day == "error":
        raise ClvInputError("Some customers have several transactions on one day.",
                            source=source, column=datetime_col,
                            n_rows=int(stats["merged"]) + int(stats["multi_days"]),
                            advice="Set same_day = 'combine' to treat them as one purchase "
                                   "occasion (amounts summed).")
    customers = int(stats["customers"])
    lost = 0
    if any(excluded.values()):
        # customers all of whose rows were left out: every row read is used or excluded
        read = spark.sql(f"SELECT count(DISTINCT customer_id) FROM {parsed}").collect()[0][0]
        lost = int(read) - customers
    obs_end = observation_end or found["last_date"]
    quality = {
        "source": source,
        "columns": {"customer_id": customer_id_col, "date": datetime_col,
                    "amount": monetary_value_col},
        "rows_read": int(row["rows_read"]), "rows_used": int(stats["rows_used"]),
        "rows_excluded": sum(excluded.values()), "excluded_by_reason": excluded,
        **duplicates, "same_day_rows_combined": int(stats["merged"] or 0),
        "customers": customers, "customers_excluded": lost, "customers_read": customers + lost,
        "ids_stripped": int(row["ids_stripped"]),
        "timezone": {"setting": timezone, "rows_with_utc_offset": int(row["with_offset"])},
        "plausible": bounds.as_dict(),
        "purchase_occasions": int(stats["n"]), "first_date": stats["first"].isoformat(),
        "last_date": stats["last"].isoformat(), "observation_end": obs_end.isoformat(),
        "policies": asdict(policies), "engine": "spark"}
    return SparkLog(spark, occasions, obs_end, monetary_value_col is not None, quality)


def _duplicate_rows(spark, kept: str, policy: str, *, source: str, datetime_col: str,
                    monetary_value_col: str | None) -> int:
    """Rows of ``kept`` that repeat another row's customer, time and amount (each group's
    rows but one), as the single-machine reader counts them; under ``policy = "error"`` a
    :class:`ClvInputError` showing the first of them, if any."""
    groups = spark.sql(f"""SELECT customer_id, ts, amount, count(*) AS copies FROM {kept}
                           GROUP BY customer_id, ts, amount HAVING count(*) > 1""")
    found = int(groups.selectExpr("coalesce(sum(copies - 1), 0) AS n").collect()[0]["n"])
    if found and policy == "error":
        rows = (groups.orderBy("customer_id", "ts").limit(N_SHOWN).toPandas()
                .rename(columns={"ts": datetime_col, "amount": monetary_value_col or "amount"}))
        if not monetary_value_col:
            rows = rows.drop(columns="amount")
        raise ClvInputError("Some rows are exact duplicates (same customer, time and amount).",
                            source=source, rows=rows, n_rows=found,
                            advice="Set duplicate_rows = 'drop' to keep one of each or 'keep' "
                                   "to count each.")
    return found

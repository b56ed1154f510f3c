"""Customer attributes beside a Spark log: read, validated, typed and completed by the rules
of the single-machine reader (:mod:`clvtools.data.attributes`,
:mod:`clvtools.data.attribute_types`), in Spark SQL.

Each column is typed from a few aggregates (casts that fail, distinct values, the level
counts of a column with few levels), never from the column collected: a column of ten million
ids costs a scan. The thresholds and the :class:`~clvtools.data.attribute_types.TypedColumn`
that records the decision are the single-machine reader's, so both engines type a file alike.
Customers with purchases but no row get the single-machine fills (``"(missing)"``, the median).
With validity dates (``attributes_valid_from_col``), a row is not used at a landmark before
its date: the landmark table gets the column's fill instead, as the single-machine landmark
table does (:meth:`clvtools.data.attributes.CustomerAttributes.column_sql`).
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from ..errors import ClvInputError
from .attribute_types import (
    FREE_TEXT_MIN_LEVELS,
    FREE_TEXT_MIN_SHARE,
    OTHER_LEVEL,
    TypedColumn,
    pooled_categories,
)
from .attributes import MISSING_LEVEL, VALID_FROM
from .spark_engine import SparkLog, read_spark_source
from .spark_reader import customer_id_sql

__all__ = ["SparkAttributes", "spark_read_customers"]

_views = itertools.count(1)
_DATE_TYPES = ("date", "timestamp", "timestamp_ntz")
_EPOCH = "DATE '1970-01-01'"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class SparkAttributes:
    """Customer attributes completed for every customer with purchases, in a Spark view.

    Attributes
    ----------
    view : str
        Temporary view: ``customer_id`` (string) and one column per attribute the models use
        (DOUBLE when numeric, DATE for a duration, STRING otherwise), one row per customer
        with purchases.
    kinds : dict of str to str
        Attribute -> ``"numeric"``, ``"categorical"`` or ``"duration"``, in column order.
    quality : dict
        data_quality.json's ``customers`` entry (the single-machine reader's keys).
    notes : tuple of str
    fills : dict of str to str
        Each attribute's fill for a customer without a row, as a Spark SQL literal.

    aside : str, optional
        Temporary view of the columns read for the decisions (``contactable``), as they
        are (text), with ``customer_id``: one row per row of the file.

    With validity dates, the view also holds ``_valid_from`` (DATE; NULL for the filled).
    """

    view: str
    kinds: dict[str, str]
    quality: dict
    notes: tuple[str, ...] = field(default=())
    fills: dict[str, str] = field(default_factory=dict)
    aside: str | None = None

    @property
    def has_valid_from(self) -> bool:
        """Whether each row carries the date from which it is valid."""
        return "valid_from" in self.quality

    def select_sql(self, alias: str, at: str, *, as_of: bool = False) -> str:
        """The attributes as the models get them at the date ``at`` (an SQL expression):
        ``, a.x AS x, ...``, a duration as days from its date to ``at``; with ``as_of``, a
        row not yet valid at ``at`` gives the column's fill (when validity dates were
        given), so that the future does not reach a landmark."""
        items = []
        for column, kind in self.kinds.items():
            value = f"{alias}.{_q(column)}"
            if as_of and self.has_valid_from:
                value = (f"CASE WHEN {alias}.{VALID_FROM} <= {at} THEN {value} "
                         f"ELSE {self.fills[column]} END")
            if kind == "duration":
                value = f"CAST(datediff({at}, {value}) AS DOUBLE)"
            items.append(f", {value} AS {_q(column)}")
        return "".join(items)

    def frame_at(self, spark, day: dt.date):
        """The attributes at ``day`` (durations in days), one row per customer."""
        return spark.sql(f"SELECT a.customer_id{self.select_sql('a', repr_date(day))} "
                         f"FROM {self.view} AS a")


def repr_date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def spark_read_customers(log: SparkLog, source, *, customer_id_col: str = "customer_id",
                         columns: list[str] | None = None, valid_from_col: str | None = None,
                         unsupported: tuple[str, ...] = (),
                         set_aside: tuple[str, ...] = ()) -> SparkAttributes:
    """Read customer attributes beside a Spark log, typed and completed for the models.

    Parameters
    ----------
    log : SparkLog
    source : pyspark.sql.DataFrame, path or glob
        One row per customer, CSV (read as text) or Parquet.
    customer_id_col : str
    columns : list of str, optional
        Attributes to keep; default every column but the id (and ``valid_from_col``).
    valid_from_col : str, optional
        Column with the date from which each row is valid (setting
        ``attributes_valid_from_col``).
    unsupported : tuple of str
        Columns the single-machine engine reads for the decisions (``contactable``), which
        a Spark run does not honour: present in the file, they stop the run.
    set_aside : tuple of str
        Columns for the decisions, not the models (``contactable``): those present are read
        as they are into :attr:`SparkAttributes.aside`, as the single-machine reader sets
        them aside.

    Returns
    -------
    SparkAttributes

    Raises
    ------
    ClvInputError
        Missing id or attribute column, empty table, missing or duplicate ids, missing
        attribute values, no customer in common with the log, an unsupported column,
        missing or unreadable validity dates.
    """
    from pyspark.sql import DataFrame

    spark = log.spark
    if isinstance(source, DataFrame):
        frame, label = source, "Spark DataFrame"
    else:
        frame, label = read_spark_source(spark, source), str(source)
    types = dict(frame.dtypes)
    if customer_id_col not in types:
        raise ClvInputError(f"Column {customer_id_col!r} is missing.", source=label,
                            column=customer_id_col,
                            advice=f"The columns are {list(types)}; set customer_id_col.")
    refused = [c for c in unsupported if c in types]
    if refused:
        raise ClvInputError(f"The Spark engine does not support the customers file's columns "
                            f"{refused}.", source=label, column=refused[0],
                            advice="Run with --engine duckdb, or leave the columns out.")
    if valid_from_col is not None and valid_from_col not in types:
        raise ClvInputError(f"Column {valid_from_col!r} is missing.", source=label,
                            column=valid_from_col,
                            advice=f"The columns are {list(types)}; set "
                                   "attributes_valid_from_col.")
    present = [c for c in dict.fromkeys(set_aside) if c in types]
    attrs = columns or [c for c in types
                        if c not in (customer_id_col, valid_from_col, *present)]
    for column in attrs:
        if column not in types:
            raise ClvInputError(
                f"Attribute column {column!r} is missing.", source=label, column=column,
                advice="Check the attribute names in the settings against the file's header.")
    raw = f"clvtools_customers_raw_{next(_views)}"
    key, _ = customer_id_sql(customer_id_col, types[customer_id_col])
    # DuckDB's CAST(TRY_CAST(v AS TIMESTAMP) AS DATE): a date or a date and time
    valid = ([] if valid_from_col is None else
             [f"CAST(try_to_timestamp(CAST({_q(valid_from_col)} AS STRING)) AS DATE) "
              f"AS {VALID_FROM}"])
    frame.selectExpr(f"{key} AS customer_id", *[_q(c) for c in attrs], *valid
                     ).createOrReplaceTempView(raw)
    checks = ", ".join(
        ["count(*) AS n", "count_if(customer_id IS NULL OR customer_id = '') AS no_id",
         "count(*) - count(DISTINCT customer_id) AS repeated"]
        + [f"count_if({VALID_FROM} IS NULL) AS no_valid_from" for _ in valid]
        + [f"count_if({_q(c)} IS NULL OR isnan(try_cast({_q(c)} AS DOUBLE))) AS m{i}"
           for i, c in enumerate(attrs)])
    row = spark.sql(f"SELECT {checks} FROM {raw}").collect()[0]
    if not row["n"]:
        raise ClvInputError("The customers table has no data rows.", source=label,
                            advice="Check the export that wrote it, or run without --customers.")
    if row["no_id"]:
        raise ClvInputError(f"Customer ids are missing ({row['no_id']:,} rows).", source=label,
                            column=customer_id_col,
                            advice="Remove these rows or fill in their customer id.")
    if row["repeated"]:
        raise ClvInputError(
            f"Customer ids appear more than once in the customers table ({row['repeated']:,} "
            "repeated rows).", source=label, column=customer_id_col,
            advice="Keep one row per customer (the attributes at the observation end).")
    if valid and row["no_valid_from"]:
        raise ClvInputError(
            f"Validity dates are missing or not dates (YYYY-MM-DD) ({row['no_valid_from']:,} "
            "rows).", source=label, column=valid_from_col,
            advice=f"Fill in the date from which each row holds, or leave out the setting "
                   f"attributes_valid_from_col = {valid_from_col!r}.")
    for i, column in enumerate(attrs):
        if row[f"m{i}"]:
            raise ClvInputError(
                f"Attribute values are missing ({row[f'm{i}']:,} rows).", source=label,
                column=column, advice=f"Fill them in (for example with a level such as "
                f"'unknown'), or leave the column {column!r} out of the customers file.")
    typed = [_type_column(spark, raw, c, types[c], int(row["n"])) for c in attrs]
    kinds = {t.name: "duration" if t.action == "duration_days" else t.kind
             for t in typed if t.used}
    typed_view = f"clvtools_customers_{next(_views)}"
    spark.sql("SELECT customer_id" + "".join(
        f", {_typed_sql(t, types[t.name])} AS {_q(t.name)}" for t in typed if t.used)
        + "".join(f", {VALID_FROM}" for _ in valid)
        + f" FROM {raw}").createOrReplaceTempView(typed_view)
    quality = {"source": label, "rows_read": int(row["n"]), "customers": int(row["n"]),
               "attributes": {t.name: t.kind for t in typed}}
    quality["matching"] = _match(spark, log.occasions, typed_view)
    if not quality["matching"]["in_both"]:
        raise ClvInputError(
            "No customer id of the customers file appears in the transaction log.",
            source=label, column=customer_id_col,
            advice="Check that both files name the same id column (customer_id_col).")
    view, quality["filled_for_models"], fills = _complete(spark, log.occasions, typed_view,
                                                          kinds, valid_from=bool(valid))
    quality["typed"] = {t.name: t.as_dict() for t in typed}
    if valid_from_col is not None:
        quality["valid_from"] = {
            "column": valid_from_col,
            "rule": "a row is not used at a landmark before its date (filled instead)"}
    notes = tuple(n for n in (t.note() for t in typed) if n)
    aside = None
    if present:
        aside = f"clvtools_customers_aside_{next(_views)}"
        frame.selectExpr(f"{key} AS customer_id",
                         *[f"CAST({_q(c)} AS STRING) AS {_q(c)}" for c in present]
                         ).createOrReplaceTempView(aside)
    return SparkAttributes(view, kinds, quality, notes, fills, aside)


def _type_column(spark, source: str, column: str, spark_type: str, n: int) -> TypedColumn:
    """:func:`clvtools.data.attribute_types.type_column` in Spark SQL."""
    q = _q(column)
    number = f"try_cast({q} AS DOUBLE)"
    as_date = (f"CAST({q} AS DATE)" if spark_type in _DATE_TYPES
               else f"CAST(try_cast({q} AS TIMESTAMP) AS DATE)")
    text = spark_type == "string"
    leading_zero = f"count_if(trim({q}) RLIKE '^[+-]?0[0-9]')" if text else "0"
    numeric_like = spark_type not in ("boolean", *_DATE_TYPES)
    row = spark.sql(
        f"SELECT count_if({number} IS NULL) AS not_numbers, {leading_zero} AS zeros, "
        f"count(DISTINCT {number}) AS numbers, count_if({number} <> round({number})) AS frac, "
        f"count_if({as_date} IS NULL) AS not_dates, count(DISTINCT {as_date}) AS dates, "
        f"count(DISTINCT CAST({q} AS STRING)) AS levels FROM {source}").collect()[0]
    code_like = row["zeros"] > 0 or (n > FREE_TEXT_MIN_LEVELS and row["numbers"] == n
                                     and row["frac"] == 0)
    if numeric_like and row["not_numbers"] == 0 and not code_like:
        levels = int(row["numbers"])
        return TypedColumn(column, "numeric", "used" if levels > 1 else "dropped_constant",
                           levels)
    if spark_type in _DATE_TYPES or (text and row["not_dates"] == 0):
        levels = int(row["dates"])
        return TypedColumn(column, "date", "duration_days" if levels > 1 else "dropped_constant",
                           levels)
    levels = int(row["levels"])
    if levels > FREE_TEXT_MIN_LEVELS and levels > FREE_TEXT_MIN_SHARE * n:
        # decided from the count: an id column is never collected
        return TypedColumn(column, "categorical",
                           "dropped_id_like" if levels == n else "dropped_free_text", levels)
    counts = spark.sql(f"SELECT CAST({q} AS STRING) AS level, count(*) AS n FROM {source} "
                       "GROUP BY 1").collect()
    # the single-machine order: most frequent first, then by level (code point order)
    counts = sorted(((r["level"], int(r["n"])) for r in counts), key=lambda r: (-r[1], r[0]))
    return pooled_categories(column, counts)


def _typed_sql(typed: TypedColumn, spark_type: str) -> str:
    """The typed value of a used column: DOUBLE, DATE, or STRING with rare levels pooled."""
    q = _q(typed.name)
    if typed.kind == "numeric":
        return f"CAST({q} AS DOUBLE)"
    if typed.kind == "date":
        return (f"CAST({q} AS DATE)" if spark_type in _DATE_TYPES
                else f"CAST(try_cast({q} AS TIMESTAMP) AS DATE)")
    if not typed.pooled_levels:
        return f"CAST({q} AS STRING)"
    kept = ", ".join(_text(level) for level in typed.kept_levels) or "NULL"
    return (f"CASE WHEN CAST({q} AS STRING) IN ({kept}) THEN CAST({q} AS STRING) "
            f"ELSE {_text(OTHER_LEVEL)} END")


def _match(spark, occasions: str, customers: str) -> dict:
    """:func:`clvtools.data.schema.match_customers` in Spark SQL."""
    both, only_tx, only_other = (spark.sql(
        f"""SELECT count(*) FROM (SELECT DISTINCT customer_id FROM {left}) t
            {kind} JOIN (SELECT DISTINCT customer_id FROM {right}) o USING (customer_id)"""
    ).collect()[0][0] for left, right, kind in ((occasions, customers, "LEFT SEMI"),
                                                (occasions, customers, "LEFT ANTI"),
                                                (customers, occasions, "LEFT ANTI")))

    def examples(left: str, right: str) -> list[str]:
        rows = spark.sql(f"""SELECT DISTINCT customer_id FROM {left} LEFT ANTI JOIN
                             (SELECT DISTINCT customer_id FROM {right}) USING (customer_id)
                             ORDER BY customer_id LIMIT 5""").collect()
        return [r[0] for r in rows]

    return {"in_both": int(both), "only_in_transactions": int(only_tx),
            "only_in_customers": int(only_other),
            "examples_only_in_transactions": examples(occasions, customers),
            "examples_only_in_customers": examples(customers, occasions)}


def _complete(spark, occasions: str, customers: str, kinds: dict[str, str], *,
              valid_from: bool = False) -> tuple[str, dict, dict[str, str]]:
    """:func:`clvtools.data.attributes._complete_attributes` in Spark SQL: every customer with
    purchases, the missing ones filled ("(missing)", the median; a date's lower median);
    the rows' validity dates carried with ``valid_from``. Returns the view, the
    ``filled_for_models`` entry and each column's fill."""
    fills = {}
    for column, kind in kinds.items():
        q = _q(column)
        if kind == "categorical":
            fills[column] = _text(MISSING_LEVEL)
        elif kind == "numeric":
            # DuckDB's median: the mean of the two middle values, as Spark's percentile
            value = spark.sql(f"SELECT percentile({q}, 0.5D) FROM {customers}").collect()[0][0]
            fills[column] = f"CAST({float(value)!r} AS DOUBLE)"
        else:
            # quantile_disc(0.5): the value at the lower middle position, as percentile_disc
            # (over day numbers: Spark orders no dates in percentile_disc)
            value = spark.sql(
                f"SELECT date_add({_EPOCH}, CAST(percentile_disc(0.5) WITHIN GROUP (ORDER BY "
                f"datediff({q}, {_EPOCH})) AS INT)) FROM {customers}").collect()[0][0]
            fills[column] = repr_date(value)
    view = f"clvtools_customers_complete_{next(_views)}"
    spark.sql("SELECT t.customer_id" + "".join(
        f", coalesce(c.{_q(col)}, {fill}) AS {_q(col)}" for col, fill in fills.items())
        + (f", c.{VALID_FROM}" if valid_from else "")
        + f""" FROM (SELECT DISTINCT customer_id FROM {occasions}) t
        LEFT JOIN {customers} c USING (customer_id)""").createOrReplaceTempView(view)
    filled = spark.sql(f"""SELECT count(*) FROM (SELECT DISTINCT customer_id FROM {occasions}) t
                           LEFT ANTI JOIN {customers} c USING (customer_id)""").collect()[0][0]
    rule = (f"categorical attributes -> '{MISSING_LEVEL}', numeric attributes -> median"
            + (", dates -> median date" if "duration" in kinds.values() else ""))
    return view, {"filled_customers": int(filled), "rule": rule}, fills

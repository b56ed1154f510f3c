"""Customer attributes beside a transaction log: read, validated, typed, matched and completed.

:func:`read_customers` reads the attributes table, types each column by the rules of
:mod:`clvtools.data.attribute_types` (numbers, dates as durations, categories with rare levels
pooled; ids, free text and constants left out) into ``customers`` (``customer_id VARCHAR`` +
one column per attribute the models use), counts the customers present in only one of the two
tables (never dropped silently), and completes the attributes for every customer with
purchases in the table ``customers_complete``, the one the models use.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .attribute_types import TypedColumn, type_column
from .engine import quote_ident, register_source, run_scope, source_label
from .schema import (
    column_types,
    id_expr,
    match_customers,
    raise_if_no_match,
    raise_if_rows,
    require_columns,
)
from .transactions import TransactionLog

__all__ = ["MISSING_LEVEL", "VALID_FROM", "CustomerAttributes", "decoded_text",
           "read_customers"]

#: Level given to a categorical attribute of a customer with purchases but no attributes row.
MISSING_LEVEL = "(missing)"
#: Column of ``customers`` holding the date from which a row is valid
#: (``attributes_valid_from_col``).
VALID_FROM = "_valid_from"


@dataclass(frozen=True)
class CustomerAttributes:
    """Customer attributes, completed for every customer with purchases, held in DuckDB.

    Attributes
    ----------
    table : str
        Table (or view) on the log's connection: ``customer_id VARCHAR`` and one column per
        attribute the models use (DOUBLE when numeric, DATE for a duration, VARCHAR
        otherwise), one row per customer with purchases; the gaps filled as
        ``quality["filled_for_models"]["rule"]`` says; plus ``_valid_from`` (DATE) when the
        rows' validity dates were given.
    kinds : dict of str to str
        Attribute column the models use -> ``"numeric"``, ``"categorical"`` or
        ``"duration"`` (a date, given to the models as days since it), in column order.
    quality : dict
        ``{"source", "rows_read", "customers", "attributes": {column: kind}, "matching": {...},
        "filled_for_models": {"filled_customers", "rule"}, "typed": {column: {"kind",
        "action", "levels", "pooled_levels", "pooled_customers"}}}`` (and ``"valid_from"``
        when the rows' validity dates were given), as in data_quality.json.
    con : duckdb.DuckDBPyConnection
        The connection that holds ``table`` (the log's).
    observation_end : datetime.date, optional
        The date at which :meth:`frame` measures durations.
    fills : dict of str to str
        Attribute -> SQL literal of its fill (``'(missing)'``, the median), the value of a row
        not yet valid at a landmark.
    notes : tuple of str
        One line per column that was changed or dropped, for the console.
    set_aside : pandas.DataFrame, optional
        The columns read for the decisions and kept out of the models (``contactable``, an
        uplift column), as the file holds them, indexed by ``customer_id`` (str).
    text_levels : dict of str to tuple of str
        Each text (VARCHAR) attribute -> its values in ``table`` and its fill: what
        :meth:`column_sql`'s ``coded`` form casts it to.
    """

    table: str
    kinds: dict[str, str]
    quality: dict
    con: duckdb.DuckDBPyConnection = field(repr=False, compare=False)
    observation_end: dt.date | None = None
    fills: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    set_aside: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    text_levels: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False,
                                                     compare=False)

    @property
    def has_valid_from(self) -> bool:
        """Whether each row carries the date from which it is valid."""
        return "valid_from" in self.quality

    def columns(self) -> list[str]:
        """The attribute columns of ``table``, in order."""
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {quote_ident(self.table)}").fetchall()]
        return [c for c in cols if c not in ("customer_id", VALID_FROM)]

    def column_sql(self, column: str, alias: str, at: str, *, as_of: bool = False,
                   coded: bool = False) -> str:
        """SELECT-list item of one attribute as the models get it at the date ``at``.

        Parameters
        ----------
        column : str
        alias : str
            Alias of ``table`` in the query.
        at : str
            SQL expression of the date (a landmark column, a DATE literal).
        as_of : bool
            Replace a row not yet valid at ``at`` by the column's fill (when validity dates
            were given), so that the future does not reach a landmark.
        coded : bool
            A text attribute as a DuckDB ENUM of its levels (``text_levels``), which DuckDB
            hands to pandas as a categorical, without a Python string per row: for a result
            fetched into pandas and given to :func:`decoded_text` (never for a table kept in
            DuckDB, whose later readers expect text).
        """
        q = quote_ident(column)
        value = f"{alias}.{q}"
        if as_of and self.has_valid_from:
            value = (f"CASE WHEN {alias}.{VALID_FROM} <= {at} THEN {value} "
                     f"ELSE {self.fills[column]} END")
        if self.kinds.get(column) == "duration":
            value = f"CAST(date_diff('day', {value}, {at}) AS DOUBLE)"
        if coded and self.text_levels.get(column):
            levels = ", ".join(_sql_text(level) for level in self.text_levels[column])
            value = f"CAST({value} AS ENUM({levels}))"
        return f"{value} AS {q}"

    def frame(self, labels: pd.Index | None = None) -> pd.DataFrame:
        """The attributes as a DataFrame indexed by ``customer_id``: one row per customer
        with purchases, one column per attribute, durations in days at the observation end.

        Rows by ``customer_id``, the order of the RFM summary (:mod:`clvtools.data.rfm`):
        its users align it with the RFM's customers by id, and in the same order that is a
        comparison, not a look-up of a million text ids (measured at 300,000 customers: the
        sort costs 0.05 CPU-s, a look-up 0.2).

        Parameters
        ----------
        labels : pandas.Index, optional
            The ids the caller holds for these customers (the RFM summary's index): when the
            frame's ids are the same in the same order, the frame is indexed by ``labels``
            itself, so that a million ids' text is not held twice (about 55 MB).
        """
        at = f"DATE '{self.observation_end.isoformat()}'" if self.observation_end else "NULL"
        select = "".join(", " + self.column_sql(c, "a", at, coded=True) for c in self.columns())
        frame = self.con.execute(
            f"SELECT a.customer_id{select} FROM {quote_ident(self.table)} AS a "
            "ORDER BY a.customer_id"
        ).df().set_index("customer_id")
        for column in frame.columns:
            frame[column] = decoded_text(frame[column])
        if labels is not None and frame.index.equals(labels):
            frame.index = labels
        return frame


def decoded_text(column: pd.Series) -> np.ndarray:
    """A column fetched from DuckDB as :meth:`CustomerAttributes.column_sql`'s ``coded``
    form gives it, as the text column DuckDB gives otherwise: the same values, in an object
    array, a missing value None; with one string object per distinct value.

    DuckDB makes a Python string for every row of a text column: three attributes of a
    million customers held about 0.17 GB of strings (58 bytes each) where a few dozen
    distinct ones do, in every table that carries them (the landmark, validation and
    scoring tables, the attribute frames), and the strings cost about 0.2 s of CPU a table
    to make. A categorical (an ENUM) is taken from its codes; a text column (not coded) has
    its strings shared; any other column's values are returned as they are.

    Parameters
    ----------
    column : pandas.Series, shape (n,)

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, levels = column.cat.codes.to_numpy(), column.cat.categories
    elif column.dtype == object:
        codes, levels = pd.factorize(column.to_numpy(), use_na_sentinel=True)
    else:
        return column.to_numpy()
    # a missing value (code -1) takes the last entry: None, as DuckDB gives it
    return np.append(np.asarray(levels, dtype=object), None)[codes]


def _sql_text(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def read_customers(
    log: TransactionLog,
    source,
    *,
    customer_id_col: str = "customer_id",
    columns: list[str] | None = None,
    valid_from_col: str | None = None,
    set_aside: tuple[str, ...] = (),
    read_aside: bool = True,
) -> CustomerAttributes:
    """Read customer attributes beside a transaction log, for the models.

    Each column is typed first (:mod:`clvtools.data.attribute_types`): numbers stay numbers;
    dates become days since the date (at the observation end for the value model and the
    scoring table, at each landmark in the landmark survival tables); rare levels of a
    category are pooled into ``"(other)"``; ids, free text and constant columns are left out
    of the models, each counted in ``quality["typed"]`` and explained in ``notes``.

    The customers file is a snapshot, taken when it was exported: where its attributes are
    used at earlier landmarks (the churn model's training rows), they may carry the future
    (a plan changed after a complaint, a status set at churn). Give ``valid_from_col``, the
    date from which each row holds, and a row is not used at a landmark before that date (the
    customer then gets the fill of a customer without a row); without it, every attribute is
    taken as known at every landmark.

    Parameters
    ----------
    log : TransactionLog
        The transactions: its connection holds the tables, its customers are matched and
        completed.
    source : pandas.DataFrame, path or glob
        One row per customer (the attributes at the observation end), CSV or Parquet.
    customer_id_col : str
        Name of the id column.
    columns : list of str, optional
        Attributes to keep; default every column but the id (and ``valid_from_col``).
    valid_from_col : str, optional
        Column with the date from which each row is valid (setting ``attributes_valid_from_col``).
    set_aside : tuple of str
        Columns for the decisions, not the models (``contactable``, uplift columns): those
        in the file are read as they are into ``set_aside``; absent ones are skipped.
    read_aside : bool
        False: those columns are kept out of the models but not read into memory (a chunked
        run reads them in DuckDB from the table ``customers_source``,
        :func:`clvtools.data.decision_flags.store_yes_no_flags`).

    Returns
    -------
    CustomerAttributes
        The completed attributes (the table ``customers_complete``), their kinds, the quality
        summary (rows read, customers matched across the two tables, customers filled, columns
        typed) and the notes.

    Raises
    ------
    ClvInputError
        Missing id or attribute column, empty table, duplicate ids, missing attribute values,
        missing or unreadable validity dates.
    """
    quality, typed = _read_attributes(log.con, source, customer_id_col=customer_id_col,
                                      columns=columns, valid_from_col=valid_from_col,
                                      set_aside=set_aside)
    aside = None
    types = column_types(log.con, "customers_source")
    present = [c for c in dict.fromkeys(set_aside) if c in types]
    if present and read_aside:
        aside = log.con.execute(
            f"SELECT {id_expr(customer_id_col, types[customer_id_col])} AS customer_id, "
            + ", ".join(quote_ident(c) for c in present) + " FROM customers_source"
        ).df().set_index("customer_id")
    kinds = {t.name: "duration" if t.action == "duration_days" else t.kind
             for t in typed if t.used}
    quality["matching"] = match_customers(log.con, log.customer_ids(), "customers")
    raise_if_no_match(quality["matching"], "customers", quality["source"], customer_id_col)
    table, quality["filled_for_models"], fills = _complete_attributes(
        log.con, log.customer_ids(), "customers", kinds, valid_from=valid_from_col is not None,
        filled=quality["matching"]["only_in_transactions"])
    quality["typed"] = {t.name: t.as_dict() for t in typed}
    if valid_from_col is not None:
        quality["valid_from"] = {
            "column": valid_from_col,
            "rule": "a row is not used at a landmark before its date (filled instead)"}
    notes = tuple(n for n in (t.note() for t in typed) if n)
    return CustomerAttributes(table, kinds, quality, log.con, log.observation_end, fills, notes,
                              aside, _text_levels(log.con, table, kinds))


def _text_levels(con: duckdb.DuckDBPyConnection, table: str,
                 kinds: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Each text attribute's values in ``table`` and its fill (``MISSING_LEVEL``), sorted:
    the levels of :meth:`CustomerAttributes.column_sql`'s ``coded`` form."""
    types = dict(con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE {quote_ident(table)})").fetchall())
    levels = {}
    for column, kind in kinds.items():
        if kind == "categorical" and str(types.get(column, "")).upper() == "VARCHAR":
            values = {v for (v,) in con.execute(
                f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(table)} "
                f"WHERE {quote_ident(column)} IS NOT NULL").fetchall()}
            levels[column] = tuple(sorted(values | {MISSING_LEVEL}))
    return levels


def _read_attributes(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    customer_id_col: str = "customer_id",
    columns: list[str] | None = None,
    valid_from_col: str | None = None,
    set_aside: tuple[str, ...] = (),
) -> tuple[dict, list[TypedColumn]]:
    """Read a customer-attributes table into the table ``customers``, typed.

    Returns
    -------
    (dict, list of TypedColumn)
        ``{"source", "rows_read", "customers", "attributes": {name: kind}}`` and how each
        column enters the models.

    Raises
    ------
    ClvInputError
        Missing id or attribute column, empty table, duplicate ids, missing attribute values.
    """
    label = source_label(source)
    register_source(con, source, "customers_source")
    types = column_types(con, "customers_source")
    require_columns(types, {"customer_id_col": customer_id_col}, label)
    if valid_from_col is not None:
        require_columns(types, {"attributes_valid_from_col": valid_from_col}, label)
    skip = (customer_id_col, valid_from_col, "_file", "_line", *set_aside)
    attrs = columns or [c for c in types if c not in skip]
    for column in attrs:
        if column not in types:
            raise ClvInputError(
                f"Attribute column {column!r} is missing.", source=label, column=column,
                advice="Check the attribute names in the settings against the file's header.",
            )
    n = con.execute("SELECT count(*) FROM customers_source").fetchall()[0][0]
    if not n:
        raise ClvInputError("The customers table has no data rows.", source=label,
                            advice="Check the export that wrote it, or run without --customers.")
    cid = quote_ident(customer_id_col)
    key = id_expr(customer_id_col, types[customer_id_col])  # as the transactions' ids
    raise_if_rows(
        con, "customers_source", f"{cid} IS NULL OR {key} = ''",
        problem="Customer ids are missing.", source=label, column=customer_id_col,
        show=[cid], advice="Remove these rows or fill in their customer id.",
    )
    raise_if_rows(
        con, "customers_source",
        f"{key} IN (SELECT {key} FROM customers_source GROUP BY ALL HAVING count(*) > 1)",
        problem="Customer ids appear more than once in the customers table.", source=label,
        column=customer_id_col, show=[cid] + [quote_ident(c) for c in attrs[:3]],
        advice="Keep one row per customer (the attributes at the observation end).",
    )
    selects = [f"{key} AS customer_id"]
    if valid_from_col is not None:
        v = quote_ident(valid_from_col)
        valid = f"CAST(TRY_CAST({v} AS TIMESTAMP) AS DATE)"
        raise_if_rows(
            con, "customers_source", f"{valid} IS NULL", problem="Validity dates are missing "
            "or not dates (YYYY-MM-DD).", source=label, column=valid_from_col, show=[cid, v],
            advice=f"Fill in the date from which each row holds, or leave out the setting "
            f"attributes_valid_from_col = {valid_from_col!r}.",
        )
        selects.append(f"{valid} AS {VALID_FROM}")
    typed = []
    for column in attrs:
        q = quote_ident(column)
        raise_if_rows(
            con, "customers_source", f"{q} IS NULL OR (isnan(TRY_CAST({q} AS DOUBLE)) IS TRUE)",
            problem="Attribute values are missing.", source=label, column=column, show=[cid, q],
            advice=f"Fill them in (for example with a level such as 'unknown'), or leave the "
            f"column {column!r} out of the customers file.",
        )
        typed.append(type_column(con, "customers_source", column, types[column]))
        if typed[-1].used:
            selects.append(f"{typed[-1].sql(types[column])} AS {q}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE customers AS SELECT {', '.join(selects)} "
        "FROM customers_source"
    )
    kinds = {t.name: t.kind for t in typed}
    return {"source": label, "rows_read": int(n), "customers": int(n), "attributes": kinds}, typed


def _complete_attributes(con: duckdb.DuckDBPyConnection, customer_ids: str, customers: str,
                         kinds: dict[str, str], *, valid_from: bool = False, filled: int
                         ) -> tuple[str, dict, dict[str, str]]:
    """A table of attributes for every customer with purchases, for the models.

    Customers with purchases but no row in the attributes table get the level ``"(missing)"``
    for categorical attributes and the median for numeric ones and dates, so that no customer
    drops out of a model; how many were filled is returned (and reported in data_quality.json).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    customer_ids : str
        Table of the log's customer ids, one row each (``TransactionLog.customer_ids()``).
    customers : str
        The typed attributes, one row per customer id.
    kinds : dict
        Each model attribute's kind (``categorical``, ``numeric``, ``duration``).
    valid_from : bool
        Carry the rows' validity dates.
    filled : int
        Customers of the log without a row in ``customers`` (``match_customers``'s
        ``only_in_transactions``: the ids of ``customers`` are unique), reported as filled.

    Returns
    -------
    (str, dict, dict)
        The table's name (``customers_complete``), ``{"filled_customers": n, "rule": ...}`` and
        each column's fill as an SQL literal.
    """
    fills = {}
    for column, kind in kinds.items():
        q = quote_ident(column)
        if kind == "categorical":
            fills[column] = f"'{MISSING_LEVEL}'"
            continue
        # the median once, as a literal: the table is read at every landmark
        median = "median" if kind == "numeric" else "quantile_disc"
        arg = "" if kind == "numeric" else ", 0.5"
        value = con.execute(f"SELECT {median}({q}{arg}) FROM {customers}").fetchall()[0][0]
        fills[column] = (f"CAST({float(value)!r} AS DOUBLE)" if kind == "numeric"
                         else f"DATE '{value.isoformat()}'")
    selects = [f"coalesce(c.{quote_ident(col)}, {fill}) AS {quote_ident(col)}"
               for col, fill in fills.items()]
    if valid_from:
        selects.append(f"c.{VALID_FROM}")
    # a table, not a view: the view ran the DISTINCT over every occasion again at each read
    # (the landmark, scoring and validation queries, the value model's frame, the KPIs):
    # at a million customers and three attributes, seconds each time
    con.execute(
        f"""CREATE OR REPLACE {run_scope(con)}TABLE customers_complete AS
        SELECT t.customer_id{''.join(', ' + x for x in selects)}
        FROM {customer_ids} t LEFT JOIN {customers} c USING (customer_id)"""
    )
    rule = (f"categorical attributes -> '{MISSING_LEVEL}', numeric attributes -> median"
            + (", dates -> median date" if "duration" in kinds.values() else ""))
    return "customers_complete", {"filled_customers": int(filled), "rule": rule}, fills

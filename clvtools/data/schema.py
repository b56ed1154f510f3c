"""Checks shared by every table: input columns, the tables the summaries read, and customers
matched across tables.

Input checks are SQL expressions over a registered source view (see :mod:`.engine`); when one
finds offending rows, the error names the file, the column, the first rows (with their line
in the file) and what to do. The table checks (:func:`check_table`, :func:`check_occasions`)
guard the summaries' SQL against a table of the wrong shape.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import duckdb
import pandas as pd

from ..errors import ClvInputError
from .csv_diagnosis import physical_lines
from .engine import quote_ident

__all__ = [
    "column_types", "require_columns", "date_expr", "number_expr", "id_expr", "padded_id_sql",
    "is_integer_type", "format_has_offset",
    "raise_if_rows",
    "check_date", "check_table", "check_occasions", "match_customers", "raise_if_no_match",
]

#: How many offending rows an error shows.
N_SHOWN = 5

_TEMPORAL = ("DATE", "TIMESTAMP")
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


def column_types(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """Column name -> DuckDB type of ``view``, in order."""
    rows = con.execute(f"DESCRIBE {view}").fetchall()
    return {r[0]: r[1] for r in rows}


def require_columns(types: dict[str, str], wanted: dict[str, str], source: str) -> None:
    """Raise if a configured column is missing.

    Parameters
    ----------
    types : dict
        The source's columns (from :func:`column_types`).
    wanted : dict
        Setting name -> column name, e.g. ``{"customer_id_col": "customer_id"}``.
    source : str
        File name for the message.
    """
    available = [c for c in types if c not in ("_file", "_line")]
    for setting, column in wanted.items():
        if column not in types:
            raise ClvInputError(
                f"Column {column!r} is missing. "
                f"The columns are: {', '.join(map(repr, available))}.",
                source=source,
                column=column,
                advice=f"Rename the column in the file, or set {setting} to the name it has "
                f"(in the config file or with --{setting.replace('_', '-')}).",
            )


def has_offset_sql(text: str) -> str:
    """SQL: whether the date text ``text`` ends with a UTC offset after a time of day
    (``10:00:00+02:00``, ``10:00Z``, ``10:00 -0500``, ``10:00-05``).

    A look at a few characters from the end, not a regular expression: the test runs on every
    row of the log, and a text it lets through is parsed with its offset or not at all.
    """
    signs = " OR ".join(f"{text}[{i}] IN ('+', '-')" for i in (-3, -5, -6))
    return f"(length({text}) > 16 AND ({text}[-1] = 'Z' OR {signs}))"


def format_has_offset(datetime_format: str) -> bool:
    """Whether a strptime format reads a UTC offset or zone (``%z``, ``%Z``): its dates are
    instants, shown as the wall-clock time in the run's zone. ``%%z`` is the text "%z"."""
    # codes read left to right, two characters each, as strptime does: "%%" is one code
    return any(code in "zZ" for code in re.findall(r"%(.)", datetime_format))


def date_expr(column: str, col_type: str, datetime_format: str | None, *, setting: str,
              timezone: str = "UTC") -> str:
    """SQL that parses ``column`` to TIMESTAMP, NULL where it cannot be parsed.

    One time-zone policy for every format: an instant (a CSV date with a UTC offset, a
    time-zone-aware Parquet or DataFrame column, a format with ``%z``) becomes the wall-clock
    time in ``timezone``; a date or time without an offset is taken as a local time there,
    unchanged.
    """
    q = quote_ident(column)
    zone = timezone.replace("'", "''")
    base = col_type.split("(")[0].strip("\"").upper()
    if base.startswith("TIMESTAMP WITH TIME ZONE") or base == "TIMESTAMPTZ":
        return f"timezone('{zone}', {q})"
    if base.startswith(_TEMPORAL):
        return f"CAST({q} AS TIMESTAMP)"
    if base == "NULL":  # a column with no value at all (pandas' all-None): no dates, not an error
        return "CAST(NULL AS TIMESTAMP)"
    if base == "VARCHAR" or (datetime_format and base in _NUMERIC):
        text = f"trim({q if base == 'VARCHAR' else f'CAST({q} AS VARCHAR)'})"
        if datetime_format:
            fmt = datetime_format.replace("'", "''")
            if format_has_offset(datetime_format):
                return f"timezone('{zone}', try_strptime({text}, '{fmt}'))"
            return f"try_strptime({text}, '{fmt}')"
        return (f"CASE WHEN {has_offset_sql(text)} "
                f"THEN timezone('{zone}', TRY_CAST({text} AS TIMESTAMPTZ)) "
                f"ELSE TRY_CAST({text} AS TIMESTAMP) END")
    raise ClvInputError(
        f"Column {column!r} holds {col_type} values, not dates.",
        column=column,
        advice=f"Point {setting} at the date column, or give datetime_format "
        "(for example '%Y%m%d') if the dates are written as numbers.",
    )


def id_expr(column: str, col_type: str, *, strip: bool = True) -> str:
    """SQL that reads the customer id ``column`` as the text every table is matched on.

    Surrounding spaces, tabs and line ends are stripped (a CRM export's ``" C1 "`` is the
    customer ``C1``); whole-number floats, as a Parquet writer stores an id column with a gap,
    read as integers (``1.0`` is ``1``); text keeps its leading zeros. ``strip=False`` leaves
    the stripping out, for a table known to have no padded id (:func:`padded_id_sql`).
    """
    q = quote_ident(column)
    base = col_type.split("(")[0].strip("\"").upper()
    if base in ("FLOAT", "DOUBLE", "REAL", "DECIMAL"):
        # beyond 2**53 a double no longer holds every integer: its text is as exact as it gets
        return (f"CASE WHEN {q} = trunc({q}) AND abs({q}) < 9e15 "
                f"THEN CAST(CAST({q} AS BIGINT) AS VARCHAR) ELSE CAST({q} AS VARCHAR) END")
    text = f"CAST({q} AS VARCHAR)"
    if not strip:
        return text
    # DuckDB's trim with characters is four times slower than a look at both ends
    return (f"CASE WHEN {padded_id_sql(text)} "
            f"THEN trim({text}, ' ' || chr(9) || chr(10) || chr(13)) ELSE {text} END")


def is_integer_type(col_type: str) -> bool:
    """Whether a column of DuckDB type ``col_type`` holds integers (its ids are their text)."""
    return col_type.split("(")[0].strip("\"").upper() in _INTEGER


def padded_id_sql(text: str) -> str:
    """SQL: the id text ``text`` begins or ends with a space or a control character."""
    return f"({text} < '!' OR {text}[-1] < '!')"


def number_expr(column: str, col_type: str) -> str:
    """SQL that parses ``column`` to DOUBLE, NULL where it is not a finite number."""
    q = quote_ident(column)
    base = col_type.split("(")[0].strip("\"").upper()
    if base in _NUMERIC:
        value = f"CAST({q} AS DOUBLE)"
    else:
        value = f"TRY_CAST(trim(CAST({q} AS VARCHAR)) AS DOUBLE)"
    return f"(CASE WHEN isfinite({value}) THEN {value} END)"


def raise_if_rows(
    con: duckdb.DuckDBPyConnection,
    view: str,
    condition: str,
    *,
    problem: str,
    source: str,
    column: str | None,
    show: list[str],
    advice: str,
) -> None:
    """Raise :class:`ClvInputError` if any row of ``view`` satisfies ``condition``.

    The message shows the first rows, in file order, with their file and line.
    ``show`` lists SQL select expressions (quoted column names, or ``expr AS "name"``).
    """
    n = con.execute(f"SELECT count(*) FROM {view} WHERE {condition}").fetchall()[0][0]
    if not n:
        return
    cols = ", ".join(show)
    rows = con.execute(
        f"SELECT _file AS file, _line AS line, {cols} FROM {view} WHERE {condition} "
        f"ORDER BY _file, _line LIMIT {N_SHOWN}"
    ).df()
    rows["line"] = _file_lines(rows["file"], rows["line"])
    if rows["file"].nunique() == 1:
        rows = rows.drop(columns="file")
    raise ClvInputError(
        problem, source=source, column=column, rows=rows, n_rows=int(n), advice=advice
    )


def _file_lines(files: pd.Series, lines: pd.Series) -> pd.Series:
    """The real line in the file of each row: a CSV row's ``_line`` counts records, which a
    quoted field spanning lines or a blank line moves (Parquet rows count from 1 and stay)."""
    out = lines.copy()
    for name in files.unique():
        if not isinstance(name, str) or name == "DataFrame" or ".parquet" in name.lower() \
                or ".pq" in name.lower():
            continue
        at = files == name
        mapping = physical_lines(name, lines[at].astype(int))
        out[at] = [mapping.get(int(v), int(v)) for v in lines[at]]
    return out


def as_frame(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> pd.DataFrame:
    """Run ``sql`` and return a pandas DataFrame."""
    return con.execute(sql, params or []).df()


# ---------------------------------------------------------------- tables the summaries read
_OCCASION_COLUMNS = ("customer_id", "date", "amount")


def check_date(value: object, name: str) -> dt.date:
    """Accept a ``datetime.date`` (or pandas Timestamp at midnight) and return a ``date``."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise ClvInputError(f"The {name!r} parameter must be a date. Got {value!r} instead.")
    return value


def check_table(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str],
                what: str, dates: Sequence[str] = ()) -> list[str]:
    """Raise a ClvInputError unless ``table`` exists with ``columns``, those in ``dates``
    of SQL type DATE (the summaries' day arithmetic relies on it); return all its columns."""
    try:
        empty = con.execute(f"SELECT * FROM {quote_ident(table)} LIMIT 0")
    except duckdb.CatalogException:
        raise ClvInputError(f"There is no table or view named {table!r} for the {what}.",
                            advice="Create or register it on the same DuckDB connection.") from None
    types = {d[0]: str(d[1]) for d in empty.description}
    missing = [c for c in columns if c not in types]
    if missing:
        raise ClvInputError(f"The {what} table lacks the column(s) {missing}.", source=table,
                            advice=f"It needs the columns {list(columns)}.")
    for col in dates:
        if types[col] != "DATE":
            raise ClvInputError(f"The column must be of type DATE. Got {types[col]} instead.",
                                source=table, column=col,
                                advice=f'Cast it in a view: SELECT ..., "{col}"::DATE AS "{col}".')
    return list(types)


def check_occasions(con: duckdb.DuckDBPyConnection, occasions: str,
                    observation_end: dt.date) -> bool:
    """Check the occasions' columns and that no occasion is dated after the observation end.

    Returns whether any occasion has an amount.
    """
    check_table(con, occasions, _OCCASION_COLUMNS, "purchase occasions", dates=["date"])
    q = quote_ident(occasions)
    n = con.execute(f"SELECT count(*) FROM {q} WHERE date > $end",
                    {"end": observation_end}).fetchone()[0]
    if n:
        rows = con.execute(f"SELECT customer_id, date, amount FROM {q} WHERE date > $end "
                           "ORDER BY date LIMIT 5", {"end": observation_end}).df()
        raise ClvInputError(f"Purchases are dated after the observation end {observation_end}.",
                            source=occasions, column="date", rows=rows, n_rows=n,
                            advice="Set 'observation_end' to the last date of the data or later, "
                                   "or drop the later rows.")
    return con.execute(f"SELECT count(amount) > 0 FROM {q}").fetchone()[0]


def match_customers(con: duckdb.DuckDBPyConnection, customer_ids: str, other: str) -> dict:
    """Count customers present in one table and absent from the other.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    customer_ids : str
        Table of the log's customer ids, one row each (``TransactionLog.customer_ids()``).
    other : str
        Table with ``customer_id`` (repeats allowed), named as the counts' keys name it.

    Returns
    -------
    dict
        ``{"in_both", "only_in_transactions", "only_in_<other>", "examples_only_in_transactions",
        "examples_only_in_<other>"}`` (up to five example ids each).
    """
    row = con.execute(
        # one full join instead of a join per count: each join hashed a million ids again
        f"""WITH o AS (SELECT DISTINCT customer_id FROM {other})
        SELECT count(*) FILTER (WHERE t.customer_id IS NOT NULL AND o.customer_id IS NOT NULL),
               count(*) FILTER (WHERE o.customer_id IS NULL),
               count(*) FILTER (WHERE t.customer_id IS NULL),
               min(t.customer_id, 5) FILTER (WHERE o.customer_id IS NULL),
               min(o.customer_id, 5) FILTER (WHERE t.customer_id IS NULL)
        FROM {customer_ids} t FULL JOIN o ON t.customer_id = o.customer_id"""
    ).fetchall()[0]
    return {
        "in_both": int(row[0]),
        "only_in_transactions": int(row[1]),
        f"only_in_{other}": int(row[2]),
        "examples_only_in_transactions": list(row[3] or []),
        f"examples_only_in_{other}": list(row[4] or []),
    }


def raise_if_no_match(matching: dict, other: str, source: str, column: str) -> None:
    """Refuse a table none of whose customer ids appears in the transaction log.

    Parameters
    ----------
    matching : dict
        From :func:`match_customers`.
    other : str
        What the table holds (``"customers"``, ``"contracts"``), as in ``matching``'s keys.
    source, column : str
        The table's file and id column, for the message.
    """
    if matching["in_both"]:
        return
    ours = ", ".join(map(repr, matching["examples_only_in_transactions"][:3]))
    theirs = ", ".join(map(repr, matching[f"examples_only_in_{other}"][:3]))
    raise ClvInputError(
        f"No customer id of the {other} file appears in the transaction log: the log has ids "
        f"such as {ours}, the {other} file {theirs}.", source=source, column=column,
        advice="Check that both files come from the same system and name the same id column "
               "(customer_id_col); ids are matched as text after stripping spaces, so '0042' "
               "and '42' differ, while 42.0 in a Parquet file reads as 42.")

"""Checks shared by every table: input columns, the tables the summaries read, and customers
matched across tables.

Input checks are SQL expressions over a registered source view (see :mod:`.engine`); when one
finds offending rows, the error names the file, the column, the first rows (with their line
in the file) and what to do. The table checks (:func:`check_table`, :func:`check_occasions`)
guard the summaries' SQL against a table of the wrong shape.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import pandas as pd

from ..errors import ClvInputError
from .engine import quote_ident

__all__ = [
    "column_types", "require_columns", "date_expr", "number_expr", "raise_if_rows",
    "check_date", "check_table", "check_occasions", "match_customers",
]

#: How many offending rows an error shows.
N_SHOWN = 5

_TEMPORAL = ("DATE", "TIMESTAMP")
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


def date_expr(column: str, col_type: str, datetime_format: str | None, *, setting: str) -> str:
    """SQL that parses ``column`` to TIMESTAMP, NULL where it cannot be parsed."""
    q = quote_ident(column)
    base = col_type.split("(")[0].strip("\"").upper()
    if base.startswith(_TEMPORAL):
        return f"CAST({q} AS TIMESTAMP)"
    if base == "NULL":  # a column with no value at all (pandas' all-None): no dates, not an error
        return "CAST(NULL AS TIMESTAMP)"
    if base == "VARCHAR" or (datetime_format and base in _NUMERIC):
        text = q if base == "VARCHAR" else f"CAST({q} AS VARCHAR)"
        if datetime_format:
            fmt = datetime_format.replace("'", "''")
            return f"try_strptime(trim({text}), '{fmt}')"
        return f"TRY_CAST(trim({text}) AS TIMESTAMP)"
    raise ClvInputError(
        f"Column {column!r} holds {col_type} values, not dates.",
        column=column,
        advice=f"Point {setting} at the date column, or give datetime_format "
        "(for example '%Y%m%d') if the dates are written as numbers.",
    )


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
    if rows["file"].nunique() == 1:
        rows = rows.drop(columns="file")
    raise ClvInputError(
        problem, source=source, column=column, rows=rows, n_rows=int(n), advice=advice
    )


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


def match_customers(con: duckdb.DuckDBPyConnection, occasions: str, other: str) -> dict:
    """Count customers present in one table and absent from the other.

    Returns
    -------
    dict
        ``{"in_both", "only_in_transactions", "only_in_<other>", "examples_only_in_transactions",
        "examples_only_in_<other>"}`` (up to five example ids each).
    """
    row = con.execute(
        f"""WITH t AS (SELECT DISTINCT customer_id FROM {occasions}),
                 o AS (SELECT DISTINCT customer_id FROM {other})
        SELECT (SELECT count(*) FROM t SEMI JOIN o USING (customer_id)),
               (SELECT count(*) FROM t ANTI JOIN o USING (customer_id)),
               (SELECT count(*) FROM o ANTI JOIN t USING (customer_id)),
               (SELECT list(customer_id ORDER BY customer_id)[1:5]
                FROM t ANTI JOIN o USING (customer_id)),
               (SELECT list(customer_id ORDER BY customer_id)[1:5]
                FROM o ANTI JOIN t USING (customer_id))"""
    ).fetchall()[0]
    return {
        "in_both": int(row[0]),
        "only_in_transactions": int(row[1]),
        f"only_in_{other}": int(row[2]),
        "examples_only_in_transactions": list(row[3] or []),
        f"examples_only_in_{other}": list(row[4] or []),
    }

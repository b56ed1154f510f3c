"""Column checks shared by every input table: presence, parsing, and errors that show rows.

Each check is a SQL expression over a registered source view (see :mod:`.engine`); when it
finds offending rows, the error names the file, the column, the first rows (with their line
in the file) and what to do.
"""
from __future__ import annotations

import duckdb
import pandas as pd

from ..errors import ClvInputError
from .engine import quote_ident

__all__ = ["column_types", "require_columns", "date_expr", "number_expr", "raise_if_rows"]

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
    base = col_type.split("(")[0].upper()
    if base.startswith(_TEMPORAL):
        return f"CAST({q} AS TIMESTAMP)"
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
    base = col_type.split("(")[0].upper()
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

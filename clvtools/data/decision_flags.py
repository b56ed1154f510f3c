"""Yes/no columns of the customers file read for the decisions (``contactable``), in DuckDB:
a table of one flag per customer, which a chunked run reads a range of ids at a time rather
than holding every customer's text in pandas."""
from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb
import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .chunked_tables import chunk_frame
from .engine import quote_ident
from .schema import column_types, id_expr

__all__ = ["CUSTOMERS_SOURCE", "store_yes_no_flags", "flags_of_chunk"]

#: The table (or view) of the customers file as read (:func:`~.attributes.read_customers`).
CUSTOMERS_SOURCE = "customers_source"


def store_yes_no_flags(con: duckdb.DuckDBPyConnection, column: str, *, customer_id_col: str,
                       yes: Collection[str], no: Collection[str], into: str) -> bool:
    """The table ``into`` (``customer_id``, ``column`` BOOLEAN) of the customers file's
    ``column`` read as yes or no, as the single-machine plan reads it: the text trimmed and
    lower-cased, a word of ``yes`` is true, a blank is false (no recorded consent).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection holding :data:`CUSTOMERS_SOURCE`.
    column : str
        The column (e.g. ``contactable``).
    customer_id_col : str
        The file's id column (read as every table's ids are, :func:`~.schema.id_expr`).
    yes, no : collection of str
        The lower-case words read as yes and as no.
    into : str
        The table to create (replaced).

    Returns
    -------
    bool
        False when the file has no such column (no table is made).

    Raises
    ------
    ClvInputError
        A value is neither a yes nor a no word (the first five named).
    """
    types = column_types(con, CUSTOMERS_SOURCE)
    if column not in types:
        return False
    text = f"lower(trim(CAST({quote_ident(column)} AS VARCHAR)))"
    words = sorted(set(yes) | set(no))
    unknown = [r[0] for r in con.execute(
        f"SELECT DISTINCT {text} AS v FROM {CUSTOMERS_SOURCE} WHERE {text} IS NOT NULL "
        f"AND NOT list_contains($words, {text}) ORDER BY v LIMIT 5",
        {"words": words}).fetchall()]
    if unknown:
        raise ClvInputError(f"The {column} column holds values that are not yes or no: "
                            f"{unknown}.", source="customers", column=column,
                            advice="Use true/false, yes/no or 1/0.")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS "
        f"SELECT {id_expr(customer_id_col, types[customer_id_col])} AS customer_id, "
        f"coalesce(list_contains($yes, {text}), false) AS {quote_ident(column)} "
        f"FROM {CUSTOMERS_SOURCE}", {"yes": sorted(yes)})
    return True


def flags_of_chunk(con: duckdb.DuckDBPyConnection, table: str | None, column: str,
                   ids: pd.Index, bounds: Sequence[str], k: int) -> np.ndarray:
    """The flags of chunk ``k``'s customers ``ids`` from :func:`store_yes_no_flags`' table
    (a customer absent from the customers file is true, as the standard engine reads
    ``contactable``); all true without a table (None), shape (n,) of bool."""
    if table is None:
        return np.ones(len(ids), dtype=bool)
    found = chunk_frame(con, table, bounds, k)[column]
    return found.reindex(ids).astype("boolean").fillna(True).to_numpy(dtype=bool)

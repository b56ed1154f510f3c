"""Customer attributes beside a transaction log: read, validated, matched and completed.

:func:`read_customers` reads the attributes table into ``customers`` (``customer_id VARCHAR``
+ one column per attribute: numbers stay numbers, everything else is text), counts the
customers present in only one of the two tables (never dropped silently), and completes the
attributes for every customer with purchases in the view ``customers_complete``, the one the
models use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ..errors import ClvInputError
from .engine import quote_ident, register_source, source_label
from .schema import column_types, match_customers, raise_if_rows, require_columns
from .transactions import TransactionLog

__all__ = ["MISSING_LEVEL", "CustomerAttributes", "read_customers"]

#: Level given to a categorical attribute of a customer with purchases but no attributes row.
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class CustomerAttributes:
    """Customer attributes, completed for every customer with purchases, held in DuckDB.

    Attributes
    ----------
    table : str
        View on the log's connection: ``customer_id VARCHAR`` and one column per attribute
        (DOUBLE when numeric, VARCHAR otherwise), one row per customer with purchases; the
        gaps filled as ``quality["filled_for_models"]["rule"]`` says.
    kinds : dict of str to str
        Attribute column -> ``"numeric"`` or ``"categorical"``, in column order.
    quality : dict
        ``{"source", "rows_read", "customers", "attributes": kinds, "matching": {...},
        "filled_for_models": {"filled_customers", "rule"}}``, as in data_quality.json.
    con : duckdb.DuckDBPyConnection
        The connection that holds ``table`` (the log's).
    """

    table: str
    kinds: dict[str, str]
    quality: dict
    con: duckdb.DuckDBPyConnection = field(repr=False, compare=False)

    def frame(self) -> pd.DataFrame:
        """The attributes as a DataFrame indexed by ``customer_id``: one row per customer
        with purchases, one column per attribute."""
        return self.con.execute(f"SELECT * FROM {self.table}").df().set_index("customer_id")


def read_customers(
    log: TransactionLog,
    source,
    *,
    customer_id_col: str = "customer_id",
    columns: list[str] | None = None,
) -> CustomerAttributes:
    """Read customer attributes beside a transaction log, for the models.

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
        Attributes to keep; default every column but the id.

    Returns
    -------
    CustomerAttributes
        The completed attributes (view ``customers_complete``), their kinds and the quality
        summary: rows read, customers matched across the two tables, customers filled.

    Raises
    ------
    ClvInputError
        Missing id or attribute column, empty table, duplicate ids, missing attribute values.
    """
    quality = _read_attributes(log.con, source, customer_id_col=customer_id_col,
                               columns=columns)
    quality["matching"] = match_customers(log.con, log.occasions, "customers")
    table, quality["filled_for_models"] = _complete_attributes(
        log.con, log.occasions, "customers", quality["attributes"])
    return CustomerAttributes(table, dict(quality["attributes"]), quality, log.con)


def _read_attributes(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    customer_id_col: str = "customer_id",
    columns: list[str] | None = None,
) -> dict:
    """Read a customer-attributes table into the table ``customers``.

    Returns
    -------
    dict
        ``{"source", "rows_read", "customers", "attributes": {name: "numeric"|"categorical"}}``.

    Raises
    ------
    ClvInputError
        Missing id or attribute column, empty table, duplicate ids, missing attribute values.
    """
    label = source_label(source)
    register_source(con, source, "customers_source")
    types = column_types(con, "customers_source")
    require_columns(types, {"customer_id_col": customer_id_col}, label)
    attrs = columns or [c for c in types if c not in (customer_id_col, "_file", "_line")]
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
    raise_if_rows(
        con, "customers_source", f"{cid} IS NULL OR trim(CAST({cid} AS VARCHAR)) = ''",
        problem="Customer ids are missing.", source=label, column=customer_id_col,
        show=[cid], advice="Remove these rows or fill in their customer id.",
    )
    raise_if_rows(
        con, "customers_source",
        f"CAST({cid} AS VARCHAR) IN (SELECT CAST({cid} AS VARCHAR) FROM customers_source "
        "GROUP BY ALL HAVING count(*) > 1)",
        problem="Customer ids appear more than once in the customers table.", source=label,
        column=customer_id_col, show=[cid] + [quote_ident(c) for c in attrs[:3]],
        advice="Keep one row per customer (the attributes at the observation end).",
    )
    kinds: dict[str, str] = {}
    selects = [f"CAST({cid} AS VARCHAR) AS customer_id"]
    for column in attrs:
        q = quote_ident(column)
        raise_if_rows(
            con, "customers_source", f"{q} IS NULL OR (isnan(TRY_CAST({q} AS DOUBLE)) IS TRUE)",
            problem="Attribute values are missing.", source=label, column=column, show=[cid, q],
            advice=f"Fill them in (for example with a level such as 'unknown'), or leave the "
            f"column {column!r} out of the customers file.",
        )
        numeric = _is_numeric(con, column, types[column])
        kinds[column] = "numeric" if numeric else "categorical"
        selects.append(f"CAST({q} AS {'DOUBLE' if numeric else 'VARCHAR'}) AS {q}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE customers AS SELECT {', '.join(selects)} "
        "FROM customers_source"
    )
    return {"source": label, "rows_read": int(n), "customers": int(n), "attributes": kinds}


def _is_numeric(con, column: str, col_type: str) -> bool:
    if col_type.upper() == "BOOLEAN":
        return False
    q = quote_ident(column)
    bad = con.execute(
        f"SELECT count(*) FROM customers_source WHERE TRY_CAST({q} AS DOUBLE) IS NULL"
    ).fetchall()[0][0]
    return bad == 0


def _complete_attributes(con: duckdb.DuckDBPyConnection, occasions: str, customers: str,
                         kinds: dict[str, str]) -> tuple[str, dict]:
    """A view of attributes for every customer with purchases, for the models.

    Customers with purchases but no row in the attributes table get the level ``"(missing)"``
    for categorical attributes and the median for numeric ones, so that no customer drops
    out of a model; how many were filled is returned (and reported in data_quality.json).

    Returns
    -------
    (str, dict)
        The view's name (``customers_complete``) and ``{"filled_customers": n, "rule": ...}``.
    """
    selects = []
    for column, kind in kinds.items():
        q = quote_ident(column)
        fill = (f"'{MISSING_LEVEL}'" if kind == "categorical"
                else f"(SELECT median({q}) FROM {customers})")
        selects.append(f"coalesce(c.{q}, {fill}) AS {q}")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW customers_complete AS
        SELECT t.customer_id{''.join(', ' + x for x in selects)}
        FROM (SELECT DISTINCT customer_id FROM {occasions}) t
        LEFT JOIN {customers} c USING (customer_id)"""
    )
    filled = con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT customer_id FROM {occasions}) t "
        f"ANTI JOIN {customers} c USING (customer_id)"
    ).fetchall()[0][0]
    rule = f"categorical attributes -> '{MISSING_LEVEL}', numeric attributes -> median"
    return "customers_complete", {"filled_customers": int(filled), "rule": rule}

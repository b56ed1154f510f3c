"""Reading the optional tables beside a transaction log: customer attributes and contracts.

Customer attributes become the table ``customers`` (``customer_id VARCHAR`` + one column per
attribute: numbers stay numbers, everything else is text). Contracts become the table
``contracts`` (``customer_id, start, "end", end_reason``). Customers present in one table and
absent from another are counted in :func:`match_customers`, never dropped silently.
"""
from __future__ import annotations

import duckdb

from ..errors import ClvInputError
from .engine import quote_ident, register_source, source_label
from .schema import column_types, date_expr, raise_if_rows, require_columns

__all__ = ["read_customers", "read_contracts", "match_customers", "complete_attributes"]


def read_customers(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    customer_id_col: str = "customer_id",
    columns: list[str] | None = None,
) -> dict:
    """Read a customer-attributes table into ``customers``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    source : pandas.DataFrame, path or glob
    customer_id_col : str
    columns : list of str, optional
        Attributes to keep; default every column but the id.

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


def read_contracts(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    customer_id_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    reason_col: str | None = "end_reason",
    datetime_format: str | None = None,
) -> dict:
    """Read contracts (one row per contract) into ``contracts``.

    A contract without an end is running. An end without a reason gets the reason
    ``"unspecified"`` (counted in the returned summary).

    Returns
    -------
    dict
        ``{"source", "rows_read", "contracts", "ended", "reasons": {reason: count},
        "unspecified_reasons": n}``.
    """
    label = source_label(source)
    register_source(con, source, "contracts_source")
    types = column_types(con, "contracts_source")
    wanted = {"customer_id_col": customer_id_col, "start_col": start_col, "end_col": end_col}
    if reason_col:
        wanted["reason_col"] = reason_col
    require_columns(types, wanted, label)
    n = con.execute("SELECT count(*) FROM contracts_source").fetchall()[0][0]
    if not n:
        raise ClvInputError("The contracts table has no data rows.", source=label,
                            advice="Check the export that wrote it, or run without --contracts.")
    cid, s, e = quote_ident(customer_id_col), quote_ident(start_col), quote_ident(end_col)
    start = date_expr(start_col, types[start_col], datetime_format, setting="start_col")
    end = date_expr(end_col, types[end_col], datetime_format, setting="end_col")
    reason = f"CAST({quote_ident(reason_col)} AS VARCHAR)" if reason_col else "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW contracts_parsed AS SELECT _file, _line,
        CAST({cid} AS VARCHAR) AS customer_id, {start}::DATE AS start, {end}::DATE AS "end",
        {reason} AS end_reason, {s} AS _raw_start, {e} AS _raw_end FROM contracts_source"""
    )
    hint = f"Check the dates against datetime_format {datetime_format!r}." if datetime_format else (
        "Give datetime_format if the dates are not ISO (2024-12-31).")
    raise_if_rows(con, "contracts_parsed", "customer_id IS NULL OR trim(customer_id) = ''",
                  problem="Customer ids are missing.", source=label, column=customer_id_col,
                  show=["customer_id", f"_raw_start AS {s}"],
                  advice="Remove these rows or fill in the id.")
    raise_if_rows(con, "contracts_parsed", "start IS NULL",
                  problem="Contract starts are missing or could not be parsed.", source=label,
                  column=start_col, show=["customer_id", f"_raw_start AS {s}"], advice=hint)
    raise_if_rows(con, "contracts_parsed",
                  '"end" IS NULL AND _raw_end IS NOT NULL '
                  'AND trim(CAST(_raw_end AS VARCHAR)) <> \'\'',
                  problem="Contract ends could not be parsed.", source=label, column=end_col,
                  show=["customer_id", f"_raw_end AS {e}"],
                  advice=hint + " Leave the end empty for running contracts.")
    raise_if_rows(con, "contracts_parsed", '"end" < start',
                  problem="Contracts end before they start.", source=label, column=end_col,
                  show=["customer_id", f"_raw_start AS {s}", f"_raw_end AS {e}"],
                  advice="Correct the dates, or swap start and end if the columns are mixed up.")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE contracts AS SELECT customer_id, start, "end",
        CASE WHEN "end" IS NOT NULL THEN coalesce(nullif(trim(end_reason), ''), 'unspecified') END
            AS end_reason
        FROM contracts_parsed ORDER BY customer_id, start"""
    )
    reasons = dict(con.execute(
        'SELECT end_reason, count(*) FROM contracts WHERE "end" IS NOT NULL GROUP BY 1 ORDER BY 1'
    ).fetchall())
    unspecified = con.execute(
        "SELECT count(*) FROM contracts_parsed WHERE \"end\" IS NOT NULL AND "
        "(end_reason IS NULL OR trim(end_reason) = '')"
    ).fetchall()[0][0]
    return {
        "source": label, "rows_read": int(n), "contracts": int(n),
        "ended": int(sum(reasons.values())),
        "reasons": {str(k): int(v) for k, v in reasons.items()},
        "unspecified_reasons": int(unspecified),
    }


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


MISSING_LEVEL = "(missing)"


def complete_attributes(con: duckdb.DuckDBPyConnection, occasions: str, customers: str,
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

"""The chunked run's summaries kept in DuckDB, and the chunks of customers read from them.

``clvtools analyze --engine chunked`` (:mod:`clvtools.scale.chunked_run`) never holds a
per-customer table whole in pandas: the RFM summary, the scoring table and the landmark
table stay DuckDB tables (which spill to disk beyond ``memory_limit``), the models fit on
their compressed rows (:func:`compressed_rows`), and scoring reads one range of customer ids
at a time (:func:`chunk_bounds`, :func:`chunk_frame`): every table is sorted by
``customer_id``, so that a range is a contiguous run of rows.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from ..units import unit_days
from .attributes import CustomerAttributes
from .engine import fetch_frame, quote_ident
from .rfm import rfm_query
from .transactions import TransactionLog

__all__ = ["store_rfm", "rfm_at_sql", "chunk_bounds", "chunk_where", "chunk_frame",
           "attributes_sql", "compressed_rows", "landmark_strata", "fetch_rows", "rfm_of_customers",
           "rows_of_customers"]


def rfm_at_sql(log: TransactionLog, *, time_unit: str, at: dt.date | None = None) -> str:
    """SQL of the RFM summary of ``log`` at its observation end (or at the date ``at``: the
    customers acquired by then, their purchases up to it), sorted by customer, as
    :func:`~clvtools.data.rfm.rfm_summary` computes it."""
    return rfm_query(log.occasions, observation_end=at or log.observation_end,
                     days_per_unit=unit_days(time_unit), with_monetary=log.has_amounts,
                     one_row_per_day=log.one_row_per_day)


def store_rfm(log: TransactionLog, *, time_unit: str, into: str = "chunked_rfm",
              at: dt.date | None = None) -> int:
    """Keep the RFM summary at the observation end (or at ``at``) as the DuckDB table
    ``into`` (sorted by customer); returns its number of customers."""
    log.con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS "
                    f"{rfm_at_sql(log, time_unit=time_unit, at=at)}")
    return int(log.con.execute(f"SELECT count(*) FROM {quote_ident(into)}").fetchone()[0])


def chunk_bounds(con: duckdb.DuckDBPyConnection, table: str, chunk_rows: int) -> list[str]:
    """The first customer id of each chunk of ``chunk_rows`` customers of ``table`` (one row
    per customer), in order: chunk k holds the ids from bound k up to bound k + 1."""
    rows = con.execute(
        f"SELECT customer_id FROM (SELECT customer_id, row_number() OVER (ORDER BY customer_id) "
        f"AS i FROM {quote_ident(table)}) WHERE (i - 1) % {int(chunk_rows)} = 0 "
        "ORDER BY customer_id").fetchall()
    return [r[0] for r in rows]


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def chunk_where(bounds: Sequence[str], k: int, column: str = "customer_id") -> str:
    """SQL condition of chunk ``k``'s ids (from its bound up to the next chunk's)."""
    if k + 1 < len(bounds):
        return f"{column} >= {_literal(bounds[k])} AND {column} < {_literal(bounds[k + 1])}"
    return f"{column} >= {_literal(bounds[k])}"


def chunk_frame(con: duckdb.DuckDBPyConnection, source: str, bounds: Sequence[str], k: int,
                ) -> pd.DataFrame:
    """Chunk ``k``'s rows of the table or subquery ``source`` (with ``customer_id``), sorted
    by customer and indexed by ``customer_id``."""
    return fetch_frame(con, f"SELECT * FROM {source} WHERE {chunk_where(bounds, k)} "
                            "ORDER BY customer_id")


def attributes_sql(attributes: CustomerAttributes, at: dt.date) -> str:
    """Subquery of the attributes as the models get them at ``at`` (durations in days at
    ``at``), one row per customer: :meth:`CustomerAttributes.frame`'s rows, in SQL."""
    select = "".join(", " + attributes.column_sql(c, "a", f"DATE '{at.isoformat()}'")
                     for c in attributes.columns())
    return f"(SELECT a.customer_id{select} FROM {quote_ident(attributes.table)} AS a)"


def compressed_rows(con: duckdb.DuckDBPyConnection, source: str,
                    columns: Sequence[str]) -> pd.DataFrame:
    """The distinct rows of ``columns`` in ``source`` (one row per customer) with the
    customers each stands for.

    Returns
    -------
    pandas.DataFrame
        ``columns`` and ``weights`` (customers per row, float), ordered by each row's smallest
        customer id: the order in which a fit over the whole summary, sorted by customer,
        meets them (as :func:`clvtools.scale.spark_fit.compressed` orders Spark's).
    """
    names = ", ".join(quote_ident(c) for c in columns)
    rows = con.execute(
        f"SELECT {names}, count(*)::DOUBLE AS weights, min(customer_id) AS first_customer "
        f"FROM {source} GROUP BY ALL ORDER BY first_customer").df()
    return rows.drop(columns="first_customer")


def landmark_strata(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """The columns a stratified sample of the landmark table ``table`` needs, one row per
    table row in its order: ``row`` (its position), ``event``, ``landmark``,
    ``time_since_last_purchase`` (a few bytes a row, where the whole table is a few
    hundred)."""
    return con.execute(
        f"SELECT rowid AS row, event, landmark, time_since_last_purchase "
        f"FROM {quote_ident(table)} ORDER BY rowid").df()


def fetch_rows(con: duckdb.DuckDBPyConnection, table: str, rows: np.ndarray) -> pd.DataFrame:
    """The rows of ``table`` at the positions ``rows`` (increasing), in that order."""
    picked = pd.DataFrame({"row": np.asarray(rows, dtype=np.int64)})
    con.register("_chunked_picked_rows", picked)
    try:
        return con.execute(
            f"SELECT t.* FROM {quote_ident(table)} AS t "
            "JOIN _chunked_picked_rows AS p ON t.rowid = p.row ORDER BY p.row").df()
    finally:
        con.unregister("_chunked_picked_rows")


def rfm_of_customers(log: TransactionLog, ids: Sequence[str], *, time_unit: str) -> pd.DataFrame:
    """The RFM rows at ``log``'s observation end of the customers ``ids`` (others' purchases
    are not summarised), indexed by ``customer_id``."""
    picked = pd.DataFrame({"customer_id": pd.unique(np.asarray(ids, dtype=object))})
    log.con.register("_chunked_picked_ids", picked)
    try:
        occasions = (f"(SELECT o.* FROM {quote_ident(log.occasions)} AS o "
                     "SEMI JOIN _chunked_picked_ids AS p ON o.customer_id = p.customer_id)")
        sql = rfm_query(occasions, observation_end=log.observation_end,
                        days_per_unit=unit_days(time_unit), with_monetary=log.has_amounts,
                        one_row_per_day=log.one_row_per_day)
        return fetch_frame(log.con, sql)
    finally:
        log.con.unregister("_chunked_picked_ids")


def rows_of_customers(con: duckdb.DuckDBPyConnection, source: str,
                      ids: Sequence[str]) -> pd.DataFrame:
    """The rows of the table or subquery ``source`` (one row per customer) of the customers
    ``ids`` (distinct), indexed by ``customer_id``, in the order of ``ids``."""
    picked = pd.DataFrame({"customer_id": np.asarray(ids, dtype=object)})
    con.register("_chunked_picked_customers", picked)
    try:
        found = fetch_frame(con, f"SELECT s.* FROM {source} AS s SEMI JOIN "
                                 "_chunked_picked_customers AS p ON s.customer_id = "
                                 "p.customer_id")
    finally:
        con.unregister("_chunked_picked_customers")
    return found.loc[picked["customer_id"]]

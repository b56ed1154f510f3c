"""The chunked run's whole-base steps over its scored part files, in DuckDB SQL: the matrix's
cut points, the allocation under a push capacity by a global ranking, the sums of the plan
and of the matrix (exact micro-units), and the Parquet files written from them.

Each part file (Parquet) holds one chunk of customers as :func:`clvtools.pipeline.scoring.
score_chunk` and :func:`~clvtools.pipeline.scoring.decide_chunk` gave it; DuckDB reads the
folder as one table and spills beyond ``memory_limit``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .engine import quote_ident
from .money import micro_units

__all__ = ["parts", "write_part", "quantile", "store_plan", "plan_sums", "micro_sums_by",
           "copy_parquet", "whole_day_columns_of"]


def parts(folder: str | Path) -> str:
    """SQL of the part files of ``folder`` read as one table."""
    pattern = str(Path(folder) / "*.parquet").replace("'", "''")
    return f"read_parquet('{pattern}')"


def write_part(frame: pd.DataFrame, folder: str | Path, k: int) -> None:
    """One chunk as the Parquet part file ``folder/part-<k>.parquet`` (``customer_id`` a
    column; names sort in chunk order), which :func:`parts` reads with the others."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame.reset_index(), preserve_index=False),
                   folder / f"part-{k:06d}.parquet")


def quantile(con: duckdb.DuckDBPyConnection, source: str, column: str, q: float,
             where: str = "TRUE") -> float:
    """The exact quantile ``q`` of ``column`` over the rows of ``source`` meeting ``where``:
    ``quantile_cont``, linear interpolation between the closest ranks (numpy's default, as
    :func:`clvtools.targeting.matrix.cut_point` takes it); NaN without rows."""
    found = con.execute(f"SELECT quantile_cont({quote_ident(column)}, ?) FROM {source} "
                        f"WHERE {where}", [float(q)]).fetchone()[0]
    return float("nan") if found is None else float(found)


def store_plan(con: duckdb.DuckDBPyConnection, decided: str, *, capacity: int | None,
               into: str = "chunked_plan", choices: str | None = None,
               pull_rest: bool = True) -> None:
    """Push, pull or nothing per customer and the contacts' priority ranks, as the table
    ``into`` (``customer_id``, ``action``, ``expected_net_benefit``, ``saved_revenue``,
    ``expected_cost``, ``priority_rank``; sorted by customer).

    As :func:`clvtools.targeting.allocation.allocate` under a push capacity (or none), and
    as :func:`clvtools.scale.spark.allocate` ranks on Spark: push goes to the customers with
    the largest gain of push over their best alternative (ties by customer id), everyone else
    gets pull where it pays, nothing otherwise; the contacts are numbered push first, by
    expected net benefit, ties by customer id.

    Under a budget the knapsack's decisions are given instead: ``choices`` names a table of
    ``pos`` (a customer's position in id order, from 0) and ``choice`` (2 push, 1 pull) of
    the customers it chose; the others get pull where it pays (``pull_rest``, a push budget)
    or nothing (a total budget, which chose the pulls too).
    """
    limit = "" if capacity is None else f" LIMIT {int(capacity)}"
    rule = ("CASE WHEN p.customer_id IS NOT NULL THEN 'push' WHEN d.pull_open THEN 'pull' "
            "ELSE 'none' END")
    source, pushed_join = decided, "LEFT JOIN pushed AS p ON d.customer_id = p.customer_id"
    if choices is not None:
        rest = "WHEN d.pull_open THEN 'pull' " if pull_rest else ""
        rule = (f"CASE WHEN c.choice = 2 THEN 'push' WHEN c.choice = 1 THEN 'pull' {rest}"
                "ELSE 'none' END")
        source = (f"(SELECT *, row_number() OVER (ORDER BY customer_id) - 1 AS pos "
                  f"FROM {decided})")
        pushed_join = f"LEFT JOIN {quote_ident(choices)} AS c ON d.pos = c.pos"
    picked = {"expected_net_benefit": ("net_benefit_push", "net_benefit_pull"),
              "saved_revenue": ("saved_revenue_push", "saved_revenue_pull"),
              "expected_cost": ("cost_push", "cost_pull")}
    chosen = ", ".join(f"CASE action WHEN 'push' THEN {push} WHEN 'pull' THEN {pull} "
                       f"ELSE 0.0 END AS {name}" for name, (push, pull) in picked.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS
        WITH decided AS (SELECT * FROM {source}),
        pushed AS (SELECT customer_id FROM decided WHERE push_gain > 0
                   ORDER BY push_gain DESC, customer_id{limit}),
        acted AS (SELECT d.customer_id, d.net_benefit_push, d.net_benefit_pull,
                         d.saved_revenue_push, d.saved_revenue_pull, d.cost_push, d.cost_pull,
                         {rule} AS action
                  FROM decided AS d {pushed_join}),
        valued AS (SELECT customer_id, action, {chosen} FROM acted)
        SELECT *, CASE WHEN action <> 'none' THEN row_number() OVER (
                      PARTITION BY action <> 'none'
                      ORDER BY action = 'push' DESC, expected_net_benefit DESC, customer_id)
                  END AS priority_rank
        FROM valued ORDER BY customer_id""")


def plan_sums(con: duckdb.DuckDBPyConnection, plan: str) -> dict:
    """plan_summary.csv's counts and sums over the plan table (money summed exactly), its
    control group drawn (a ``group`` column, :mod:`clvtools.scale.chunked_control`): push,
    pull and the money are the treatment's, beside ``push_control``, ``pull_control`` and
    ``control_forgone_net_benefit`` (the control's expected net benefit), as the standard
    engine counts them."""
    def total(column: str, where: str = "TRUE") -> str:
        return f"coalesce(sum({micro_units(column)}) FILTER (WHERE {where}), 0)"

    treated, control = "\"group\" = 'treatment'", "\"group\" = 'control'"
    row = con.execute(f"""
        SELECT count(*) AS customers,
               count(*) FILTER (WHERE action = 'push' AND {treated}) AS push,
               count(*) FILTER (WHERE action = 'pull' AND {treated}) AS pull,
               count(*) FILTER (WHERE action = 'none') AS none,
               {total('expected_cost', f"action = 'push' AND {treated}")} AS push_cost,
               {total('expected_cost', f"action = 'pull' AND {treated}")} AS pull_cost,
               {total('expected_cost', treated)} AS cost,
               {total('saved_revenue', treated)} AS expected_saved_revenue,
               {total('expected_net_benefit', treated)} AS expected_net_benefit,
               count(*) FILTER (WHERE action = 'push' AND {control}) AS push_control,
               count(*) FILTER (WHERE action = 'pull' AND {control}) AS pull_control,
               {total('expected_net_benefit', control)} AS control_forgone_net_benefit
        FROM {quote_ident(plan)}""").df().iloc[0]
    return {k: (float(int(v)) / 1e6 if k.endswith(("cost", "revenue", "benefit")) else int(v))
            for k, v in row.items()}


def micro_sums_by(con: duckdb.DuckDBPyConnection, source: str, by: str,
                  columns: Sequence[str]) -> tuple[pd.Series, pd.DataFrame]:
    """Rows and exact sums of micro-units of ``columns`` per value of ``by`` (NaN and NULL
    skipped), as :func:`clvtools.data.spark_money.spark_micro_sums` gives them on Spark.

    Returns
    -------
    (pandas.Series, pandas.DataFrame)
        Rows per group (int) and one column of Python ints per money column, both indexed by
        the values of ``by``.
    """
    def known(c: str) -> str:   # NaN (no figure) is skipped, as a NULL
        return f"CASE WHEN isnan({quote_ident(c)}) THEN NULL ELSE {quote_ident(c)} END"

    sums = ", ".join(f"sum({micro_units(known(c))})::VARCHAR AS {quote_ident(c)}"
                     for c in columns)
    rows = con.execute(f"SELECT {quote_ident(by)}, count(*) AS rows, {sums} FROM {source} "
                       f"GROUP BY ALL ORDER BY 1").df()
    index = pd.Index(rows[by].tolist(), name=by)
    counts = pd.Series([int(n) for n in rows["rows"]], index=index)
    micro = pd.DataFrame({c: [0 if v is None or pd.isna(v) else int(v) for v in rows[c]]
                          for c in columns}, index=index, dtype=object)
    return counts, micro


def copy_parquet(con: duckdb.DuckDBPyConnection, select: str, path: str | Path) -> None:
    """Write the rows of ``select`` (a SELECT statement) as one Parquet file at ``path``."""
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet)")


def whole_day_columns_of(con: duckdb.DuckDBPyConnection, select: str) -> list[str]:
    """The date and timestamp columns of ``select`` (a SELECT statement) whose values (NULL
    aside) are all whole days: :func:`clvtools.data.export.whole_day_columns` over the rows
    in DuckDB, which a chunked CSV writes as days in every chunk."""
    relation = con.sql(select)
    stamps = [c for c, kind in zip(relation.columns, relation.types, strict=True)
              if str(kind).startswith(("DATE", "TIMESTAMP"))]
    if not stamps:
        return []
    whole = ", ".join(f"coalesce(bool_and({quote_ident(c)} = date_trunc('day', {quote_ident(c)})"
                      f"), TRUE)" for c in stamps)
    found = con.execute(f"SELECT {whole} FROM ({select})").fetchone()
    return [c for c, is_whole in zip(stamps, found, strict=True) if is_whole]

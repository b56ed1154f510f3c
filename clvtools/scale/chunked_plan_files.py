"""The chunked run's saved plan and contact list: plan.parquet (written by DuckDB from the
plan table, the decided parts and the lifecycle table), plan.json, and targets.csv (read a
page of priority ranks at a time), with the standard engine's columns, so that
``clvtools evaluate`` reads a chunked plan as it reads a standard one.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping

import duckdb
import pandas as pd

from ..config import Settings
from ..data.chunked_plan import copy_parquet, whole_day_columns_of
from ..data.engine import quote_ident
from ..pipeline.targets import PLAN_TABLE_COLUMNS
from ..report.outputs import CsvChunks, csv_in_chunks, plan_document
from ..targeting.allocation import Action
from ..targeting.matrix import CHURNED
from .run_files import TARGET_COLUMNS, actions

__all__ = ["plan_files", "ranked_pages", "PAGE_ROWS", "PLAN_TABLE", "LIFECYCLE_TABLE"]

#: The run's DuckDB tables of the plan (one row per customer, sorted by id: action, group,
#: priority rank, the chosen action's economics) and of the lifecycle.
PLAN_TABLE, LIFECYCLE_TABLE = "chunked_plan", "chunked_lifecycle"

#: Rows of a ranked list read at a time to write its CSV file.
PAGE_ROWS = 500_000


def plan_files(con: duckdb.DuckDBPyConnection, customers_sql: Callable[..., str],
               settings: Settings, observation_end: dt.date, summary: Mapping
               ) -> dict[str, Callable[[], object]]:
    """targets.csv, plan.parquet and plan.json of a chunked run (name -> content function,
    for :func:`clvtools.report.outputs.write_folder`).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The run's connection (its plan and lifecycle tables).
    customers_sql : callable
        The run's :meth:`~clvtools.scale.chunked_result.ChunkedRun.customers_sql`.
    settings : Settings
    observation_end : datetime.date
    summary : mapping
        plan_summary.csv's row (the counts of the treatment and of the control).
    """
    push, pull = actions(settings)
    contacts = int(summary["push"] + summary["pull"])

    def targets_page(first: int, last: int) -> str:
        return customers_sql(TARGET_COLUMNS, contacts=True,
                             where=f"p.priority_rank > {first} AND p.priority_rank <= {last}")
    return {
        "targets.csv": lambda: ranked_pages(
            con, targets_page, contacts,
            whole_day_columns_of(con, customers_sql(TARGET_COLUMNS, contacts=True))),
        "plan.parquet": lambda: (lambda path: copy_parquet(
            con, plan_sql(customers_sql, push, pull), path)),
        "plan.json": lambda: plan_document(settings, observation_end, summary),
    }


def ranked_pages(con: duckdb.DuckDBPyConnection, page_sql: Callable[[int, int], str],
                 rows: int, day_columns: list[str]) -> CsvChunks:
    """A ranked list's CSV content read a page of :data:`PAGE_ROWS` ranks at a time:
    ``page_sql(first, last)`` selects the rows ranked in (first, last], in rank order."""
    def pages() -> Iterator[pd.DataFrame]:
        for start in range(0, max(rows, 1), PAGE_ROWS):
            yield con.execute(page_sql(start, start + PAGE_ROWS)).df()
    return csv_in_chunks(pages(), day_columns)


def plan_sql(customers_sql: Callable[..., str], push: Action, pull: Action) -> str:
    """SELECT of plan.parquet's rows (:data:`~clvtools.pipeline.targets.PLAN_TABLE_COLUMNS`,
    sorted by customer): the plan table's decisions, the assumed uplift and reactivation rate
    of each customer's action (NULL without action), the decided parts' predictions and the
    last purchase, as the standard engine's ``TargetsResult.plan`` holds them."""
    assumed = {
        "assumed_uplift": (_rate_sql(push.uplift), _rate_sql(pull.uplift)),
        "assumed_reactivation": (_rate_sql(push.reactivation), _rate_sql(pull.reactivation)),
    }
    made = {name: f"CASE p.action WHEN 'push' THEN {on_push} WHEN 'pull' THEN {on_pull} END"
            for name, (on_push, on_pull) in assumed.items()}
    made.update({c: f"p.{quote_ident(c)}" for c in ("action", "group", "priority_rank",
                                                    "expected_net_benefit", "saved_revenue",
                                                    "expected_cost")})
    # a timestamp, as the standard plan's pandas column is written
    made["last_purchase"] = "l.last_purchase::TIMESTAMP"
    columns = [f"{made.get(c, 'd.' + quote_ident(c))} AS {quote_ident(c)}"
               for c in PLAN_TABLE_COLUMNS if c != "customer_id"]
    return customers_sql(("customer_id",), with_attributes=False,
                         more=(", " + ", ".join(columns), ""))


def _rate_sql(rate: float | Mapping[str, float]) -> str:
    """A rate as SQL: a number, or by matrix cell (``d.cell``; the declared churned 0 unless
    given, as :meth:`~clvtools.targeting.allocation.Action.uplift_of` reads it). Numbers go
    through text, which DuckDB reads to the nearest double as Python writes it."""
    if not isinstance(rate, Mapping):
        return f"'{float(rate)!r}'::DOUBLE"
    by_cell = {CHURNED: 0.0, **{str(k): float(v) for k, v in rate.items()}}
    cases = " ".join(f"WHEN '{cell.replace(chr(39), chr(39) * 2)}' THEN '{v!r}'::DOUBLE"
                     for cell, v in by_cell.items())
    return f"CASE d.cell {cases} END"

"""What a chunked run computed (:mod:`.chunked_run`), and the files it writes from its
DuckDB tables and Parquet part files: the per-customer rows (customers.csv's columns) as SQL
over the decided parts, the plan and the lifecycle tables, handed out as a DuckDB relation or
a chunk of customers at a time, and the ranked lists read a page of ranks at a time; no
per-customer table is ever whole in pandas.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ..config import Settings
from ..data.chunked_plan import copy_parquet, parts, whole_day_columns_of
from ..data.chunked_tables import chunk_where
from ..data.engine import quote_ident
from ..data.transactions import TransactionLog
from ..pipeline.backtest import BacktestResult
from ..pipeline.evaluation import EvaluationResult, survival_with_cells
from ..pipeline.forecasting import ForecastResult
from ..pipeline.scoring import Scorers
from ..pipeline.targets import PLAN_COLUMNS
from ..pipeline.timeline import Timeline
from ..pipeline.value_checks import checks_table
from ..report.outputs import (
    OUTPUTS,
    csv_in_chunks,
    forecast_to_cents,
    to_cents,
    write_folder,
)
from ..report.workbook import MAX_LIST_ROWS, WorkbookContent
from ..targeting.reasons import REASON_COLUMNS
from .chunked_attention import WIN_BACK_EXTRA, ChunkedLists
from .chunked_plan_files import LIFECYCLE_TABLE, PLAN_TABLE, plan_files, ranked_pages
from .chunked_report import render_chunked_report
from .chunked_spread import concentration_of
from .holdout_sums import HOLDOUT_FILES
from .run_files import (
    CUSTOMER_COLUMNS,
    TARGET_COLUMNS,
    run_data_quality,
    small_files,
    summary_lines,
    workbook_of,
)

__all__ = ["ChunkedRun", "CHUNKED_OUTPUTS", "CUSTOMERS_CSV_COLUMNS", "PLAN_TABLE",
           "LIFECYCLE_TABLE"]

#: The manifest's files a chunked run writes (report/outputs.py describes each).
CHUNKED_OUTPUTS = ("customers.csv", "customers.parquet", "targets.csv", "targets.parquet",
                   "plan.parquet", "plan.json", "forecast.csv", "forecast.xlsx",
                   "forecast_backtest.csv", "report.html",
                   "cohorts.csv",
                   "churn_by_segment.csv", "matrix.csv", "concentration.csv",
                   "sensitivity.csv", "targeting_evaluation.csv", "profit_curve.csv",
                   "plan_summary.csv", "control_power.csv", "early_warning.csv", "win_back.csv",
                   "kpis.csv", "churn_drivers.csv", "churn_validation.csv",
                   "churn_calibration.csv", "survival_curves.csv",
                   "median_time_to_churn.csv", "logrank_tests.csv", *HOLDOUT_FILES,
                   "value_checks.csv", "models/value.json",
                   "models/spend.json", "models/churn.json", "data_quality.json", "config.toml")
#: customers.csv's columns in the standard file's order (the attributes follow them).
CUSTOMERS_CSV_COLUMNS = (*[c for c in CUSTOMER_COLUMNS if c not in PLAN_COLUMNS], "lifecycle",
                         *PLAN_COLUMNS)


@dataclass
class ChunkedRun:
    """What a chunked run computed.

    Attributes
    ----------
    settings : Settings
    log : TransactionLog
        The purchase occasions, in DuckDB; the run's tables are on its connection.
    timeline : Timeline
    scorers : Scorers
    value_model : str
    cut_points : dict
        The matrix's ``value`` and ``risk`` cut points.
    matrix, kpis : pandas.DataFrame
    control_power : pandas.DataFrame
        control_power.csv: per action and cell, the treated and control counts and the
        smallest effect the control group can detect.
    summary : dict
        plan_summary.csv's row.
    bounds : list
        The first customer id of each chunk (:func:`~clvtools.data.chunked_tables.
        chunk_bounds`).
    survival_rows : int
        Rows of the landmark table (the Cox model's sample is smaller past
        ``churn_sample_rows``).
    work : pathlib.Path
        The folder of the scored part files (removed with the run).
    notes : list of str
    attributes_quality : dict, optional
    attributes : str, optional
        SQL of the customer attributes at the observation end (one row per customer), the
        columns customers.csv carries after its own.
    lists : ChunkedLists, optional
        The contacts' reasons and the two lists (:mod:`.chunked_attention`).
    forecast : ForecastResult, optional
        forecast.csv (:mod:`.chunked_forecast`).
    backtest : BacktestResult, optional
        forecast_backtest.csv (:mod:`.chunked_backtest`).
    cohorts, churn_by_segment : pandas.DataFrame, optional
        Retention by acquisition cohort and churn rates by segment (the KPI step's, SQL over
        the log).
    sensitivity : pandas.DataFrame, optional
        sensitivity.csv: the plan under scaled assumptions and a moved limit
        (:mod:`.chunked_sensitivity`).
    evaluation : EvaluationResult, optional
        targeting_evaluation.csv and profit_curve.csv (:mod:`.chunked_evaluation`).
    churn_validation : dict of pandas.DataFrame
        ``churn_validation`` and ``churn_calibration``, the churn model's out-of-time
        validation (:mod:`.chunked_validation`; empty when it could not run).
    survival : dict of pandas.DataFrame
        ``survival_curves``, ``median_time_to_churn`` and ``logrank_tests``: Kaplan-Meier
        curves overall and by categorical attribute, from the landmark table's counts in
        DuckDB (:func:`~clvtools.pipeline.risk.survival_from_counts`; the rows by matrix
        cell are the targeting evaluation's, stacked by :meth:`survival_tables`).
    value_holdout : dict of pandas.DataFrame
        The value model's holdout tables (``holdout_summary``, ``holdout_by_frequency``,
        ``holdout_by_month``, ``holdout_by_segment``), summed over chunks
        (:mod:`.chunked_holdout`; empty without a holdout).
    value_checks : dict
        The value model's checks, as the standard engine's ``ValueResult.checks``
        (:mod:`.chunked_value_checks`): value_checks.csv, data_quality.json's
        ``value_checks`` and the report's table.
    """

    settings: Settings
    log: TransactionLog
    timeline: Timeline
    scorers: Scorers
    value_model: str
    cut_points: dict
    matrix: pd.DataFrame
    kpis: pd.DataFrame
    control_power: pd.DataFrame
    summary: dict
    bounds: list
    survival_rows: int
    work: Path
    notes: list[str] = field(default_factory=list)
    attributes_quality: dict | None = None
    attributes: str | None = None
    lists: ChunkedLists | None = None
    forecast: ForecastResult | None = None
    backtest: BacktestResult | None = None
    cohorts: pd.DataFrame | None = None
    churn_by_segment: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    churn_validation: dict = field(default_factory=dict)
    evaluation: EvaluationResult | None = None
    survival: dict = field(default_factory=dict)
    value_holdout: dict = field(default_factory=dict)
    value_checks: dict = field(default_factory=dict)

    @cached_property
    def concentration(self) -> pd.DataFrame:
        """concentration.csv: the share of expected revenue the top customers hold, and the
        Gini coefficient (SQL over the decided parts, :mod:`.chunked_spread`)."""
        return concentration_of(self.log.con, parts(self.work / "decided"))

    def survival_tables(self) -> dict[str, pd.DataFrame]:
        """survival_curves.csv, median_time_to_churn.csv and logrank_tests.csv: the curves
        overall and by attribute with the evaluation's by matrix cell under them, as the
        standard run stacks them."""
        return survival_with_cells(self.survival, {} if self.evaluation is None
                                   else self.evaluation.survival_by_cell)

    @property
    def chunks(self) -> int:
        """Chunks of customers scored."""
        return len(self.bounds)

    def customers_relation(self):
        """customers.parquet's rows as a DuckDB relation (sorted by customer), for SQL over
        them without a pandas copy of the base."""
        return self.log.con.sql(self.customers_sql())

    def iter_customers(self):
        """customers.csv's rows a chunk of customers at a time, in order (as the run scored
        them).

        Yields
        ------
        pandas.DataFrame, shape (<= chunk rows, n_columns)
        """
        for k in range(len(self.bounds)):
            yield self.log.con.execute(self.customers_sql(where=self.chunk_condition(k))).df()

    def chunk_condition(self, k: int) -> str:
        """SQL condition of chunk ``k``'s customers in :meth:`customers_sql`, on each of its
        tables: every one is sorted by customer, so each reads only the chunk's row groups
        and no join builds over the whole base."""
        return " AND ".join(chunk_where(self.bounds, k, f"{alias}.customer_id")
                            for alias in ("d", "p", "l"))

    def customer_columns(self) -> list[str]:
        """customers.csv's columns that the run computes, the attributes aside."""
        return _present(CUSTOMERS_CSV_COLUMNS, self.work)

    def attribute_columns(self) -> list[str]:
        """The attributes' columns in customers.csv (an attribute named like a column of
        ours keeps its name with a suffix, as in the standard file)."""
        if self.attributes is None:
            return []
        names = self.log.con.sql(f"SELECT * FROM {self.attributes} LIMIT 0").columns
        return [c + "_attribute" if c in _ALL_OWN else c for c in names if c != "customer_id"]

    def customers_sql(self, columns=CUSTOMERS_CSV_COLUMNS, *, contacts: bool = False,
                      where: str = "TRUE", order: str | None = None,
                      with_attributes: bool = True, more: tuple[str, str] = ("", "")) -> str:
        """SELECT of ``columns`` (those the run has) and the attributes: the decided parts'
        scores beside the plan's actions and group and each customer's lifecycle, sorted by
        customer.

        ``contacts``: the treatment only, in priority order (targets.parquet), with the
        reasons when the run has them; ``where``: a further condition on ``d`` (the decided
        parts), ``p`` (the plan) and ``l`` (the lifecycle); ``order``: another order;
        ``more``: further select items and joins.
        """
        own = {**{c: "p" for c in _PLAN_OWN}, **{c: "l" for c in _LIFECYCLE_OWN},
               **{c: "r" for c in REASON_COLUMNS}}
        present = _present(columns, self.work, reasons=contacts and self.lists is not None)
        select = [f"{own.get(c, 'd')}.{quote_ident(c)}" for c in present]
        joins = (f"JOIN {PLAN_TABLE} AS p ON d.customer_id = p.customer_id "
                 f"JOIN {LIFECYCLE_TABLE} AS l ON d.customer_id = l.customer_id")
        if contacts and self.lists is not None:
            joins += f" LEFT JOIN {self.lists.reasons} AS r ON d.customer_id = r.customer_id"
        if with_attributes and self.attributes is not None:
            names = [c for c in self.log.con.sql(f"SELECT * FROM {self.attributes} LIMIT 0")
                     .columns if c != "customer_id"]
            select += [f"a.{quote_ident(c)} AS {quote_ident(named)}"
                       for c, named in zip(names, self.attribute_columns(), strict=True)]
            joins += f" LEFT JOIN {self.attributes} AS a ON d.customer_id = a.customer_id"
        if contacts:
            where = f"{where} AND p.\"group\" = 'treatment'"
        order = order or ("p.priority_rank" if contacts else "d.customer_id")
        return (f"SELECT {', '.join(select)}{more[0]} FROM {parts(self.work / 'decided')} AS d "
                f"{joins}{more[1]} WHERE {where} ORDER BY {order}")

    def data_quality(self) -> dict:
        """data_quality.json of a chunked run."""
        return run_data_quality("chunked", self.log.quality, self.attributes_quality,
                                self.timeline, self.value_model, self.notes,
                                value_checks=self.value_checks)

    def write(self, out) -> Path:
        """Write :data:`CHUNKED_OUTPUTS` into ``out``, atomically; the two Parquet files are
        written by DuckDB from the part files, without a pandas copy."""
        con = self.log.con
        customers = self.customers_sql()
        targets = self.customers_sql(TARGET_COLUMNS, contacts=True)
        files = {
            "customers.csv": lambda: csv_in_chunks(self.iter_customers(),
                                                   whole_day_columns_of(con, customers)),
            "early_warning.csv": lambda: self._ranked_csv(self.lists.early_warning,
                                                          "early_warning_rank"),
            "win_back.csv": lambda: self._ranked_csv(self.lists.win_back, "win_back_rank"),
            "customers.parquet": lambda: (lambda path: copy_parquet(con, customers, path)),
            "targets.parquet": lambda: (lambda path: copy_parquet(con, targets, path)),
            "control_power.csv": lambda: self.control_power,
            "forecast.csv": lambda: forecast_to_cents(None if self.forecast is None
                                                      else self.forecast.table),
            "forecast_backtest.csv": lambda: forecast_to_cents(None if self.backtest is None
                                                               else self.backtest.table),
            "forecast.xlsx": self._workbook,
            "report.html": lambda: render_chunked_report(self),
            "cohorts.csv": lambda: self.cohorts,
            "concentration.csv": lambda: to_cents(self.concentration),
            "sensitivity.csv": lambda: (None if self.sensitivity is None
                                        else to_cents(self.sensitivity)),
            "churn_by_segment.csv": lambda: self.churn_by_segment,
            "targeting_evaluation.csv": lambda: (None if self.evaluation is None
                                                 else self.evaluation.measures),
            "profit_curve.csv": lambda: (None if self.evaluation is None
                                         else self.evaluation.profit_curve),
            "churn_validation.csv": lambda: self.churn_validation.get("churn_validation"),
            "churn_calibration.csv": lambda: self.churn_validation.get("churn_calibration"),
            **{f"{name}.csv": lambda name=name: self.survival_tables().get(name)
               for name in ("survival_curves", "median_time_to_churn", "logrank_tests")},
            **{name: lambda name=name: self.value_holdout.get(name.removesuffix(".csv"))
               for name in HOLDOUT_FILES},
            "value_checks.csv": lambda: checks_table(self.value_checks, self.value_model),
            **plan_files(con, self.customers_sql, self.settings,
                         self.timeline.observation_end, self.summary),
            **small_files(self.settings, self.scorers, matrix=self.matrix, summary=self.summary,
                          kpis=self.kpis, data_quality=self.data_quality, engine="chunked"),
        }
        assert set(files) == set(CHUNKED_OUTPUTS) <= {o.name for o in OUTPUTS}
        return write_folder(files, out)

    def _workbook(self) -> WorkbookContent:
        """forecast.xlsx as the standard run writes it; its contact lists, the first
        :data:`~clvtools.report.workbook.MAX_LIST_ROWS` of each action, read by rank."""
        push, pull = int(self.summary["push"]), int(self.summary["pull"])
        first = (f"(p.priority_rank <= {MAX_LIST_ROWS} OR (p.priority_rank > {push} "
                 f"AND p.priority_rank <= {push + MAX_LIST_ROWS}))")
        top = self.log.con.execute(self.customers_sql(TARGET_COLUMNS, contacts=True,
                                                      where=first)).df()
        return workbook_of(self, top, push, pull)

    def _ranked_csv(self, table: str | None, rank: str):
        """A ranked list's CSV content, read from its table a page of ranks at a time
        (None: no such list)."""
        if table is None:
            return None
        con = self.log.con
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return ranked_pages(
            con, lambda first, last: (f"SELECT * FROM {table} WHERE {rank} > {first} AND "
                                      f"{rank} <= {last} ORDER BY {rank}"),
            rows, whole_day_columns_of(con, f"SELECT * FROM {table}"))

    def summary_lines(self) -> list[str]:
        """The run in a few lines for the console."""
        return summary_lines(self.summary, self.value_model, self.scorers.churn is not None,
                             self.notes, f" in {self.chunks} chunks")


#: The columns the plan table gives (the rest are the decided parts').
_PLAN_OWN = {"action", "group", "priority_rank", "expected_net_benefit", "saved_revenue",
             "expected_cost"}
#: The columns the lifecycle table gives.
_LIFECYCLE_OWN = {"lifecycle", "last_purchase", *WIN_BACK_EXTRA}
#: Every column of customers.csv but the attributes.
_ALL_OWN = {*CUSTOMERS_CSV_COLUMNS, *TARGET_COLUMNS}


def _present(columns, work: Path, *, reasons: bool = False) -> list[str]:
    """``columns`` that a run has (``monetary_value`` only with amounts; the reasons once
    computed)."""
    have = (set(pq.read_schema(next((work / "decided").glob("*.parquet"))).names) | _PLAN_OWN
            | _LIFECYCLE_OWN | (set(REASON_COLUMNS) if reasons else set()))
    return [c for c in columns if c in have]

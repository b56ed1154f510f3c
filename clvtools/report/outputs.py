"""The manifest of output files: every file a run may write, what writes it, what it means.

:func:`write_outputs` writes exactly these files and nothing else; the README's table of
outputs is checked against :data:`OUTPUTS` in the test suite. A file whose content is None
for a run (no contracts given, no churn model fitted, ...) is not written.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._version import __version__
from ..config import Settings, settings_to_toml
from ..data.export import arrow_table, whole_day_columns, write_csv, write_csv_chunks, write_parquet
from ..pipeline import AnalysisResult
from ..pipeline.campaign import PLAN_FORMAT, PLAN_VERSION
from ..pipeline.result import CUSTOMER_CHUNK_ROWS
from ..schemas import write_model_file
from . import output_folder
from .html import render_report
from .safe_text import neutralise_arrow
from .workbook import WorkbookContent, write_workbook

__all__ = ["Output", "OUTPUTS", "OUTPUT_NAMES", "write_outputs", "write_folder",
           "check_output_folder", "csv_in_chunks", "plan_document", "forecast_to_cents",
           "to_cents", "MONEY_COLUMNS"]


@dataclass(frozen=True)
class Output:
    """One output file.

    Attributes
    ----------
    name : str
        Path inside the output folder.
    content : callable
        ``content(result, attachments)`` gives what to write: a DataFrame or
        :class:`CsvChunks` (``.csv``), a dict (``.json``), a :class:`ModelDocument`
        (``models/*.json``), a string (``.toml``, ``.html``, ``.log``), a
        :class:`WorkbookContent` (``.xlsx``), a function that writes the file itself given its
        path (a Spark run's Parquet dataset), or None when the run has nothing for this file.
    meaning : str
        One line for the README and the report.
    """

    name: str
    content: Callable[[AnalysisResult, Mapping[str, pd.DataFrame]], object]
    meaning: str


@dataclass(frozen=True)
class Parquet:
    """A table written as Parquet (types kept: dates, integers with gaps, text)."""

    frame: pd.DataFrame


def _plan_json(r: AnalysisResult) -> dict:
    """plan.json of a standard run (:func:`plan_document`)."""
    return plan_document(r.settings, r.timeline.observation_end, r.targets.summary)


def plan_document(s: Settings, observation_end: dt.date, summary: Mapping) -> dict:
    """What a saved plan needs besides its table (plan.json): the date its predictions refer
    to (``observation_end``, a date), the settings ``s`` and the counts of ``summary``
    (plan_summary.csv's row); no wall-clock time: reruns stay byte-identical."""
    return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "clvtools_version": __version__,
            "observation_end": observation_end.isoformat(),
            "horizon": s.horizon, "churn_after": s.churn_after, "time_unit": s.time_unit,
            "control_share": s.control_share, "seed": s.seed,
            "customers": summary["customers"],
            "treated": {"push": summary["push"], "pull": summary["pull"]},
            "control": {"push": summary["push_control"], "pull": summary["pull_control"]},
            "settings": s.model_dump(mode="json")}


@dataclass(frozen=True)
class CsvChunks:
    """A large table written as CSV chunk by chunk (the per-customer table), the same bytes
    as the whole table's CSV: one chunk's copies (money to the cent, arrow, quoting) in memory
    at a time."""

    chunks: Iterable[pd.DataFrame]
    #: datetime columns written as days, decided on the whole table
    day_columns: tuple[str, ...]


@dataclass(frozen=True)
class ModelDocument:
    """A model file's content: the model's own document, then the run's context."""

    doc: dict


def _model_file(model_of: Callable[[AnalysisResult], object],
                extra: Callable[[AnalysisResult], dict] = lambda _r: {},
                **options) -> Callable:
    """Content of a model file: the fitted model's ``to_dict(**options)`` followed by
    ``extra(result)`` and the run's settings, data fingerprint and provenance; None when
    there is no such model."""
    def content(r: AnalysisResult, _a):
        model = model_of(r)
        if model is None:
            return None
        return ModelDocument({**model.to_dict(**options), **extra(r), **r.model_context()})
    return content


def _value_selection(r: AnalysisResult) -> dict:
    """models/value.json's ``selection``: which purchase model, how and why chosen."""
    choice = r.value.choice
    return {} if choice is None else {"selection": choice.as_dict()}


#: Columns in currency: rounded to the cent in the CSV files (the API keeps full precision).
MONEY_COLUMNS = frozenset({
    "monetary_value", "expected_average_spend", "revenue_if_retained", "expected_revenue",
    "revenue_if_retained_lo95", "revenue_if_retained_hi95", "expected_revenue_lo95",
    "expected_revenue_hi95",
    "revenue_at_risk", "lapsed_revenue", "preventable_revenue", "expected_net_benefit",
    "net_benefit_push", "net_benefit_pull", "saved_revenue", "expected_cost", "push_cost",
    "pull_cost", "cost", "expected_saved_revenue", "bound", "gap", "limit",
    "control_forgone_net_benefit",
    "involuntary_preventable_revenue", "value_at_stake", "lifetime_spend", "net_benefit",
})


def _cents(table_of: Callable[[AnalysisResult], pd.DataFrame | None]) -> Callable:
    """A decision table with its money columns rounded to the cent."""
    def content(r: AnalysisResult, _a):
        table = table_of(r)
        return None if table is None else to_cents(table)
    return content


def to_cents(table: pd.DataFrame) -> pd.DataFrame:
    """A decision table with its money columns (:data:`MONEY_COLUMNS`) rounded to the cent."""
    money = {c for c in table.columns if c in MONEY_COLUMNS
             and pd.api.types.is_float_dtype(table[c])}
    if not money or not table.columns.is_unique:
        return table.assign(**{c: table[c].round(2) for c in money})
    # the other columns as they are (copy=False): assign would copy every column of a
    # million-row table (or chunk) that is only converted to text. Given as Series (on the
    # table's own index, so nothing is realigned), not arrays: the constructor would look
    # through every text array for dates (customers.csv's chunks at 300,000 customers: 0.09
    # CPU-s against 0.015, time that holds the interpreter's lock)
    return pd.DataFrame({c: (table[c].round(2) if c in money else table[c])
                         for c in table.columns}, index=table.index, copy=False)


#: Rows of customers.csv converted and written at once (:meth:`AnalysisResult.iter_customers`).
CUSTOMERS_CHUNK_ROWS = CUSTOMER_CHUNK_ROWS


def _customers_csv(r: AnalysisResult, _a) -> CsvChunks:
    """customers.csv: the per-customer table to the cent, in chunks."""
    return csv_in_chunks(r.iter_customers(CUSTOMERS_CHUNK_ROWS),
                         whole_day_columns(r.targets.customers))


def csv_in_chunks(chunks: Iterable[pd.DataFrame], day_columns: Iterable[str]) -> CsvChunks:
    """A decision table's CSV content from its chunks (in order): money to the cent,
    ``day_columns`` (decided on the whole table) written as days; customers.csv, and the
    chunked run's tables (:mod:`clvtools.scale.chunked_run`)."""
    return CsvChunks((to_cents(chunk) for chunk in chunks), tuple(day_columns))


def _plan_summary(r: AnalysisResult) -> pd.DataFrame:
    """The plan in one row."""
    return pd.DataFrame([r.targets.summary])


def forecast_to_cents(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """A forecast table with its money (every float but churner counts and relative errors)
    to the cent."""
    if table is None:
        return None
    money = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])
             and not c.startswith("expected_churners") and c != "relative_error"]
    return table.assign(**{c: table[c].round(2) for c in money})


def _workbook(r: AnalysisResult, a) -> WorkbookContent:
    """forecast.xlsx: the tables of forecast.csv, plan_summary.csv, targets.csv, kpis.csv and
    matrix.csv as written (money to the cent), and the settings."""
    return WorkbookContent(
        forecast=forecast_to_cents(None if r.forecast is None else r.forecast.table),
        plan_summary=_cents(_plan_summary)(r, a),
        targets=_cents(lambda r: r.targets.targets)(r, a),
        kpis=r.kpi.kpis, matrix=_cents(lambda r: r.targets.matrix)(r, a),
        settings=r.settings, observation_end=r.timeline.observation_end,
        customers=r.targets.customers, money=MONEY_COLUMNS)


def _purchase_model(r: AnalysisResult):
    purchases = r.value.models.purchases
    # a covariate model is bound to the customers' attributes; the file holds the fitter
    return getattr(purchases, "model", purchases)


OUTPUTS: tuple[Output, ...] = (
    Output("report.html", lambda r, _a: render_report(r, campaign_evaluation=r.last_campaign),
           "one self-contained page for everyone (opens offline): summary, data quality, KPIs "
           "and cohorts, model fit, survival curves, value-risk matrix, targets, forecast"),
    Output("customers.csv", _customers_csv,
           "one row per customer: RFM, value, churn probability, revenue at risk, lifecycle, "
           "matrix cell, action, priority rank, net benefits, attributes"),
    Output("targets.csv", _cents(lambda r: r.targets.targets),
           "the contact list: push then pull customers in priority order"),
    Output("matrix.csv", _cents(lambda r: r.targets.matrix),
           "per matrix cell: customers, revenue if retained, expected revenue, revenue at risk"),
    Output("concentration.csv", _cents(lambda r: r.targets.concentration),
           "share of expected revenue held by the top 1, 5, 10, 20, 50 % and the Gini"),
    Output("plan_summary.csv", _cents(_plan_summary),
           "the plan in one row: counts, cost, saved revenue, net benefit, return, solver, gap"),
    Output("plan.parquet", lambda r, _a: Parquet(r.targets.plan),
           "the plan for clvtools evaluate: every customer's action, group, cell, predictions"),
    Output("plan.json", lambda r, _a: _plan_json(r),
           "the plan's date, settings and counts"),
    Output("control_power.csv", _cents(lambda r: r.targets.control_power),
           "per action and cell: treated, control, smallest uplift the control can detect"),
    Output("early_warning.csv", _cents(lambda r: r.targets.early_warning),
           "live customers whose churn probability rose most since the previous period"),
    Output("win_back.csv", _cents(lambda r: r.targets.win_back),
           "customers already declared churned, by the net benefit of a reactivation offer"),
    Output("sensitivity.csv", _cents(lambda r: r.targets.sensitivity),
           "the plan with the uplifts and reactivation rates scaled and the limit moved"),
    Output("targeting_evaluation.csv",
           lambda r, _a: r.evaluation.measures if r.evaluation is not None else None,
           "the targeting out of time: MP, EMPC, lift, Gini and realised net benefit of the "
           "plan chosen one horizon earlier, against naive plans"),
    Output("profit_curve.csv",
           lambda r, _a: r.evaluation.profit_curve if r.evaluation is not None else None,
           "realised net benefit of pushing the top share of each ranking, out of time"),
    Output("forecast.csv",
           lambda r, _a: forecast_to_cents(None if r.forecast is None else r.forecast.table),
           "per calendar month (and all) and matrix cell (and total): expected revenue, "
           "revenue if retained, expected loss, expected churners, saved by the plan, with "
           "80 % and 95 % intervals; nominal money; customers existing at the observation end"),
    Output("forecast.xlsx", _workbook,
           "the workbook for finance: the forecast by month with intervals (total and per "
           "cell) and its chart, the plan, the top of the push and pull lists, KPIs, the "
           "matrix, the settings"),
    Output("forecast_backtest.csv",
           lambda r, _a: forecast_to_cents(None if r.backtest is None else r.backtest.table),
           "the forecast refitted at earlier origins: expected versus actual revenue per month, "
           "error and interval coverage"),
    Output("rfm.csv", lambda r, _a: r.value.rfm.reset_index(),
           "one row per customer: frequency, recency, T, monetary_value (lifetimes' conventions)"),
    Output("lifecycle.csv", lambda r, _a: r.risk.lifecycle,
           "one row per customer: purchases, lifetime spend, new, active, at risk or churned"),
    Output("holdout_by_frequency.csv", lambda r, _a: r.value.holdout.get("holdout_by_frequency"),
           "value model refitted without the last horizon: holdout purchases by frequency"),
    Output("holdout_by_month.csv", lambda r, _a: r.value.holdout.get("holdout_by_month"),
           "actual versus expected purchases and revenue per month of the holdout"),
    Output("holdout_summary.csv", lambda r, _a: r.value.holdout.get("holdout_summary"),
           "holdout totals and errors, one row per candidate purchase model"),
    Output("holdout_by_segment.csv", lambda r, _a: r.value.holdout.get("holdout_by_segment"),
           "with attributes: actual versus expected holdout purchases and revenue by segment"),
    Output("value_checks.csv", lambda r, _a: r.value.checks_table(),
           "P(alive) AUC on the holdout, Gamma-Gamma's assumption, the purchase model's fit"),
    Output("survival_table.csv", lambda r, _a: r.risk.survival_table,
           "the landmark survival table that the churn model is fitted on"),
    Output("churn_drivers.csv", lambda r, _a: r.risk.tables.get("churn_drivers"),
           "hazard ratios with intervals, p-values and the proportional-hazards check"),
    Output("churn_validation.csv", lambda r, _a: r.risk.tables.get("churn_validation"),
           "out-of-time concordance, AUC and Brier score of the churn model"),
    Output("churn_calibration.csv", lambda r, _a: r.risk.tables.get("churn_calibration"),
           "predicted versus observed churn by decile, out of time"),
    Output("churn_agreement.csv", lambda r, _a: r.risk.tables.get("churn_agreement"),
           "agreement of the churn probability with 1 - P(alive)"),
    Output("survival_curves.csv", lambda r, _a: r.survival_tables().get("survival_curves"),
           "Kaplan-Meier curves to declared churn, overall, by categorical attribute and by "
           "matrix cell (cells drawn one horizon before the end, out of time)"),
    Output("median_time_to_churn.csv",
           lambda r, _a: r.survival_tables().get("median_time_to_churn"),
           "median time to declared churn, overall, by categorical attribute and by cell"),
    Output("logrank_tests.csv", lambda r, _a: r.survival_tables().get("logrank_tests"),
           "log-rank tests between the segments of each categorical attribute and the cells"),
    Output("contracts_survival.csv", lambda r, _a: r.risk.tables.get("contracts_survival"),
           "with contracts: durations and competing end reasons"),
    Output("contract_cumulative_incidence.csv",
           lambda r, _a: r.risk.tables.get("contract_cumulative_incidence"),
           "with contracts: cumulative incidence of each end reason (Aalen-Johansen)"),
    Output("kpis.csv", lambda r, _a: r.kpi.kpis,
           "per period: active, new, reactivated, churned, churn and retention rates, revenue"),
    Output("cohorts.csv", lambda r, _a: r.kpi.cohorts, "retention by acquisition cohort"),
    Output("churn_by_segment.csv", lambda r, _a: r.kpi.churn_by_segment,
           "churn rate per period by value tier, categorical attribute and contract end reason"),
    # the models without their data: the customers' rows are in the CSV files
    Output("models/value.json", _model_file(_purchase_model, _value_selection, save_data=False),
           "the fitted purchase model (BTYD)"),
    Output("models/spend.json", _model_file(lambda r: r.value.models.spend, save_data=False),
           "the fitted spend model (Gamma-Gamma)"),
    Output("models/churn.json", _model_file(lambda r: r.risk.model),
           "the fitted churn model (Cox)"),
    Output("data_quality.json", lambda r, _a: r.data_quality(),
           "rows read, used and excluded by reason; customers matched; notes; how it was made"),
    Output("config.toml", lambda r, _a: settings_to_toml(r.settings),
           "the resolved settings of this run"),
    Output("run.log", lambda _r, a: a.get("run.log"),
           "the command line only: what the console printed (steps, notes, warnings, the "
           "summary)"),
    Output("customers.parquet", lambda _r, a: a.get("customers.parquet"),
           "--engine spark only: customers.csv's figures as a Parquet dataset (a folder of "
           "part files that the executors write), money at full precision; --engine chunked: "
           "the same columns as one Parquet file that DuckDB writes from the scored chunks"),
    Output("targets.parquet", lambda _r, a: a.get("targets.parquet"),
           "--engine spark only: the contact list (targets.csv's columns with the reasons, "
           "without the attributes), push then pull customers sorted by priority rank, a Parquet "
           "dataset that the executors write, money at full precision; --engine chunked: "
           "one Parquet file, with the reasons and the attributes"),
    Output("early_warning.parquet", lambda _r, a: a.get("early_warning.parquet"),
           "--engine spark only: early_warning.csv's list (live customers whose churn "
           "probability rose since the previous KPI period, largest rise first), a Parquet "
           "dataset that the executors write"),
    Output("win_back.parquet", lambda _r, a: a.get("win_back.parquet"),
           "--engine spark only: win_back.csv's list (declared-churned customers by the net "
           "benefit of a reactivation offer, best first), a Parquet dataset that the executors "
           "write, money at full precision"),
    Output("demo_input/transactions.csv", lambda _r, a: a.get("demo_input/transactions.csv"),
           "demo only: the generated transaction log"),
    Output("demo_input/customers.csv", lambda _r, a: a.get("demo_input/customers.csv"),
           "demo only: the generated customer attributes"),
    # written by write_folder itself, last, into every output folder
    Output(output_folder.OWNERSHIP_FILE, lambda _r, _a: None,
           "the files this run wrote: proves the folder is clvtools' own, so that the next "
           "run replaces them and refuses a folder that holds anything else"),
)

#: Every name of the manifest.
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)


def check_output_folder(out: str | os.PathLike, inputs: Iterable = ()) -> Path:
    """Refuse, before the work, an output folder that a run could not replace safely
    (:func:`.output_folder.check_output_folder` with this manifest's names)."""
    return output_folder.check_output_folder(out, OUTPUT_NAMES, marker="data_quality.json",
                                             inputs=inputs)


def _write(content, path: Path) -> int:
    """Write one content; returns the number of text cells of a CSV file quoted against
    formulas (:mod:`.safe_text`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, pd.DataFrame):
        table, quoted = neutralise_arrow(arrow_table(content))
        write_csv(table, path)
        return quoted
    if isinstance(content, CsvChunks):
        counts = []

        def tables():
            for chunk in content.chunks:
                table, n = neutralise_arrow(arrow_table(chunk, content.day_columns))
                counts.append(n)
                yield table
        write_csv_chunks(tables(), path)
        return sum(counts)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, Parquet):
        write_parquet(content.frame, path)
    elif isinstance(content, ModelDocument):
        write_model_file(content.doc, path)
    elif isinstance(content, WorkbookContent):
        write_workbook(content, path)
    elif callable(content):
        # a writer of its own: a Spark DataFrame's executors write a Parquet dataset there
        content(path)
    else:
        path.write_text(json.dumps(content, indent=2, allow_nan=False, default=str) + "\n")
    return 0


def _safe_text_summary(quoted: Mapping[str, int]) -> dict:
    """data_quality.json's ``safe_text``: cells quoted per CSV file, and how to undo it."""
    return {"cells_quoted": sum(quoted.values()), "by_file": dict(sorted(quoted.items())),
            "rule": "text from the data that begins with =, +, -, @, a tab or a carriage "
                    "return gets a leading single quote, except plain numbers and phone "
                    "numbers (+ and digits); remove that one quote to recover the original"}


def write_outputs(result: AnalysisResult, out: str | os.PathLike,
                  attachments: Mapping[str, pd.DataFrame | str] | None = None,
                  inputs: Iterable = ()) -> Path:
    """Write every file of the manifest that ``result`` has into the folder ``out``, atomically
    (:func:`write_folder`). ``attachments`` maps manifest names to further content: tables
    (the demo's generated input), text (the command line's run.log); ``inputs`` are the
    run's input files, refused inside ``out``. data_quality.json is written last, with the
    count of cells that the CSV files quote against formulas."""
    attachments = dict(attachments or {})
    unknown = sorted(set(attachments) - set(OUTPUT_NAMES))
    if unknown:
        raise ValueError(f"Attachments {unknown} are not in the manifest of outputs.")
    quoted: dict[str, int] = {}
    files = {o.name: (lambda o=o: o.content(result, attachments)) for o in OUTPUTS
             if o.name != "data_quality.json"}
    files["data_quality.json"] = lambda: {**result.data_quality(),
                                          "safe_text": _safe_text_summary(quoted)}
    # the tables' files are written by pyarrow, which releases the GIL: on a worker thread
    # they overlap with the report's figures and the workbook, written here
    tables = [name for name in files if name.endswith(".csv") or name in PYARROW_PARQUET]
    return write_folder(files, out, inputs=inputs, quoted=quoted, background=tables)


#: Parquet files that pyarrow writes here, releasing the GIL (the Parquet datasets of a Spark
#: run are written by its executors and stay on the calling thread).
PYARROW_PARQUET = frozenset({"plan.parquet"})


def write_folder(files: Mapping[str, Callable[[], object]], out: str | os.PathLike,
                 marker: str = "data_quality.json", *, inputs: Iterable = (),
                 quoted: dict[str, int] | None = None, background: Collection[str] = ()) -> Path:
    """Write ``files`` (name -> content function) into ``out`` atomically with this module's
    writers (:func:`.output_folder.write_folder`, ``background`` names on its worker
    thread); ``quoted`` collects, per CSV file, the number of cells quoted against formulas."""
    def write(name: str, content, path: Path) -> None:
        n = _write(content, path)
        if n and quoted is not None:
            quoted[name] = n
    return output_folder.write_folder(files, out, marker, write=write, inputs=inputs,
                                      background=background)

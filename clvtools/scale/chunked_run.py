"""``clvtools analyze --engine chunked``: the main job's summaries, fits, scoring and plan on
this machine for a base larger than its memory, within ``memory_limit``.

What runs how (docs/scaling.rst): the summaries (purchase occasions, RFM, the scoring and
landmark tables, KPIs) stay DuckDB tables, which spill to disk; the value models and the
structural BG/NBD fit on their compressed rows (a GROUP BY); the Cox model on the landmark
table, or on its stratified weighted sample, the standard engine's draw
(:mod:`.chunked_churn`); then the customers are scored a range of ids at a time by the
pipeline's own :func:`~clvtools.pipeline.scoring.score_chunk`, each chunk written to a
Parquet part file; the matrix's cut points are DuckDB's exact quantiles over the parts; a
second pass gives each chunk its cells and economics
(:func:`~clvtools.pipeline.scoring.decide_chunk`); the allocation under a push capacity,
the priority ranks, the plan summary and the matrix (exact micro-unit sums) are SQL over the
parts (:mod:`clvtools.data.chunked_plan`).

Then the control group is the standard engine's draw (:mod:`.chunked_control`), the
contacts' reasons and the early-warning and win-back lists are computed per chunk by the
pipeline's own functions and ranked in DuckDB (:mod:`.chunked_attention`), and the forecast
is the standard step's sums added over the chunks (:mod:`.chunked_forecast`), its backtest
refitted on compressed rows at earlier origins (:mod:`.chunked_backtest`); what the run
computed and the files it writes (the plan's, :mod:`.chunked_plan_files`) are
:class:`~.chunked_result.ChunkedRun`'s.

It covers the value axis, the customer attributes (a ``contactable`` column read in DuckDB,
:mod:`clvtools.data.decision_flags`, a chunk's flags at a time), the churn model and its
out-of-time validation, the matrix, the plan under a push capacity or a budget
(:mod:`.chunked_budget`), the control group, the reasons, the two lists, the plan's
sensitivity (:mod:`.chunked_sensitivity`), the targeting evaluated out of time
(:mod:`.chunked_evaluation`), the forecast and its backtest, the value model's holdout and
checks (:mod:`.chunked_holdout`, :mod:`.chunked_value_checks`), the KPIs and cohorts. What
needs the whole base in pandas (the holdout choice of the value model, which ``value_model =
"auto"`` replaces by BIC as on Spark; per-customer uplifts, contracts) is the standard
engine's, and the settings that ask for it are an error here; report.html states the parts
it leaves out (:mod:`.chunked_report`).
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ..config import Settings, parse_cut
from ..data.chunked_plan import (
    micro_sums_by,
    parts,
    plan_sums,
    quantile,
    store_plan,
    write_part,
)
from ..data.chunked_tables import (
    attributes_sql,
    chunk_bounds,
    chunk_frame,
    store_rfm,
)
from ..data.decision_flags import flags_of_chunk, store_yes_no_flags
from ..data.lifecycle import lifecycle_query
from ..data.survival_tables import scoring_table
from ..pipeline.churn_validation import calibration_warning
from ..pipeline.inputs import CONTACTABLE, read_inputs
from ..pipeline.kpis import kpi_step
from ..pipeline.memory_budget import memory_bytes, release_unused_memory
from ..pipeline.result import CALIBRATION_WARNING
from ..pipeline.scoring import Scorers, decide_chunk, score_chunk
from ..pipeline.targets import NO_WORDS, YES_WORDS, not_contactable_note
from ..pipeline.timeline import build_timeline
from ..targeting.matrix import MONEY, matrix_from_totals
from .chunked_attention import attention_lists
from .chunked_backtest import chunked_backtest
from .chunked_budget import CHOICES_TABLE, budget_choices
from .chunked_churn import churn_training
from .chunked_control import draw_control_group
from .chunked_evaluation import EVALUATION_LANDMARKS, EVALUATION_RFM, chunked_evaluation
from .chunked_forecast import chunked_forecast
from .chunked_holdout import chunked_holdout
from .chunked_result import CHUNKED_OUTPUTS, LIFECYCLE_TABLE, PLAN_TABLE, ChunkedRun
from .chunked_sensitivity import chunked_sensitivity
from .chunked_validation import chunked_churn_validation
from .chunked_value_checks import chunked_value_checks
from .compressed_fit import fit_value_on_table
from .run_files import (
    actions,
    plan_summary_fields,
    refuse_settings,
)

__all__ = ["ChunkedRun", "MemoryPlan", "analyze_chunked", "memory_plan", "CHUNKED_OUTPUTS"]

#: Resident memory of the process before the first chunk (Python, numpy, pandas, lifelines,
#: the fitted models), bytes.
BASELINE = 800_000_000
#: Resident memory allowed per customer of a chunk being scored and decided (the chunk's
#: frames, the month-by-month value arrays, the Parquet conversion), bytes: a generous
#: allowance (at 1.06M customers in chunks of 500,000, scoring peaked 330 MB, 0.7 kB a
#: customer, above the step before it).
BYTES_PER_CHUNK_CUSTOMER = 4_000
#: Chunks are at most this large: beyond it a larger chunk saves no time.
MOST_CHUNK_ROWS = 500_000
_RFM, _SCORING = "chunked_rfm", "chunked_scoring"
_PLAN, _LIFECYCLE = PLAN_TABLE, LIFECYCLE_TABLE
#: The DuckDB table of the customers file's contactable flags (with the column only).
_CONTACTABLE = "chunked_contactable"


@dataclass(frozen=True)
class MemoryPlan:
    """How a chunked run shares ``memory_limit`` between DuckDB and Python.

    Attributes
    ----------
    sql_limit, python_limit : str or None
        DuckDB's ``memory_limit`` during the SQL steps (most of the budget: the summaries'
        aggregations and joins) and while Python fits and scores (DuckDB evicts its buffers
        to disk to get under it); None: DuckDB's default.
    chunk_rows : int
        Customers scored at a time.
    """

    sql_limit: str | None
    python_limit: str | None
    chunk_rows: int


def memory_plan(memory_limit: str | None, chunk_rows: int | None = None) -> MemoryPlan:
    """The chunked run's :class:`MemoryPlan` for ``memory_limit`` (the whole process's).

    DuckDB gets 60 % of it for the SQL steps and 25 % while Python fits and scores; a chunk
    is what the rest holds beside :data:`BASELINE` at :data:`BYTES_PER_CHUNK_CUSTOMER`, at
    most :data:`MOST_CHUNK_ROWS` (``chunk_rows`` overrides it).
    """
    if memory_limit is None:
        return MemoryPlan(None, None, chunk_rows or MOST_CHUNK_ROWS)
    total = memory_bytes(memory_limit)
    free = 0.75 * total - BASELINE
    rows = chunk_rows or int(min(MOST_CHUNK_ROWS, max(10_000, free / BYTES_PER_CHUNK_CUSTOMER)))
    return MemoryPlan(f"{int(0.6 * total / 1e6)}MB", f"{int(0.25 * total / 1e6)}MB", rows)


def _check_settings(s: Settings) -> None:
    """Settings a chunked run cannot honour are an error, never ignored."""
    refuse_settings(
        s, "chunked",
        {"push_uplift_column": s.push_uplift_column,
         "pull_uplift_column": s.pull_uplift_column,
         # validity dates per attributes row: not yet checked against the standard engine
         "attributes_valid_from_col": s.attributes_valid_from_col},
        advice="Run them with the standard engine (--engine duckdb), or leave them out "
               "(a push capacity or budget and a control group are supported).")


def analyze_chunked(transactions, *, settings: Settings, customers=None,
                    step=lambda _msg: None, chunk_rows: int | None = None) -> ChunkedRun:
    """The main job in chunks of customers, within ``settings.memory_limit``.

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
        As for :func:`clvtools.analyze` (a glob of Parquet files for the largest logs).
    settings : Settings
        ``memory_limit`` is the whole process's budget here (:func:`memory_plan`).
    customers : pandas.DataFrame or path, optional
        Customer attributes: covariates of the churn model, and of the value model with
        ``value_covariates``.
    step : callable
        Called with a short description as each step starts.
    chunk_rows : int, optional
        Customers scored at a time (default: from the memory budget).

    Returns
    -------
    ChunkedRun
    """
    s = settings
    _check_settings(s)
    budget = memory_plan(s.memory_limit, chunk_rows)
    step = _releasing(step)
    # the contactable column stays in DuckDB: read a chunk at a time, never whole in pandas
    inputs = read_inputs(transactions, customers, None,
                         s.model_copy(update={"memory_limit": budget.sql_limit}), step,
                         read_aside=False)
    log, attributes = inputs.log, inputs.attributes
    con = log.con
    flags = attributes is not None and store_yes_no_flags(
        con, CONTACTABLE, customer_id_col=s.customer_id_col, yes=YES_WORDS, no=NO_WORDS,
        into=_CONTACTABLE)
    timeline = build_timeline(log.first_date, log.observation_end, s)
    step("Summarising purchases (RFM) in DuckDB")
    store_rfm(log, time_unit=s.time_unit, into=_RFM)
    covariates = None
    if attributes is not None and s.value_covariates and attributes.columns():
        covariates = attributes_sql(attributes, attributes.observation_end or log.observation_end)
    step(f"Fitting the value model ({s.value_model}) on compressed statistics")
    _limit(con, budget.python_limit)
    value, chosen, value_notes = fit_value_on_table(con, _RFM, covariates, s.value_model,
                                                    log.has_amounts)
    step("Building the landmark table and fitting the churn model")
    _limit(con, budget.sql_limit)
    training = churn_training(
        log, timeline.landmarks, rfm_table=_RFM, horizon=s.horizon, churn_after=s.churn_after,
        time_unit=s.time_unit, seed=s.seed, sample_rows=s.churn_sample_rows,
        attributes=attributes, value_purchases=value.purchases,
        keep_at=timeline.holdout_start, keep_into=EVALUATION_LANDMARKS,
        segments=inputs.categorical_attributes, python_limit=budget.python_limit)
    # lifelines' arrays beside DuckDB's smaller share (set once the landmark table is built)
    churn, risk_notes = training.fit(time_unit=s.time_unit, seed=s.seed)
    survival_rows, structural = training.rows_total, training.structural
    survival = training.survival
    del training
    validation, validation_note, validation_model = {}, None, None
    if churn is not None:
        step("Validating the churn model out of time")
        _limit(con, budget.sql_limit)
        validation, validation_note, validation_model = chunked_churn_validation(
            log, timeline, s, attributes=attributes, python_limit=budget.python_limit)
        warning = calibration_warning(validation.get("churn_calibration"), CALIBRATION_WARNING)
        validation_note = " ".join(filter(None, [validation_note, warning]))
    scorers = Scorers(value, churn, structural, horizon=s.horizon, churn_after=s.churn_after,
                      time_unit_days=timeline.unit_days, discount_rate=s.discount_rate,
                      seed=s.seed, period_ends=tuple(timeline.forecast_month_ends()))
    step("Scoring every customer, a chunk at a time")
    _limit(con, budget.sql_limit)
    scoring_table(log, churn_after=s.churn_after, time_unit=s.time_unit, attributes=attributes,
                  into=_SCORING)
    bounds = chunk_bounds(con, _RFM, budget.chunk_rows)
    work = Path(tempfile.mkdtemp(prefix="clvtools-chunks-", dir=s.temp_directory))
    _limit(con, budget.python_limit)
    for k in range(len(bounds)):
        rfm = chunk_frame(con, _RFM, bounds, k)
        table = chunk_frame(con, _SCORING, bounds, k).reset_index()
        attrs = None if covariates is None else chunk_frame(con, covariates, bounds, k)
        write_part(score_chunk(rfm, table, scorers, attrs), work / "scored", k)
    scored = parts(work / "scored")
    cuts = {}
    for name, column, cut in (("value", s.value_axis, parse_cut(s.value_cut)),
                              ("risk", "churn_probability", parse_cut(s.risk_cut))):
        kind, number = cut if isinstance(cut, tuple) else ("absolute", cut)
        cuts[name] = (float(number) if kind == "absolute" else
                      quantile(con, scored, column, number, "churn_probability IS NOT NULL"))
    step("Choosing retention targets (cells per chunk, a global ranking in DuckDB)")
    push, pull = actions(s)
    for k, part in enumerate(sorted((work / "scored").glob("*.parquet"))):
        chunk = pq.read_table(part).to_pandas().set_index("customer_id")
        contactable = flags_of_chunk(con, _CONTACTABLE if flags else None, CONTACTABLE,
                                     chunk.index, bounds, k)
        decided = decide_chunk(chunk, cut_points=cuts, value_axis=s.value_axis, push=push,
                               pull=pull, margin=s.margin, offer=s.offer,
                               contactable=contactable)
        write_part(chunk.join(decided).assign(contactable=contactable), work / "decided", k)
    shutil.rmtree(work / "scored")
    _limit(con, budget.sql_limit)
    decided = parts(work / "decided")
    allocation = _store_plan(con, decided, s)
    power = draw_control_group(con, _PLAN, decided, share=s.control_share, seed=s.seed,
                               push=push, pull=pull)
    summary = plan_summary_fields(_with_not_contactable(plan_sums(con, _PLAN), con, decided)
                                  | {"control_share": s.control_share},
                                  s, cuts, "chunked", allocation)
    sql, params = lifecycle_query(log, churn_after=s.churn_after, at_risk_after=s.at_risk_after,
                                  time_unit=s.time_unit)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_LIFECYCLE} AS {sql}", params)
    matrix = matrix_from_totals(*micro_sums_by(con, decided, "cell", MONEY))
    step("Computing KPIs, cohorts and churn by segment in DuckDB")
    # SQL over the log, as the standard engine runs it, under the smaller share: the value
    # tiers' arithmetic holds about 9 bytes per customer and period in numpy beside it
    # (measured at 100M transactions: 6.2 GB at the SQL share, over a 6 GB limit)
    _limit(con, budget.python_limit)
    kpis = kpi_step(inputs, s)
    attribute_notes = [] if attributes is None else list(attributes.notes)
    shown = None
    if attributes is not None and attributes.columns():
        shown = covariates or attributes_sql(attributes, attributes.observation_end
                                             or log.observation_end)
    run = ChunkedRun(s, log, timeline, scorers, chosen, cuts, matrix, kpis.kpis, power,
                     summary, bounds, survival_rows, work,
                     [*attribute_notes, *value_notes, *risk_notes,
                      *([validation_note] if validation_note else []),
                      *([not_contactable_note(summary["not_contactable"])]
                        if summary["not_contactable"] else [])],
                     None if attributes is None else attributes.quality, shown,
                     cohorts=kpis.cohorts, churn_by_segment=kpis.churn_by_segment,
                     churn_validation=validation, survival=survival)
    weakref.finalize(run, shutil.rmtree, work, True)
    step("Explaining the contacts; the early-warning and win-back lists, a chunk at a time")
    _limit(con, budget.python_limit)
    run.lists = attention_lists(run, scoring=_SCORING, rfm=_RFM, decided=decided,
                                attributes=attributes)
    run.summary.update(run.lists.counts)
    run.notes += run.lists.notes
    step("The plan under scaled assumptions, on its candidates read a chunk at a time")
    run.sensitivity = chunked_sensitivity(con, decided, _PLAN, bounds, s, push, pull)
    step("Evaluating the targeting out of time, a chunk at a time")
    _limit(con, budget.python_limit)
    run.evaluation, at_holdout = chunked_evaluation(
        con, log, timeline, s, churn=validation_model, value_model=chosen,
        covariates=covariates, attributes=attributes, push=push, pull=pull,
        chunk_rows=budget.chunk_rows, work=work, flags=_CONTACTABLE if flags else None,
        store_plan=lambda parts_sql, into: _store_plan(con, parts_sql, s, into))
    run.notes += run.evaluation.notes
    step("Forecasting revenue and churn by month, a chunk at a time")
    _limit(con, budget.python_limit)
    run.forecast = chunked_forecast(con, inputs, timeline, scorers, s, bounds, rfm=_RFM,
                                    scoring=_SCORING, covariates=covariates, decided=decided,
                                    plan=_PLAN, lifecycle=_LIFECYCLE)
    run.notes += run.forecast.notes
    step("Backtesting the forecast at earlier origins, a chunk at a time")
    run.backtest = chunked_backtest(con, inputs, timeline, scorers, value_model=chosen,
                                    covariates=covariates, chunk_rows=budget.chunk_rows,
                                    fitted=at_holdout)
    run.notes += run.backtest.notes
    for table in (EVALUATION_RFM, EVALUATION_LANDMARKS):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    step("Validating the value model on its holdout, a chunk at a time")
    run.value_holdout, holdout_notes = chunked_holdout(
        con, log, timeline, value_model=chosen, horizon=s.horizon, covariates=covariates,
        segments=shown, segment_columns=inputs.categorical_attributes,
        chunk_rows=budget.chunk_rows, temp_directory=s.temp_directory)
    run.notes += holdout_notes
    step("Checking the value model's assumptions and fit on the RFM table's columns")
    _limit(con, budget.python_limit)
    run.value_checks, warnings = chunked_value_checks(
        con, _RFM, value, chosen, holdout_summary=run.value_holdout.get("holdout_summary"),
        covariates=covariates, bounds=bounds, seed=s.seed)
    run.notes += warnings
    _limit(con, budget.sql_limit)
    con.execute(f"DROP TABLE {_SCORING}")
    return run


def _store_plan(con, decided: str, s: Settings, into: str = _PLAN) -> dict | None:
    """The plan table: under a push capacity (or none) by a global ranking in DuckDB; under a
    budget by the standard engine's knapsack (:mod:`.chunked_budget`), whose summary fields
    are returned."""
    if s.push_budget is None and s.total_budget is None:
        store_plan(con, decided, capacity=s.push_capacity, into=into)
        return None
    choices, allocation = budget_choices(con, decided, push_budget=s.push_budget,
                                         total_budget=s.total_budget)
    con.register(CHOICES_TABLE, choices)
    try:
        store_plan(con, decided, capacity=None, into=into, choices=CHOICES_TABLE,
                   pull_rest=s.total_budget is None)
    finally:
        con.unregister(CHOICES_TABLE)
    return allocation


def _with_not_contactable(sums: dict, con, decided: str) -> dict:
    """plan_sums' counts with ``not_contactable`` after ``none``, as the standard summary
    orders them (every customer the column marks no, contacted or not)."""
    count = int(con.execute(f"SELECT count(*) FILTER (WHERE NOT contactable) FROM {decided}")
                .fetchone()[0])
    out = {}
    for key, value in sums.items():
        out[key] = value
        if key == "none":
            out["not_contactable"] = count
    return out


def _releasing(step):
    """``step`` that first returns the last step's freed memory to the system, so that the
    next step's DuckDB share is not stacked on the last one's peak
    (:func:`~clvtools.pipeline.memory_budget.release_unused_memory`)."""
    def announce(message: str) -> None:
        release_unused_memory()
        step(message)
    return announce


def _limit(con, limit: str | None) -> None:
    """DuckDB's memory limit for the next steps (it evicts buffers to disk to get under)."""
    if limit is not None:
        con.execute("SET memory_limit = ?", [limit])

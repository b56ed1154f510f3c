"""``clvtools analyze --engine spark``: the main job's summaries, fits, scoring and plan on a
Spark session, for transaction files a cluster reads.

What runs where (docs/cluster.rst): the summaries (occasions, RFM, landmark and scoring
tables, KPIs) and the per-customer scoring and plan run on the executors; the driver fits the
models on compressed statistics and the landmark table, and writes the small tables. The
customers table stays a Spark DataFrame and is written by the executors as a Parquet dataset
(``customers.parquet``); nothing per customer is collected to the driver but the chosen
customers' strata for the control group's draw (a few small columns), under a budget up to
2,000 candidates for the exact knapsack, and the forecast's and the backtest's two numbers
a customer for their samples' draw.

A Spark run covers the customer attributes (covariates of both models), the value axis, the
churn model, the matrix and the push/pull plan under a push capacity with the contacts'
reasons, the control group (the standard engine's draw over the chosen customers, collected
to the driver: :mod:`.spark_control`), the early-warning and win-back lists, the KPIs,
cohorts and churn by segment (value tiers and categorical attributes; Spark SQL), and the
churn model's out-of-time validation (:mod:`.spark_validation`).
The plan under a push or total budget is the standard engine's knapsack
(:mod:`.spark_budget`). forecast.csv is the standard forecast's sums per partition, added on
the driver (:mod:`.spark_forecast`); forecast_backtest.csv refits the value models at earlier
origins on compressed statistics and forecasts per partition (:mod:`.spark_backtest`);
forecast.xlsx is the standard workbook with the lists' first rows read by rank, report.html
the standard page from the small tables (:mod:`.spark_report`, which states the parts not
computed here). What needs the whole base in one place (the holdout choice of the value
model, per-customer uplifts) stays with the single-machine engine, and the settings that
ask for it are an error here rather than silently ignored. A contactable column of the
customers file closes both actions for the customers marked no, as on one machine.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from ..config import Settings, parse_cut
from ..data.spark_attributes import spark_read_customers
from ..data.spark_engine import SparkLog, read_spark_source
from ..data.spark_kpi_segments import spark_churn_by_segment
from ..data.spark_kpis import spark_cohort_table, spark_kpi_table
from ..data.spark_money import spark_micro_sums
from ..data.spark_reader import spark_occasions
from ..data.spark_summaries import spark_lifecycle, spark_rfm, spark_scoring_table
from ..data.transactions import DataPolicies
from ..errors import ClvInputError
from ..pipeline.backtest import BacktestResult
from ..pipeline.churn_validation import calibration_warning
from ..pipeline.forecasting import ForecastResult
from ..pipeline.inputs import CONTACTABLE
from ..pipeline.result import CALIBRATION_WARNING
from ..pipeline.scoring import Scorers
from ..pipeline.targets import NO_WORDS, YES_WORDS, not_contactable_note
from ..pipeline.timeline import Timeline, build_timeline
from ..report.outputs import OUTPUTS, forecast_to_cents, write_folder
from ..report.workbook import MAX_LIST_ROWS, WorkbookContent
from ..targeting.control import CONTROL, TREATMENT
from ..targeting.matrix import MONEY, matrix_from_totals
from .holdout_sums import HOLDOUT_FILES
from .run_files import (
    CUSTOMER_COLUMNS,
    TARGET_COLUMNS,
    actions,
    plan_summary_fields,
    refuse_settings,
    run_data_quality,
    small_files,
    summary_lines,
    workbook_of,
)
from .spark import cut_points, decide, score_customers
from .spark_backtest import spark_backtest
from .spark_budget import plan_under_limit
from .spark_control import spark_control_group
from .spark_early_warning import spark_early_warning
from .spark_fit import fit_churn_from_spark, fit_value_from_spark
from .spark_forecast import spark_forecast
from .spark_holdout import spark_holdout
from .spark_reasons import contact_list_reasons, reason_centre, value_shares
from .spark_report import render_spark_report
from .spark_validation import spark_churn_validation
from .spark_win_back import spark_win_back

__all__ = ["SparkRun", "analyze_spark", "SPARK_OUTPUTS"]

#: customers.parquet's columns: customers.csv's that a Spark run computes, the group after
#: the action as customers.csv has it.
_CUSTOMER_COLUMNS = tuple(c for name in CUSTOMER_COLUMNS
                          for c in ((name, "group") if name == "action" else (name,)))

#: The manifest's files a Spark run writes (report/outputs.py describes each).
SPARK_OUTPUTS = ("customers.parquet", "targets.parquet", "win_back.parquet",
                 "early_warning.parquet", "matrix.csv", "plan_summary.csv", "control_power.csv",
                 "kpis.csv", "cohorts.csv", "churn_by_segment.csv", "churn_drivers.csv",
                 "churn_validation.csv", "churn_calibration.csv",
                 "models/value.json", "models/spend.json", "models/churn.json",
                 "data_quality.json", "config.toml", "forecast.csv", "forecast_backtest.csv",
                 "forecast.xlsx", "report.html",
                 "survival_curves.csv", "median_time_to_churn.csv", "logrank_tests.csv",
                 *HOLDOUT_FILES)

@dataclass
class SparkRun:
    """What a Spark run computed.

    Attributes
    ----------
    settings : Settings
    log : SparkLog
    timeline : Timeline
    scorers : Scorers
        The fitted models and constants the executors scored with.
    value_model : str
        The purchase model used.
    customers : pyspark.sql.DataFrame
        One row per customer: :data:`CUSTOMER_COLUMNS` and ``group`` after ``action``
        (money at full precision).
    targets : pyspark.sql.DataFrame
        The contact list: :data:`TARGET_COLUMNS` of the push and pull customers of the
        treatment, sorted by priority rank (a range partitioning: part files in rank order).
    cut_points : dict
        The matrix's ``value`` and ``risk`` cut points.
    matrix, kpis : pandas.DataFrame
        matrix.csv and kpis.csv.
    summary : dict
        plan_summary.csv's row.
    control_power : pandas.DataFrame
        control_power.csv: per action and cell, the treated and control counts and the
        smallest effect the control group can detect.
    survival_table : pandas.DataFrame
        The landmark table the churn model was fitted on (on the driver): whole, or past
        ``churn_sample_rows`` its stratified weighted sample.
    win_back : pyspark.sql.DataFrame
        The win-back list, sorted by rank (:func:`~clvtools.scale.spark_win_back.spark_win_back`).
    early_warning : pyspark.sql.DataFrame or None
        The early-warning list, sorted by rank; None without a Cox model or a previous KPI
        period (:func:`~clvtools.scale.spark_early_warning.spark_early_warning`).
    forecast : ForecastResult, optional
        forecast.csv (:mod:`.spark_forecast`).
    backtest : BacktestResult, optional
        forecast_backtest.csv (:mod:`.spark_backtest`).
    notes : list of str
    attributes_quality : dict, optional
        data_quality.json's ``customers`` entry, when attributes were read.
    cohorts, churn_by_segment : pandas.DataFrame, optional
        cohorts.csv and churn_by_segment.csv (:mod:`clvtools.data.spark_kpis`,
        :mod:`clvtools.data.spark_kpi_segments`).
    churn_validation : dict of pandas.DataFrame
        ``churn_validation`` and ``churn_calibration``, the churn model's out-of-time
        validation (:mod:`.spark_validation`; empty when it could not run).
    survival_curves : dict of pandas.DataFrame
        ``survival_curves``, ``median_time_to_churn`` and ``logrank_tests`` overall and by
        categorical attribute, from the landmark table's counts on the executors (not by
        matrix cell, which is the targeting evaluation's).
    value_holdout : dict of pandas.DataFrame
        The value model's holdout tables, summed over partitions (:mod:`.spark_holdout`;
        empty without a holdout).
    survival_rows : int or None
        Rows of the whole landmark table (``survival_table`` holds them all, or its sample).
    """

    settings: Settings
    log: SparkLog
    timeline: Timeline
    scorers: Scorers
    value_model: str
    customers: object
    targets: object
    cut_points: dict
    matrix: pd.DataFrame
    kpis: pd.DataFrame
    summary: dict
    control_power: pd.DataFrame
    survival_table: pd.DataFrame
    win_back: object = None
    early_warning: object = None
    forecast: ForecastResult | None = None
    backtest: BacktestResult | None = None
    notes: list[str] = field(default_factory=list)
    attributes_quality: dict | None = None
    cohorts: pd.DataFrame | None = None
    churn_by_segment: pd.DataFrame | None = None
    churn_validation: dict = field(default_factory=dict)
    survival_curves: dict = field(default_factory=dict)
    value_holdout: dict = field(default_factory=dict)
    survival_rows: int | None = None

    def data_quality(self) -> dict:
        """data_quality.json of a Spark run."""
        return run_data_quality("spark", self.log.quality, self.attributes_quality,
                                self.timeline, self.value_model, self.notes)

    def write(self, out) -> Path:
        """Write :data:`SPARK_OUTPUTS` into ``out``, atomically (a folder the driver and the
        executors both see: a local folder in local mode, a shared mount on a cluster)."""
        files = {
            # the executors write their partitions (the Parquet dataset is a folder)
            "customers.parquet": lambda: (lambda path: self.customers.write.parquet(str(path))),
            "targets.parquet": lambda: (lambda path: self.targets.write.parquet(str(path))),
            "win_back.parquet": lambda: (lambda path: self.win_back.write.parquet(str(path))),
            "early_warning.parquet": lambda: (
                None if self.early_warning is None
                else lambda path: self.early_warning.write.parquet(str(path))),
            **small_files(self.settings, self.scorers, matrix=self.matrix, summary=self.summary,
                          kpis=self.kpis, data_quality=self.data_quality, engine="spark"),
            "control_power.csv": lambda: self.control_power,
            "cohorts.csv": lambda: self.cohorts,
            "churn_by_segment.csv": lambda: self.churn_by_segment,
            "churn_validation.csv": lambda: self.churn_validation.get("churn_validation"),
            "churn_calibration.csv": lambda: self.churn_validation.get("churn_calibration"),
            "forecast.csv": lambda: forecast_to_cents(None if self.forecast is None
                                                      else self.forecast.table),
            "forecast_backtest.csv": lambda: forecast_to_cents(None if self.backtest is None
                                                               else self.backtest.table),
            "forecast.xlsx": self._workbook,
            "report.html": lambda: render_spark_report(self),
            **{f"{name}.csv": lambda name=name: self.survival_curves.get(name)
               for name in ("survival_curves", "median_time_to_churn", "logrank_tests")},
            **{name: lambda name=name: self.value_holdout.get(name.removesuffix(".csv"))
               for name in HOLDOUT_FILES},
        }
        assert set(files) == set(SPARK_OUTPUTS) <= {o.name for o in OUTPUTS}
        # the contact list is read by targets.parquet and forecast.xlsx: computed once (its
        # reasons are the costly part), then released (spark_budget's rule)
        self.targets = self.targets.persist()
        try:
            return write_folder(files, out)
        finally:
            self.targets.unpersist()

    def _workbook(self) -> WorkbookContent:
        """forecast.xlsx as the standard run writes it; its contact lists, the first
        :data:`~clvtools.report.workbook.MAX_LIST_ROWS` of each action, read by rank from
        the contact list (the rest stays on the executors)."""
        from pyspark.sql import functions as F

        push, pull = int(self.summary["push"]), int(self.summary["pull"])
        rank = F.col("priority_rank")
        first = (rank <= MAX_LIST_ROWS) | ((rank > push) & (rank <= push + MAX_LIST_ROWS))
        top = self.targets.where(first).toPandas().sort_values("priority_rank",
                                                               ignore_index=True)
        return workbook_of(self, top, push, pull)

    def summary_lines(self) -> list[str]:
        """The run in a few lines for the console."""
        return summary_lines(self.summary, self.value_model, self.scorers.churn is not None,
                             self.notes)


def _check_settings(s: Settings) -> None:
    """Settings a Spark run cannot honour are an error, never ignored."""
    refuse_settings(
        s, "Spark",
        {"push_uplift_column": s.push_uplift_column,
         "pull_uplift_column": s.pull_uplift_column},
        advice="Run them with the single-machine engine (--engine duckdb), "
               "or leave them out (a push capacity, budgets and a control group are supported).")


def analyze_spark(transactions, *, settings: Settings, spark=None, customers=None,
                  step=lambda _msg: None) -> SparkRun:
    """The main job's Spark half on a transaction log.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame, path, glob or list of paths
        A Spark DataFrame, or Parquet or CSV files a Spark session can read.
    settings : Settings
    spark : pyspark.sql.SparkSession, optional
        Default: the active session, or a new one (spark-submit and Databricks give theirs).
    customers : pyspark.sql.DataFrame, path or glob, optional
        Customer attributes, one row per customer: covariates of the value model (with
        ``value_covariates``) and of the churn model, typed as the single-machine engine
        types them (:mod:`clvtools.data.spark_attributes`).
    step : callable
        Called with a short description as each step starts.

    Returns
    -------
    SparkRun
    """
    from pyspark.sql import DataFrame, SparkSession

    s = settings
    _check_settings(s)
    step("Reading and validating transactions (Spark)")
    if isinstance(transactions, DataFrame):
        frame, label = transactions, "Spark DataFrame"
    else:
        spark = spark or SparkSession.builder.getOrCreate()
        frame = read_spark_source(spark, transactions)
        label = (str(transactions) if isinstance(transactions, (str, Path))
                 else ", ".join(map(str, transactions)))
    end = None if s.observation_end is None else pd.Timestamp(s.observation_end).date()
    log = spark_occasions(frame, customer_id_col=s.customer_id_col, datetime_col=s.datetime_col,
                          monetary_value_col=s.monetary_value_col,
                          datetime_format=s.datetime_format, observation_end=end,
                          policies=DataPolicies(**{f.name: getattr(s, f.name)
                                                   for f in fields(DataPolicies)}),
                          timezone=s.timezone, source=label)
    timeline = build_timeline(dt.date.fromisoformat(log.quality["first_date"]),
                              log.observation_end, s)
    attributes = attributes_now = None
    if customers is not None:
        step("Reading customer attributes (Spark)")
        attributes = spark_read_customers(log, customers, customer_id_col=s.customer_id_col,
                                          valid_from_col=s.attributes_valid_from_col,
                                          set_aside=(CONTACTABLE,))
        attributes_now = attributes.frame_at(log.spark, log.observation_end).persist()
    covariates = attributes_now if s.value_covariates else None
    step("Summarising purchases (RFM) in Spark")
    rfm = spark_rfm(log, time_unit=s.time_unit).persist()
    step(f"Fitting the value model ({s.value_model}) on compressed statistics")
    value, chosen, value_notes = fit_value_from_spark(rfm, s.value_model, covariates)
    step("Building the landmark table and fitting the churn model")
    categorical = [] if attributes is None else [c for c, kind in attributes.kinds.items()
                                                 if kind == "categorical"]
    churn, structural, survival, risk_notes, curves, survival_rows = fit_churn_from_spark(
        log, list(timeline.landmarks), horizon=s.horizon, churn_after=s.churn_after,
        time_unit=s.time_unit, sample_rows=s.churn_sample_rows, seed=s.seed,
        attributes=attributes, segments=categorical)
    validation, validation_note = {}, None
    if churn is not None:
        step("Validating the churn model out of time (Spark)")
        validation, validation_note = spark_churn_validation(log, timeline, s,
                                                             attributes=attributes)
        warning = calibration_warning(validation.get("churn_calibration"), CALIBRATION_WARNING)
        validation_note = " ".join(filter(None, [validation_note, warning]))
    scorers = Scorers(value, churn, structural, horizon=s.horizon, churn_after=s.churn_after,
                      time_unit_days=timeline.unit_days, discount_rate=s.discount_rate,
                      seed=s.seed, period_ends=tuple(timeline.forecast_month_ends()))
    step("Scoring every customer on the executors")
    scoring = spark_scoring_table(log, churn_after=s.churn_after, time_unit=s.time_unit,
                                  attributes=attributes)
    scored = score_customers(rfm, scoring, scorers, covariates).persist()
    cuts = cut_points(scored, value_axis=s.value_axis, value_cut=parse_cut(s.value_cut),
                      risk_cut=parse_cut(s.risk_cut))
    step("Choosing retention targets (global ranking)")
    push, pull = actions(s)
    flags = _contactable(log, attributes)
    decided = decide(scored if flags is None else scored.join(flags, "customer_id", "left")
                     .fillna(True, subset=[CONTACTABLE]),
                     cut_points=cuts, value_axis=s.value_axis, push=push, pull=pull,
                     margin=s.margin, offer=s.offer)
    allocated, solved = plan_under_limit(decided, capacity=s.push_capacity,
                                         push_budget=s.push_budget,
                                         total_budget=s.total_budget)
    allocated = allocated.persist()
    step("Drawing the control group (on the driver, over the chosen customers)")
    plan, power = spark_control_group(allocated, share=s.control_share, seed=s.seed,
                                      push=push, pull=pull)
    plan = plan.persist()
    customers = plan.select(*[c for c in _CUSTOMER_COLUMNS if c in plan.columns])
    step("Giving each contact its reasons (Spark)")
    centre = reason_centre(scoring, scorers)
    contacted = (plan.filter(plan["group"] == TREATMENT)
                 .join(value_shares(plan, s.value_axis), on="customer_id", how="left"))
    reasons = contact_list_reasons(
        contacted, scoring, log.spark.table(log.occasions), scorers, value_axis=s.value_axis,
        time_unit=s.time_unit, centre=centre)
    targets = (contacted.join(reasons, on="customer_id").select(*TARGET_COLUMNS)
               .orderBy("priority_rank"))
    summary = {**_plan_summary(plan, s, cuts), **solved}
    contact_notes = ([] if not summary["not_contactable"] else [
        not_contactable_note(summary["not_contactable"])])
    step("Listing churned customers worth winning back (Spark)")
    win_back, left_off = spark_win_back(
        plan, spark_lifecycle(log, churn_after=s.churn_after, time_unit=s.time_unit),
        attributes_now)
    summary.update(win_back_listed=win_back.count(), win_back_no_value=left_off)
    early = None
    if scorers.churn is not None and timeline.previous_scoring is not None:
        step("Listing customers whose churn risk rose (Spark)")
        early, counts = spark_early_warning(
            plan, rfm, scoring, log, timeline.previous_scoring, scorers,
            value_axis=s.value_axis, time_unit=s.time_unit, centre=centre, attributes=attributes)
        summary.update({f"early_warning_{k}": v for k, v in counts.items()})
    step("Forecasting revenue, churners and the plan's savings per month (Spark)")
    forecast = spark_forecast(log, rfm, scoring, plan, scorers, s, timeline, covariates)
    step("Backtesting the forecast at earlier origins (Spark)")
    backtest = spark_backtest(log, timeline, scorers, value_model=chosen, covariates=covariates)
    step("Validating the value model on its holdout (Spark)")
    holdout, holdout_notes = spark_holdout(
        log, timeline, value_model=chosen, horizon=s.horizon, covariates=covariates,
        attributes=attributes_now, segment_columns=categorical)
    step("Computing KPIs, cohorts and churn by segment (Spark)")
    common = dict(churn_after=s.churn_after, time_unit=s.time_unit, period=s.kpi_period)
    kpis = _dated(spark_kpi_table(log, **common))
    cohorts = _dated(spark_cohort_table(log, **common))
    segments = spark_churn_by_segment(log, attributes=attributes, segments=categorical,
                                      **common)
    attribute_notes = [] if attributes is None else list(attributes.notes)
    return SparkRun(s, log, timeline, scorers, chosen, customers, targets, cuts, _matrix(plan),
                    kpis, summary, power, survival, win_back, early, forecast, backtest,
                    [*attribute_notes, *value_notes, *risk_notes,
                     *([validation_note] if validation_note else []), *contact_notes,
                     *forecast.notes,
                     *backtest.notes, *holdout_notes],
                    None if attributes is None else attributes.quality, cohorts, segments,
                    validation, survival_curves=curves, value_holdout=holdout,
                    survival_rows=survival_rows)


def _plan_summary(plan, s: Settings, cuts: dict) -> dict:
    """plan_summary.csv's figures, summed in Spark: push, pull and the money are the
    treatment's, beside ``push_control``, ``pull_control`` and
    ``control_forgone_net_benefit`` (the control's expected net benefit), as the standard
    engine counts them."""
    from pyspark.sql import functions as F

    treated, control = F.col("group") == TREATMENT, F.col("group") == CONTROL
    push, pull = F.col("action") == "push", F.col("action") == "pull"

    def total(column: str, where):
        return F.sum(F.when(where, F.col(column)))

    row = plan.agg(
        F.count("*").alias("customers"),
        F.count_if(push & treated).alias("push"), F.count_if(pull & treated).alias("pull"),
        F.count_if(F.col("action") == "none").alias("none"),
        (F.count_if(~F.col(CONTACTABLE)) if CONTACTABLE in plan.columns
         else F.lit(0)).alias("not_contactable"),
        total("expected_cost", push & treated).alias("push_cost"),
        total("expected_cost", pull & treated).alias("pull_cost"),
        total("expected_cost", treated).alias("cost"),
        total("saved_revenue", treated).alias("expected_saved_revenue"),
        total("expected_net_benefit", treated).alias("expected_net_benefit"),
        F.count_if(push & control).alias("push_control"),
        F.count_if(pull & control).alias("pull_control"),
        total("expected_net_benefit", control).alias("control_forgone_net_benefit"),
    ).collect()[0].asDict()
    sums = {k: (float(v or 0.0) if k.endswith(("cost", "revenue", "benefit")) else int(v))
            for k, v in row.items()}
    return plan_summary_fields({**sums, "control_share": s.control_share}, s, cuts, "spark")


def _contactable(log: SparkLog, attributes):
    """``customer_id`` and ``contactable`` (bool) of the customers file's rows, read as the
    single-machine plan reads the column (yes/no words, 1/0; a blank is no); None without
    the column. A customer absent from the file is contactable (the caller's left join)."""
    from pyspark.sql import functions as F

    if attributes is None or attributes.aside is None:
        return None
    frame = log.spark.table(attributes.aside)
    if CONTACTABLE not in frame.columns:
        return None
    text = F.lower(F.trim(F.col(CONTACTABLE)))
    words = sorted(YES_WORDS | NO_WORDS)
    unknown = sorted(r[0] for r in frame.select(text.alias("v")).where(
        F.col("v").isNotNull() & ~F.col("v").isin(words)).distinct().collect())
    if unknown:
        raise ClvInputError(f"The contactable column holds values that are not yes or no: "
                            f"{unknown[:5]}.", source="customers", column=CONTACTABLE,
                            advice="Use true/false, yes/no or 1/0.")
    flag = F.coalesce(text.isin(sorted(YES_WORDS)), F.lit(False))
    return frame.select("customer_id", flag.alias(CONTACTABLE))


def _dated(frame) -> pd.DataFrame:
    """A small Spark DataFrame on the driver, its DATE columns as datetime64 as DuckDB hands
    them over (forecast.xlsx writes them as dates, kpis.csv the same text)."""
    table = frame.toPandas()
    for column, kind in frame.dtypes:
        if kind == "date":
            table[column] = pd.to_datetime(table[column])
    return table


def _matrix(plan) -> pd.DataFrame:
    """matrix.csv from per-cell sums in Spark, exact: micro-units summed as DECIMAL, made
    into the table by the single-machine :func:`clvtools.targeting.matrix.matrix_from_totals`,
    so that both engines give the same figures."""
    counts, micro = spark_micro_sums(plan, "cell", MONEY)
    return matrix_from_totals(counts, micro)

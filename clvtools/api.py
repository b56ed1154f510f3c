"""The Python entry point of the main job: ``clvtools.analyze(...)`` and its results.

It sits above the pipeline and the report, so that nothing imports back up: the pipeline
computes, the report writes, and :class:`Results` joins the two for a user.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .config import Settings, load_settings
from .data.generator import generate_customer_base
from .errors import ClvInputError
from .pipeline import AnalysisResult, run_analysis
from .pipeline.campaign import CampaignEvaluation, evaluate_campaign
from .pipeline.inputs import read_inputs
from .pipeline.timeline import build_timeline
from .report.campaign import check_evaluation_folder, write_evaluation
from .report.headline import Figure, headline
from .report.input_check import InputCheck
from .report.outputs import OUTPUT_NAMES, check_output_folder, write_outputs
from .report.pseudonymise import pseudonym_key

__all__ = ["OUTPUT_NAMES", "EvaluationResults", "Results", "analyze", "analyze_chunked",
           "analyze_spark", "demo",
           "evaluate", "resolve_config", "check_output_folder", "check_evaluation_folder",
           "validate", "InputCheck"]

#: The demo's purchase processes: the generator's.
DEMO_MODELS = ("bgnbd", "pnbd")


class Results:
    """The results of :func:`analyze`: the main tables as DataFrames, and :meth:`write`.

    Every step's full result stays available under :attr:`analysis` (``analysis.value``,
    ``analysis.risk``, ``analysis.timeline``, ...).
    """

    def __init__(self, analysis: AnalysisResult,
                 attachments: Mapping[str, pd.DataFrame | str] | None = None):
        self.analysis = analysis
        #: Further content that :meth:`write` adds (manifest names): the demo's generated
        #: input, the command line's run.log.
        self.attachments = dict(attachments or {})

    @property
    def settings(self) -> Settings:
        return self.analysis.settings

    @property
    def customers(self) -> pd.DataFrame:
        """One row per customer (``customers.csv``)."""
        return self.analysis.targets.customers

    @property
    def targets(self) -> pd.DataFrame | None:
        """The contact list: the treatment, in priority order (``targets.csv``)."""
        return self.analysis.targets.targets

    @property
    def plan(self) -> pd.DataFrame | None:
        """Every customer's action, group, cell and predictions (``plan.parquet``)."""
        return self.analysis.targets.plan

    @property
    def early_warning(self) -> pd.DataFrame | None:
        """Live customers whose churn probability rose since the previous period
        (``early_warning.csv``)."""
        return self.analysis.targets.early_warning

    @property
    def win_back(self) -> pd.DataFrame | None:
        """Customers already declared churned, by the net benefit of a reactivation offer
        (``win_back.csv``)."""
        return self.analysis.targets.win_back

    @property
    def targeting_evaluation(self) -> pd.DataFrame | None:
        """The targeting evaluated out of time (``targeting_evaluation.csv``)."""
        evaluation = self.analysis.evaluation
        return None if evaluation is None else evaluation.measures

    @property
    def forecast(self) -> pd.DataFrame | None:
        """Revenue and churn per calendar month and matrix cell, with intervals
        (``forecast.csv``)."""
        return None if self.analysis.forecast is None else self.analysis.forecast.table

    @property
    def rfm(self) -> pd.DataFrame:
        """RFM summary, indexed by customer_id (lifetimes' conventions)."""
        return self.analysis.value.rfm

    @property
    def kpis(self) -> pd.DataFrame:
        """Retention KPIs per period."""
        return self.analysis.kpi.kpis

    @property
    def cohorts(self) -> pd.DataFrame:
        """Retention by acquisition cohort."""
        return self.analysis.kpi.cohorts

    @property
    def value_models(self):
        """The fitted purchase and spend models (:class:`~clvtools.pipeline.value.ValueModels`)."""
        return self.analysis.value.models

    @property
    def churn_model(self):
        """The fitted Cox churn model, or None when none could be fitted."""
        return self.analysis.risk.model

    def headline(self) -> list[Figure]:
        """The headline figures (customers, expected revenue, revenue at risk, churn, the
        plan), formatted, in reading order; see :func:`clvtools.report.headline.headline`."""
        return headline(self.analysis)

    @property
    def data_quality(self) -> dict:
        """Rows read, used and excluded by reason; notes; how the run was made."""
        return self.analysis.data_quality()

    def write(self, out: str | os.PathLike) -> Path:
        """Write every output file into the folder ``out`` atomically (see the README's table).

        Only a folder of clvtools' own outputs is replaced: one that holds other files, or an
        input of this run, is refused with a :class:`ClvInputError`."""
        return write_outputs(self.analysis, out, self.attachments,
                             inputs=_input_files(self.analysis.inputs.quality()))

    def __repr__(self) -> str:
        q = self.analysis.inputs.log.quality
        return (f"Results({q['customers']:,} customers, observation end "
                f"{self.analysis.timeline.observation_end})")


def _input_files(quality: Mapping[str, dict]) -> list[str]:
    """The files a run read, from its inputs' quality counts ("DataFrame" is no file)."""
    return [f for q in quality.values() for f in (q.get("files") or [q.get("source")])
            if f and f != "DataFrame"]


def resolve_config(config: Settings | Mapping | str | os.PathLike | None = None,
                   **overrides) -> Settings:
    """Settings from a :class:`Settings`, a dict of settings, a TOML file's path or None (the
    defaults), with keyword ``overrides`` replacing single ones; validated as the CLI's are
    (an unknown key or a bad value is a :class:`ClvInputError` naming it)."""
    if isinstance(config, Settings):
        values = config.model_dump()
    elif isinstance(config, Mapping):
        values = dict(config)
    elif config is None:
        values = {}
    else:
        return load_settings(config, **overrides)
    return load_settings(None, **{**values, **overrides}) if values or overrides else Settings()


def analyze(transactions, *, customers=None, contracts=None,
            config: Settings | Mapping | str | os.PathLike | None = None,
            on_step=None, evaluation=None, **overrides) -> Results:
    """Run the main job: value, churn risk, lifecycle and KPIs from a transaction log.

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
        The transaction log (CSV or Parquet): a customer id, a date and, optionally, an amount.
    customers : pandas.DataFrame or path, optional
        Customer attributes: the id column and one column per attribute.
    contracts : pandas.DataFrame or path, optional
        Contracts: id, start, end (empty while running), end reason.
    config : Settings, dict, path of a TOML file, optional
        The settings (default: every default); keyword ``overrides`` (``horizon=26``, ...)
        replace single ones (see :func:`resolve_config`).
    on_step : callable, optional
        Called with a short description as each step starts.
    evaluation : path, optional
        The output folder of :func:`evaluate` on the last campaign: report.html shows it.

    Returns
    -------
    Results
    """
    settings = resolve_config(config, **overrides)
    if settings.pseudonymise:
        pseudonym_key()   # no key is an error before the work, not after it
    return Results(run_analysis(transactions, customers=customers, contracts=contracts,
                                settings=settings, on_step=on_step, evaluation=evaluation))


def analyze_spark(transactions, *, customers=None,
                  config: Settings | Mapping | str | os.PathLike | None = None,
                  spark=None, on_step=None, **overrides):
    """The main job's summaries, models, scores and plan on a Spark session (the optional
    extra ``clvtools[spark]``; docs/cluster.rst says what runs where).

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame, path, glob or list of paths
        A Spark DataFrame, or Parquet or CSV files the Spark session can read.
    customers : pyspark.sql.DataFrame, path or glob, optional
        Customer attributes (one row per customer), covariates of the value and churn
        models as in :func:`analyze`.
    config, on_step, **overrides
        As for :func:`analyze`.
    spark : pyspark.sql.SparkSession, optional
        Default: the active session, or a new one.

    Returns
    -------
    clvtools.scale.spark_run.SparkRun
        ``.customers`` (a Spark DataFrame), ``.matrix``, ``.kpis``, ``.summary``,
        ``.write(out)``.
    """
    # pyspark is optional: imported only when a Spark run is asked for
    from .scale.spark_run import analyze_spark as run_on_spark

    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ClvInputError("The Spark engine needs pyspark, which is not installed.",
                            advice='pip install "clvtools[spark]" (and a Java 17 runtime), '
                                   "or run with --engine duckdb.") from None

    settings = resolve_config(config, **overrides)
    return run_on_spark(transactions, settings=settings, spark=spark, customers=customers,
                        step=on_step or (lambda _msg: None))


def analyze_chunked(transactions, *, customers=None,
                    config: Settings | Mapping | str | os.PathLike | None = None,
                    on_step=None, chunk_rows: int | None = None, **overrides):
    """The main job on this machine for a base larger than its memory: the summaries in
    DuckDB, the models on compressed statistics, the customers scored in chunks, the whole
    process within ``memory_limit`` (``clvtools analyze --engine chunked``; docs/scaling.rst
    says what it covers).

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
    customers : pandas.DataFrame or path, optional
    config, on_step, **overrides
        As for :func:`analyze`.
    chunk_rows : int, optional
        Customers scored at a time (default: from ``memory_limit``).

    Returns
    -------
    clvtools.scale.chunked_run.ChunkedRun
        ``.customers_relation()`` (a DuckDB relation), ``.matrix``, ``.kpis``, ``.cohorts``,
        ``.forecast`` and ``.backtest`` (their ``.table``), ``.summary``, ``.write(out)``.
    """
    from .scale.chunked_run import analyze_chunked as run_in_chunks

    settings = resolve_config(config, **overrides)
    return run_in_chunks(transactions, settings=settings, customers=customers,
                         step=on_step or (lambda _msg: None), chunk_rows=chunk_rows)


def validate(transactions, *, customers=None, contracts=None,
             config: Settings | Mapping | str | os.PathLike | None = None,
             **overrides) -> InputCheck:
    """Check the inputs and the settings as :func:`analyze` would, without fitting a model.

    The tables are read, validated and counted by the same functions as in
    :func:`analyze`, and the run's dates scheduled, so that what passes here passes there and
    what it would exclude is counted the same way.

    Parameters
    ----------
    transactions, customers, contracts, config, **overrides
        As for :func:`analyze`.

    Returns
    -------
    InputCheck
        ``.lines()`` says what would be read and excluded and why; ``.quality()`` holds the
        counts of data_quality.json's input sections.

    Raises
    ------
    ClvInputError
        The error :func:`analyze` would stop with, while reading.
    """
    settings = resolve_config(config, **overrides)
    if settings.pseudonymise:
        pseudonym_key()
    inputs = read_inputs(transactions, customers, contracts, settings)
    return InputCheck(settings, inputs,
                      build_timeline(inputs.log.first_date, inputs.log.observation_end, settings))


def demo(n_customers: int = 20_000, *, seed: int = 0, model: str = "bgnbd",
         config: Settings | Mapping | str | os.PathLike | None = None, on_step=None,
         **overrides) -> Results:
    """The main job on a customer base that clvtools generates with known truth.

    Three years (2022 to 2024) of ``n_customers`` customers with attributes (channel, region,
    plan) that act on purchase and dropout, so that the value model and the churn model can
    both be validated out of time. ``results.write(out)`` also writes the generated input under
    ``demo_input/``, to rerun with ``clvtools analyze``.

    Parameters
    ----------
    n_customers : int
    seed : int
        Seed of the generated base, and the run's ``seed`` setting.
    model : {"bgnbd", "pnbd"}
        The true purchase process.
    config, on_step, **overrides
        As for :func:`analyze`.
    """
    if model not in DEMO_MODELS:
        raise ClvInputError(f"The demo's model must be 'bgnbd' or 'pnbd'. Got {model!r} instead.")
    base = generate_customer_base(n_customers, model=model, seed=seed, start="2022-01-01",
                                  observation_end="2024-12-31")
    customers = base.customers.drop(columns=["acquisition_date"])
    results = analyze(base.transactions, customers=customers, config=config,
                      on_step=on_step, **{"seed": seed, **overrides})
    results.attachments = {"demo_input/transactions.csv": base.transactions,
                           "demo_input/customers.csv": customers}
    return results


class EvaluationResults:
    """The results of :func:`evaluate`: measured against predicted, and :meth:`write`."""

    def __init__(self, evaluation: CampaignEvaluation):
        self.evaluation = evaluation

    @property
    def measures(self) -> pd.DataFrame:
        """Per action and cell, per action and in total (``evaluation.csv``)."""
        return self.evaluation.measures

    @property
    def customers(self) -> pd.DataFrame:
        """Every plan customer with the outcomes (``evaluation_customers.csv``)."""
        return self.evaluation.customers

    @property
    def measured_settings(self) -> Settings:
        """The settings for the next :func:`analyze`, with the measured rates."""
        return self.evaluation.measured_settings

    @property
    def summary(self) -> dict:
        """The window, the read-out, the counts and the notes (``evaluation.json``)."""
        return self.evaluation.summary

    def write(self, out: str | os.PathLike) -> Path:
        """Write the evaluation's files into the folder ``out`` atomically."""
        return write_evaluation(self.evaluation, out)

    def __repr__(self) -> str:
        s = self.summary
        return (f"EvaluationResults({s['evaluated_customers']:,} customers, window "
                f"{s['window_start']} to {s['window_end']}, {s['read_out']} read-out)")


def evaluate(plan, transactions, *, end=None, **overrides) -> EvaluationResults:
    """Measure what a carried-out retention plan saved: the campaign loop's last step.

    Parameters
    ----------
    plan : path
        The output folder of the :func:`analyze` run whose plan was carried out (it holds
        ``plan.parquet`` and ``plan.json``).
    transactions : pandas.DataFrame, path, glob or list of paths
        The log since the plan (or the updated full log), read with the plan's settings.
    end : date-like, optional
        The last day to count (default: the last date in the log).
    **overrides
        Settings that differ for the new log (``customer_id_col``, ``datetime_format``, ...).

    Returns
    -------
    EvaluationResults
    """
    return EvaluationResults(evaluate_campaign(plan, transactions, end=end, **overrides))

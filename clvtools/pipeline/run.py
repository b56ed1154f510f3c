"""The main job: settings and data in, every result of the analysis out.

The CLI (``clvtools analyze`` / ``clvtools demo``) and the Python API (:func:`clvtools.analyze`)
call the same :func:`run_analysis`; writing the files is the report's job
(:mod:`clvtools.report.outputs`).

The KPIs and cohorts (SQL in DuckDB over the inputs alone) run in a second thread on a cursor
of their own, from the end of the landmark tables (whose sorted occasions give their spell
bounds) beside the Cox fit, its validation and the decisions (mostly one core);
:data:`._threads.OVERLAP` off runs them after, for the same results.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from concurrent.futures import Future

from ..config import Settings
from ..data.engine import cursor
from ._threads import alongside_thread
from .backtest import forecast_backtest
from .campaign import last_campaign
from .evaluation import evaluation_step
from .forecasting import forecast_step
from .inputs import Inputs, read_inputs
from .kpis import KpiResult, kpi_step
from .memory_budget import check_standard_engine_fits
from .provenance import run_provenance
from .result import AnalysisResult
from .risk import risk_step
from .targets import targets_step
from .timeline import build_timeline
from .value import value_step

__all__ = ["run_analysis"]


def run_analysis(transactions, *, customers=None, contracts=None,
                 settings: Settings | None = None,
                 on_step: Callable[[str], None] | None = None,
                 evaluation=None) -> AnalysisResult:
    """Run the analysis on a transaction log.

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
        The transaction log (CSV or Parquet).
    customers : pandas.DataFrame or path, optional
        Customer attributes: the id column and one column per attribute.
    contracts : pandas.DataFrame or path, optional
        Contracts: id, start, end (empty while running), end reason.
    settings : Settings, optional
        Default settings when omitted.
    on_step : callable, optional
        Called with a short description as each step starts (progress display).
    evaluation : path, optional
        The output folder of ``clvtools evaluate`` on the last campaign, for the report.

    Returns
    -------
    AnalysisResult
    """
    s = settings or Settings()
    step = on_step or (lambda _msg: None)
    campaign = None if evaluation is None else last_campaign(evaluation)  # fail early
    inputs = read_inputs(transactions, customers, contracts, s, step)
    check_standard_engine_fits(inputs.log.quality["customers"], s.memory_limit)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    value = value_step(inputs, timeline, s, step)
    # the backtest needs the value step alone: run here, its refits and forecasts (about
    # 0.5 GB at a million customers) come before the risk step's tables and the decisions'
    # lists are held, not on top of them at the end (the run's peak: 3.2 -> 2.8 GB); not
    # beside another step, where it saved no time (both pandas-heavy under one interpreter
    # lock) and raised the peak
    step("Backtesting the forecast at earlier origins")
    backtest = forecast_backtest(inputs, timeline, s, value)
    with contextlib.ExitStack() as beside:
        started: list[Future] = []

        def start_kpis() -> None:
            if not started:
                started.append(beside.enter_context(
                    alongside_thread(_kpis_on_own_cursor, inputs, s)))

        # the KPIs start once the risk step has built their spell bounds and value-tier
        # spend from its sorted occasions (numpy; data.lifecycle.spell_bounds,
        # data.kpi_segments.tier_spend_from_sorted), and read them on their own cursor
        # beside the Cox fit and its validation (about one core of the two: at a million
        # customers the KPIs' 3 s of CPU fit there) and the decisions
        risk = risk_step(inputs, timeline, value, s, step, tables_built=start_kpis)
        start_kpis()        # a risk step that never called it (it always does today)
        step("Choosing retention targets; early warning and win-back lists")
        targets = targets_step(value, risk, inputs, s, timeline)
        step("Evaluating the targeting out of time")
        evaluation = evaluation_step(value, risk, inputs, timeline, s)
        step("Forecasting revenue and churn by month")
        forecast = forecast_step(value, risk, targets, inputs, timeline, s)
        # what is left of the KPIs (all of them with the overlap off) is timed here
        step("Computing KPIs and cohorts")
    kpi = started[0].result()
    return AnalysisResult(s, inputs, timeline, value, risk, targets, kpi, run_provenance(s),
                          evaluation, forecast, backtest, campaign)


def _kpis_on_own_cursor(inputs: Inputs, settings: Settings) -> KpiResult:
    """The KPIs on a cursor of their own (the run's connection serves the decisions' thread
    meanwhile): they read the run's ordinary tables (data.engine); the TEMP tables their
    queries may make are the cursor's, and close with it."""
    own = cursor(inputs.log.con)
    try:
        return kpi_step(_on_connection(inputs, own), settings)
    finally:
        own.close()


def _on_connection(inputs: Inputs, con) -> Inputs:
    """``inputs`` querying through ``con`` (a cursor of the same database): the same tables,
    and the same ``log.derived`` (the spells built once are found by either)."""
    log = dataclasses.replace(inputs.log, con=con, derived=inputs.log.derived)
    attributes = (None if inputs.attributes is None
                  else dataclasses.replace(inputs.attributes, con=con))
    return dataclasses.replace(inputs, log=log, attributes=attributes)

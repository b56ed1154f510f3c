"""The main job: settings and data in, every result of the analysis out.

The CLI (``clvtools analyze`` / ``clvtools demo``) and the Python API (:func:`clvtools.analyze`)
call the same :func:`run_analysis`; writing the files is the report's job
(:mod:`clvtools.report.outputs`).
"""
from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from .backtest import forecast_backtest
from .campaign import last_campaign
from .evaluation import evaluation_step
from .forecasting import forecast_step
from .inputs import read_inputs
from .kpis import kpi_step
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
    risk = risk_step(inputs, timeline, value, s, step)
    step("Choosing retention targets; early warning and win-back lists")
    targets = targets_step(value, risk, inputs, s, timeline)
    step("Evaluating the targeting out of time")
    evaluation = evaluation_step(value, risk, inputs, timeline, s)
    step("Forecasting revenue and churn by month")
    forecast = forecast_step(value, risk, targets, inputs, timeline, s)
    step("Backtesting the forecast at earlier origins")
    backtest = forecast_backtest(inputs, timeline, s, value)
    step("Computing KPIs and cohorts")
    kpi = kpi_step(inputs, s)
    return AnalysisResult(s, inputs, timeline, value, risk, targets, kpi, run_provenance(s),
                          evaluation, forecast, backtest, campaign)

"""The chunked run's forecast backtest (forecast_backtest.csv), as the standard engine's
(:mod:`clvtools.pipeline.backtest`): at each origin the value models are refitted on the
compressed rows of the RFM table at that date (a DuckDB table, as the run's own fit), the
customers of that date forecast a chunk at a time and the sums added over the chunks (the
customers' variances over every customer, as in :mod:`.chunked_forecast`; the parameters'
delta method on the standard stratified sample), and set beside the revenue they brought.
"""
from __future__ import annotations

from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd

from ..data.chunked_tables import chunk_bounds, chunk_frame, store_rfm
from ..forecast import ALL_MONTHS, normal_bounds, stratified_sample
from ..pipeline.backtest import (
    NO_BACKTEST,
    BacktestResult,
    actual_revenue,
    backtest_origins,
    origin_table,
)
from ..pipeline.forecasting import SAMPLE_PER_SEGMENT, revenue_totals, sample_parameter_variance
from ..pipeline.inputs import Inputs
from ..pipeline.scoring import Scorers
from ..pipeline.timeline import Timeline, calendar_months
from ..pipeline.value import ValueResult
from .chunked_forecast import fetch_sample, scored_months
from .compressed_fit import fit_value_on_table

__all__ = ["chunked_backtest"]

#: The DuckDB table of the RFM summary at an origin (replaced at each).
_ORIGIN_RFM = "chunked_origin_rfm"


def chunked_backtest(con: duckdb.DuckDBPyConnection, inputs: Inputs, timeline: Timeline,
                     scorers: Scorers, *, value_model: str, covariates: str | None,
                     chunk_rows: int, fitted: tuple[str, object] | None = None
                     ) -> BacktestResult:
    """forecast_backtest.csv of a chunked run.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    inputs : Inputs
        The log.
    timeline : Timeline
    scorers : Scorers
        The run's (its time unit's days; the models are refitted at each origin).
    value_model : str
        The purchase model the run fitted (refitted at each origin).
    covariates : str or None
        SQL of the attributes the purchase model takes, one row per customer.
    chunk_rows : int
        Customers forecast at a time.
    fitted : (str, ValueModels), optional
        The RFM table at the first origin (one horizon before the end: the holdout start)
        and the value models refitted on it, as the targeting evaluation made them: used
        there rather than made again (the standard backtest reuses the holdout's refit).

    Returns
    -------
    BacktestResult
    """
    origins = backtest_origins(timeline)
    if not origins:
        return BacktestResult(None, [NO_BACKTEST])
    tables = [_one_origin(con, inputs, timeline, scorers, origin, value_model=value_model,
                          covariates=covariates, chunk_rows=chunk_rows,
                          fitted=fitted if origin == timeline.holdout_start else None)
              for origin in origins]
    con.execute(f"DROP TABLE IF EXISTS {_ORIGIN_RFM}")
    table = pd.concat(tables, ignore_index=True)
    months = table[table["month"] != ALL_MONTHS]
    return BacktestResult(table, [
        f"Forecast backtest at {len(origins)} origins ({', '.join(map(str, origins))}), "
        f"refitted on compressed statistics and forecast a chunk at a time: the 95 % interval "
        f"covered {int(months['covered_95'].sum())} of {len(months)} months."])


def _one_origin(con, inputs, timeline, scorers, origin, *, value_model, covariates,
                chunk_rows, fitted=None) -> pd.DataFrame:
    """Fit at ``origin`` (or take ``fitted``, the RFM table and models there), forecast one
    horizon of calendar months a chunk at a time, compare (as the standard engine's origin:
    no seasonal spread, no plan, undiscounted)."""
    if fitted is not None:
        rfm, models = fitted
        customers = int(con.execute(f"SELECT count(*) FROM {rfm}").fetchone()[0])
    else:
        rfm = _ORIGIN_RFM
        customers = store_rfm(inputs.log, time_unit=timeline.time_unit, into=rfm, at=origin)
        models, _, _ = fit_value_on_table(con, rfm, covariates, value_model,
                                          inputs.log.has_amounts)
    months = calendar_months(origin, timeline.horizon_days)
    ends = np.cumsum(months["days"].to_numpy(float)) / timeline.unit_days
    at_origin = replace(scorers, value=models, horizon=float(ends[-1]), discount_rate=0.0,
                        period_ends=tuple(ends))
    bounds = chunk_bounds(con, rfm, chunk_rows)
    mean = var = 0.0
    order_by = []
    for k in range(len(bounds)):
        rows = chunk_frame(con, rfm, bounds, k)
        attributes = None if covariates is None else chunk_frame(con, covariates, bounds, k)
        bound, scores, by_month = scored_months(at_origin, rows, attributes)
        value = ValueResult(rows, bound, scores, {}, [], months=by_month)
        zeros = np.zeros(len(rows), dtype=np.intp)
        m, v = revenue_totals(value, ends, np.zeros(len(rows)), None, zeros,
                              sample_per_segment=None)["expected_revenue"]
        mean, var = mean + m, var + v
        order_by.append(scores["expected_revenue"].to_numpy(float))
    order_by = np.concatenate(order_by)
    codes = np.zeros(len(order_by), dtype=np.intp)
    positions, weights = stratified_sample(codes, order_by, SAMPLE_PER_SEGMENT)
    sampled, sample, _ = fetch_sample(con, positions, order_by, at_origin, rfm=rfm,
                                      covariates=covariates)
    param = sample_parameter_variance(sampled, sample, weights, codes[positions],
                                      np.zeros(len(positions)), None, ends, [])
    mean, var = mean[-1], (var + param["expected_revenue"])[-1]   # the total row
    return origin_table(origin, pd.DataFrame(index=pd.RangeIndex(customers)), months,
                         actual_revenue(inputs, origin, months), mean, var,
                         normal_bounds(mean, var))

"""Rolling-origin backtest of the forecast on the user's own history (forecast_backtest.csv).

At each origin (one horizon before the observation end, then every :data:`STEP_DAYS` days
earlier, :data:`N_ORIGINS` at most, each with at least one horizon of history before it) the
value models are refitted on the log as it stood then, the customers of that date are
forecast over the calendar months of one horizon exactly as forecast.csv forecasts today's
(expected revenue in total, with its 80 % and 95 % intervals: :func:`money_totals`), and the
forecast is set beside the revenue those customers really brought in each month: the error
per month and whether each interval covered it, so finance sees how far to trust the months,
not only the total. No seasonal spread and no plan here: the model's forecast as such.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.rfm import purchases_by_period, rfm_summary
from ..forecast import ALL_MONTHS, normal_bounds
from ._threads import alongside_thread
from .forecasting import money_totals
from .inputs import Inputs
from .timeline import Timeline, calendar_months
from .value import ValueModels, ValueResult, fit_value_models, score_customers_by_month

__all__ = ["BacktestResult", "forecast_backtest", "N_ORIGINS", "STEP_DAYS", "backtest_origins",
           "NO_BACKTEST", "actual_revenue", "origin_table"]

#: Origins of the backtest, at most, and the days between them.
N_ORIGINS, STEP_DAYS = 2, 91


@dataclass
class BacktestResult:
    """The backtest.

    Attributes
    ----------
    table : pandas.DataFrame or None
        ``forecast_backtest.csv``: one row per origin and month (then ``all``): ``origin``,
        ``month``, ``days``, ``customers``, ``expected_revenue`` with ``_lo80``, ``_hi80``,
        ``_lo95``, ``_hi95``, ``actual_revenue``, ``error`` (actual - expected),
        ``relative_error`` (error / expected), ``covered_80``, ``covered_95``. None when the
        history is too short.
    notes : list of str
    """

    table: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def forecast_backtest(inputs: Inputs, timeline: Timeline, settings: Settings,
                      value: ValueResult | None = None) -> BacktestResult:
    """Fit at earlier origins, forecast, and compare month by month (module docstring); the
    purchase model is the one the run's value step chose (``value.choice``)."""
    s = settings
    chosen = (value.choice.chosen if value is not None and value.choice is not None
              else s.value_model)
    origins = backtest_origins(timeline)
    if not origins:
        return BacktestResult(None, [NO_BACKTEST])
    covariates = None
    if value is not None:
        # the whole history's attributes as its fit used them (each origin's customers are
        # among them), rather than a second query for the attributes of a million customers
        covariates = getattr(value.models.purchases, "covariates", None)
    elif inputs.attributes is not None and s.value_covariates:
        covariates = inputs.attributes.frame()
    reuse = value.holdout_fit if value is not None else None
    fits = [reuse if origin == timeline.holdout_start else None for origin in origins]
    # Each origin's RFM first (queries), then the later origins' fits and forecasts in a
    # second thread (no query there: pipeline/_threads.py), while this thread queries the
    # revenue each origin's customers brought and forecasts the first origin (whose fit is
    # usually the value step's holdout fit).
    rfms = [_origin_rfm(inputs, timeline, o, f) for o, f in zip(origins, fits, strict=True)]
    calendars = [calendar_months(o, timeline.horizon_days) for o in origins]

    def forecast(j):
        models = None if fits[j] is None else fits[j][1]
        return _origin_forecast(timeline, rfms[j], calendars[j], covariates, chosen, models)

    with alongside_thread(lambda: [forecast(j) for j in range(1, len(origins))]) as beside:
        actual = [actual_revenue(inputs, o, c) for o, c in zip(origins, calendars, strict=True)]
        forecasts = [forecast(0)]
    forecasts += beside.result()
    table = pd.concat([origin_table(origins[j], rfms[j], calendars[j], actual[j],
                                     *forecasts[j])
                       for j in range(len(origins))], ignore_index=True)
    months = table[table["month"] != ALL_MONTHS]
    notes = [f"Forecast backtest at {len(origins)} origins ({', '.join(map(str, origins))}): "
             f"the 95 % interval covered {int(months['covered_95'].sum())} of {len(months)} "
             f"months and the 80 % interval {int(months['covered_80'].sum())}; median "
             f"absolute error per month {months['relative_error'].abs().median():.1%}."]
    return BacktestResult(table, notes)


#: The note of a history too short for a backtest.
NO_BACKTEST = ("No forecast backtest: the history before one horizon from the end is shorter "
               "than the horizon.")


def backtest_origins(timeline: Timeline) -> list[dt.date]:
    """The backtest's origins: one horizon before the observation end, then every
    :data:`STEP_DAYS` days earlier, :data:`N_ORIGINS` at most, each with at least one horizon
    of history before it (none for a shorter history)."""
    h = timeline.horizon_days
    origins = [timeline.observation_end - dt.timedelta(days=h + j * STEP_DAYS)
               for j in range(N_ORIGINS)]
    return [o for o in origins if (o - timeline.first_date).days >= h]


def _one_origin(inputs: Inputs, timeline: Timeline, origin: dt.date,
                covariates: pd.DataFrame | None, value_model: str,
                fitted: tuple[pd.DataFrame, ValueModels] | None = None) -> pd.DataFrame:
    """Fit at ``origin``, forecast one horizon of calendar months, compare. ``fitted``: the
    RFM at ``origin`` and the model fitted on it, when the value step's holdout already
    fitted it there (the same fit: the same customers, model and covariates)."""
    rfm = _origin_rfm(inputs, timeline, origin, fitted)
    months = calendar_months(origin, timeline.horizon_days)
    forecast = _origin_forecast(timeline, rfm, months, covariates, value_model,
                                None if fitted is None else fitted[1])
    return origin_table(origin, rfm, months, actual_revenue(inputs, origin, months),
                         *forecast)


def _origin_rfm(inputs: Inputs, timeline: Timeline, origin: dt.date,
                fitted: tuple[pd.DataFrame, ValueModels] | None) -> pd.DataFrame:
    """The RFM at ``origin`` (a query), or ``fitted``'s when given."""
    if fitted is not None:
        return fitted[0]
    # the calibration window's RFM alone (the holdout columns are not needed here)
    return rfm_summary(inputs.log, time_unit=timeline.time_unit, observation_end=origin)


def actual_revenue(inputs: Inputs, origin: dt.date, months: pd.DataFrame) -> np.ndarray:
    """The revenue the customers of ``origin`` brought in each of the calendar ``months``
    after it, then in total, shape (M + 1,), currency (a query)."""
    starts = [d - dt.timedelta(days=1) for d in months["start"]]  # periods are (start, end]
    actual = purchases_by_period(inputs.log, starts, list(months["end"]),
                                 customers_acquired_by=origin)["revenue"].to_numpy(float)
    return np.append(actual, actual.sum())


def _origin_forecast(timeline: Timeline, rfm: pd.DataFrame, months: pd.DataFrame,
                     covariates: pd.DataFrame | None, value_model: str,
                     models: ValueModels | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The model's part of one origin (no query): fit on ``rfm`` (unless ``models`` are
    given) and forecast the ``months``' expected revenue: per month then in total, its mean
    and variance, shape (M + 1,), and its interval bounds (``lo80`` ... ``hi95``)."""
    if models is None:
        models = fit_value_models(rfm, value_model, covariates)
    ends = np.cumsum(months["days"].to_numpy(float)) / timeline.unit_days
    scores, by_month = score_customers_by_month(models, rfm, horizon=ends[-1],
                                                time_unit_days=timeline.unit_days,
                                                discount_rate=0.0, period_ends=ends)
    value = ValueResult(rfm, models, scores, {}, [], months=by_month)
    mean, var = money_totals(value, ends, np.zeros(len(rfm), dtype=np.intp))["expected_revenue"]
    mean, var = mean[-1], var[-1]  # the total row: months, then the horizon
    return mean, var, normal_bounds(mean, var)


def origin_table(origin: dt.date, rfm: pd.DataFrame, months: pd.DataFrame,
                 actual: np.ndarray, mean: np.ndarray, var: np.ndarray,
                 bounds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One origin's rows: the forecast (:func:`_origin_forecast`) beside ``actual``."""
    out = pd.DataFrame({
        "origin": origin,
        "month": [*months["month"], ALL_MONTHS],
        "days": [*months["days"], int(months["days"].sum())],
        "customers": len(rfm),
        "expected_revenue": mean,
        **{f"expected_revenue_{k}": bounds[k] for k in ("lo80", "hi80", "lo95", "hi95")},
        "actual_revenue": actual,
    })
    out["error"] = out["actual_revenue"] - out["expected_revenue"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["relative_error"] = out["error"] / out["expected_revenue"]
    for level in ("80", "95"):
        out[f"covered_{level}"] = ((out[f"expected_revenue_lo{level}"] <= actual)
                                   & (actual <= out[f"expected_revenue_hi{level}"]))
    return out

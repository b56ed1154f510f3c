"""Every date and day count of a run, computed once from the settings and the log.

The steps read these fields and schedule no date of their own, so that the value model's
holdout, the churn model's landmarks and its out-of-time check can be read off one object
(and the report can print them). The churn rule itself (``churn_after`` in days) is applied
by the data layer's one function for it, :func:`clvtools.data.lifecycle.churn_days`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Settings
from ..errors import ClvInputError
from ..units import month_ends, to_days, unit_days

__all__ = ["Timeline", "build_timeline", "calendar_months"]

#: Out-of-time validation of the churn model: the evaluation landmark sits 1.1 horizons
#: before the end and the training landmark 1.25 horizons before that. Both follow-ups run
#: past the horizon because the IPCW metrics need the censoring distribution beyond it.
EVALUATION_LAG, TRAINING_LAG = 1.1, 1.25


@dataclass(frozen=True)
class Timeline:
    """The dates of one run.

    Attributes
    ----------
    first_date, observation_end : datetime.date
        First purchase in the log and the last day observed.
    time_unit : str
        ``"day"``, ``"week"`` or ``"month"``; ``unit_days`` days each.
    unit_days : float
    churn_after_days, horizon_days : int
        ``churn_after`` and ``horizon`` in whole days (half up).
    landmarks : tuple of datetime.date
        Landmarks of the churn model's survival table, latest first: one horizon before the
        end (so the whole outcome window is observed), then one horizon earlier each.
    holdout_start : datetime.date or None
        End of the value model's calibration window (one horizon before the end); None when
        the history before it is shorter than the horizon.
    holdout_months : tuple of (datetime.date, datetime.date)
        (start, end] of each calendar-average month of the holdout, as the value model's
        monthly revenue counts them; empty without a holdout.
    validation_training, validation_evaluation : datetime.date or None
        Out-of-time validation of the churn model: fitted at the first (outcomes censored at
        the second), evaluated at the second; None when the history is too short.
    previous_scoring : datetime.date or None
        One ``kpi_period`` before the end: where scores are compared with today's
        (early warning); None before the first purchase.
    forecast_months : pandas.DataFrame
        The calendar months of the forecast, from the day after the end over the horizon:
        ``month`` (``YYYY-MM``), ``start``, ``end`` (dates, inclusive), ``days`` and
        ``partial`` (the month is cut by the horizon's start or end).
    notes : tuple of str
        What the schedule had to give up (a history shorter than the horizon).
    """

    first_date: dt.date
    observation_end: dt.date
    time_unit: str
    unit_days: float
    churn_after_days: int
    horizon_days: int
    landmarks: tuple[dt.date, ...]
    holdout_start: dt.date | None
    holdout_months: tuple[tuple[dt.date, dt.date], ...]
    validation_training: dt.date | None
    validation_evaluation: dt.date | None
    previous_scoring: dt.date | None
    forecast_months: pd.DataFrame
    notes: tuple[str, ...] = ()

    def forecast_month_ends(self) -> np.ndarray:
        """Ends of :attr:`forecast_months` in time units after the observation end, shape (M,)."""
        return np.cumsum(self.forecast_months["days"].to_numpy(dtype=float)) / self.unit_days

    def as_dict(self) -> dict:
        """The dates as ISO strings, for data_quality.json and the report."""
        def iso(d):
            return None if d is None else d.isoformat()
        return {
            "first_date": iso(self.first_date), "observation_end": iso(self.observation_end),
            "landmarks": [iso(d) for d in self.landmarks],
            "holdout_start": iso(self.holdout_start),
            "validation_training": iso(self.validation_training),
            "validation_evaluation": iso(self.validation_evaluation),
            "previous_scoring": iso(self.previous_scoring),
            "forecast_start": iso(self.observation_end + dt.timedelta(days=1)),
            "forecast_end": iso(self.observation_end + dt.timedelta(days=self.horizon_days)),
            "notes": list(self.notes),
        }


#: The shortest calibration window of the value model's holdout, in horizons.
MIN_CALIBRATION = 0.5


def build_timeline(first_date: dt.date, observation_end: dt.date, settings: Settings) -> Timeline:
    """Schedule every date of a run.

    Parameters
    ----------
    first_date, observation_end : datetime.date
        The log's first purchase and observation end.
    settings : Settings

    Raises
    ------
    ClvInputError
        When the log spans less than two days (nothing to fit a churn model on).
    """
    s = settings
    days = unit_days(s.time_unit)
    horizon_days = to_days(s.horizon, s.time_unit, "horizon")
    step = dt.timedelta(days=horizon_days)
    landmarks = tuple(d for d in (observation_end - step * k for k in range(1, s.landmarks + 1))
                      if d > first_date)
    notes = []
    span = (observation_end - first_date).days
    if not landmarks:
        if span < 2:
            raise ClvInputError(
                f"The data span {first_date} to {observation_end}: a churn model needs "
                "purchases on at least two different days.",
                advice="Give a longer transaction history.")
        # A history shorter than the horizon still gets a churn model: one landmark halfway,
        # its outcomes censored at the end, and beyond that follow-up the recent baseline
        # hazard carries the probability to the horizon (the model's constant-hazard tail).
        landmarks = (first_date + dt.timedelta(days=span // 2),)
        notes.append(
            f"The history ({span} days) is shorter than the horizon ({horizon_days} days): the "
            f"churn model's one landmark is {landmarks[0]}, with outcomes censored after "
            f"{(observation_end - landmarks[0]).days} days; its probabilities beyond that "
            "extrapolate the recent baseline hazard.")

    holdout_start, holdout_months = observation_end - step, ()
    # the classic split (CDNOW: 39 weeks of calibration for a 39-week holdout, a day short of
    # it) is kept; less than half a horizon of calibration is too little to fit on
    if (holdout_start - first_date).days < horizon_days * MIN_CALIBRATION:
        holdout_start = None
    else:
        # the same calendar-average months as the value model's monthly revenue
        ends = [holdout_start + dt.timedelta(days=round(e * days))
                for e in month_ends(s.horizon, days)]
        holdout_months = tuple(zip([holdout_start, *ends[:-1]], ends, strict=True))

    evaluation = observation_end - dt.timedelta(days=round(horizon_days * EVALUATION_LAG))
    training = evaluation - dt.timedelta(days=round(horizon_days * TRAINING_LAG))
    if training <= first_date:
        training = evaluation = None

    previous = (pd.Timestamp(observation_end) - _period_offset(s.kpi_period)).date()
    return Timeline(
        first_date=first_date, observation_end=observation_end, time_unit=s.time_unit,
        unit_days=days, churn_after_days=to_days(s.churn_after, s.time_unit, "churn_after"),
        horizon_days=horizon_days, landmarks=landmarks, holdout_start=holdout_start,
        holdout_months=holdout_months, validation_training=training,
        validation_evaluation=evaluation,
        previous_scoring=previous if previous >= first_date else None,
        forecast_months=calendar_months(observation_end, horizon_days), notes=tuple(notes),
    )


def _period_offset(period: str) -> pd.DateOffset:
    return {"week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1),
            "quarter": pd.DateOffset(months=3), "year": pd.DateOffset(years=1)}[period]


def calendar_months(observation_end: dt.date, horizon_days: int) -> pd.DataFrame:
    """Calendar months from the day after ``observation_end`` for ``horizon_days`` days."""
    first = pd.Timestamp(observation_end) + pd.Timedelta(days=1)
    last = pd.Timestamp(observation_end) + pd.Timedelta(days=horizon_days)
    periods = pd.period_range(first, last, freq="M")
    starts = [max(p.start_time.normalize(), first) for p in periods]
    ends = [min(p.end_time.normalize(), last) for p in periods]
    return pd.DataFrame({
        "month": [str(p) for p in periods],
        "start": [s.date() for s in starts],
        "end": [e.date() for e in ends],
        "days": [(e - s).days + 1 for s, e in zip(starts, ends, strict=True)],
        "partial": [s != p.start_time.normalize() or e != p.end_time.normalize()
                    for p, s, e in zip(periods, starts, ends, strict=True)],
    })

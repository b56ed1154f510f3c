"""Time units: every model and table in clvtools works in one of these; the lengths of a day,
week, month and year in days are defined here and nowhere else."""
from __future__ import annotations

import math

import numpy as np

from .errors import ClvInputError, format_choices

#: Days in the mean Gregorian year, the length numpy and pandas give a year.
DAYS_PER_YEAR = 365.2425
#: Days in the mean Gregorian month (``np.timedelta64(1, "M")``): calendar-average months.
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

#: Length of each time unit in days, so that conversions agree with lifetimes and pandas.
UNIT_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH}


def unit_days(time_unit: str) -> float:
    """Days in one ``time_unit`` (``"day"``, ``"week"`` or ``"month"``)."""
    try:
        return UNIT_DAYS[time_unit]
    except KeyError:
        raise ClvInputError(
            f"The 'time_unit' setting must be {format_choices(list(UNIT_DAYS))}. "
            f"Got {time_unit!r} instead."
        ) from None


def to_days(value: float, time_unit: str, name: str) -> int:
    """``value`` time units as a whole number of days (half up), at least one day.

    Parameters
    ----------
    value : float
        A positive length in time units.
    time_unit : str
        ``"day"``, ``"week"`` or ``"month"``.
    name : str
        The setting's name, for the error message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ClvInputError(f"The {name!r} parameter must be a positive number. "
                            f"Got {value!r} instead.")
    return max(1, math.floor(value * unit_days(time_unit) + 0.5))


def month_ends(horizon: float, time_unit_days: float) -> np.ndarray:
    """Ends of the calendar-average months that cover ``horizon``, in time units from its start.

    Parameters
    ----------
    horizon : float
        Length in time units (> 0); the last month is cut at it.
    time_unit_days : float
        Days per time unit.

    Returns
    -------
    numpy.ndarray, shape (ceil(horizon / month),)
        Increasing, the last equal to ``horizon``.
    """
    month = DAYS_PER_MONTH / time_unit_days
    n_months = int(np.ceil(horizon / month - 1e-9))
    return np.minimum(np.arange(1, n_months + 1) * month, horizon)

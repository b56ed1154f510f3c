"""Time units: every model and table in clvtools works in one of these."""
from __future__ import annotations

import math

from ..errors import ClvInputError, format_choices

#: Length of each time unit in days. A month is numpy's mean Gregorian month
#: (365.2425 / 12 days), the value ``np.timedelta64(1, "M")`` has, so that conversions
#: agree with lifetimes and pandas.
UNIT_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.2425 / 12}


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

"""Time units: every model and table in clvtools works in one of these."""
from __future__ import annotations

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

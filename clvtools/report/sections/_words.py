"""Small phrases shared by the sections: time units and horizons in words."""
from __future__ import annotations

from ...config import Settings

__all__ = ["units", "horizon"]


def units(settings: Settings, amount: float | None = None) -> str:
    """The time unit in words: ``weeks``, or ``26 weeks`` with an amount."""
    word = f"{settings.time_unit}s"
    if amount is None:
        return word
    return f"{amount:g} {settings.time_unit}{'' if amount == 1 else 's'}"


def horizon(settings: Settings) -> str:
    """The horizon in words, e.g. ``52 weeks``."""
    return units(settings, settings.horizon)

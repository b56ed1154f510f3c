"""Parameter checks with one message shape, as scikit-learn words them:
"The 'horizon' parameter of ChurnModel.churn_probability must be a positive number. Got -3 instead."
"""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices

__all__ = ["check_number", "check_choice", "check_columns", "positive_column", "event_column"]


def check_number(value, name, owner, *, low=None, high=None, low_open=False, integer=False):
    """Return ``value`` as float (or int) if it is a finite number within the bounds."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"<= {high}")
        rng = f" {' and '.join(bounds)}" if bounds else ""
        raise ClvInputError(
            f"The {name!r} parameter of {owner} must be {kind}{rng}. Got {value!r} instead."
        )
    return int(value) if integer else float(value)


def check_choice(value, name, owner, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ClvInputError(
            f"The {name!r} parameter of {owner} must be {format_choices(list(choices))}. "
            f"Got {value!r} instead."
        )
    return value


def check_columns(df, columns, source, what="column"):
    """Raise if any of ``columns`` is missing from ``df``."""
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ClvInputError(
            f"The table has no {what}(s) {missing}.",
            source=source,
            advice=f"The table's columns are {list(df.columns)}; rename or pass the right names.",
        )


def positive_column(table, column, source, message, advice=None):
    """Return ``table[column]`` as a float array, raising if any value is not a positive number.

    The error names ``source``, the column, the count and the first five offending rows.
    """
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        raise ClvInputError(message, source=source, column=column, rows=table.loc[bad].head(5),
                            n_rows=int(bad.sum()), advice=advice)
    return values


def event_column(table, column, source):
    """Return ``table[column]`` as a float array of 0 (censored) and 1 (churn declared),
    raising on any other value or when there is no event at all."""
    e = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(e, (0.0, 1.0))
    if bad.any():
        raise ClvInputError("Events must be 0 (censored) or 1 (churn declared).",
                            source=source, column=column,
                            rows=table.loc[bad].head(5), n_rows=int(bad.sum()))
    if e.sum() == 0:
        raise ClvInputError("No churn event in the table: a churn model cannot be fitted.",
                            source=source, column=column,
                            advice="Use earlier landmarks or a longer observation period.")
    return e

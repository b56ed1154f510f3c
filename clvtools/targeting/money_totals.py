"""Money totals in whole micro-units, exactly: the sums of :mod:`clvtools.data.money`
(written there in SQL for DuckDB and Spark) for per-customer money held in pandas.

A sum of doubles depends on the order of addition in its last bit; a table summed by cell
on one machine and by partition on a cluster would differ there. Each amount is therefore
rounded to a whole number of micro-units (``amount * 1e6`` in doubles, rounded half away
from zero: SQL's ``round``), the integers are summed exactly and the total becomes a double
once (:func:`from_micro`), so that every engine and every order gives the same figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["micro_units", "micro_sums", "from_micro"]

#: Below this many micro-units in absolute value a customer's figure sums exactly in int64
#: (split in two 32-bit halves, up to 2^31 customers): 4.6e12 currency units.
_LIMIT = 2.0 ** 62
_HALF = 2 ** 32


def micro_units(amounts) -> np.ndarray:
    """Whole micro-units of each amount, shape (n,), int64; NaN (no figure) counts 0, as
    SQL's ``sum`` skips a NULL.

    Raises
    ------
    OverflowError
        A figure of 4.6e12 currency units or more.
    """
    scaled = np.asarray(amounts, dtype=float) * 1e6
    whole = np.trunc(scaled)
    # the fraction is exact (a double less its integer part); .5 goes away from zero
    rounded = whole + np.sign(scaled) * (np.abs(scaled - whole) >= 0.5)
    rounded = np.where(np.isnan(rounded), 0.0, rounded)
    if np.abs(rounded).max(initial=0.0) >= _LIMIT:
        raise OverflowError("A money figure of 4.6e12 currency units or more cannot be summed "
                            "exactly in micro-units.")
    return rounded.astype(np.int64)


def micro_sums(frame: pd.DataFrame, by: str, columns) -> pd.DataFrame:
    """Exact sums of micro-units of ``columns`` per value of ``by``.

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n, k)
    by : str
        The grouping column.
    columns : sequence of str
        Money columns (currency units, doubles).

    Returns
    -------
    pandas.DataFrame
        Indexed by the values of ``by`` found; one column of Python ints (object dtype)
        per money column.
    """
    halves = {}
    for column in columns:
        micro = micro_units(frame[column])
        # two halves whose int64 sums cannot overflow; recombined as Python ints
        halves[(column, "high")] = micro >> 32
        halves[(column, "low")] = micro & (_HALF - 1)
    grouped = pd.DataFrame(halves, index=frame.index).groupby(
        frame[by].to_numpy(), sort=False).sum()
    out = pd.DataFrame(index=grouped.index)
    for column in columns:
        out[column] = [int(h) * _HALF + int(lo) for h, lo in
                       zip(grouped[(column, "high")], grouped[(column, "low")], strict=True)]
    return out


def from_micro(total: int) -> float:
    """A total of micro-units as a double in currency units, rounded once (SQL's
    ``CAST(total AS DOUBLE) / 1e6``: each step correctly rounded)."""
    return float(int(total)) / 1e6

"""Money in SQL: amounts summed as whole micro-units, exactly, in DuckDB and in Spark alike.

A sum of doubles depends on the order of addition in its last bit, and threads (DuckDB) or
executors (Spark) add in whatever order they meet the rows. Every sum of money in clvtools'
SQL is therefore written with :func:`money_sum`, the same text in both engines:

1. each amount (a double) is rounded to a whole number of micro-units, a millionth of the
   currency unit: ``round(amount * 1e6)``, the product in doubles (IEEE, the same in both
   engines) and the rounding half away from zero (DuckDB's ``round`` and Spark's ``HALF_UP``);
2. the integers are summed as ``DECIMAL(38, 0)``: exact, so the total is the same in any
   order, on any number of threads or partitions, and cannot overflow (DuckDB's and Spark's
   64-bit sums would stop at 9.2e12 currency units, the yearly revenue of a large retailer
   counted in yen);
3. the total is converted to a double once and divided by 1e6: both correctly rounded, so the
   result is the double nearest the exact decimal total.

Two engines, two runs, any partitioning give the same double, bit for bit. A day's total of an
occasion (a double holding ``k / 1e6``) gives back its ``k`` micro-units when it is summed
again (``round(k / 1e6 * 1e6) = k`` exactly for totals below 2^51 micro-units, two billion
currency units a day; above, both engines still agree, the sum being off by a micro-unit).

Figures computed per row (a model's net benefit, a value lost, a probability), which the
standard engine sums as doubles, are summed the same way in finer units (:func:`figure_sum`):
a micro-unit per row would move such a total by about 1e-9 relative from the standard figure.

Amounts are thereby counted to a millionth of the currency unit: finer digits (a converted
currency, 12.3456789) are rounded, half a millionth per row at most. An amount must stay below
:data:`MAX_AMOUNT` in absolute value; the readers refuse larger ones unless a policy leaves
them out (``amount_outliers = "drop"`` does by default).
"""
from __future__ import annotations

__all__ = ["MAX_AMOUNT", "micro_units", "money", "money_sum", "figure_sum"]

#: The largest absolute amount of one row, in currency units: from 1e15 on, doubles are 0.125
#: apart and no longer hold cents, so such a figure is a slip of the export, not a purchase
#: (and far below the 1e32 at which the micro-units would overflow ``DECIMAL(38, 0)``).
MAX_AMOUNT = 1e15


def micro_units(amount: str) -> str:
    """SQL: the DOUBLE expression ``amount`` as a whole number of micro-units, ``DECIMAL(38, 0)``.

    The same text in DuckDB and Spark SQL (``1e6`` is a double literal in both).
    """
    return f"CAST(round(({amount}) * 1e6) AS DECIMAL(38, 0))"


def money(micro: str) -> str:
    """SQL: a whole number of micro-units (an exact sum of :func:`micro_units`) as a DOUBLE in
    currency units, rounded once."""
    return f"(CAST({micro} AS DOUBLE) / 1e6)"


def money_sum(amount: str, where: str | None = None) -> str:
    """SQL: the exact sum of the DOUBLE expression ``amount``, as a DOUBLE in currency units.

    Parameters
    ----------
    amount : str
        A DOUBLE expression (currency units); NULLs are skipped, as ``sum`` skips them.
    where : str, optional
        A condition of the aggregate's ``FILTER (WHERE ...)`` clause.

    Returns
    -------
    str
        An aggregate expression: NULL over no rows (or only NULLs), as ``sum``.
    """
    only = f" FILTER (WHERE {where})" if where else ""
    return money(f"sum({micro_units(amount)}){only}")


def figure_sum(figure: str) -> str:
    """SQL (DuckDB): the sum of the DOUBLE expression ``figure``, computed per row (a net
    benefit, a probability), the same double however DuckDB's threads meet the rows.

    As :func:`money_sum`, in whole units of 1e-12 rather than 1e-6: a row is rounded by at
    most 5e-13 (or, past 9e3, by its own last bit), so the total stays within about 1e-15
    relative of a sum of doubles (the standard engine's), where micro-units would move a
    total of net benefits by 1e-9 relative. ``DECIMAL(38, 0)`` holds the units of 1e9 rows
    of 1e16 each. The figures must be finite: a NaN or infinite row stops the query (DuckDB's
    conversion error names the value) rather than being skipped.

    Returns
    -------
    str
        An aggregate expression: NULL over no rows (or only NULLs), as ``sum``.
    """
    return f"(CAST(sum(CAST(round(({figure}) * 1e12) AS DECIMAL(38, 0))) AS DOUBLE) / 1e12)"

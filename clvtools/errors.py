"""Errors a user can cause, each saying where the problem is and what to do.

The CLI prints these as one message and exits with status 2; the API raises them.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["ClvInputError", "ConvergenceError"]


class ClvInputError(ValueError):
    """Bad input data or settings.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    source : str, optional
        The file (or "DataFrame") the problem was found in.
    column : str, optional
        The offending column.
    rows : pandas.DataFrame, optional
        The first offending rows (a handful), shown under the message. A column named
        ``line`` gives the line in the file, where known.
    n_rows : int, optional
        How many rows are affected in total.
    advice : str, optional
        What the user can do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        column: str | None = None,
        rows: pd.DataFrame | None = None,
        n_rows: int | None = None,
        advice: str | None = None,
    ):
        self.problem = problem
        self.source = source
        self.column = column
        self.rows = rows
        self.n_rows = n_rows
        self.advice = advice
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.source:
            where.append(f"in {self.source}")
        if self.column:
            where.append(f"column {self.column!r}")
        head = self.problem if not where else f"{self.problem} ({', '.join(where)})"
        parts = [head]
        if self.n_rows is not None:
            parts.append(f"{self.n_rows:,} row(s) affected.")
        if self.rows is not None and len(self.rows):
            parts.append("First offending rows:\n" + self.rows.to_string(index=False))
        if self.advice:
            parts.append("What to do: " + self.advice)
        return "\n".join(parts)


class ConvergenceError(RuntimeError, ValueError):
    """An optimiser did not converge; the message lists what to try.

    Also a ``ValueError``, as ``lifetimes.utils.ConvergenceError`` is: code written for
    lifetimes that catches ``ValueError`` around a fit keeps catching it.
    """


def format_choices(choices: Sequence[str]) -> str:
    """``['a', 'b']`` -> ``"'a' or 'b'"`` for error messages."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]

"""The report's tables: every data table on the page passes through :func:`table`, and so
through :func:`_shareable`, the one place where what may leave the company is decided.

Cells become plain strings here; the page template escapes them (jinja2's autoescape), so
an id or an attribute value such as ``<script>`` is shown as text, never run.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Settings
from .pseudonymise import identifying_columns, pseudonym_key, pseudonymise_frame

__all__ = ["Table", "table", "fmt", "money", "percent", "count"]


#: The whole base of the report being rendered (customers.csv's table): whether a text value
#: is rare, and so names somebody, is judged on it (:func:`shared_population`).
_POPULATION: ContextVar[pd.DataFrame | None] = ContextVar("population", default=None)


@contextmanager
def shared_population(customers: pd.DataFrame):
    """Judge the rarity of text values on ``customers`` while a report is rendered."""
    token = _POPULATION.set(customers)
    try:
        yield
    finally:
        _POPULATION.reset(token)


def _shareable(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The version of a data table that may go into the page.

    Every table of the report passes through here, so that the ``pseudonymise`` setting,
    which replaces customer ids and free-text values from the data by keyed hashes
    (:mod:`.pseudonymise`, as in forecast.xlsx), is applied in one place.
    """
    if not settings.pseudonymise:
        return frame
    columns = identifying_columns(frame, population=_POPULATION.get())
    return pseudonymise_frame(frame, columns, pseudonym_key()) if columns else frame


@dataclass(frozen=True)
class Table:
    """A table ready for the template: headers and cells as text.

    Attributes
    ----------
    caption : str
        One sentence above the table saying what it holds.
    columns : list of str
        Column headers.
    rows : list of list of str
        Formatted cells, row by row.
    numeric : list of bool
        Per column: right-aligned (numbers).
    kind : str
        ``"table"``.
    """

    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    kind: str = "table"


def money(value) -> str:
    """12345.678 -> '12,346'; below 100 with cents: 12.35."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    value = float(value)
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def percent(value, decimals: int = 1) -> str:
    """0.1234 -> '12.3 %'."""
    if value is None or pd.isna(value):
        return ""
    return f"{100 * float(value):.{decimals}f} %"


def count(value) -> str:
    """12345 -> '12,345'."""
    if value is None or pd.isna(value):
        return ""
    return f"{int(round(float(value))):,}"


def _number(value) -> str:
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def fmt(value, kind: str = "auto") -> str:
    """One cell as text.

    Parameters
    ----------
    value : object
    kind : {"auto", "money", "percent", "count", "p", "1f", "text"}
        ``p`` is a p-value (``< 0.001`` below that); ``1f`` one decimal.
    """
    if value is None or (not isinstance(value, (list, dict, tuple)) and pd.isna(value)):
        return ""
    if kind == "money":
        return money(value)
    if kind == "percent":
        return percent(value)
    if kind == "count":
        return count(value)
    if kind == "1f":
        return f"{float(value):,.1f}" if math.isfinite(float(value)) else _number(value)
    if kind == "p":
        return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if kind == "text" or isinstance(value, (str, bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return _number(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.date().isoformat() if value == value.normalize() else str(value)
    return str(value)


def table(frame: pd.DataFrame, settings: Settings, caption: str, *,
          columns: Sequence[str] | None = None, formats: Mapping[str, str] | None = None,
          headers: Mapping[str, str] | None = None, limit: int | None = None) -> Table:
    """A data table for the page.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as the run computed it (not modified).
    settings : Settings
        The run's settings (for :func:`_shareable`).
    caption : str
        The sentence above the table.
    columns : sequence of str, optional
        The columns to show, in order (default: all; those missing are skipped).
    formats : mapping, optional
        Column -> kind of :func:`fmt`.
    headers : mapping, optional
        Column -> header shown (default: the column's name, underscores as spaces).
    limit : int, optional
        Show at most this many rows (the top of the table).
    """
    frame = frame if limit is None else frame.head(limit)
    frame = _shareable(frame, settings)
    shown = [c for c in (columns if columns is not None else frame.columns) if c in frame]
    formats, headers = dict(formats or {}), dict(headers or {})
    rows = [[fmt(v, formats.get(c, "auto")) for c, v in zip(shown, values, strict=True)]
            for values in frame[shown].itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) and formats.get(c) != "text" for c in shown]
    return Table(caption, [headers.get(c, str(c).replace("_", " ")) for c in shown], rows,
                 numeric)


def key_values(pairs: Sequence[tuple[str, object]], settings: Settings, caption: str,
               *, headers: tuple[str, str] = ("", "value"), side_by_side: int = 1) -> Table:
    """A table of names and values (already formatted where they need it), with
    ``side_by_side`` name-value pairs per row (a long list in half the height)."""
    names = [str(k) for k, _ in pairs]
    values = [v if isinstance(v, str) else fmt(v) for _, v in pairs]
    rows = math.ceil(len(pairs) / side_by_side)
    frame, formats, shown = pd.DataFrame(index=range(rows)), {}, {}
    for i in range(side_by_side):
        part = slice(i * rows, (i + 1) * rows)
        frame[f"name{i}"] = pd.Series(names[part], dtype=object)
        frame[f"value{i}"] = pd.Series(values[part], dtype=object)
        formats[f"value{i}"] = "text"
        shown |= {f"name{i}": headers[0], f"value{i}": headers[1]}
    return table(frame, settings, caption, formats=formats, headers=shown)

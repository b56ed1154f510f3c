"""Tables on worksheets, formatted for people who work in Excel: a sentence above each table,
the header frozen under it, an autofilter, columns sized to their content, and each column in
its own number format (money with two decimals and negatives in red, shares as percentages,
counts with thousands separators, dates as dates).

Every text cell is written as text (``write_string``, never ``write``, which would turn a
leading ``=`` into a formula) after :func:`~clvtools.report.safe_text.neutralise_formulas`.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .safe_text import neutralise_formulas, neutralise_text

__all__ = ["FORMATS", "Formats", "column_kind", "write_table"]

#: Number formats by kind of column. Money carries no currency symbol: the data do not say
#: which currency they are in, and a wrong symbol would be worse than none (Excel's "Currency"
#: category with the symbol "None", negatives in red).
FORMATS = {
    "money": "#,##0.00;[Red]-#,##0.00",
    "share": "0.0%",
    "count": "#,##0",
    "decimal": "#,##0.00",
    "date": "yyyy-mm-dd",
    "text": "@",
    "bool": "General",
}
#: Widest column, in characters: longer text wraps out of sight rather than push the table.
MAX_WIDTH = 60
#: Rows looked at to size a column: the width of a million rows is that of their first ones.
SIZING_ROWS = 500
#: Suffixes of interval bounds (forecast.csv): the bound is of the kind of its measure.
_BOUNDS = ("_lo80", "_hi80", "_lo95", "_hi95")
#: Columns that are shares (fractions shown as percentages), besides the name patterns below.
_SHARES = frozenset({"margin", "return_on_spend", "risk_cut_point", "p_alive",
                     "churn_probability", "stock_retention", "uplift", "reactivation"})


def column_kind(name: str, values: pd.Series, money: Collection[str]) -> str:
    """The kind of a column: ``"money"``, ``"share"``, ``"count"``, ``"decimal"``,
    ``"date"``, ``"bool"`` or ``"text"``.

    Parameters
    ----------
    name : str
        Column name; an interval bound (``_lo80``, ...) is of its measure's kind.
    values : pandas.Series
    money : collection of str
        Names of the money columns.
    """
    base = name
    for suffix in _BOUNDS:
        base = base.removesuffix(suffix)
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if not pd.api.types.is_numeric_dtype(values):
        return "text"
    if base in money:
        return "money"
    if (base in _SHARES or base.endswith(("_rate", "_share", "_probability"))
            or base.startswith("share")):
        return "share"
    if pd.api.types.is_integer_dtype(values):
        return "count"
    return "decimal"


@dataclass
class Formats:
    """The workbook's cell formats, made once per workbook (xlsxwriter's rule)."""

    by_kind: dict
    header: object
    title: object
    note: object

    @classmethod
    def of(cls, workbook) -> Formats:
        by_kind = {kind: workbook.add_format({"num_format": code})
                   for kind, code in FORMATS.items()}
        return cls(by_kind,
                   header=workbook.add_format({"bold": True, "bottom": 1, "text_wrap": True,
                                               "valign": "top", "bg_color": "#DDEBF7"}),
                   title=workbook.add_format({"bold": True, "font_size": 13}),
                   note=workbook.add_format({"italic": True, "font_color": "#555555"}))


def _shown(value: object, kind: str) -> str:
    """Roughly how a value reads in its format, to size its column."""
    if kind == "money" or kind == "decimal":
        return f"{value:,.2f}"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "date":
        return "2024-12-31"
    return str(value)


def _cells(values: pd.Series, kind: str) -> list:
    """A column as the Python values its cells get, None where the cell stays blank (a
    missing value, NaN, an infinity)."""
    if kind in ("money", "share", "count", "decimal"):
        array = values.to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isfinite(array), array, None).tolist()
    if kind == "date":
        stamps = pd.to_datetime(values)
        return [None if pd.isna(v) else v.to_pydatetime() for v in stamps]
    if kind == "bool":
        return [None if pd.isna(v) else bool(v) for v in values]
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
            for v in values.astype(object)]


def _width(cells: list, kind: str, name: str) -> float:
    """Characters a column needs: its header's or its first :data:`SIZING_ROWS` values'."""
    shown = [len(_shown(v, kind)) for v in cells[:SIZING_ROWS] if v is not None]
    return min(MAX_WIDTH, max([len(name) * 0.9, 6, *shown]) + 2)


def write_table(sheet, frame: pd.DataFrame, formats: Formats, *, title: str,
                notes: tuple[str, ...] = (), money: Collection[str] = (),
                kinds: dict[str, str] | None = None, freeze_columns: int = 0) -> int:
    """Write ``frame`` on ``sheet``: a title, notes, the header (frozen, with an autofilter)
    and the rows, each column in its kind's format and sized to its content.

    Parameters
    ----------
    sheet : xlsxwriter.worksheet.Worksheet
    frame : pandas.DataFrame
        Written as it is, its text neutralised against formulas; the index is dropped.
    formats : Formats
    title : str
        The sentence above the table (row 1).
    notes : tuple of str
        Lines under the title (what the table holds, where the rest is).
    money : collection of str
        Money columns (see :func:`column_kind`).
    kinds : dict of str to str, optional
        Kinds that override :func:`column_kind` for some columns.
    freeze_columns : int
        Columns frozen at the left besides the header row (an id stays in sight).

    Returns
    -------
    int
        The 0-based row of the header.
    """
    safe = neutralise_formulas(frame.reset_index(drop=True))
    sheet.write_string(0, 0, neutralise_text(title), formats.title)
    for i, note in enumerate(notes):
        sheet.write_string(1 + i, 0, neutralise_text(note), formats.note)
    header = 2 + len(notes)
    writers = {"money": sheet.write_number, "share": sheet.write_number,
               "count": sheet.write_number, "decimal": sheet.write_number,
               "date": sheet.write_datetime, "bool": sheet.write_boolean,
               "text": sheet.write_string}
    columns = []
    for col, name in enumerate(safe.columns):
        original = str(frame.columns[col])
        kind = (kinds or {}).get(original) or column_kind(original, safe.iloc[:, col], money)
        cells = _cells(safe.iloc[:, col], kind)
        sheet.set_column(col, col, _width(cells, kind, str(name)))
        sheet.write_string(header, col, str(name), formats.header)
        columns.append((col, writers[kind], cells, formats.by_kind[kind]))
    # row by row, top to bottom: what xlsxwriter's constant-memory mode needs, should a
    # longer list ever want it
    for i in range(len(safe)):
        row = header + 1 + i
        for col, write, cells, fmt in columns:
            if cells[i] is not None:
                write(row, col, cells[i], fmt)
    sheet.freeze_panes(header + 1, freeze_columns)
    if len(safe.columns):
        sheet.autofilter(header, 0, header + max(len(safe), 1), len(safe.columns) - 1)
    return header

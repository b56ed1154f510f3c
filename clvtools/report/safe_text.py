"""Text from the data made safe to open in a spreadsheet: formula injection neutralised.

A cell whose text begins with ``=``, ``+``, ``-`` or ``@`` is read as a formula by Excel,
LibreOffice and Google Sheets when the file is opened or a CSV imported (a customer id such as
``=HYPERLINK("http://...")`` becomes a live link, ``=cmd|...`` a DDE call); a leading tab or
carriage return hides such a prefix from a naive check. OWASP's rule for CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection) is to prefix such text with a single
quote, which every spreadsheet shows as text. Only text is touched: a negative number stays a
number, so that money columns keep adding up.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise_formulas", "neutralise_text"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_text(value: object) -> object:
    """``value`` with a single quote in front when it is text that begins like a formula;
    anything else (numbers, dates, missing values, ordinary text) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _is_text(column: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells that begin like a formula carry a leading quote.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table; its text columns (object, string or categorical) are checked cell by cell,
        its numeric, boolean and date columns are left as they are (a negative amount is a
        number, not text). Column names are neutralised too.

    Returns
    -------
    pandas.DataFrame
        Same shape, index and dtypes (a categorical column keeps its categories, renamed).
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not _is_text(values):
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            cats = values.cat.categories
            if cats.map(lambda v: neutralise_text(v) is not v).any():
                out[column] = values.cat.rename_categories(
                    [neutralise_text(v) for v in cats])
            continue
        text = values.astype(object)
        if pd.api.types.infer_dtype(text, skipna=True) in ("string", "empty"):
            risky = text.str.startswith(FORMULA_PREFIXES, na=False).astype(bool)
        else:   # text mixed with numbers: only the text cells
            is_str = text.map(lambda v: isinstance(v, str)).astype(bool)
            risky = is_str & text.where(is_str, "").astype(str).str.startswith(FORMULA_PREFIXES)
        if risky.any():
            text = text.copy()
            text[risky] = "'" + text[risky]
            out[column] = text.astype(values.dtype) if values.dtype != object else text
    out.columns = [neutralise_text(c) for c in out.columns]
    return out

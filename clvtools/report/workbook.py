"""forecast.xlsx: the workbook a finance team uses as it is.

Sheets: ``Read me`` (what each sheet holds), ``Forecast`` (the total by month with 80 % and
95 % intervals, and a chart), ``Forecast by cell``, ``Plan`` (the plan in one column),
``Push list`` and ``Pull list`` (the top of each, in priority order), ``KPIs``, ``Matrix`` and
``Settings``. The figures are those of the CSV files (the same tables, money to the cent).

The full contact lists stay in targets.csv: a worksheet holds at most 1,048,576 rows, and
writing a million rows cell by cell would cost the run tens of seconds, so each list sheet
holds its first :data:`MAX_LIST_ROWS` rows and says so.

The bytes are the same on every rerun: the workbook's creation date is the observation end
(not the clock), and xlsxwriter, in memory, dates every part of the zip 1980-01-01.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import pandas as pd
import xlsxwriter

from .._version import __version__
from ..config import Settings
from .pseudonymise import identifying_columns, pseudonym_key, pseudonymise_frame
from .safe_text import neutralise_text
from .xlsx_tables import Formats, column_kind, write_table

__all__ = ["MAX_LIST_ROWS", "WorkbookContent", "write_workbook"]

#: Rows of each contact list in the workbook (push, pull); the rest is in targets.csv.
MAX_LIST_ROWS = 10_000
#: Money columns of the forecast, KPI and plan tables (the decision tables' are given).
MONEY = frozenset({"expected_revenue", "revenue_if_retained", "expected_loss", "saved_by_plan",
                   "revenue", "revenue_lost_to_churn", "actual_revenue", "error",
                   "value_cut_point"})
#: Columns of forecast.csv that are the same on every row: said once, on the Read me sheet.
_CONSTANT_COLUMNS = ("scope", "seasonality")


@dataclass(frozen=True)
class WorkbookContent:
    """What forecast.xlsx shows: the run's tables as its CSV files hold them.

    Attributes
    ----------
    forecast : pandas.DataFrame or None
        forecast.csv's table (month, segment, measures with intervals).
    plan_summary : pandas.DataFrame
        plan_summary.csv's one row.
    targets : pandas.DataFrame or None
        targets.csv's table: push then pull customers in priority order.
    kpis, matrix : pandas.DataFrame
        kpis.csv's and matrix.csv's tables.
    settings : Settings
        The run's settings (``pseudonymise`` among them).
    observation_end : datetime.date
        The workbook's creation date, so that reruns write the same bytes.
    customers : pandas.DataFrame, optional
        customers.csv's table: which text values are rare enough to pseudonymise is judged
        on the whole base (see :func:`~clvtools.report.pseudonymise.identifying_columns`).
    money : collection of str
        Money columns of the decision tables (``clvtools.report.outputs.MONEY_COLUMNS``).
    list_sizes : mapping, optional
        Customers per action (``push``, ``pull``) in targets.csv, when ``targets`` holds only
        the first :data:`MAX_LIST_ROWS` of each (a chunked run's); default: counted in
        ``targets``.
    """

    forecast: pd.DataFrame | None
    plan_summary: pd.DataFrame
    targets: pd.DataFrame | None
    kpis: pd.DataFrame
    matrix: pd.DataFrame
    settings: Settings
    observation_end: dt.date
    customers: pd.DataFrame | None = field(default=None, repr=False)
    money: Collection[str] = frozenset()
    list_sizes: Mapping[str, int] | None = None


def _money(content: WorkbookContent) -> frozenset:
    return frozenset(content.money) | MONEY


def _forecast_sheets(book, formats: Formats, content: WorkbookContent) -> None:
    table = content.forecast.drop(columns=[c for c in _CONSTANT_COLUMNS
                                           if c in content.forecast.columns])
    total = table[table["segment"] == "total"].drop(columns="segment")
    sheet = book.add_worksheet("Forecast")
    header = write_table(
        sheet, total, formats, money=_money(content), freeze_columns=1,
        title="Revenue and churn forecast by calendar month, all customers",
        notes=("Money nominal (not discounted). _lo80/_hi80 and _lo95/_hi95: the 80 % and "
               "95 % intervals; the row 'all' is the whole horizon, its intervals computed "
               "for the total (not summed).",))
    months = total[total["month"] != "all"].reset_index(drop=True)
    # a month cut by the horizon (a day of it, at the start) would read as a collapse: the
    # chart draws the whole months, which follow one another, unless there are none
    whole = (~months["partial"].astype(bool)).to_numpy() if "partial" in months else None
    if whole is not None and whole.any():
        first, last = whole.argmax(), len(whole) - 1 - whole[::-1].argmax()
        months = months.iloc[first:last + 1]
    if len(months):
        _forecast_chart(book, sheet, months, header, total.columns,
                        below=header + len(total) + 3)
    cells = table[table["segment"] != "total"]
    write_table(book.add_worksheet("Forecast by cell"), cells, formats, money=_money(content),
                freeze_columns=2, title="Revenue and churn forecast by month and matrix cell",
                notes=("Filter the segment column for one cell; 'churned' are the customers "
                       "already declared churned.",))


def _forecast_chart(book, sheet, months: pd.DataFrame, header: int, columns, *,
                    below: int) -> None:
    """Expected revenue and revenue if no churn by month, with the 80 % band of expected
    revenue drawn as a shaded area (the low bound stacked under the band's width, unfilled).

    ``months`` are consecutive rows of the month table, indexed by their position in it; the
    chart goes on the row ``below``."""
    band = book.add_worksheet("chart data")
    band.hide()
    band.write_row(0, 0, ["month", "expected_revenue_lo80", "band_80"])
    for i, (_, row) in enumerate(months.iterrows()):
        low, high = row["expected_revenue_lo80"], row["expected_revenue_hi80"]
        band.write_string(i + 1, 0, str(row["month"]))
        # an interval a degenerate fit could not give (NaN) is a gap in the band, not an error
        for column, value in ((1, float(low)), (2, float(high - low))):
            if math.isfinite(value):
                band.write_number(i + 1, column, value)
    n = len(months)
    top = header + 1 + int(months.index[0])     # the months' first row on the Forecast sheet
    area = book.add_chart({"type": "area", "subtype": "stacked"})
    area.add_series({"name": "low 80 %", "categories": ["chart data", 1, 0, n, 0],
                     "values": ["chart data", 1, 1, n, 1], "fill": {"none": True},
                     "border": {"none": True}})
    area.add_series({"name": "80 % interval of expected revenue",
                     "categories": ["chart data", 1, 0, n, 0],
                     "values": ["chart data", 1, 2, n, 2],
                     "fill": {"color": "#9DC3E6", "transparency": 40}, "border": {"none": True}})
    line = book.add_chart({"type": "line"})
    col = list(columns).index
    for name, label, colour in (("expected_revenue", "expected revenue", "#1F4E79"),
                                ("revenue_if_retained", "revenue if no churn", "#C55A11")):
        c = col(name)
        line.add_series({"name": label, "categories": ["Forecast", top, 0, top + n - 1, 0],
                         "values": ["Forecast", top, c, top + n - 1, c],
                         "line": {"color": colour, "width": 2.25}})
    area.combine(line)
    area.set_title({"name": "Revenue by whole month: expected, and if no customer churned"})
    area.set_x_axis({"name": "month"})
    area.set_y_axis({"name": "revenue (nominal)", "num_format": "#,##0"})
    area.set_legend({"position": "bottom", "delete_series": [0]})
    area.set_size({"width": 860, "height": 420})
    sheet.insert_chart(below, 1, area)


def _plan_sheet(book, formats: Formats, content: WorkbookContent) -> None:
    """plan_summary.csv's row as a column: one measure a row, each in its own format."""
    summary = content.plan_summary.iloc[0]
    sheet = book.add_worksheet("Plan")
    sheet.write_string(0, 0, "The retention plan in one column", formats.title)
    sheet.write_string(1, 0, "Money discounted over the horizon, as in plan_summary.csv.",
                       formats.note)
    header = 3
    sheet.write_string(header, 0, "measure", formats.header)
    sheet.write_string(header, 1, "value", formats.header)
    money, capacity = _money(content), summary.get("constraint") == "push_capacity"
    for i, (name, value) in enumerate(summary.items()):
        row = header + 1 + i
        sheet.write_string(row, 0, neutralise_text(str(name)), formats.by_kind["text"])
        if value is None or (isinstance(value, float) and value != value):
            continue
        if isinstance(value, str):
            sheet.write_string(row, 1, neutralise_text(value), formats.by_kind["text"])
            continue
        kind = "count" if (name == "limit" and capacity) else column_kind(
            str(name), pd.Series([value]), money)
        sheet.write_number(row, 1, float(value), formats.by_kind[kind])
    sheet.set_column(0, 0, max(len(str(n)) for n in summary.index) + 2)
    sheet.set_column(1, 1, 18)
    sheet.freeze_panes(header + 1, 0)
    sheet.autofilter(header, 0, header + len(summary), 1)


def _list_sheets(book, formats: Formats, content: WorkbookContent) -> None:
    """The first :data:`MAX_LIST_ROWS` push and pull customers, pseudonymised when asked."""
    targets = content.targets
    key = pseudonym_key() if content.settings.pseudonymise else None
    columns = (identifying_columns(targets, population=content.customers)
               if key is not None else [])
    for action in ("push", "pull"):
        rows = targets[targets["action"] == action]
        shown = rows.head(MAX_LIST_ROWS)
        listed = len(rows) if content.list_sizes is None else content.list_sizes[action]
        if key is not None:     # only the rows shown: a million HMACs would cost seconds
            shown = pseudonymise_frame(shown, columns, key)
        more = (f"The first {len(shown):,} of {listed:,} {action} customers; the full list "
                "is in targets.csv." if listed > len(shown)
                else f"All {listed:,} {action} customers (targets.csv has them too).")
        # the sheet's name says the action: its column would repeat it on every row
        write_table(book.add_worksheet(f"{action.capitalize()} list"),
                    shown.drop(columns="action"), formats,
                    money=_money(content), freeze_columns=1,
                    title=f"{action.capitalize()} retention: whom to contact, in priority order",
                    notes=(more,))


def _settings_sheet(book, formats: Formats, settings: Settings) -> None:
    rows = []
    for key, value in settings.model_dump(mode="json").items():
        # as in config.toml: true/false, lists and tables as written, nothing when unset
        shown = value if isinstance(value, str) else json.dumps(value)
        rows.append({"setting": key, "value": "" if value is None else shown,
                     "meaning": Settings.model_fields[key].description})
    write_table(book.add_worksheet("Settings"), pd.DataFrame(rows), formats,
                title="The settings of this run (config.toml)")


def _read_me(sheet, formats: Formats, content: WorkbookContent, sheets: list[str]) -> None:
    s = content.settings
    lines = [
        f"Observation end {content.observation_end.isoformat()}; horizon {s.horizon:g} "
        f"{s.time_unit}s; clvtools {__version__}.",
        "Money has no currency symbol: it is in the currency of the transaction log.",
        "Forecast sheets: nominal money; Plan and Matrix: discounted over the horizon.",
        ("Customer ids and free-text attribute values are pseudonymised (keyed hashes: the same "
         "key gives the same pseudonym in every run); the CSV files hold the real ids."
         if s.pseudonymise else "Customer ids are the real ids (setting pseudonymise: off)."),
        "The sheets:",
    ]
    about = {
        "Forecast": "revenue and churn by calendar month, all customers, with intervals; chart",
        "Forecast by cell": "the same per matrix cell and for the customers already churned",
        "Plan": "push and pull counts, cost, expected saved revenue and net benefit, solver",
        "Push list": f"the push customers in priority order (at most {MAX_LIST_ROWS:,})",
        "Pull list": f"the pull customers in priority order (at most {MAX_LIST_ROWS:,})",
        "KPIs": "per period: active, new, churned, churn and retention rates, revenue",
        "Matrix": "per value-risk cell: customers, revenue if retained, revenue at risk",
        "Settings": "the settings of the run",
    }
    lines += [f"  {name}: {about[name]}" for name in sheets if name in about]
    sheet.write_string(0, 0, "clvtools: revenue forecast and retention plan", formats.title)
    for i, line in enumerate(lines):
        sheet.write_string(2 + i, 0, line)
    sheet.set_column(0, 0, 100)


def write_workbook(content: WorkbookContent, path: str | os.PathLike) -> None:
    """Write forecast.xlsx at ``path``.

    Raises
    ------
    ClvInputError
        When ``pseudonymise`` is on and no key is set
        (:func:`~clvtools.report.pseudonymise.pseudonym_key`).
    """
    # in memory: no temporary files, and every part of the zip dated 1980-01-01 whatever the
    # machine's time zone (xlsxwriter's constant-memory mode measured no faster here: the
    # lists are capped); text is never read as a formula, a URL or a number
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
               "strings_to_numbers": False}
    book = xlsxwriter.Workbook(str(path), options)
    try:
        end = content.observation_end
        book.set_properties({"title": "clvtools forecast", "creator": f"clvtools {__version__}",
                             "created": dt.datetime(end.year, end.month, end.day,
                                                    tzinfo=dt.timezone.utc)})
        formats = Formats.of(book)
        read_me = book.add_worksheet("Read me")   # the first tab, filled once the rest is known
        if content.forecast is not None and len(content.forecast):
            _forecast_sheets(book, formats, content)
        _plan_sheet(book, formats, content)
        if content.targets is not None:
            _list_sheets(book, formats, content)
        write_table(book.add_worksheet("KPIs"), content.kpis, formats, money=_money(content),
                    freeze_columns=2, title="Retention KPIs per period")
        write_table(book.add_worksheet("Matrix"), content.matrix, formats,
                    money=_money(content), freeze_columns=1,
                    title="The value-risk matrix: customers and revenue per cell",
                    notes=("Money discounted over the horizon.",))
        _settings_sheet(book, formats, content.settings)
        sheets = [ws.get_name() for ws in book.worksheets()]
        _read_me(read_me, formats, content, sheets)
    finally:
        book.close()

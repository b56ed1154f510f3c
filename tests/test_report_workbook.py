"""forecast.xlsx read back with openpyxl: its sheets, formats and figures, text from the data
written as text (never a formula), and the pseudonymised ids."""
import dataclasses
import hashlib
import hmac
import re
import zipfile

import openpyxl
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.report import workbook
from clvtools.report.outputs import write_outputs
from clvtools.report.pseudonymise import KEY_VARIABLE
from clvtools.report.xlsx_tables import FORMATS

SHEETS = ["Read me", "Forecast", "Forecast by cell", "Plan", "Push list", "Pull list", "KPIs",
          "Matrix", "Settings"]
KEY_1, KEY_2 = "a" * 40, "b" * 40


@pytest.fixture(scope="module")
def results():
    """1,500 customers whose ids begin with '@' and whose channel 'online' reads '=1+2':
    text that a spreadsheet would take for a formula."""
    base = generate_customer_base(1500, seed=5)
    tx = base.transactions.assign(customer_id="@" + base.transactions["customer_id"])
    customers = base.customers.drop(columns="acquisition_date").assign(
        customer_id="@" + base.customers["customer_id"],
        channel=base.customers["channel"].replace({"online": "=1+2"}))
    return analyze(tx, customers=customers, config=Settings(horizon=26))


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    return results.write(tmp_path_factory.mktemp("wb") / "out")


@pytest.fixture(scope="module")
def book(written):
    return openpyxl.load_workbook(written / "forecast.xlsx")


def _table(sheet) -> pd.DataFrame:
    """A sheet's table: the header is the row under the frozen panes' top."""
    header_row = sheet[sheet.freeze_panes].row - 1
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0])


def _column_cells(sheet, name):
    header_row = sheet[sheet.freeze_panes].row - 1
    col = next(c.column for c in sheet[header_row] if c.value == name)
    return [row[0] for row in sheet.iter_rows(min_row=header_row + 1, min_col=col, max_col=col)]


def test_the_workbook_has_every_sheet_with_frozen_headers_and_filters(book):
    assert [s for s in book.sheetnames if s in SHEETS] == SHEETS
    for name in SHEETS[1:]:
        sheet = book[name]
        assert sheet.freeze_panes is not None, name
        assert sheet.auto_filter.ref, name
    # the header row is frozen, and the id column of the lists with it
    assert book["Push list"].freeze_panes == "B5"


def test_money_and_shares_are_formatted(book):
    money = _column_cells(book["Forecast"], "expected_revenue")
    assert money[0].number_format == FORMATS["money"] and money[0].data_type == "n"
    churn = [c for c in _column_cells(book["KPIs"], "churn_rate") if c.value is not None]
    assert churn and all(c.number_format == FORMATS["share"] for c in churn)
    benefit = _column_cells(book["Pull list"], "expected_net_benefit")
    assert benefit and all(c.number_format == FORMATS["money"] for c in benefit)


def test_the_forecast_total_equals_forecast_csv_to_the_cent(book, written):
    csv = pd.read_csv(written / "forecast.csv")
    want = csv[(csv["month"] == "all") & (csv["segment"] == "total")].iloc[0]
    sheet = _table(book["Forecast"]).set_index("month")
    for measure in ("expected_revenue", "expected_revenue_lo80", "revenue_if_retained",
                    "expected_loss_hi95"):
        assert sheet.loc["all", measure] == pytest.approx(want[measure], abs=0.005), measure
    cells = _table(book["Forecast by cell"])
    assert set(cells["segment"]) == set(csv["segment"]) - {"total"}
    months = sheet.drop(index="all")
    assert list(months.index) == list(csv.loc[csv["segment"] == "total", "month"])[:-1]


def test_text_from_the_data_is_text_never_a_formula(book, written):
    assert not [c.coordinate for s in book.worksheets for row in s.iter_rows() for c in row
                if c.data_type == "f"]
    push = _table(book["Push list"])
    assert push["customer_id"].str.startswith("'@").all()
    targets = pd.read_csv(written / "targets.csv", dtype={"customer_id": str})
    assert "'=1+2" in set(_table(book["Pull list"])["channel"])
    assert "'=1+2" in set(targets["channel"])         # and so is the CSV's (safe_text.py)
    # a real negative number is a number, not neutralised text
    change = [c for c in _column_cells(book["KPIs"], "net_change") if c.value is not None]
    assert any(c.value < 0 for c in change) and all(c.data_type == "n" for c in change)


def test_the_chart_draws_the_whole_months_and_the_band(written, book):
    with zipfile.ZipFile(written / "forecast.xlsx") as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        xml = z.read(charts[0]).decode()
    assert len(charts) == 1 and "<c:areaChart>" in xml and "<c:lineChart>" in xml
    assert "expected revenue" in xml and "revenue if no churn" in xml
    # the lines read the Forecast sheet's whole months (a month cut by the horizon, such as
    # the observation end's own, left out), all of them
    first, last = map(int, re.search(r"Forecast!\$A\$(\d+):\$A\$(\d+)", xml).groups())
    sheet = book["Forecast"]
    table = _table(sheet)
    top = sheet[sheet.freeze_panes].row            # the sheet's row of the table's first row
    drawn = table.iloc[first - top:last - top + 1]
    assert len(drawn) >= 3 and not drawn["partial"].any()
    whole = table[(table["month"] != "all") & ~table["partial"].astype(bool)]
    assert list(drawn["month"]) == list(whole["month"])
    assert len(whole) < (table["month"] != "all").sum()       # there was a month to leave out


def test_long_lists_are_cut_and_say_where_the_rest_is(results, tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "MAX_LIST_ROWS", 5)
    out = results.write(tmp_path / "out")
    sheet = openpyxl.load_workbook(out / "forecast.xlsx")["Pull list"]
    pulls = (pd.read_csv(out / "targets.csv")["action"] == "pull").sum()
    assert pulls > 5 and len(_table(sheet)) == 5
    assert sheet["A2"].value == f"The first 5 of {pulls:,} pull customers; the full list is in " \
                                "targets.csv."


def test_rewriting_gives_the_same_bytes(results, written, tmp_path):
    again = results.write(tmp_path / "again")
    assert (again / "forecast.xlsx").read_bytes() == (written / "forecast.xlsx").read_bytes()


def _pseudonymised(results, folder):
    analysis = dataclasses.replace(results.analysis, settings=results.analysis.settings
                                   .model_copy(update={"pseudonymise": True}))
    return write_outputs(analysis, folder)


def _expected_pseudonym(customer_id: str, key: str) -> str:
    digest = hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    return "id-" + digest[:16]


def test_pseudonymised_ids_are_keyed_hashes_stable_under_one_key(results, written, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY_1)
    first = _pseudonymised(results, tmp_path / "one")
    again = _pseudonymised(results, tmp_path / "two")
    monkeypatch.setenv(KEY_VARIABLE, KEY_2)
    other = _pseudonymised(results, tmp_path / "three")
    lists = {name: _table(openpyxl.load_workbook(out / "forecast.xlsx")["Pull list"])
             for name, out in (("first", first), ("again", again), ("other", other))}
    targets = pd.read_csv(first / "targets.csv", dtype={"customer_id": str})
    quoted = targets.loc[targets["action"] == "pull", "customer_id"]
    assert quoted.str.startswith("'@").all()    # the CSV keeps the real ids, quoted
    real = quoted.str[1:]
    assert list(lists["first"]["customer_id"]) == [_expected_pseudonym(c, KEY_1) for c in real]
    assert list(lists["again"]["customer_id"]) == list(lists["first"]["customer_id"])
    assert not set(lists["other"]["customer_id"]) & set(lists["first"]["customer_id"])
    # segments held by many customers stay readable
    assert set(lists["first"]["channel"]) <= {"'=1+2", "store", "referral"}
    read_me = openpyxl.load_workbook(first / "forecast.xlsx")["Read me"]
    assert any("pseudonymised" in str(c.value) for c in read_me["A"])
    # report.html the same: no real id of the lists, their pseudonyms instead
    page = (first / "report.html").read_text(encoding="utf-8")
    plain = (written / "report.html").read_text(encoding="utf-8")
    shown = [c for c in targets["customer_id"].str[1:] if c in plain]   # the real ids
    assert shown, "the plain report shows ids of the contact list"
    assert not [c for c in shown if c in page]
    assert _expected_pseudonym(shown[0], KEY_1) in page


def test_pseudonymising_without_a_key_stops_before_the_work(monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    base = generate_customer_base(1000, seed=1)
    with pytest.raises(ClvInputError, match=KEY_VARIABLE):
        analyze(base.transactions, pseudonymise=True)
    monkeypatch.setenv(KEY_VARIABLE, "short")
    with pytest.raises(ClvInputError, match="at least 32"):
        analyze(base.transactions, pseudonymise=True)


def test_the_headline_figures_are_the_workbooks_totals(results, book):
    """The console's summary and the workbook agree: revenue at risk and its parts from the
    matrix's total row, the contacts and the net benefit from the plan."""
    figures = {f.label: f.value for f in results.headline()}
    matrix = _table(book["Matrix"]).set_index("cell").loc["total"]
    assert figures["Revenue at risk"] == (
        f"{matrix['revenue_at_risk']:,.0f}: {matrix['lapsed_revenue']:,.0f} lapsed + "
        f"{matrix['preventable_revenue']:,.0f} preventable")
    plan = _table(book["Plan"]).set_index("measure")["value"]
    assert figures["Contacts"].startswith(f"{plan['push']:,} push, {plan['pull']:,} pull")
    assert figures["Expected net benefit"].startswith(f"{plan['expected_net_benefit']:,.0f}")
    assert figures["Customers"].startswith(f"{int(matrix['customers']):,} (")

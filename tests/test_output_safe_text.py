"""Text from the data in a real run's outputs: formulas quoted in every CSV file and in the
workbook (numbers and phone numbers kept for the CRM), counted in data_quality.json; HTML
escaped in report.html."""
import csv
import json
import re

import openpyxl
import pytest

from clvtools.api import analyze
from clvtools.datasets import generate_customer_base
from clvtools.report.safe_text import FORMULA_PREFIXES, KEPT_AS_IS

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("output_safe_text")

SCRIPT_ID = "<script>alert('id')</script>"
SCRIPT_LEVEL = "<script>alert('level')</script>"
FORMULA_LEVEL = "@SUM(1+1)*cmd|' /C calc'!A0"


def _hostile_id(i: int, original) -> str:
    kind = i % 6
    return [f'=HYPERLINK("http://evil.example/{i}","x")', f"+cmd|' /C calc'!A{i}",
            f"+49151{i:08d}", f"-00{i:04d}", f"@SUM({i})", f"{SCRIPT_ID}{original}"][kind]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = generate_customer_base(800, seed=8)
    ids = {c: _hostile_id(i, c) for i, c in enumerate(base.customers["customer_id"])}
    tx = base.transactions.assign(customer_id=base.transactions["customer_id"].map(ids))
    customers = base.customers.drop(columns="acquisition_date").assign(
        customer_id=base.customers["customer_id"].map(ids))
    levels = sorted(customers["channel"].unique())
    customers["channel"] = customers["channel"].replace(
        {levels[0]: FORMULA_LEVEL, levels[1]: SCRIPT_LEVEL})
    results = analyze(tx, customers=customers, value_model="bgnbd", horizon=26)
    out = results.write(tmp_path_factory.mktemp("safe") / "out")
    return out, results, ids, customers


def _cells(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_no_csv_cell_begins_like_a_formula_unless_it_is_a_number(written):
    out, *_ = written
    kept = re.compile(KEPT_AS_IS)
    for path in sorted(out.rglob("*.csv")):
        header, rows = _cells(path)
        for cell in header + [c for row in rows for c in row]:
            assert not cell.startswith(FORMULA_PREFIXES) or kept.fullmatch(cell), (path, cell)


def test_ids_are_quoted_or_kept_and_the_count_adds_up(written):
    out, results, ids, customers = written
    header, rows = _cells(out / "customers.csv")
    written_ids = {row[header.index("customer_id")] for row in rows}
    for original in ids.values():
        risky = original.startswith(("=", "+cmd", "@"))
        assert (("'" + original) if risky else original) in written_ids, original
    quality = json.loads((out / "data_quality.json").read_text())["safe_text"]
    channel = [row[header.index("channel")] for row in rows]
    expected = (sum(i.startswith(("=", "+cmd", "@")) for i in ids.values())
                + channel.count("'" + FORMULA_LEVEL))
    assert channel.count("'" + FORMULA_LEVEL) > 0
    assert quality["by_file"]["customers.csv"] == expected
    assert quality["cells_quoted"] == sum(quality["by_file"].values())
    assert "remove that one quote" in quality["rule"]
    # the API's tables keep the data as it was
    assert set(results.customers["customer_id"]) == set(ids.values())


def test_the_workbook_holds_text_not_formulas(written):
    out, *_ = written
    book = openpyxl.load_workbook(out / "forecast.xlsx")
    seen = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and ("HYPERLINK" in value or "cmd|" in value):
                    seen += 1
                    assert cell.data_type == "s" and value.startswith("'"), value
    assert seen > 0


def test_html_from_the_data_is_escaped_in_the_report(written):
    out, *_ = written
    html = (out / "report.html").read_text(encoding="utf-8")
    assert SCRIPT_ID not in html and SCRIPT_LEVEL not in html
    assert "&lt;script&gt;alert(" in html

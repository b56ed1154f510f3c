"""The hostile-input suite: what a CRM export, a billing system or a spreadsheet can hand over.

Each case is one malformed (or merely unusual) input with its expected outcome:

- an **error** case exits 2 through the CLI (run in-process through ``cli.main``) with one
  message naming the file, the column where there is one, the real line of the first
  offending row where there is one, and what to do; the API raises the same
  :class:`ClvInputError`. Neither prints a traceback.
- a **policy** case is read by the step that both the CLI and the API run first
  (``read_inputs``): the input is accepted and what the policy changed or left out is
  counted in its ``quality()``, the inputs' part of data_quality.json.

One whole run (CLI, in-process) carries many policy cases in one hostile file and checks
data_quality.json, customers.csv and the value model file on disk; a few error cases run in a
subprocess, where the absence of a traceback on the real console is the point.
docs/robustness.rst counts the cases by kind (test_docs_count_the_cases keeps it honest).
"""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from clvtools import analyze
from clvtools.api import resolve_config
from clvtools.cli import main
from clvtools.errors import ClvInputError
from clvtools.pipeline.inputs import read_inputs

ROOT = Path(__file__).resolve().parents[1]
HEADER = "customer_id,date,amount\n"


def _base_rows(n_customers: int = 30) -> list[str]:
    """A valid log: ``n_customers`` customers, six purchases each in 2023 and 2024."""
    return [f"C{c:03d},{y}-{m:02d}-{1 + c % 27:02d},{10 + c + m}.50\n"
            for c in range(1, n_customers + 1) for y, months in ((2023, (1, 4, 7, 10)),
                                                                  (2024, (2, 6)))
            for m in months]


BASE = _base_rows()
#: Line of the first row appended to the base (the header is line 1).
NEXT_LINE = len(BASE) + 2
BASE_CUSTOMERS = "customer_id,channel\n" + "".join(f"C{c:03d},{'web' if c % 2 else 'store'}\n"
                                                     for c in range(1, 31))


def _tx(*extra: str, header: str = HEADER, rows=None) -> Callable[[Path], dict]:
    """Files: the base log (or ``rows``) with ``extra`` rows appended."""
    def make(tmp: Path) -> dict:
        path = tmp / "tx.csv"
        path.write_text(header + "".join(BASE if rows is None else rows) + "".join(extra))
        return {"transactions": path}
    return make


def _text(name: str, content: str | bytes, customers: str | None = None,
          contracts: str | None = None, config: str | bytes | None = None
          ) -> Callable[[Path], dict]:
    """Files: a transaction file of exactly ``content`` (and optional companions)."""
    def make(tmp: Path) -> dict:
        files = {"transactions": _write(tmp / name, content)}
        if customers is not None:
            files["customers"] = _write(tmp / "customers.csv", customers)
        if contracts is not None:
            files["contracts"] = _write(tmp / "contracts.csv", contracts)
        if config is not None:
            files["config"] = _write(tmp / "clvtools.toml", config)
        return files
    return make


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def _base_with(customers=None, contracts=None, config=None, extra: str = ""):
    return _text("tx.csv", HEADER + "".join(BASE) + extra, customers, contracts, config)


def _parquet(frame: pd.DataFrame, customers: str | None = None) -> Callable[[Path], dict]:
    def make(tmp: Path) -> dict:
        frame.to_parquet(tmp / "tx.parquet")
        files = {"transactions": tmp / "tx.parquet"}
        if customers is not None:
            files["customers"] = _write(tmp / "customers.csv", customers)
        return files
    return make


def _frame(ids, dates=None) -> pd.DataFrame:
    """A Parquet-ready log of the base's shape with the given ids (one per customer)."""
    rows = [r.strip().split(",") for r in BASE]
    ids = list(ids)
    by_customer = {f"C{c:03d}": ids[c - 1] for c in range(1, 31)}
    frame = pd.DataFrame({"customer_id": [by_customer[r[0]] for r in rows],
                          "date": pd.to_datetime([r[1] for r in rows]),
                          "amount": [float(r[2]) for r in rows]})
    if dates is not None:
        frame["date"] = dates(frame["date"])
    return frame


def _folder(tmp: Path) -> dict:
    (tmp / "folder.csv").mkdir()
    return {"transactions": tmp / "folder.csv"}


def _gzip(tmp: Path) -> dict:
    path = tmp / "tx.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(HEADER + "".join(BASE))
    return {"transactions": path}


@dataclass(frozen=True)
class Case:
    """One hostile input and its expected outcome.

    Attributes
    ----------
    id, kind : str
        The case's name and the kind of hostility (docs/robustness.rst counts by kind).
    files : callable
        ``tmp_path -> {"transactions": path, "customers": ..., "contracts": ..., "config": ...}``.
    settings : dict
        Settings given as flags (CLI) or keyword overrides (API).
    error : tuple of str
        For an error case, words the message must hold (case-insensitive); empty for a policy.
    names : str or None
        Which file the message names (a key of ``files``); None where no file is at fault.
    line : int or None
        The real line of the first offending row that the message must show.
    check : callable or None
        For a policy case: ``quality -> bool`` over ``Inputs.quality()``.
    """

    id: str
    kind: str
    files: Callable[[Path], dict]
    settings: dict = field(default_factory=dict)
    error: tuple[str, ...] = ()
    names: str | None = "transactions"
    line: int | None = None
    check: Callable[[dict], bool] | None = None


def tx(q: dict) -> dict:
    return q["transactions"]


def excluded(q: dict, reason: str) -> int:
    return tx(q)["excluded_by_reason"].get(reason, 0)


CASES = [
    # ---------------------------------------------------------------- columns and files
    Case("missing amount column", "columns", _tx(header="customer_id,date,value\n"),
         error=("Column 'amount' is missing", "'value'", "monetary-value-col")),
    Case("renamed id column", "columns", _tx(header="CustomerID,date,amount\n"),
         error=("Column 'customer_id' is missing", "'CustomerID'", "customer_id_col")),
    Case("renamed column given as a setting", "columns", _tx(header="CustomerID,date,amount\n"),
         settings={"customer_id_col": "CustomerID"},
         check=lambda q: tx(q)["customers"] == 30),
    Case("duplicated column names", "columns", _tx(header="customer_id,date,amount,amount\n",
                                                   rows=[r.strip() + ",1\n" for r in BASE]),
         error=("'amount' more than once", "Rename or remove")),
    Case("columns in another order, extra columns", "columns",
         _text("tx.csv", "note,amount,date,customer_id\n" + "".join(
             f"x,{r.split(',')[2].strip()},{r.split(',')[1]},{r.split(',')[0]}\n" for r in BASE)),
         check=lambda q: tx(q)["rows_used"] == len(BASE)),
    Case("header only", "columns", _tx(rows=[]), error=("no data rows",)),
    Case("empty file", "columns", _text("tx.csv", ""), error=("The file is empty",)),
    Case("a line with more fields than the header", "columns",
         _tx("C001,2024-07-01,3.5,extra,fields\n"),
         error=(f"Line {NEXT_LINE} has 5 fields where the header has 3",)),
    Case("file not found", "columns", lambda tmp: {"transactions": tmp / "nowhere.csv"},
         error=("File not found",)),
    Case("a folder for a file", "columns", _folder, error=("Expected a file, got a folder",)),
    Case("a spreadsheet, not a CSV", "columns", _text("tx.xlsx", b"PK\x03\x04 not a csv"),
         error=("Unknown file type", ".csv")),
    Case("binary garbage named .csv", "encoding", _text("tx.csv", bytes(range(256)) * 8),
         error=("not UTF-8",)),
    # ---------------------------------------------------------------- dates
    Case("all purchases on one day", "dates",
         _tx(rows=[f"C{c:03d},2024-03-01,{c}.0\n" for c in range(1, 31)]),
         error=("at least two different days", "longer transaction history"), names=None),
    Case("mixed date formats", "dates", _tx("C001,05/07/2024,3.5\n"),
         error=("Dates could not be parsed", "datetime_format"), line=NEXT_LINE),
    Case("day-first dates given a format", "dates",
         _tx(rows=[f"{r.split(',')[0]},{r.split(',')[1][8:10]}/{r.split(',')[1][5:7]}/"
                   f"{r.split(',')[1][:4]},{r.split(',')[2]}" for r in BASE]),
         settings={"datetime_format": "%d/%m/%Y"},
         check=lambda q: tx(q)["first_date"] == "2023-01-01"),
    Case("Excel serial dates", "dates", _tx("C001,45292,3.5\n"),
         error=("Dates could not be parsed",), line=NEXT_LINE),
    Case("a missing date", "dates", _tx("C001,,3.5\n"), error=("Dates are missing",),
         line=NEXT_LINE),
    Case("one row dated 9999-12-31", "dates", _tx("C001,9999-12-31,3.5\n"),
         check=lambda q: excluded(q, "implausible_dates") == 1
         and tx(q)["observation_end"] == "2024-06-27"),
    Case("one row dated 0001-01-01", "dates", _tx("C001,0001-01-01,3.5\n"),
         check=lambda q: excluded(q, "implausible_dates") == 1
         and tx(q)["first_date"] == "2023-01-01"),
    Case("one row dated 1900-01-01", "dates", _tx("C001,1900-01-01,3.5\n"),
         check=lambda q: excluded(q, "implausible_dates") == 1),
    Case("a far-future date refused when asked", "dates", _tx("C001,9999-12-31,3.5\n"),
         settings={"implausible_dates": "error"},
         error=("outside the plausible window", "date_window"), line=NEXT_LINE),
    Case("a date a year before the rest is plausible", "dates", _tx("C001,2022-01-15,3.5\n"),
         check=lambda q: excluded(q, "implausible_dates") == 0
         and tx(q)["first_date"] == "2022-01-15"),
    Case("the window is a setting", "dates", _tx("C001,2022-01-15,3.5\n"),
         settings={"date_window": "0.1"},
         check=lambda q: excluded(q, "implausible_dates") == 1
         and tx(q)["plausible"]["earliest_date"] > "2022-01-15"),
    Case("rows after a given observation end", "dates", _tx(),
         settings={"observation_end": "2024-03-01"},
         error=("after the observation end 2024-03-01", "after_observation_end"), line=7),
    Case("rows after the observation end dropped", "dates", _tx(),
         settings={"observation_end": "2024-03-01", "after_observation_end": "drop"},
         check=lambda q: excluded(q, "after_observation_end") == 30),
    Case("date and time", "dates", _tx("C001,2024-06-30 13:45:10,3.5\n"),
         check=lambda q: tx(q)["observation_end"] == "2024-06-30"),
    # ---------------------------------------------------------------- time zones
    Case("UTC offsets in CSV dates", "time zones",
         _tx("C001,2024-06-30T23:30:00-02:00,3.5\n", "C002,2024-06-30T00:30:00+02:00,3.5\n"),
         check=lambda q: tx(q)["timezone"]["rows_with_utc_offset"] == 2
         and tx(q)["observation_end"] == "2024-07-01"),
    Case("offsets seen from Tokyo", "time zones",
         _tx("C001,2024-06-30T20:30:00Z,3.5\n"), settings={"timezone": "Asia/Tokyo"},
         check=lambda q: tx(q)["observation_end"] == "2024-07-01"),
    Case("time-zone-aware Parquet", "time zones",
         _parquet(_frame([f"C{c:03d}" for c in range(1, 31)],
                         dates=lambda d: (d + pd.Timedelta(hours=23)).dt.tz_localize("Etc/GMT+2"))),
         # 23:00 at UTC-2 is 01:00 UTC the next day: the same instant policy as the CSV
         check=lambda q: tx(q)["first_date"] == "2023-01-02"),
    Case("an unknown time zone", "time zones", _tx(), settings={"timezone": "Mars/Olympus"},
         error=("'timezone' setting", "Europe/Berlin"), names=None),
    Case("offsets through a datetime_format with %z", "time zones",
         _tx(rows=[r.replace(",20", ",20", 1).replace(f",{r.split(',')[1]},",
                                                       f",{r.split(',')[1]} 23:00 -0300,")
                   for r in BASE]),
         settings={"datetime_format": "%Y-%m-%d %H:%M %z"},
         check=lambda q: tx(q)["first_date"] == "2023-01-02"),
    # ---------------------------------------------------------------- encodings and layouts
    Case("Latin-1 file", "encoding", _text("tx.csv", (HEADER + "".join(BASE) +
                                                      "José,2024-06-01,3.5\n").encode("latin-1")),
         error=("not UTF-8", f"Line {NEXT_LINE}", "0xE9", "iconv")),
    Case("UTF-8 byte-order mark", "encoding", _text("tx.csv", "\ufeff" + HEADER + "".join(BASE)),
         check=lambda q: tx(q)["customers"] == 30),
    Case("semicolons", "encoding", _text("tx.csv", (HEADER + "".join(BASE)).replace(",", ";")),
         check=lambda q: tx(q)["rows_used"] == len(BASE)),
    Case("tabs in a .tsv", "encoding", _text("tx.tsv", (HEADER + "".join(BASE)).replace(",", "\t")),
         check=lambda q: tx(q)["rows_used"] == len(BASE)),
    Case("Windows line ends", "encoding",
         _text("tx.csv", (HEADER + "".join(BASE)).replace("\n", "\r\n")),
         check=lambda q: tx(q)["rows_used"] == len(BASE)),
    Case("gzip-compressed CSV", "encoding", _gzip,
         check=lambda q: tx(q)["rows_used"] == len(BASE)),
    Case("decimal commas", "encoding",
         _text("tx.csv", (HEADER + "".join(BASE)).replace(",", ";").replace(".", ",")),
         error=("decimal commas", "12.50"), line=2),
    Case("thousands separators", "encoding", _tx('C001,2024-06-01,"1,250.00"\n'),
         error=("thousands separators",), line=NEXT_LINE),
    Case("currency symbols", "encoding", _tx("C001,2024-06-01,€12.50\n"),
         error=("currency signs",), line=NEXT_LINE),
    Case("a quoted newline before the bad row", "encoding",
         _tx('"C0\n01",2024-06-01,3.5\n', "C001,2024-06-02,abc\n"),
         error=("not numbers",), line=NEXT_LINE + 2),
    Case("blank lines before the bad row", "encoding", _tx("\n\n", "C001,2024-06-02,abc\n"),
         error=("not numbers",), line=NEXT_LINE + 2),
    Case("a 2 MB field", "encoding", _tx("C" + "9" * 2_100_000 + ",2024-06-01,3.5\n"),
         error=(f"Line {NEXT_LINE} is 2,100,0",)),
    # ---------------------------------------------------------------- amounts
    Case("NaN amount", "amounts", _tx("C001,2024-06-01,NaN\n"), error=("NaN",),
         line=NEXT_LINE),
    Case("infinite amount", "amounts", _tx("C001,2024-06-01,inf\n"), error=("infinite",),
         line=NEXT_LINE),
    Case("a missing amount", "amounts", _tx("C001,2024-06-01,\n"),
         error=("Amounts are missing",), line=NEXT_LINE),
    Case("a word for an amount", "amounts", _tx("C001,2024-06-01,twelve\n"),
         error=("not numbers", "monetary_value_col"), line=NEXT_LINE),
    Case("an amount of 1e200", "amounts", _tx("C001,2024-06-01,1e200\n"),
         check=lambda q: excluded(q, "amount_outliers") == 1),
    Case("an amount of 1e200 refused when asked", "amounts", _tx("C001,2024-06-01,1e200\n"),
         settings={"amount_outliers": "error"},
         error=("larger than", "amount_outlier_factor"), line=NEXT_LINE),
    Case("an amount of -1e200", "amounts", _tx("C001,2024-06-01,-1e200\n"),
         check=lambda q: excluded(q, "negative_amounts") == 1),
    Case("a big but plausible amount", "amounts", _tx("C001,2024-06-01,25000\n"),
         check=lambda q: excluded(q, "amount_outliers") == 0 and tx(q)["rows_used"] == 181),
    Case("returns", "amounts", _tx("C001,2024-06-01,-20\n", "C002,2024-06-01,-5\n"),
         check=lambda q: excluded(q, "negative_amounts") == 2),
    Case("returns refused when asked", "amounts", _tx("C001,2024-06-01,-20\n"),
         settings={"negative_amounts": "error"}, error=("negative",), line=NEXT_LINE),
    Case("zero amounts kept", "amounts", _tx("C001,2024-06-01,0\n"),
         check=lambda q: tx(q)["rows_used"] == 181),
    Case("zero amounts dropped", "amounts", _tx("C001,2024-06-01,0\n"),
         settings={"zero_amounts": "drop"}, check=lambda q: excluded(q, "zero_amounts") == 1),
    Case("a customer with refunds only", "amounts", _tx("R900,2024-06-01,-20\n"),
         check=lambda q: tx(q)["customers_excluded"] == 1 and tx(q)["customers_read"] == 31),
    # ---------------------------------------------------------------- rows
    Case("duplicated rows", "rows", _tx(BASE[0], BASE[1]),
         check=lambda q: tx(q)["duplicate_rows_found"] == 2 and tx(q)["rows_used"] == 182),
    Case("duplicated rows dropped", "rows", _tx(BASE[0]), settings={"duplicate_rows": "drop"},
         check=lambda q: excluded(q, "duplicate_rows") == 1),
    Case("duplicated rows refused when asked", "rows", _tx(BASE[0]),
         settings={"duplicate_rows": "error"}, error=("exact duplicates",), line=2),
    Case("several rows on one day", "rows", _tx("C001,2023-01-02,1\n"),
         check=lambda q: tx(q)["same_day_rows_combined"] == 1),
    # ---------------------------------------------------------------- ids
    Case("ids with spaces around them", "ids",
         _tx(" C001 ,2024-06-01,3.5\n", "\tC002,2024-06-01,3\n"),
         check=lambda q: tx(q)["customers"] == 30 and tx(q)["ids_stripped"] == 2),
    Case("a blank id", "ids", _tx("  ,2024-06-01,3.5\n"), error=("Customer ids are missing",),
         line=NEXT_LINE),
    Case("ids with leading zeros", "ids", _tx(rows=[r.replace("C0", "00", 1) for r in BASE]),
         check=lambda q: tx(q)["customers"] == 30 and tx(q)["first_date"] == "2023-01-01"),
    Case("float ids in Parquet", "ids", _parquet(_frame([float(c) for c in range(1, 31)]),
                                                  customers="customer_id,channel\n" + "".join(
                                                      f"{c},web\n" for c in range(1, 31))),
         check=lambda q: q["customers"]["matching"]["in_both"] == 30),
    Case("integer ids in Parquet, zero-padded in the customers file", "ids",
         _parquet(_frame(range(1, 31)), customers="customer_id,channel\n" + "".join(
             f"{c:03d},web\n" for c in range(1, 31))),
         error=("No customer id of the customers file appears", "'001'"), names="customers"),
    Case("no ids in common with the customers file", "ids",
         _base_with(customers="customer_id,channel\nX1,web\nX2,store\n"),
         error=("No customer id of the customers file appears",), names="customers"),
    Case("no ids in common with the contracts file", "ids",
         _base_with(contracts="customer_id,start,end,end_reason\nX1,2023-01-01,,\n"),
         error=("No customer id of the contracts file appears",), names="contracts"),
    Case("ids padded in the customers file only", "ids",
         _base_with(customers=BASE_CUSTOMERS.replace("C0", " C0")),
         check=lambda q: q["customers"]["matching"]["in_both"] == 30),
    Case("ids and levels with formulas and HTML", "ids",
         _base_with(customers=BASE_CUSTOMERS.replace(",web", ",=HYPERLINK(\"x\")"),
                    extra="=SUM(A1),2024-06-01,3.5\n<script>x</script>,2024-06-02,3\n"),
         check=lambda q: tx(q)["customers"] == 32
         and q["customers"]["matching"]["only_in_transactions"] == 2),
    Case("one customer", "too few customers", _tx(rows=[r for r in BASE if r.startswith("C001")]),
         error=("1 customer(s)", "at least 20"), names="transactions"),
    Case("nineteen customers", "too few customers", _tx(rows=_base_rows(19)),
         error=("at least 20",)),
    Case("customers left with refunds only", "too few customers",
         _tx(*[f"R{c},2024-06-01,-5\n" for c in range(3)], rows=_base_rows(19)),
         error=("3 more had only rows left out", "negative amounts")),
    # ---------------------------------------------------------------- companion files
    Case("customers file with a repeated id", "companion files",
         _base_with(customers=BASE_CUSTOMERS + "C001,store\n"),
         error=("more than once",), names="customers", line=2),
    Case("customers file without its id column", "companion files",
         _base_with(customers=BASE_CUSTOMERS.replace("customer_id", "id", 1)),
         error=("Column 'customer_id' is missing",), names="customers"),
    Case("customers file in Latin-1", "companion files",
         _base_with(customers=(BASE_CUSTOMERS + "C031,Café\n").encode("latin-1")),
         error=("not UTF-8", "Line 32"), names="customers"),
    Case("customers file with a header only", "companion files",
         _base_with(customers="customer_id,channel\n"), error=("no data rows",),
         names="customers"),
    Case("customers file with a missing level", "companion files",
         _base_with(customers=BASE_CUSTOMERS.replace("C002,store", "C002,")),
         error=("Attribute values are missing", "'channel'"), names="customers", line=3),
    Case("contracts that end before they start", "companion files",
         _base_with(contracts="customer_id,start,end,end_reason\nC001,2023-05-01,2023-01-01,x\n"),
         error=("end before they start",), names="contracts", line=2),
    Case("contracts with unparsable starts", "companion files",
         _base_with(contracts="customer_id,start,end,end_reason\nC001,soon,,\n"),
         error=("starts are missing or could not be parsed",), names="contracts", line=2),
    # ---------------------------------------------------------------- settings files
    Case("unknown key in the config", "settings", _base_with(config="churn_afterr = 3\n"),
         error=("Unknown setting 'churn_afterr'", "Did you mean 'churn_after'"), names="config"),
    Case("wrong type in the config", "settings", _base_with(config='horizon = "long"\n'),
         error=("'horizon' setting",), names="config"),
    Case("negative churn_after", "settings", _base_with(config="churn_after = -3\n"),
         error=("must be a positive number",), names="config"),
    Case("at_risk_after beyond churn_after", "settings",
         _base_with(config="churn_after = 10\nat_risk_after = 20\n"),
         error=("must be less than churn_after",), names="config"),
    Case("a discount rate of 150 %", "settings", _base_with(config="discount_rate = 1.5\n"),
         error=("[0, 1)",), names="config"),
    Case("a huge landmarks", "settings", _base_with(config="landmarks = 1000000000000\n"),
         error=("from 1 to 100",), names="config"),
    Case("a zero date_window", "settings", _base_with(config="date_window = 0\n"),
         error=("'date_window' setting must be a positive number",), names="config"),
    Case("config not UTF-8", "settings",
         _base_with(config='value_model = "caf\xe9"\n'.encode("latin-1")),
         error=("not UTF-8", "byte 19"), names="config"),
    Case("config not TOML", "settings", _base_with(config="horizon: 26\n"),
         error=("not valid TOML",), names="config"),
    Case("config path is a folder", "settings",
         lambda tmp: {**_base_with()(tmp), "config": tmp}, error=("is a folder",),
         names="config"),
    Case("config file missing", "settings",
         lambda tmp: {**_base_with()(tmp), "config": tmp / "missing.toml"},
         error=("Config file not found",), names="config"),
]

ERRORS = [c for c in CASES if c.error]
POLICIES = [c for c in CASES if not c.error]


def _cli_args(files: dict, settings: dict, out: Path) -> list[str]:
    args = ["analyze", str(files["transactions"]), "--out", str(out)]
    for key in ("customers", "contracts", "config"):
        if key in files:
            args += [f"--{key}", str(files[key])]
    for name, value in settings.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def _check_message(case: Case, message: str, files: dict) -> None:
    assert "Traceback" not in message
    for words in case.error:
        assert words.lower() in message.lower(), (words, message)
    if case.names is not None:
        assert str(files[case.names]) in message, message
    if case.line is not None:
        assert _first_line_shown(message) == case.line, message


def _first_line_shown(message: str) -> int | None:
    """The line of the first offending row in the table under 'First offending rows:'."""
    lines = message.splitlines()
    if "First offending rows:" not in lines:
        return None
    header = lines[lines.index("First offending rows:") + 1].split()
    first = lines[lines.index("First offending rows:") + 2].split()
    return int(first[header.index("line")])


def test_there_are_at_least_sixty_hostile_inputs_of_every_kind():
    kinds = Counter(c.kind for c in CASES)
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert set(kinds) >= {"columns", "dates", "time zones", "encoding", "amounts", "rows",
                          "ids", "settings"}


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_cli_exits_2_with_one_message(case, tmp_path, capsys):
    files = case.files(tmp_path)
    status = main(_cli_args(files, case.settings, tmp_path / "out"))
    captured = capsys.readouterr()
    assert status == 2, captured.err
    _check_message(case, captured.err + captured.out, files)
    assert not (tmp_path / "out").exists()


def _first_of_each_kind(cases: list[Case], n: int) -> list[Case]:
    seen: Counter = Counter()
    out = []
    for case in cases:
        seen[case.kind] += 1
        if seen[case.kind] <= n:
            out.append(case)
    return out


#: The API shares the CLI's reading code: two error cases of each kind show it raises the
#: same error (all of them would double the suite's time for nothing new).
API_ERRORS = _first_of_each_kind(ERRORS, 2)


@pytest.mark.parametrize("case", API_ERRORS, ids=[c.id for c in API_ERRORS])
def test_api_raises_the_same_error(case, tmp_path):
    files = case.files(tmp_path)
    with pytest.raises(ClvInputError) as caught:
        analyze(files["transactions"], customers=files.get("customers"),
                contracts=files.get("contracts"), config=files.get("config"), **case.settings)
    _check_message(case, str(caught.value), files)


@pytest.mark.parametrize("case", POLICIES, ids=[c.id for c in POLICIES])
def test_policy_is_applied_and_counted(case, tmp_path):
    files = case.files(tmp_path)
    inputs = read_inputs(files["transactions"], files.get("customers"), files.get("contracts"),
                         resolve_config(files.get("config"), **case.settings))
    quality = inputs.quality()
    q = quality["transactions"]
    # every row read is used or excluded under a named reason
    assert q["rows_read"] == q["rows_used"] + sum(q["excluded_by_reason"].values())
    assert case.check(quality), json.dumps(quality, default=str, indent=1)


def test_a_wrong_flag_type_is_a_usage_error_without_traceback(tmp_path, capsys):
    files = _tx()(tmp_path)
    status = main(["analyze", str(files["transactions"]), "--horizon", "long",
                   "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 2 and "Traceback" not in captured.err + captured.out
    assert "--horizon" in captured.err


SUBPROCESS = ["Latin-1 file"]  # a start of Python and clvtools costs seconds: one suffices


@pytest.mark.parametrize("name", SUBPROCESS)
def test_the_real_console_shows_no_traceback(name, tmp_path):
    case = next(c for c in CASES if c.id == name)
    files = case.files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "clvtools.cli",
                           *_cli_args(files, case.settings, tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    _check_message(case, done.stderr, files)


# ---------------------------------------------------------------- one whole hostile run
HOSTILE_IDS = ["=HYPERLINK(\"http://x\")", "<script>alert(1)</script>", "+4915112345678"]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A small generated base (300 customers) with hostile rows appended, analysed by the
    CLI: the rows a policy leaves out, ids padded with spaces, ids that look like formulas,
    HTML or phone numbers, a customer with refunds only, and a level holding a formula."""
    from clvtools.data.generator import generate_customer_base

    tmp = tmp_path_factory.mktemp("hostile")
    base = generate_customer_base(300, seed=1, start="2022-01-01", observation_end="2024-12-31")
    log = base.transactions.copy()
    log["date"] = pd.to_datetime(log["date"]).dt.strftime("%Y-%m-%d")
    first = log["customer_id"].iloc[0]
    extra = pd.DataFrame({
        "customer_id": [first, first, first, f"  {first} ", "REFUNDS", *HOSTILE_IDS,
                        *HOSTILE_IDS],
        "date": ["9999-12-31", "0001-01-01", "2023-05-05", "2023-06-06", "2023-07-07",
                 "2023-01-10", "2023-02-10", "2023-03-10", "2024-06-10", "2024-07-10",
                 "2024-08-10"],
        "amount": [10.0, 10.0, 1e200, 12.0, -30.0, 5.0, 6.0, 7.0, 5.0, 6.0, 7.0]})
    pd.concat([log, extra]).to_csv(tmp / "tx.csv", index=False)
    customers = base.customers.drop(columns="acquisition_date")
    customers.loc[customers.index[0], "channel"] = "=cmd|' /C calc'!A0"
    customers.to_csv(tmp / "customers.csv", index=False)
    out = tmp / "out"
    status = main(["analyze", str(tmp / "tx.csv"), "--customers", str(tmp / "customers.csv"),
                   "--out", str(out), "--no-value-covariates"])
    return status, out, first, base


def test_hostile_run_succeeds_and_counts_every_exclusion(hostile_run):
    status, out, _, base = hostile_run
    assert status == 0
    q = json.loads((out / "data_quality.json").read_text())["transactions"]
    assert q["excluded_by_reason"]["implausible_dates"] == 2
    assert q["excluded_by_reason"]["amount_outliers"] == 1
    assert q["excluded_by_reason"]["negative_amounts"] == 1
    assert q["ids_stripped"] == 1
    # the refund-only customer is counted, not lost; the rest are the base plus the three
    assert q["customers_excluded"] == 1
    assert q["customers"] == base.customers.shape[0] + len(HOSTILE_IDS)
    # the 9999 row does not move the observation end, nor the 0001 row the first date
    assert q["observation_end"] == q["last_date"] <= "2024-12-31"
    assert q["first_date"] >= "2022-01-01"


def test_hostile_run_keeps_the_ids_and_a_sane_spend_model(hostile_run):
    status, out, first, _ = hostile_run
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    ids = customers["customer_id"].tolist()
    assert first in ids and f"  {first} " not in ids and "REFUNDS" not in ids
    for hostile in HOSTILE_IDS:   # as written or neutralised for spreadsheets, never lost
        assert any(hostile.lstrip("=+") in i for i in ids), hostile
    spend = customers["expected_average_spend"]
    assert spend.notna().all() and spend.max() < 1e4
    for name in ("value", "spend"):   # a fit no absurd amount or date has bent
        model = json.loads((out / "models" / f"{name}.json").read_text())
        variances = [row[i] for i, row in enumerate(model["variance_matrix"])]
        assert all(p > 0 for p in model["params"]) and all(v >= 0 for v in variances), model


@pytest.fixture(scope="module")
def degenerate_run(tmp_path_factory):
    """29 customers who each bought three times, on the same days of January, March and June:
    every customer alike, a flat likelihood, a fit on the edge of the parameter space."""
    tmp = tmp_path_factory.mktemp("degenerate")
    path = _write(tmp / "tx.csv", HEADER + "".join(
        f"{c},2023-{m:02d}-0{1 + c % 7},{10 + c}\n" for c in range(1, 30) for m in (1, 3, 6)))
    return main(["analyze", str(path), "--out", str(tmp / "out")]), tmp / "out"


def test_a_degenerate_fit_says_so_and_writes_no_negative_variance(degenerate_run):
    status, out = degenerate_run
    assert status == 0
    assert (out / "models" / "value.json").exists()
    # spend.json is absent when Gamma-Gamma gave way to the observed mean spend
    for path in [out / "models" / f"{name}.json" for name in ("value", "spend")]:
        if not path.exists():
            continue
        model = json.loads(path.read_text())
        variances = [row[i] for i, row in enumerate(model["variance_matrix"])]
        assert all(v is None or v >= 0 for v in variances), (path.name, variances)
    assert "parameter variances are unknown" in (out / "run.log").read_text()


def test_docs_count_the_cases():
    """docs/robustness.rst's table: per kind, the inputs, the errors and the policies."""
    text = (ROOT / "docs" / "robustness.rst").read_text()
    for kind in dict.fromkeys(c.kind for c in CASES):
        of_kind = [c for c in CASES if c.kind == kind]
        errors = sum(1 for c in of_kind if c.error)
        row = rf"\* - {kind}\n\s+- {len(of_kind)}\n\s+- {errors}\n\s+- {len(of_kind) - errors}\n"
        assert re.search(row, text), (kind, len(of_kind), errors)
    assert f"{len(CASES)} hostile inputs" in text

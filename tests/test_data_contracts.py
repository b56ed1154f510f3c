"""Contracts: validation, and durations with competing end reasons (clvtools.data.contracts)."""
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import occasions_log, write_csv

from clvtools.data.contracts import Contracts, contract_table, read_contracts
from clvtools.data.transactions import read_transactions
from clvtools.errors import ClvInputError

D = dt.date
TX = "customer_id,date,amount\n001,2024-01-01,3\n002,2024-01-02,4\n"


@pytest.fixture
def log(tmp_path):
    return read_transactions(write_csv(tmp_path, TX))


def test_contracts_running_ended_and_unspecified_reasons(tmp_path, log):
    text = ("customer_id,start,end,end_reason\n001,2024-01-01,2024-03-01,voluntary\n"
            "002,2024-01-01,,\n003,2024-01-01,2024-02-01,\n")
    contracts = read_contracts(log, write_csv(tmp_path, text, "contracts.csv"))
    assert isinstance(contracts, Contracts) and contracts.table == "contracts"
    info = contracts.quality
    assert list(info) == ["source", "rows_read", "contracts", "ended", "reasons",
                          "unspecified_reasons", "matching"]
    assert info["ended"] == 2 and info["unspecified_reasons"] == 1
    assert info["reasons"] == {"unspecified": 1, "voluntary": 1}
    assert info["matching"] == {
        "in_both": 2, "only_in_transactions": 0, "only_in_contracts": 1,
        "examples_only_in_transactions": [], "examples_only_in_contracts": ["003"]}
    running = log.con.execute(
        "SELECT end_reason FROM contracts WHERE customer_id = '002'").fetchall()
    assert running == [(None,)]


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("customer_id,start,end,end_reason\n001,2024-01-01,2023-03-01,voluntary\n",
         "end before they start", "end"),
        ("customer_id,start,end,end_reason\n001,soon,2024-03-01,voluntary\n",
         "starts are missing or could not", "start"),
        ("customer_id,start,end,end_reason\n001,2024-01-01,later,voluntary\n",
         "ends could not be parsed", "end"),
    ],
)
def test_bad_contracts_are_clear_errors(tmp_path, log, text, message, column):
    with pytest.raises(ClvInputError, match=message) as info:
        read_contracts(log, write_csv(tmp_path, text, "contracts.csv"))
    assert info.value.column == column
    assert info.value.rows["line"].iloc[0] == 2


def contracts_on(rows, observation_end):
    """A log ending at ``observation_end`` and a table ``k`` of contracts on its connection."""
    log = occasions_log([("a", D(2024, 1, 1), 1.0)], observation_end, con=duckdb.connect())
    log.con.execute(
        'CREATE TABLE k (customer_id VARCHAR, start DATE, "end" DATE, end_reason VARCHAR)')
    log.con.executemany("INSERT INTO k VALUES (?, ?, ?, ?)", rows)
    return log, Contracts("k", {})


#: Five contracts with two reasons, one unspecified, one running, one ending after the end.
COMPETING = ([
    ("a", D(2024, 1, 1), D(2024, 1, 29), "voluntary"),
    ("b", D(2024, 1, 1), D(2024, 2, 12), "non-payment"),
    ("c", D(2024, 1, 1), None, None),
    ("d", D(2024, 1, 1), D(2024, 9, 1), "voluntary"),  # ends after the observation end
    ("e", D(2024, 2, 1), D(2024, 2, 8), None),
], D(2024, 3, 4))


def test_contract_table_with_competing_reasons():
    log, contracts = contracts_on(*COMPETING)
    t = contract_table(log, contracts, time_unit="week")
    assert list(t.columns) == ["customer_id", "start", "end", "duration", "event", "event_type",
                               "end_reason"]
    np.testing.assert_allclose(t["duration"], [4, 6, 9, 9, 1])
    assert t["event"].tolist() == [1, 1, 0, 0, 1]
    # codes in alphabetical order of reasons: non-payment 1, unspecified 2, voluntary 3
    assert t["event_type"].tolist() == [3, 1, 0, 0, 2]
    assert t["end_reason"].tolist()[:2] == ["voluntary", "non-payment"]
    assert t["end_reason"].isna().tolist() == [False, False, True, True, False]
    assert t.attrs["reason_codes"] == {1: "non-payment", 2: "unspecified", 3: "voluntary"}


def test_contract_ending_before_it_starts_is_named():
    log, contracts = contracts_on([("ok", D(2024, 1, 1), None, None),
                                   ("bad", D(2024, 3, 1), D(2024, 2, 1), "voluntary")],
                                  D(2024, 4, 1))
    with pytest.raises(ClvInputError, match="end before they start") as err:
        contract_table(log, contracts)
    assert err.value.n_rows == 1 and err.value.rows["customer_id"].tolist() == ["bad"]


def test_read_then_durations_censored_at_the_log_end(tmp_path, log):
    text = "customer_id,start,end,end_reason\n001,2023-12-01,2024-03-01,voluntary\n"
    t = contract_table(log, read_contracts(log, write_csv(tmp_path, text, "contracts.csv")),
                       time_unit="day")
    # the log ends on 2024-01-02: the contract is still running then
    assert t["event"].tolist() == [0] and t["duration"].tolist() == [32.0]


def test_contracts_all_running_and_starts_after_the_end(tmp_path):
    """A DataFrame whose ends are all empty (every contract running) is read; a contract
    starting after the observation end is refused when it is read, naming the file."""
    log = read_transactions(pd.DataFrame({"customer_id": ["a", "a", "b"],
                                          "date": ["2024-01-01", "2024-03-01", "2024-02-01"],
                                          "amount": [1.0, 2.0, 3.0]}))
    running = pd.DataFrame({"customer_id": ["a", "b"], "start": ["2024-01-01", "2024-02-01"],
                            "end": [None, None], "end_reason": [None, None]})
    table = contract_table(log, read_contracts(log, running))
    assert table["event"].tolist() == [0, 0]
    late = tmp_path / "contracts.csv"
    late.write_text("customer_id,start,end,end_reason\na,2024-01-01,,\nb,2024-06-01,,\n")
    with pytest.raises(ClvInputError, match="start after the observation end") as info:
        read_contracts(log, late)
    assert "contracts.csv" in str(info.value)


def test_contract_ends_by_reason_per_month():
    from clvtools.data.kpi_segments import contract_ends_by_reason

    log, contracts = contracts_on(*COMPETING)
    out = contract_ends_by_reason(log, contracts, period="month")
    table = out.set_index(["label", "segment"])
    assert set(out["by"]) == {"end_reason"}
    assert set(out["segment"]) == {"(unspecified)", "non-payment", "voluntary"}
    # running at Feb 1: b, c, d (a ended Jan 29; e starts Feb 1, not before it)
    assert table.loc[("2024-02", "non-payment"), "active_start"] == 3
    assert table.loc[("2024-02", "non-payment"), "churned"] == 1
    assert table.loc[("2024-02", "(unspecified)"), "churned"] == 1
    assert table.loc[("2024-01", "voluntary"), "churned"] == 1
    # d's end is after the observation end: not counted in March
    assert table.loc[("2024-03", "voluntary"), "churned"] == 0
    assert table.loc[("2024-02", "non-payment"), "churn_rate"] == pytest.approx(1 / 3)

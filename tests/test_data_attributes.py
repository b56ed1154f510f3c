"""Customer attributes and contracts: validation, types, and customers matched across tables."""
import pytest
from conftest import write_csv

from clvtools.data.attributes import match_customers, read_contracts, read_customers
from clvtools.data.transactions import read_transactions
from clvtools.errors import ClvInputError

TX = "customer_id,date,amount\n001,2024-01-01,3\n002,2024-01-02,4\n"


@pytest.fixture
def log(tmp_path):
    return read_transactions(write_csv(tmp_path, TX))


def test_attributes_are_typed_and_unmatched_customers_counted(tmp_path, log):
    path = write_csv(tmp_path, "customer_id,channel,age\n001,web,30\n003,store,41\n",
                     "customers.csv")
    info = read_customers(log.con, path)
    assert info["attributes"] == {"channel": "categorical", "age": "numeric"}
    frame = log.con.execute("SELECT * FROM customers ORDER BY customer_id").df()
    assert frame["customer_id"].tolist() == ["001", "003"]
    assert frame["age"].dtype.kind == "f"
    matched = match_customers(log.con, "occasions", "customers")
    assert matched["in_both"] == 1
    assert (matched["only_in_transactions"] == 1
            and matched["examples_only_in_transactions"] == ["002"])
    assert matched["only_in_customers"] == 1 and matched["examples_only_in_customers"] == ["003"]


@pytest.mark.parametrize(
    "text, message, column, line",
    [
        ("customer_id,channel\n001,web\n001,store\n", "more than once", "customer_id", 2),
        ("customer_id,channel\n001,web\n002,\n", "Attribute values are missing", "channel", 3),
        ("customer_id,score\n001,1.5\n002,NaN\n", "Attribute values are missing", "score", 3),
        ("id,channel\n001,web\n", "Column 'customer_id' is missing", "customer_id", None),
        ("customer_id,channel\n", "no data rows", None, None),
    ],
)
def test_bad_attributes_are_clear_errors(tmp_path, log, text, message, column, line):
    path = write_csv(tmp_path, text, "customers.csv")
    with pytest.raises(ClvInputError, match=message) as info:
        read_customers(log.con, path)
    assert info.value.column == column and info.value.source == str(path)
    if line:
        assert info.value.rows["line"].iloc[0] == line


def test_contracts_running_ended_and_unspecified_reasons(tmp_path, log):
    text = ("customer_id,start,end,end_reason\n001,2024-01-01,2024-03-01,voluntary\n"
            "002,2024-01-01,,\n003,2024-01-01,2024-02-01,\n")
    info = read_contracts(log.con, write_csv(tmp_path, text, "contracts.csv"))
    assert info["ended"] == 2 and info["unspecified_reasons"] == 1
    assert info["reasons"] == {"unspecified": 1, "voluntary": 1}
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
        read_contracts(log.con, write_csv(tmp_path, text, "contracts.csv"))
    assert info.value.column == column
    assert info.value.rows["line"].iloc[0] == 2

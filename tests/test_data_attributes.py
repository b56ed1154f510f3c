"""Customer attributes: validation, types, customers matched and completed for the models."""
import json

import pytest
from conftest import write_csv

from clvtools.data.attributes import CustomerAttributes, read_customers
from clvtools.data.transactions import read_transactions
from clvtools.errors import ClvInputError

TX = "customer_id,date,amount\n001,2024-01-01,3\n002,2024-01-02,4\n"


@pytest.fixture
def log(tmp_path):
    return read_transactions(write_csv(tmp_path, TX))


def test_attributes_are_typed_matched_and_completed(tmp_path, log):
    # 60 customers, so that neither level of channel is rare (30 customers each)
    others = "".join(f"c{i:03d},{'web' if i % 2 else 'store'},{20 + i}\n" for i in range(58))
    path = write_csv(tmp_path, "customer_id,channel,age\n001,web,30\n003,store,41\n" + others,
                     "customers.csv")
    attributes = read_customers(log, path)
    assert isinstance(attributes, CustomerAttributes)
    assert attributes.kinds == {"channel": "categorical", "age": "numeric"}
    assert attributes.notes == ()
    # the validated table keeps every customer of the file, typed
    read = log.con.execute("SELECT * FROM customers ORDER BY customer_id").df()
    assert read["customer_id"].tolist()[:2] == ["001", "003"] and read["age"].dtype.kind == "f"
    # the quality summary: what read_customers, match_customers and complete_attributes
    # returned before they became one call, with the same keys in the same order; "typed" last
    expected = {
        "source": str(path), "rows_read": 60, "customers": 60,
        "attributes": {"channel": "categorical", "age": "numeric"},
        "matching": {"in_both": 1, "only_in_transactions": 1, "only_in_customers": 59,
                     "examples_only_in_transactions": ["002"],
                     "examples_only_in_customers": ["003", "c000", "c001", "c002", "c003"]},
        "filled_for_models": {
            "filled_customers": 1,
            "rule": "categorical attributes -> '(missing)', numeric attributes -> median"},
        "typed": {
            "channel": {"kind": "categorical", "action": "used", "levels": 2,
                        "pooled_levels": 0, "pooled_customers": 0},
            "age": {"kind": "numeric", "action": "used", "levels": 58,
                    "pooled_levels": 0, "pooled_customers": 0}},
    }
    assert json.dumps(attributes.quality) == json.dumps(expected)
    # completed for every customer with purchases: 002 gets the missing level and the median
    assert attributes.table == "customers_complete"
    frame = attributes.frame().sort_index()
    assert frame.index.name == "customer_id" and frame.index.tolist() == ["001", "002"]
    assert frame["channel"].tolist() == ["web", "(missing)"]
    assert frame["age"].tolist() == [30.0, read["age"].median()]


def test_columns_selects_attributes(tmp_path, log):
    path = write_csv(tmp_path, "customer_id,channel,age\n001,web,30\n002,store,41\n",
                     "customers.csv")
    attributes = read_customers(log, path, columns=["age"])
    assert set(attributes.quality["typed"]) == {"age"}
    assert attributes.kinds == {"age": "numeric"}
    assert list(attributes.frame().columns) == ["age"]
    assert attributes.quality["filled_for_models"]["filled_customers"] == 0


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
        read_customers(log, path)
    assert info.value.column == column and info.value.source == str(path)
    if line:
        assert info.value.rows["line"].iloc[0] == line

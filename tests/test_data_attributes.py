"""Customer attributes: validation, types, customers matched and completed for the models."""
import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pytest
from conftest import occasions_log, write_csv

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.data.attributes import (
    MISSING_LEVEL,
    CustomerAttributes,
    decoded_text,
    read_customers,
)
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
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


def test_frame_is_in_the_rfm_summary_order_of_text_ids(tmp_path):
    """``frame()``: each customer's row, in the order of the RFM summary's index (what the
    value step aligns them with by a comparison of indexes), text ids included."""
    from clvtools.data.rfm import rfm_summary

    ids = [f"{i}" for i in (12, 3, 101, 7, 20, 1)]  # text ids, whose order is not numeric
    tx = "customer_id,date,amount\n" + "".join(
        f"{c},2024-01-0{1 + k % 5},{k + 1}\n" for k, c in enumerate(ids))
    log = read_transactions(write_csv(tmp_path, tx))
    path = write_csv(tmp_path, "customer_id,age\n" + "".join(
        f"{c},{20 + k}\n" for k, c in enumerate(reversed(ids))), "customers.csv")
    attributes = read_customers(log, path)
    ordered = attributes.frame()
    rfm_index = rfm_summary(log).index
    assert ordered.index.equals(rfm_index)
    ages = {c: 20.0 + k for k, c in enumerate(reversed(ids))}
    assert ordered["age"].tolist() == [ages[c] for c in ordered.index]
    # given the RFM's labels, the frame takes them (its ids' text is not held twice); labels
    # that differ are not taken
    labelled = attributes.frame(rfm_index)
    assert labelled.index is rfm_index and labelled.equals(ordered)
    other = attributes.frame(rfm_index[::-1])
    assert other.index is not rfm_index and other.index.equals(rfm_index)


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


# ------------------------------------------------------------------ typing rules
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_date_column_becomes_days_since_the_date(tmp_path, log, fmt):
    # the log's observation end is 2024-01-02
    customers = pd.DataFrame({"customer_id": ["001", "002"],
                              "signup": [dt.date(2023, 12, 1), dt.date(2023, 1, 2)]})
    if fmt == "parquet":  # a DATE column
        path = tmp_path / "customers.parquet"
        customers.to_parquet(path)
    else:  # ISO text
        path = write_csv(tmp_path, "customer_id,signup\n001,2023-12-01\n002,2023-01-02\n",
                         "customers.csv")
    attributes = read_customers(log, path)
    source_type = dict(log.con.execute("DESCRIBE customers_source").fetchall()[i][:2]
                       for i in range(2))["signup"]
    assert source_type == ("DATE" if fmt == "parquet" else "VARCHAR")
    assert attributes.kinds == {"signup": "duration"}
    assert attributes.quality["attributes"] == {"signup": "date"}
    assert attributes.quality["typed"]["signup"] == {
        "kind": "date", "action": "duration_days", "levels": 2, "pooled_levels": 0,
        "pooled_customers": 0}
    assert attributes.frame().sort_index()["signup"].tolist() == [32.0, 365.0]
    assert "'signup': dates, used as days since the date" in attributes.notes[0]


def test_durations_are_taken_at_each_landmark_and_rows_not_yet_valid_are_filled(tmp_path):
    rows = [("a", dt.date(2024, 1, 1), 10.0), ("a", dt.date(2024, 3, 1), 5.0),
            ("b", dt.date(2024, 1, 2), 1.0), ("c", dt.date(2024, 2, 1), 3.0)]
    log = occasions_log(rows, dt.date(2024, 4, 1))
    path = write_csv(tmp_path, "customer_id,signup,score,valid\n"
                     "a,2023-12-01,1,2024-01-01\nb,2023-11-01,5,2024-02-01\n"
                     "c,2023-10-01,3,2024-01-01\n", "customers.csv")
    attributes = read_customers(log, path, valid_from_col="valid")
    assert attributes.kinds == {"signup": "duration", "score": "numeric"}
    assert attributes.quality["valid_from"]["column"] == "valid"
    table = landmark_table(log, landmarks=[dt.date(2024, 1, 10)], churn_after=9,
                           attributes=attributes).set_index("customer_id")
    # a: its own row (valid since Jan 1), 40 days from Dec 1 to the landmark Jan 10;
    # b: its row holds from Feb 1 only, so the fills: median score 3, median date Nov 1
    assert table.loc["a", ["signup", "score"]].tolist() == [40.0, 1.0]
    assert table.loc["b", ["signup", "score"]].tolist() == [70.0, 3.0]
    # scoring and the static covariates take the file as it stands, at the observation end
    scoring = scoring_table(log, churn_after=9, attributes=attributes).set_index("customer_id")
    assert scoring.loc["a", "signup"] == 122.0 and scoring.loc["c", "score"] == 3.0
    assert attributes.frame().loc["b", ["signup", "score"]].tolist() == [152.0, 5.0]


def test_text_attributes_hold_one_string_per_distinct_value(tmp_path):
    """DuckDB makes a Python string for every row of a text column; the attribute frame and
    the landmark and scoring tables fetch text attributes as ENUMs and hold one string per
    distinct value (memory: about 0.17 GB a table at a million customers with three
    attributes), with the same values, a missing value None as DuckDB gives text."""
    values = np.array(["web", None, "store", "web", None], dtype=object)
    for column in (pd.Series(values), pd.Series(values, dtype="category")):
        shared = decoded_text(column)
        assert shared.dtype == object and shared.tolist() == values.tolist()
        assert shared[0] is shared[3]
    ids = [f"c{i:02d}" for i in range(60)]
    rows = [(c, dt.date(2024, 1, 1 + i % 20), 2.0) for i, c in enumerate(ids)]
    log = occasions_log(rows, dt.date(2024, 4, 1))
    path = write_csv(tmp_path, "customer_id,channel\n" + "".join(
        f"{c},{'web' if i % 2 else 'store'}\n" for i, c in enumerate(ids)), "customers.csv")
    attributes = read_customers(log, path)
    tables = {"frame": attributes.frame(),
              "landmark": landmark_table(log, landmarks=[dt.date(2024, 2, 1)], churn_after=90,
                                         attributes=attributes),
              "scoring": scoring_table(log, churn_after=90, attributes=attributes)}
    for name, table in tables.items():
        column = table["channel"]
        assert column.dtype == object and set(column) == {"web", "store"}, name
        assert len({id(v) for v in column}) == 2, name
    frame = tables["frame"]
    assert (frame["channel"] == ["store" if int(c[1:]) % 2 == 0 else "web"
                                 for c in frame.index]).all()
    assert attributes.text_levels == {"channel": (MISSING_LEVEL, "store", "web")}
    assert "ENUM" in attributes.column_sql("channel", "a", "c.landmark", coded=True)


def test_coded_text_attributes_keep_quotes_and_fills(tmp_path):
    """A level with a quote, and rows not yet valid at a landmark (the fill, which the
    file's values do not hold), read through the ENUM form as text."""
    ids = [f"c{i:02d}" for i in range(60)]
    rows = [(c, dt.date(2024, 1, 1 + i % 20), 2.0) for i, c in enumerate(ids)]
    log = occasions_log(rows, dt.date(2024, 4, 1))
    quoted = "O'Brien"
    path = write_csv(tmp_path, "customer_id,channel,valid\n" + "".join(
        f"{c},{'web' if i % 2 else quoted},{'2024-03-01' if i < 10 else '2023-01-01'}\n"
        for i, c in enumerate(ids)), "customers.csv")
    attributes = read_customers(log, path, valid_from_col="valid")
    assert attributes.text_levels["channel"] == (MISSING_LEVEL, "O'Brien", "web")
    table = landmark_table(log, landmarks=[dt.date(2024, 2, 1)], churn_after=90,
                           attributes=attributes).set_index("customer_id")
    expected = [MISSING_LEVEL if int(c[1:]) < 10 else "web" if int(c[1:]) % 2 else "O'Brien"
                for c in table.index]
    assert table["channel"].dtype == object and table["channel"].tolist() == expected


def test_bad_validity_dates_are_a_clear_error(tmp_path, log):
    path = write_csv(tmp_path, "customer_id,age,valid\n001,30,2024-01-01\n002,31,soon\n",
                     "customers.csv")
    with pytest.raises(ClvInputError, match="Validity dates") as info:
        read_customers(log, path, valid_from_col="valid")
    assert info.value.column == "valid" and info.value.rows["line"].iloc[0] == 3
    with pytest.raises(ClvInputError, match="attributes_valid_from_col"):
        read_customers(log, path, valid_from_col="as_of")


def test_ids_free_text_and_constants_are_left_out_and_rare_levels_pooled(log):
    n = 200
    ids = [f"{i:03d}" for i in range(1, n + 1)]
    customers = pd.DataFrame({
        "customer_id": ids,
        "email": [f"{i}@example.com" for i in ids],                  # one level per customer
        "comment": [f"note {i // 2}" for i in range(n)],              # 100 levels of 2
        "country": "FR",                                              # constant text
        "flag": 1.0,                                                  # constant number
        "plan": ["gold"] * 5 + ["basic"] * 120 + ["premium"] * 75,    # gold: 5 < 30 customers
        "vip": [i % 2 == 0 for i in range(n)],                        # a boolean: categorical
        "age": [20 + i % 60 for i in range(n)],
        "account_no": [str(500_000 + 7 * i) for i in range(n)],       # whole numbers, one each
        "zip": [f"0{i % 3}100" for i in range(n)],                    # codes with a leading 0
    })
    attributes = read_customers(log, customers)
    assert attributes.kinds == {"plan": "categorical", "vip": "categorical", "age": "numeric",
                                "zip": "categorical"}
    typed = attributes.quality["typed"]
    assert {c: t["action"] for c, t in typed.items()} == {
        "email": "dropped_id_like", "comment": "dropped_free_text",
        "country": "dropped_constant", "flag": "dropped_constant", "plan": "used",
        "vip": "used", "age": "used", "account_no": "dropped_id_like", "zip": "used"}
    assert typed["email"]["levels"] == 200 and typed["comment"]["levels"] == 100
    assert typed["plan"] == {"kind": "categorical", "action": "used", "levels": 3,
                             "pooled_levels": 1, "pooled_customers": 5}
    assert typed["vip"]["kind"] == "categorical" and typed["flag"]["kind"] == "numeric"
    # left out of the table every model reads, not only of the notes
    frame = attributes.frame().sort_index()
    assert list(frame.columns) == ["plan", "vip", "age", "zip"]
    assert frame["zip"].str.startswith("0").all()  # codes keep their leading zero
    assert frame["plan"].tolist() == ["(other)", "(other)"] and frame["vip"].tolist() == [
        "true", "false"]
    notes = "\n".join(attributes.notes)
    assert len(attributes.notes) == 6
    for text in ("'email' left out of the models: one level per customer",
                 "'comment' left out of the models: 100 levels",
                 "'country' left out of the models: a single value",
                 "'flag' left out of the models: a single value",
                 "'plan': 3 levels; 1 rare levels (5 customers) pooled into '(other)'"):
        assert text in notes


def test_a_column_of_500_levels_costs_the_run_nothing(record_property):
    base = generate_customer_base(5000, seed=4, start="2022-01-01",
                                  observation_end="2024-06-30")
    plain = base.customers.drop(columns="acquisition_date")
    wide = plain.assign(store=[f"store {i % 500}" for i in range(len(plain))])  # 10 each
    seconds, runs = {}, {}
    for name, customers in (("plain", plain), ("500_levels", wide)):
        started = time.perf_counter()
        runs[name] = analyze(base.transactions, customers=customers,
                             config=Settings(horizon=26, churn_after=20)).analysis
        seconds[name] = time.perf_counter() - started
    # information only (timings are not asserted): the column is read, typed and left out
    record_property("seconds", seconds)
    print(f"run time without / with a 500-level column: {seconds}")
    run = runs["500_levels"]
    assert run.inputs.attributes.quality["typed"]["store"]["action"] == "dropped_free_text"
    assert "store" not in run.risk.survival_table.columns
    assert "store" not in set(run.risk.model.summary.reset_index()["covariate"])
    assert "store" not in run.inputs.attributes.frame().columns
    assert run.value.notes == runs["plain"].value.notes  # the same value covariates
    assert any("'store' left out" in n for n in run.inputs.notes)


def test_frame_rows_in_the_order_of_the_rfm_summary():
    # the customers file in another order than the ids: the frame comes back in the RFM's
    # order (by id), so that aligning the two is a comparison, not a look-up by text id
    from clvtools.data.rfm import rfm_summary

    base = generate_customer_base(300, seed=3)
    customers = base.customers.drop(columns="acquisition_date").sample(frac=1.0, random_state=4)
    log = read_transactions(base.transactions)
    frame = read_customers(log, customers).frame()
    rfm = rfm_summary(log, time_unit="week")
    assert frame.index.equals(rfm.index)
    assert frame.index.is_monotonic_increasing

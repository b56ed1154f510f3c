"""The TransactionLog itself: its first date and the log as it stood at an earlier date."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from clvtools.data.generator import generate_customer_base
from clvtools.data.rfm import rfm_summary
from clvtools.data.transactions import (
    DataPolicies,
    TransactionLog,
    data_fingerprint,
    read_transactions,
)
from clvtools.errors import ClvInputError

D = dt.date


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_customer_base(500, seed=4, start="2023-01-01",
                                  observation_end="2024-06-30").transactions


@pytest.fixture(scope="module")
def log(transactions) -> TransactionLog:
    return read_transactions(transactions, observation_end="2024-06-30")


def test_first_date_is_the_first_purchase(log, transactions):
    assert log.first_date == transactions["date"].min().date()
    assert isinstance(log.first_date, dt.date)
    # A log built by hand, without read_transactions' quality summary, asks DuckDB.
    bare = TransactionLog(log.con, log.occasions, log.observation_end, log.has_amounts)
    assert bare.first_date == log.first_date
    assert bare.n_customers == log.n_customers


def test_until_keeps_only_occasions_up_to_the_date(log):
    cut = D(2023, 9, 30)
    early = log.until(cut)
    assert early.con is log.con and early.has_amounts == log.has_amounts
    assert early.observation_end == cut and early.occasions == "occasions_until_20230930"
    frame = early.to_frame()
    assert frame["date"].max() <= pd.Timestamp(cut)
    whole = log.to_frame()
    pd.testing.assert_frame_equal(frame, whole[whole["date"] <= pd.Timestamp(cut)]
                                  .reset_index(drop=True))
    assert early.first_date == log.first_date
    assert early.n_customers == frame["customer_id"].nunique() < log.n_customers
    # quality: a copy of the whole log's, marked as truncated; the original is untouched
    assert early.quality == {**log.quality, "until": "2023-09-30"}
    assert "until" not in log.quality and early.quality["policies"] is not log.quality["policies"]
    # the name depends only on the date: cutting again replaces the same view
    assert log.until(cut).occasions == early.occasions
    assert early.until(D(2023, 6, 30)).to_frame()["date"].max() <= pd.Timestamp(2023, 6, 30)


def test_rfm_of_a_truncated_log_equals_rfm_at_that_date(log):
    for cut in (D(2023, 9, 30), "2024-01-15", log.observation_end):
        for unit in ("day", "week"):
            pd.testing.assert_frame_equal(
                rfm_summary(log.until(cut), time_unit=unit),
                rfm_summary(log, time_unit=unit, observation_end=cut), check_exact=True)


def test_customer_ids_table_is_built_once_per_log(log, transactions):
    table = log.customer_ids()
    assert log.customer_ids() == table   # the same table, not built again
    ids = log.con.execute(f"SELECT customer_id FROM {table}").df()["customer_id"]
    assert ids.is_unique and set(ids) == set(transactions["customer_id"].astype(str))
    # a truncated log has its own: fewer customers by the earlier date
    early = log.until(D(2023, 3, 31))
    assert early.customer_ids() != table
    n_early = log.con.execute(f"SELECT count(*) FROM {early.customer_ids()}").fetchone()[0]
    assert n_early == early.n_customers < log.n_customers


def test_until_refuses_dates_outside_the_log(log):
    with pytest.raises(ClvInputError, match="cannot be cut at 2024-07-01: it ends on 2024-06-30"):
        log.until(D(2024, 7, 1))
    with pytest.raises(ClvInputError, match="first purchase"):
        log.until(log.first_date - dt.timedelta(days=1))
    with pytest.raises(ClvInputError, match="must be a date"):
        log.until("someday")


def test_fingerprint_found_while_reading_equals_a_scan_of_the_occasions():
    """The digest the reading step computes equals data_fingerprint's own scan, and does not
    depend on the rows' order; a log cut at an earlier date scans its own occasions."""
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-02-05", "2024-01-20",
                                "2024-02-01", "2024-02-10"]),
        "amount": [10.123, 5.0, 7.5, 3.25, 4.0, 100.0]})
    log = read_transactions(tx, observation_end="2024-03-31")
    found = data_fingerprint(log)
    log.derived.clear()
    assert data_fingerprint(log) == found
    assert data_fingerprint(read_transactions(tx.iloc[::-1], observation_end="2024-03-31")) == found
    cut = data_fingerprint(log.until(dt.date(2024, 1, 31)))
    assert cut["occasions"] == 3 and cut["hash"] != found["hash"]


@pytest.mark.parametrize("missing, problem", [
    ("customer_id", "Customer ids are missing"), ("date", "Dates are missing"),
    ("amount", "Amounts are missing")])
def test_a_missing_value_in_a_log_with_integer_ids_is_an_error_naming_it(missing, problem):
    # integer ids: the first scan finds problems from the columns' null counts alone
    rows = pd.DataFrame({"customer_id": pd.array([1, 2, 3], dtype="Int64"),
                         "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
                         "amount": [1.0, 2.0, 3.0]})
    rows[missing] = rows[missing].astype("object").where(rows.index != 1, None).astype(
        rows[missing].dtype)
    with pytest.raises(ClvInputError, match=problem) as err:
        read_transactions(rows)
    assert "1 row(s) affected" in str(err.value)


def test_signs_kept_or_dropped_are_counted_as_the_policy_says():
    # the first scan counts a sign only where its policy excludes rows
    rows = pd.DataFrame({"customer_id": [1, 1, 2, 2],
                         "date": pd.to_datetime(["2024-01-01", "2024-01-02"] * 2),
                         "amount": [5.0, -2.0, 0.0, 4.0]})
    dropped = read_transactions(rows, policies=DataPolicies(
        negative_amounts="drop", zero_amounts="drop")).quality
    excluded = {k: v for k, v in dropped["excluded_by_reason"].items() if v}
    assert excluded == {"negative_amounts": 1, "zero_amounts": 1}
    assert dropped["rows_used"] == 2
    kept = read_transactions(rows, policies=DataPolicies(
        negative_amounts="keep", zero_amounts="keep")).quality
    assert not any(kept["excluded_by_reason"].values()) and kept["rows_used"] == 4
    assert "negative_amounts" not in kept["excluded_by_reason"]

"""Reading transaction logs: every bad input gets a clear error, every row is accounted for."""
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtools.data.rfm import rfm_summary
from clvtools.data.transactions import DataPolicies, read_transactions
from clvtools.errors import ClvInputError

GOOD = "customer_id,date,amount\n007,2024-01-01,10\n007,2024-01-15,20\n042,2024-01-03,5\n"


def test_csv_ids_keep_leading_zeros_and_occasions_are_days(tmp_path):
    log = read_transactions(write_csv(tmp_path, GOOD))
    frame = log.to_frame()
    assert frame["customer_id"].tolist() == ["007", "007", "042"]
    assert log.quality["rows_read"] == 3 and log.quality["rows_used"] == 3
    assert str(log.observation_end) == "2024-01-15"


def test_ids_lose_the_spaces_around_them_and_the_rows_are_counted():
    # The validation scan flags ids sorting before "!" (blank ones among them) for a closer
    # look; ids that merely start with a space or a tab are the same customer as without
    # (a CRM export pads them), stripped and counted in data_quality.json.
    df = pd.DataFrame({"customer_id": [" 7", "\t8", "!9", "7 "],
                       "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03",
                                               "2024-01-05"]),
                       "amount": [1.0, 2.0, 3.0, 4.0]})
    log = read_transactions(df)
    summary = rfm_summary(log, time_unit="day")
    assert summary.index.tolist() == ["!9", "7", "8"]
    assert summary.loc["7", "frequency"] == 1 and summary.loc["7", "monetary_value"] == 4
    assert log.quality["ids_stripped"] == 3


def test_same_input_as_csv_parquet_glob_and_dataframe_gives_same_summary(tmp_path):
    df = pd.read_csv(write_csv(tmp_path, GOOD), dtype={"customer_id": str}, parse_dates=["date"])
    df.iloc[:2].to_parquet(tmp_path / "part1.parquet")
    df.iloc[2:].to_parquet(tmp_path / "part2.parquet")
    summaries = [
        rfm_summary(read_transactions(src), time_unit="day")
        for src in (tmp_path / "tx.csv", str(tmp_path / "part*.parquet"), df)
    ]
    for other in summaries[1:]:
        pd.testing.assert_frame_equal(summaries[0], other)
    assert summaries[0].loc["007", "frequency"] == 1
    assert summaries[0].loc["007", "recency"] == 14
    assert summaries[0].loc["007", "monetary_value"] == 20


@pytest.mark.parametrize(
    "text, kwargs, message, column, line",
    [
        ("customer_id,day,amount\n1,2024-01-01,3\n", {}, "Column 'date' is missing", "date", None),
        ("customer_id,date,amount\n1,2024-13-01,3\n", {}, "Dates could not be parsed", "date", 2),
        ("customer_id,date,amount\n1,2024-01-01,3\n2,01/02/2024,3\n", {},
         "Dates could not be parsed", "date", 3),
        ("customer_id,date,amount\n1,2024-01-01,$3\n", {}, "not numbers", "amount", 2),
        ("customer_id,date,amount\n1,2024-01-01,3\n,2024-01-02,3\n", {},
         "Customer ids are missing", "customer_id", 3),
        ("customer_id,date,amount\n1,2024-01-01,3\n\"  \",2024-01-02,3\n", {},
         "Customer ids are missing", "customer_id", 3),
        ("customer_id,date,amount\n1,,3\n", {}, "Dates are missing", "date", 2),
        ("customer_id,date,amount\n", {}, "no data rows", None, None),
        ("customer_id,date,amount\n1,2024-01-05,3\n", {"observation_end": "2024-01-01"},
         "after the observation end", "date", 2),
        ("customer_id,date,amount\n1,2024-01-05,-3\n",
         {"policies": DataPolicies(negative_amounts="error")}, "negative", "amount", 2),
        ("customer_id,date,amount\n1,2024-01-05,0\n",
         {"policies": DataPolicies(zero_amounts="error")}, "zero", "amount", 2),
        ("customer_id,date,amount\n1,2024-01-05,3\n1,2024-01-05,3\n",
         {"policies": DataPolicies(duplicate_rows="error")}, "duplicates", None, 2),
        ("customer_id,date,amount\n1,2024-01-05,3\n1,2024-01-05,4\n",
         {"policies": DataPolicies(same_day="error")}, "several transactions on one day",
         "date", 2),
        ("customer_id,date,amount\n1,2024-01-05,-3\n", {}, "No transactions are left", None, None),
    ],
)
def test_bad_input_names_file_column_rows_and_advice(tmp_path, text, kwargs, message, column, line):
    path = write_csv(tmp_path, text)
    with pytest.raises(ClvInputError, match=message) as info:
        read_transactions(path, **kwargs)
    err = info.value
    assert err.source == str(path)
    assert err.column == column
    assert err.advice
    if line is not None:
        assert err.rows["line"].iloc[0] == line
        assert str(line) in str(err)


def test_empty_file_and_missing_file(tmp_path):
    empty = write_csv(tmp_path, "")
    with pytest.raises(ClvInputError, match="empty"):
        read_transactions(empty)
    with pytest.raises(ClvInputError, match="not found"):
        read_transactions(tmp_path / "nope.csv")
    with pytest.raises(ClvInputError, match="No file matches"):
        read_transactions(str(tmp_path / "nope*.parquet"))


def test_datetime_format_reads_compact_dates(tmp_path):
    log = read_transactions(write_csv(tmp_path, "customer_id,date\n1,19970101\n1,19970108\n"),
                            datetime_format="%Y%m%d", monetary_value_col=None)
    assert rfm_summary(log, time_unit="week").loc["1", "recency"] == 1.0
    assert "monetary_value" not in rfm_summary(log)


def test_policies_drop_and_count(tmp_path):
    text = (
        "customer_id,date,amount\n"
        "1,2024-01-01,10\n1,2024-01-01,10\n"  # exact duplicate
        "1,2024-01-02,-4\n"  # a return
        "1,2024-01-03,0\n"  # a free item
        "2,2024-01-04,5\n2,2024-01-04,6\n"  # same day, one occasion
        "2,2024-02-01,7\n"  # after the observation end
    )
    policies = DataPolicies(negative_amounts="drop", zero_amounts="drop", duplicate_rows="drop",
                            after_observation_end="drop")
    log = read_transactions(write_csv(tmp_path, text), observation_end="2024-01-31",
                            policies=policies)
    q = log.quality
    assert q["rows_read"] == 7
    assert q["excluded_by_reason"] == {"after_observation_end": 1, "negative_amounts": 1,
                                       "zero_amounts": 1, "duplicate_rows": 1,
                                       "implausible_dates": 0, "amount_outliers": 0}
    assert q["rows_used"] == 3 and q["same_day_rows_combined"] == 1 and q["purchase_occasions"] == 2
    frame = log.to_frame().set_index("customer_id")
    assert frame.loc["2", "amount"] == 11
    json.dumps(q, allow_nan=False)


def test_keep_policies_net_returns_and_keep_duplicates(tmp_path):
    text = "customer_id,date,amount\n1,2024-01-01,10\n1,2024-01-01,10\n1,2024-01-01,-5\n"
    log = read_transactions(write_csv(tmp_path, text),
                            policies=DataPolicies(negative_amounts="keep"))
    assert log.to_frame()["amount"].tolist() == [15]
    assert log.quality["duplicate_rows_found"] == 1 and log.quality["rows_used"] == 3


def test_unknown_policy_value_is_an_error():
    with pytest.raises(ClvInputError, match="'negative_amounts' setting must be"):
        DataPolicies(negative_amounts="ignore")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 40),
                  st.sampled_from([-5.0, 0.0, 1.5, 10.0, 10.0])),
        min_size=1, max_size=40,
    ),
    st.sampled_from(["drop", "keep"]),
    st.sampled_from(["drop", "keep"]),
)
def test_every_row_is_used_or_counted(rows, negative, duplicates):
    df = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    df["date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["day"], unit="D")
    policies = DataPolicies(negative_amounts=negative, duplicate_rows=duplicates,
                            zero_amounts="drop", after_observation_end="drop")
    try:
        log = read_transactions(df, observation_end="2024-01-31", policies=policies)
    except ClvInputError as err:
        assert "No transactions are left" in str(err)
        return
    q = log.quality
    assert q["rows_read"] == len(df)
    assert q["rows_used"] + q["rows_excluded"] == len(df)
    expected_late = int((df["day"] > 30).sum())
    assert q["excluded_by_reason"]["after_observation_end"] == expected_late
    frame = log.to_frame()
    assert frame["n_rows"].sum() == q["rows_used"]
    assert not frame.duplicated(["customer_id", "date"]).any()
    assert np.isfinite(frame["amount"]).all()


def test_date_percentiles_from_the_histogram_are_duckdbs_quantile_disc():
    """The plausible window's percentiles come from rows per day (plausibility.bounds_from):
    they must be the days quantile_disc picks, for small and large, even and odd counts."""
    import duckdb

    from clvtools.data.plausibility import DATE_QUANTILES, date_percentile

    con = duckdb.connect()
    rng = np.random.default_rng(8)
    for n in (1, 2, 3, 19, 20, 21, 40, 1000, 4321):
        days = [dt.date(2020, 1, 1) + dt.timedelta(days=int(d))
                for d in rng.integers(0, 30, n)]
        frame = pd.DataFrame({"day": days})
        counts = frame["day"].value_counts().sort_index()
        for q in (*DATE_QUANTILES, 0.5):
            want = con.execute("SELECT quantile_disc(day, ?) FROM frame", [q]).fetchone()[0]
            assert date_percentile(list(counts.index), counts.to_list(), q) == want, (n, q)


def test_the_first_scans_exclusion_counts_equal_the_full_count(tmp_path):
    """Most logs are validated in one scan (no padded id, no implausible date or amount, no
    given observation end); a given observation end takes the second, counting scan. Both
    must count the same exclusions and keep the same rows, with integer ids in a Parquet
    file as with text ids."""
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame({
        "customer_id": rng.integers(1, 60, n),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200 * 86400, n), "s"),
        "amount": rng.choice([-5.0, 0.0, 12.5, 20.0, 7.25], n),
    })
    for ids in ("int", "str"):
        path = tmp_path / f"log_{ids}.parquet"
        frame.assign(customer_id=frame["customer_id"].astype(str) if ids == "str"
                     else frame["customer_id"]).to_parquet(path, index=False)
        policies = DataPolicies(negative_amounts="drop", zero_amounts="drop")
        one_scan = read_transactions(path, policies=policies)
        end = one_scan.observation_end
        two_scans = read_transactions(path, policies=policies, observation_end=end)
        for log in (one_scan, two_scans):
            excluded = log.quality["excluded_by_reason"]
            assert excluded["negative_amounts"] == int((frame["amount"] < 0).sum())
            assert excluded["zero_amounts"] == int((frame["amount"] == 0).sum())
            assert log.quality["rows_used"] == int((frame["amount"] > 0).sum())
        pd.testing.assert_frame_equal(rfm_summary(one_scan), rfm_summary(two_scans))

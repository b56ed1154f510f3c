"""The Spark engine of the data layer gives DuckDB's summaries: the same RFM summary, landmark
and scoring tables and KPIs on the same log (a real Spark in local mode)."""
import datetime as dt

import pandas as pd
import pytest

from clvtools.data.kpis import kpi_table
from clvtools.data.rfm import rfm_summary
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.data.transactions import DataPolicies, read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]



@pytest.fixture(scope="module")
def logs(spark):
    """The same generated log in DuckDB and in Spark: 1,500 customers, 2 years."""
    from clvtools.data.spark_reader import spark_occasions

    tx = generate_customer_base(1500, seed=3).transactions
    return read_transactions(tx), spark_occasions(spark.createDataFrame(tx))


def assert_same_table(duck: pd.DataFrame, spark_table: pd.DataFrame):
    """Every column bit for bit: counts, dates, durations, labels, rates and money alike (both
    engines sum money exactly, in micro-units: clvtools.data.money)."""
    assert list(spark_table.columns) == list(duck.columns)
    assert len(spark_table) == len(duck)
    for column in duck.columns:
        a, b = duck[column], spark_table[column]
        if pd.api.types.is_datetime64_any_dtype(a):
            a = a.dt.date
            if pd.api.types.is_datetime64_any_dtype(b):
                b = b.dt.date
        assert b.astype(a.dtype).equals(a), column


def test_rfm_summary_equals_duckdb(logs):
    from clvtools.data.spark_summaries import spark_rfm

    duck_log, spark_log = logs
    assert spark_log.quality["customers"] == duck_log.quality["customers"]
    assert spark_log.quality["purchase_occasions"] == duck_log.quality["purchase_occasions"]
    assert spark_log.observation_end == duck_log.observation_end
    for unit in ("week", "month"):
        duck = rfm_summary(duck_log, time_unit=unit).reset_index()
        spark_rows = (spark_rfm(spark_log, time_unit=unit).toPandas()
                      .sort_values("customer_id", ignore_index=True))
        assert_same_table(duck, spark_rows)


def test_landmark_and_scoring_tables_equal_duckdb(logs):
    from clvtools.data.spark_summaries import spark_landmark_table, spark_scoring_table

    duck_log, spark_log = logs
    marks = [dt.date(2024, 3, 1), dt.date(2024, 7, 1)]
    duck = landmark_table(duck_log, landmarks=marks, churn_after=26)
    spark_rows = (spark_landmark_table(spark_log, landmarks=marks, churn_after=26).toPandas()
                  .sort_values(["landmark", "customer_id"], ignore_index=True))
    assert duck["event"].sum() > 50      # outcomes of both kinds are compared
    assert_same_table(duck, spark_rows)
    duck = scoring_table(duck_log, churn_after=26)
    spark_rows = (spark_scoring_table(spark_log, churn_after=26).toPandas()
                  .sort_values("customer_id", ignore_index=True))
    assert_same_table(duck, spark_rows)


def test_kpis_equal_duckdb(logs):
    from clvtools.data.spark_kpis import spark_kpi_table

    duck_log, spark_log = logs
    duck = kpi_table(duck_log, churn_after=26, period="month")
    spark_rows = spark_kpi_table(spark_log, churn_after=26, period="month").toPandas()
    assert duck["churned"].sum() > 100 and duck["reactivated"].sum() > 0
    assert_same_table(duck, spark_rows)


@pytest.mark.parametrize("period", ["week", "quarter"])
def test_cohorts_and_churn_by_segment_equal_duckdb(logs, period):
    """cohorts.csv and churn_by_segment.csv on Spark: the same spells counted by cohort, and
    each period's base valued over its trailing year and cut at numpy's quantile from two
    order statistics: DuckDB's tables bit for bit (weekly: 100 cuts; quarterly: few, large)."""
    from clvtools.data.kpi_segments import churn_by_segment
    from clvtools.data.kpis import cohort_table
    from clvtools.data.spark_kpi_segments import spark_churn_by_segment
    from clvtools.data.spark_kpis import spark_cohort_table

    duck_log, spark_log = logs
    common = dict(churn_after=26, period=period)
    duck = cohort_table(duck_log, **common)
    assert duck["active"].sum() > 1000 and duck["k"].max() > 5
    assert_same_table(duck, spark_cohort_table(spark_log, **common).toPandas())
    duck = churn_by_segment(duck_log, value_share=0.3, **common)
    got = spark_churn_by_segment(spark_log, value_share=0.3, **common)
    assert set(duck["segment"]) == {"high", "low"} and duck["churned"].sum() > 100
    assert_same_table(duck, got)


def test_the_tier_cut_from_two_order_statistics_is_numpys_quantile():
    """The Spark value tiers' cut: numpy's linear quantile of the whole period from the two
    values it lies between, the same double (ties, repeated sizes, integers near 2**40)."""
    import numpy as np

    from clvtools.data.spark_kpi_segments import tier_threshold

    rng = np.random.default_rng(7)
    for size in [1, 2, 3, 5, 6, 11, 101, 1000, 4097]:
        for quantile in (0.8, 0.7, 0.5, 0.9):
            for scale in (5, 10_000 * 97, 2**40):
                values = rng.integers(0, scale, size) * 10_000
                ordered = np.sort(values)
                lower = int(np.floor((size - 1) * quantile))
                upper = min(lower + 1, size - 1)
                assert tier_threshold(float(ordered[lower]), float(ordered[upper]), size,
                                      quantile) == np.quantile(values.astype(float), quantile)


def test_purchases_by_period_equal_duckdb(logs):
    """The seasonal index's counts (forecast.csv on Spark): occasions in ``(start, end]``,
    months and overlapping periods alike."""
    from clvtools.data.rfm import purchases_by_period
    from clvtools.data.spark_summaries import spark_purchases_by_period

    duck, spark_log = logs
    months = pd.period_range("2023-01", "2024-12", freq="M")
    starts = [(m.start_time - pd.Timedelta(days=1)).date() for m in months] + [
        dt.date(2023, 3, 10)]
    ends = [m.end_time.date() for m in months] + [dt.date(2024, 6, 1)]
    expected = purchases_by_period(duck, starts, ends)["purchases"].tolist()
    assert min(expected) > 0
    assert spark_purchases_by_period(spark_log, starts, ends) == expected


def test_revenue_by_period_equals_duckdb(logs):
    """The backtest's actual revenue (forecast_backtest.csv on Spark): money dated in
    ``(start, end]``, the same doubles as DuckDB's, every customer or only those acquired
    by a date."""
    from clvtools.data.rfm import purchases_by_period
    from clvtools.data.spark_summaries import spark_revenue_by_period

    duck, spark_log = logs
    months = pd.period_range("2023-06", "2024-12", freq="M")
    starts = [(m.start_time - pd.Timedelta(days=1)).date() for m in months]
    ends = [m.end_time.date() for m in months]
    for acquired in (None, dt.date(2023, 9, 30)):
        expected = purchases_by_period(duck, starts, ends, customers_acquired_by=acquired)
        got = spark_revenue_by_period(spark_log, starts, ends, customers_acquired_by=acquired)
        assert min(expected["revenue"]) > 0
        assert got == expected["revenue"].tolist()
    assert (spark_revenue_by_period(spark_log, starts, ends, customers_acquired_by=acquired)
            < purchases_by_period(duck, starts, ends)["revenue"].to_numpy()).any()


def test_money_is_summed_exactly_whatever_the_order(spark):
    """0.1 + 0.2 + 0.3 in doubles depends on the order of addition; in micro-units it is 0.6,
    in Spark as in DuckDB. 82.15 + 107.33 is a sum that fsum and an exact sum round to
    neighbouring doubles: both engines give the one nearest 189.48."""
    from clvtools.data.spark_reader import spark_occasions
    from clvtools.data.spark_summaries import spark_landmark_table

    rows = [("a", "2024-01-01", 0.1), ("a", "2024-01-02", 0.2), ("a", "2024-01-03", 0.3),
            ("b", "2024-01-02", 82.15), ("b", "2024-01-03", 107.33),
            ("a", "2024-06-01", 1.0), ("b", "2024-06-01", 1.0)]
    # the same rows in the other order, under other ids: one Spark query for both orders
    frame = pd.DataFrame(rows + [(c + "_reversed", d, x) for c, d, x in rows[::-1]],
                         columns=["customer_id", "date", "amount"])
    mark = [dt.date(2024, 1, 3)]
    spark_table = (spark_landmark_table(spark_occasions(spark.createDataFrame(frame)),
                                        landmarks=mark, churn_after=26)
                   .toPandas().sort_values("customer_id", ignore_index=True))
    assert spark_table["total_spend"].tolist() == [0.6, 0.6, 189.48, 189.48]
    assert_same_table(landmark_table(read_transactions(frame), landmarks=mark, churn_after=26),
                      spark_table)
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)


def test_bad_rows_are_clear_errors(spark):
    from clvtools.data.spark_reader import spark_occasions

    frame = spark.createDataFrame(pd.DataFrame({"customer_id": ["a", "b"],
                                                "date": ["2024-01-01", "not a date"],
                                                "amount": [1.0, 2.0]}))
    with pytest.raises(ClvInputError, match="Dates are missing or could not be parsed"):
        spark_occasions(frame)
    with pytest.raises(ClvInputError, match="missing from the transactions"):
        spark_occasions(frame, monetary_value_col="price")


#: A hostile log: a padded id, UTC offsets (one across midnight), same-day rows, a refund, a
#: zero amount, dates in years 1900 and 9999 (one customer has nothing else), an absurd
#: amount; and ordinary rows around them, so that the plausible bounds are the data's.
HOSTILE = """customer_id,date,amount
" C1 ",2024-01-05,10.00
C1,2024-01-05 10:00:00+02:00,5.00
C1,2024-03-01,-3.00
C2,2024-01-10,0
C2,2024-02-10,20.00
C2,9999-12-31,15.00
C3,1900-01-01,12.00
C4,2024-02-01,1000000000
C4,2024-02-02,11.00
C5,2024-01-20 23:30:00-05:00,7.50
""" + "".join(f"C{6 + i % 9},2024-{1 + i % 6:02d}-{1 + i % 27:02d},{12 + i % 7}.25\n"
              for i in range(40))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "tx.csv"
    path.write_text(HOSTILE)
    return path


def _read_both(spark, path, **options):
    """The log read by DuckDB and by Spark; their quality and occasions."""
    from clvtools.data.spark_engine import read_spark_source
    from clvtools.data.spark_reader import spark_occasions

    duck = read_transactions(path, **options)
    spark_log = spark_occasions(read_spark_source(spark, str(path)), source=str(path),
                                **options)
    occasions = (spark.table(spark_log.occasions).toPandas()
                 .sort_values(["customer_id", "date"], ignore_index=True))
    return duck, spark_log, occasions


@pytest.mark.parametrize("options", [
    {},
    {"policies": DataPolicies(negative_amounts="keep", zero_amounts="drop",
                              amount_outliers="keep", date_window=50.0),
     "timezone": "America/New_York"},
], ids=["defaults", "other-policies"])
def test_reading_policies_equal_duckdb_on_a_hostile_log(spark, hostile, options):
    duck, spark_log, occasions = _read_both(spark, hostile, **options)
    quality = dict(spark_log.quality)
    assert quality.pop("engine") == "spark"
    assert quality == {k: duck.quality[k] for k in quality}
    assert set(duck.quality) - set(quality) == {"files", "duplicate_rows_found",
                                                "duplicate_rows_policy"}
    expected = duck.to_frame()
    expected["date"] = expected["date"].dt.date
    assert_same_table(expected, occasions)
    # the policies did something: each exclusion is met by the hostile rows
    assert quality["ids_stripped"] == 1 and quality["timezone"]["rows_with_utc_offset"] == 2
    excluded = quality["excluded_by_reason"]
    if not options:
        assert excluded == {"implausible_dates": 2, "after_observation_end": 0,
                            "negative_amounts": 1, "amount_outliers": 1}
        assert quality["customers_excluded"] == 1
    else:   # the window is 50 times wider (in "plausible"), still short of 1900 and 9999
        assert excluded == {"implausible_dates": 2, "after_observation_end": 0,
                            "zero_amounts": 1}


@pytest.mark.parametrize("policy, message", [
    (DataPolicies(implausible_dates="error"), "outside the plausible window"),
    (DataPolicies(zero_amounts="error"), "Amounts are zero"),
    (DataPolicies(amount_outliers="error"), "Amounts are larger than 150,000"),
    (DataPolicies(same_day="error"), "several transactions on one day"),
])
def test_a_policy_set_to_error_stops_both_engines(spark, hostile, policy, message):
    from clvtools.data.spark_engine import read_spark_source
    from clvtools.data.spark_reader import spark_occasions

    with pytest.raises(ClvInputError, match=message):
        read_transactions(hostile, policies=policy)
    with pytest.raises(ClvInputError, match=message):
        spark_occasions(read_spark_source(spark, str(hostile)), policies=policy)


#: Exact duplicates of HOSTILE's rows: two more of one, one of a time with a UTC offset, one
#: of a padded id; and a row at the same time with another amount (not a duplicate).
DUPLICATES = ("C7,2024-02-02,13.25\nC7,2024-02-02,13.25\n"
              "C5,2024-01-20 23:30:00-05:00,7.50\nC1,2024-01-05,10.00\nC1,2024-01-05,10.01\n")


@pytest.fixture(scope="module")
def with_duplicates(tmp_path_factory):
    path = tmp_path_factory.mktemp("duplicates") / "tx.csv"
    path.write_text(HOSTILE + DUPLICATES)
    return path


def test_duplicate_rows_dropped_as_duckdb_drops_them(spark, with_duplicates):
    """duplicate_rows = "drop": the same rows found and left out as on one machine, counted
    in data_quality.json's keys (excluded_by_reason, duplicate_rows_found), and the same
    occasions, amounts to the last bit."""
    duck, spark_log, occasions = _read_both(
        spark, with_duplicates, policies=DataPolicies(duplicate_rows="drop"))
    quality = dict(spark_log.quality)
    assert quality.pop("engine") == "spark"
    assert set(duck.quality) - set(quality) == {"files"}
    assert quality == {k: duck.quality[k] for k in quality}
    assert quality["duplicate_rows_found"] == 4
    assert quality["excluded_by_reason"]["duplicate_rows"] == 4
    expected = duck.to_frame()
    expected["date"] = expected["date"].dt.date
    assert_same_table(expected, occasions)


def test_duplicate_rows_error_shows_the_first_duplicates(spark, with_duplicates):
    from clvtools.data.spark_engine import read_spark_source
    from clvtools.data.spark_reader import spark_occasions

    policy = DataPolicies(duplicate_rows="error")
    with pytest.raises(ClvInputError, match="exact duplicates"):
        read_transactions(with_duplicates, policies=policy)
    with pytest.raises(ClvInputError, match="exact duplicates") as raised:
        spark_occasions(read_spark_source(spark, str(with_duplicates)), policies=policy,
                        source=str(with_duplicates))
    error = raised.value
    assert error.n_rows == 4 and error.source == str(with_duplicates)
    assert error.rows["customer_id"].tolist() == ["C1", "C5", "C7"]
    assert "duplicate_rows = 'drop'" in str(error)
    # a log without duplicates reads under "error" (and counts none)
    log = spark_occasions(spark.createDataFrame(generate_customer_base(50, seed=1).transactions),
                          policies=policy)
    assert log.quality["duplicate_rows_found"] == 0


def test_float_ids_read_as_integers_as_in_duckdb(spark):
    """A Parquet writer stores an id column with a gap as floats: 7.0 is the customer 7."""
    from clvtools.data.spark_reader import spark_occasions

    frame = pd.DataFrame({"customer_id": [7.0, 7.0, 12.0, 2.5],
                          "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05",
                                                  "2024-01-09"]),
                          "amount": [1.0, 2.0, 3.0, 4.0]})
    duck = read_transactions(frame)
    spark_log = spark_occasions(spark.createDataFrame(frame))
    ids = sorted(r[0] for r in spark.sql(
        f"SELECT DISTINCT customer_id FROM {spark_log.occasions}").collect())
    assert ids == sorted(duck.to_frame()["customer_id"].unique()) == ["12", "2.5", "7"]
    assert spark_log.quality["ids_stripped"] == duck.quality["ids_stripped"] == 0


def _formatted_log() -> pd.DataFrame:
    """Ordinary rows at times of day, one across midnight in UTC, for the formats below."""
    times = [dt.datetime(2024, 1 + i % 6, 1 + i % 27, (5 * i) % 24, (7 * i) % 60)
             for i in range(60)]
    return pd.DataFrame({"customer_id": [f"C{i % 11}" for i in range(60)], "when": times,
                         "amount": [10.0 + i % 7 for i in range(60)]})


@pytest.mark.parametrize("datetime_format, write, options", [
    # single-digit days, months and hours, as strptime reads them
    ("%d/%m/%Y %H:%M", lambda t: f"{t.day}/{t.month}/{t.year} {t.hour}:{t.minute:02d}", {}),
    # quoted letters and a literal %
    ("%Y-%m-%dT%H:%M %%", lambda t: t.strftime("%Y-%m-%dT%H:%M %%"), {}),
    # fields that touch: fixed widths; an integer column
    ("%Y%m%d", lambda t: int(t.strftime("%Y%m%d")), {}),
    # instants: the wall-clock time in the zone
    ("%Y-%m-%d %H:%M:%S%z", lambda t: t.strftime("%Y-%m-%d %H:%M:%S") + "+0530",
     {"timezone": "America/New_York"}),
    # a month name and AM/PM end the numbers beside them (5Jan2024, 5PM)
    ("%d%b%Y %I%p", lambda t: f"{t.day}{t.strftime('%b%Y')} {(t.hour % 12) or 12}"
                              f"{t.strftime('%p')}", {}),
    # DuckDB's unpadded codes
    ("%-d/%-m/%Y", lambda t: f"{t.day}/{t.month}/{t.year}", {}),
    # an offset in hours only
    ("%Y-%m-%d %H:%M%z", lambda t: t.strftime("%Y-%m-%d %H:%M") + "+05",
     {"timezone": "Europe/Paris"}),
], ids=["unpadded", "literals", "integers", "offsets", "names", "dash-codes", "hour-offsets"])
def test_a_datetime_format_reads_the_dates_duckdb_reads(spark, datetime_format, write,
                                                       options):
    """``datetime_format``'s strptime codes through Spark's pattern: the same dates, counts
    and occasions as DuckDB's ``strptime``."""
    from clvtools.data.spark_reader import spark_occasions

    frame = _formatted_log()
    frame["date"] = frame.pop("when").map(write)
    duck = read_transactions(frame, datetime_format=datetime_format, **options)
    spark_log = spark_occasions(spark.createDataFrame(frame), datetime_format=datetime_format,
                                **options)
    quality = dict(spark_log.quality)
    assert quality["rows_read"] == 60 and quality["rows_used"] == 60
    assert quality["purchase_occasions"] == duck.quality["purchase_occasions"] > 40
    assert spark_log.observation_end == duck.observation_end
    occasions = (spark.table(spark_log.occasions).toPandas()
                 .sort_values(["customer_id", "date"], ignore_index=True))
    expected = duck.to_frame()
    expected["date"] = expected["date"].dt.date
    assert_same_table(expected, occasions)


def test_attribute_validity_dates_hold_rows_back_at_the_landmarks_as_in_duckdb(
        spark, logs, tmp_path):
    """``attributes_valid_from_col``: at a landmark before a row's date the row gives the
    fills (as on the single machine), in Spark's landmark table as in DuckDB's; the scoring
    table takes the file as it stands."""
    from clvtools.data.attributes import read_customers
    from clvtools.data.spark_attributes import spark_read_customers
    from clvtools.data.spark_summaries import spark_landmark_table, spark_scoring_table

    duck_log, spark_log = logs
    customers = generate_customer_base(1500, seed=3).customers
    # a third of the rows hold from mid-2024 on, the others from the start
    customers["valid"] = ["2024-06-15" if i % 3 == 0 else "2020-01-01"
                          for i in range(len(customers))]
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False)
    duck = read_customers(duck_log, path, valid_from_col="valid")
    spark_attributes = spark_read_customers(spark_log, str(path), valid_from_col="valid")
    assert spark_attributes.quality["valid_from"] == duck.quality["valid_from"]
    marks = [dt.date(2024, 3, 1), dt.date(2024, 7, 1)]
    expected = landmark_table(duck_log, landmarks=marks, churn_after=26, attributes=duck)
    found = (spark_landmark_table(spark_log, landmarks=marks, churn_after=26,
                                  attributes=spark_attributes).toPandas()
             .sort_values(["landmark", "customer_id"], ignore_index=True))
    assert_same_table(expected, found)
    # held back: at the first landmark the late rows have the fill, at the second their own
    late = expected["customer_id"].isin(customers["customer_id"][::3])
    first = pd.to_datetime(expected["landmark"]) == pd.Timestamp(marks[0])
    assert (expected.loc[late & first, "plan"] == "(missing)").all()
    assert not (expected.loc[late & ~first, "plan"] == "(missing)").any()
    assert_same_table(
        scoring_table(duck_log, churn_after=26, attributes=duck),
        spark_scoring_table(spark_log, churn_after=26, attributes=spark_attributes).toPandas()
        .sort_values("customer_id", ignore_index=True))
    bad = spark.createDataFrame(pd.DataFrame({"customer_id": ["C0000001", "C0000002"],
                                              "age": [30, 31], "valid": ["2024-01-01", "soon"]}))
    with pytest.raises(ClvInputError, match="Validity dates are missing or not dates"):
        spark_read_customers(spark_log, bad, valid_from_col="valid")

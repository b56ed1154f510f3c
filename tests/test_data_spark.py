"""The Spark engine of the data layer gives DuckDB's summaries: the same RFM summary, landmark
and scoring tables and KPIs on the same log (a real Spark in local mode)."""
import datetime as dt

import pandas as pd
import pytest

from clvtools.data.kpis import kpi_table
from clvtools.data.rfm import rfm_summary
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]



@pytest.fixture(scope="module")
def logs(spark):
    """The same generated log in DuckDB and in Spark: 1,500 customers, 2 years."""
    from clvtools.data.spark_engine import spark_occasions

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


def test_money_is_summed_exactly_whatever_the_order(spark):
    """0.1 + 0.2 + 0.3 in doubles depends on the order of addition; in micro-units it is 0.6,
    in Spark as in DuckDB. 82.15 + 107.33 is a sum that fsum and an exact sum round to
    neighbouring doubles: both engines give the one nearest 189.48."""
    from clvtools.data.spark_engine import spark_occasions
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
    from clvtools.data.spark_engine import spark_occasions

    frame = spark.createDataFrame(pd.DataFrame({"customer_id": ["a", "b"],
                                                "date": ["2024-01-01", "not a date"],
                                                "amount": [1.0, 2.0]}))
    with pytest.raises(ClvInputError, match="Dates are missing or could not be parsed"):
        spark_occasions(frame)
    with pytest.raises(ClvInputError, match="missing from the transactions"):
        spark_occasions(frame, monetary_value_col="price")

"""Money is summed exactly, in micro-units (clvtools.data.money): the same total in any order of
the rows, the double nearest the exact decimal sum, and a clear error for an absurd amount."""
from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from clvtools.data.money import figure_sum
from clvtools.data.rfm import rfm_summary
from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import DataPolicies, read_transactions
from clvtools.errors import ClvInputError

ROWS = [("a", "2024-01-01", 0.1), ("a", "2024-01-02", 0.2), ("a", "2024-01-03", 0.3),
        ("b", "2024-01-02", 82.15), ("b", "2024-01-02", 107.33), ("b", "2024-01-02", 19.99),
        ("b", "2024-01-02", 19.99),
        ("a", "2024-06-01", 1.0), ("b", "2024-06-01", 1.0)]


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.mark.parametrize("order", [1, -1])
def test_sums_are_exact_in_any_order(order):
    log = read_transactions(_frame(ROWS[::order]))
    days = log.to_frame().set_index(["customer_id", "date"])["amount"]
    # doubles added in this order give 229.46000000000004
    assert days[("b", pd.Timestamp("2024-01-02"))] == 229.46
    assert ((82.15 + 107.33) + 19.99) + 19.99 != 229.46
    table = landmark_table(log, landmarks=[dt.date(2024, 1, 3)], churn_after=26)
    assert table.set_index("customer_id")["total_spend"].to_dict() == {"a": 0.6, "b": 229.46}
    # the RFM summary sums raw rows when it reads the file itself (summarise=False)
    raw = read_transactions(_frame(ROWS[::order]), summarise=False)
    assert rfm_summary(raw)["monetary_value"].equals(rfm_summary(log)["monetary_value"])


def test_dropped_duplicates_leave_the_exact_total_of_the_rows_kept():
    log = read_transactions(_frame(ROWS), policies=DataPolicies(duplicate_rows="drop"))
    days = log.to_frame().set_index(["customer_id", "date"])["amount"]
    assert days[("b", pd.Timestamp("2024-01-02"))] == 209.47
    assert log.quality["excluded_by_reason"]["duplicate_rows"] == 1


def test_an_amount_too_large_to_sum_is_an_error_unless_left_out():
    rows = ROWS + [("c", "2024-02-01", 2e15)]
    with pytest.raises(ClvInputError, match="1e\\+15 or more") as caught:
        read_transactions(_frame(rows), policies=DataPolicies(amount_outliers="keep"))
    assert "amount_outliers = 'drop'" in caught.value.advice
    log = read_transactions(_frame(rows))      # amount_outliers = "drop", the default
    assert log.quality["excluded_by_reason"]["amount_outliers"] == 1


def test_a_figure_sum_is_the_same_in_any_order_and_near_the_exact_sum():
    # computed figures (net benefits: any digits, signs mixed, large and tiny) in orders
    # that move a sum of doubles: one double, within each row's rounding of the exact sum
    rng = np.random.default_rng(5)
    values = rng.normal(0.0, 300.0, 20_000) * rng.choice([1.0, 1e-7, 1e4], 20_000)
    orders = (values, values[::-1], rng.permutation(values))
    assert len({sum(order.tolist()) for order in orders}) > 1    # doubles added in turn
    con = duckdb.connect()
    totals = set()
    for order in orders:
        con.register("figures", pd.DataFrame({"x": order}))
        totals.add(con.execute(f"SELECT {figure_sum('x')} FROM figures").fetchall()[0][0])
    (total,) = totals
    # a row is off by at most 5e-13, or past 9e3 by half its own last bit
    bound = len(values) * 5e-13 + 2.3e-16 * np.abs(values).sum()
    assert abs(total - math.fsum(values)) <= bound
    # no rows: NULL, as sum; a NaN stops the query rather than being skipped
    assert con.execute(f"SELECT {figure_sum('x')} FROM figures WHERE FALSE").fetchall() == \
        [(None,)]
    with pytest.raises(duckdb.ConversionException, match="nan"):
        con.execute(f"SELECT {figure_sum('x')} FROM (SELECT 'nan'::DOUBLE AS x)").fetchone()

"""The calibration window, its holdout and the holdout revenue in one query: the figures of
calibration_and_holdout and revenue_by_customer, bit for bit."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv

from clvtools.data.holdout_window import calibration_holdout_revenue
from clvtools.data.rfm import calibration_and_holdout, revenue_by_customer
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError


def _three_queries(log, end, time_unit):
    cal = calibration_and_holdout(log, end, time_unit=time_unit)
    revenue = revenue_by_customer(log, end, log.observation_end).reindex(cal.index,
                                                                          fill_value=0.0)
    return cal, revenue.to_numpy(float)


@pytest.mark.parametrize("summarise", [True, False], ids=["occasions", "raw_rows"])
@pytest.mark.parametrize("amounts", [True, False], ids=["amounts", "no_amounts"])
@pytest.mark.parametrize("time_unit", ["week", "day"])
def test_one_query_gives_the_three_queries_figures(amounts, time_unit, summarise):
    """Also the holdout's purchase days counted as rows in a summarised log (one row per
    customer and day), against the three queries' count of distinct days; and a log of
    raw rows, several a day (no summary), where the days are counted distinct."""
    tx = generate_customer_base(400, seed=5, start="2023-01-01",
                                observation_end="2024-06-30").transactions
    if not summarise:  # a second row on some purchase days
        tx = pd.concat([tx, tx.iloc[::3]], ignore_index=True)
    log = (read_transactions(tx, summarise=summarise) if amounts
           else read_transactions(tx.drop(columns="amount"), monetary_value_col=None,
                                  summarise=summarise))
    assert log.one_row_per_day == summarise
    end = dt.date(2024, 1, 31)
    cal, revenue = calibration_holdout_revenue(log, end, time_unit=time_unit)
    want_cal, want_revenue = _three_queries(log, end, time_unit)
    pd.testing.assert_frame_equal(cal, want_cal, check_exact=True)
    np.testing.assert_array_equal(revenue, want_revenue)
    assert (revenue > 0).any() and (revenue == 0).any()


def test_a_holdout_where_only_new_customers_buy(tmp_path):
    log = read_transactions(write_csv(tmp_path, "customer_id,date,amount\n"
                                      "a,2024-01-01,3\na,2024-01-05,4\nb,2024-02-10,5\n"))
    cal, revenue = calibration_holdout_revenue(log, dt.date(2024, 1, 31))
    assert cal.index.tolist() == ["a"] and cal["frequency_holdout"].tolist() == [0.0]
    assert revenue.tolist() == [0.0]


def test_a_holdout_without_purchases_says_so(tmp_path):
    log = read_transactions(write_csv(tmp_path, "customer_id,date,amount\n"
                                      "a,2024-01-01,3\nb,2024-01-10,5\n"),
                            observation_end="2024-03-31")
    with pytest.raises(ClvInputError, match="no transactions between the calibration end"):
        calibration_holdout_revenue(log, dt.date(2024, 1, 31))

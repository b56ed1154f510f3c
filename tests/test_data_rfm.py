"""Purchase counts by period (clvtools.data.rfm.purchases_by_period) and the RFM query's two
forms."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.data.engine import fetch_frame
from clvtools.data.rfm import purchases_by_period, rfm_query
from clvtools.data.transactions import DataPolicies, read_transactions
from clvtools.errors import ClvInputError

D = dt.date

TX = pd.DataFrame({
    "customer_id": ["a", "a", "a", "b", "b", "c"],
    "date": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-02-05", "2024-01-20",
                            "2024-02-01", "2024-02-10"]),
    "amount": [10.0, 5.0, 7.0, 3.0, 4.0, 100.0],
})
# January (Jan 1 itself excluded), February, March (nothing)
STARTS = [D(2024, 1, 1), D(2024, 1, 31), D(2024, 2, 29)]
ENDS = [D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31)]


def test_hand_computed_periods():
    log = read_transactions(TX, observation_end="2024-03-31")
    got = purchases_by_period(log, STARTS, ENDS)
    expected = pd.DataFrame({"period": [1, 2, 3], "purchases": [2, 3, 0],
                             "revenue": [8.0, 111.0, 0.0]})
    pd.testing.assert_frame_equal(got, expected)
    # only a bought by Jan 15
    got = purchases_by_period(log, STARTS, ENDS, customers_acquired_by=D(2024, 1, 15))
    assert got["purchases"].tolist() == [1, 1, 0] and got["revenue"].tolist() == [5.0, 7.0, 0.0]


def test_revenue_is_zero_without_amounts_and_lengths_must_match():
    log = read_transactions(TX.drop(columns="amount"), monetary_value_col=None)
    got = purchases_by_period(log, STARTS, ENDS)
    assert got["purchases"].tolist() == [2, 3, 0] and got["revenue"].tolist() == [0.0] * 3
    with pytest.raises(ClvInputError, match="same number"):
        purchases_by_period(log, STARTS, ENDS[:2])
    with pytest.raises(ClvInputError, match="must be a date"):
        purchases_by_period(log, ["soon"], ENDS[:1])


@pytest.mark.parametrize("include_first", [False, True])
@pytest.mark.parametrize("last_day", [None, D(2023, 6, 30)])
def test_day_level_occasions_give_the_lists_figures_bit_for_bit(include_first, last_day):
    """rfm_query's one-aggregation form for day-level occasions (one row a customer and day)
    equals its list form, which accepts any rows, to the last bit: same-day rows merged,
    amounts with many digits, customers with one day, a calibration cut."""
    rng = np.random.default_rng(7)
    n = 4_000
    tx = pd.DataFrame({
        # 600 regulars and 100 customers of one purchase
        "customer_id": np.r_[rng.integers(0, 600, n - 100), np.arange(1000, 1100)].astype(str),
        "date": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, n),
                                                             "h"),
        "amount": rng.gamma(2.0, 17.3, n).round(4),
    })
    log = read_transactions(tx, policies=DataPolicies(same_day="combine"))
    assert log.one_row_per_day and log.until(D(2024, 1, 1)).one_row_per_day
    frames = [fetch_frame(log.con, rfm_query(
        log.occasions, observation_end=log.observation_end, days_per_unit=7.0,
        include_first_transaction=include_first, last_day=last_day, one_row_per_day=fast))
        for fast in (False, True)]
    assert len(frames[0]) > 500 and (frames[0]["frequency"] == int(include_first)).any()
    pd.testing.assert_frame_equal(frames[1], frames[0], check_exact=True)
    # a log read without its occasions table has several rows a day: the list form only
    assert not read_transactions(tx, summarise=False).one_row_per_day


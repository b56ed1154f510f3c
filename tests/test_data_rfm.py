"""Purchase counts by period (clvtools.data.rfm.purchases_by_period)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from clvtools.data.rfm import purchases_by_period
from clvtools.data.transactions import read_transactions
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

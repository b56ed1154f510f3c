"""RFM summaries equal lifetimes 0.11.3's on the CDNOW master log (23,570 customers).

Counts and times are compared exactly; monetary values, which DuckDB and pandas sum in a
different order, to 1e-12 relative.
"""
import numpy as np
import pandas as pd
import pytest
from conftest import assert_summaries_match
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import utils as lifetimes_utils

from clvtools import utils as clv_utils

SUMMARY_CASES = [
    dict(freq="D"),
    dict(freq="W"),
    dict(freq="D", freq_multiplier=7),
    dict(freq="D", monetary_value_col="dollar_value"),
    dict(freq="W", monetary_value_col="dollar_value"),
    dict(freq="D", freq_multiplier=7, monetary_value_col="dollar_value",
         observation_period_end="19980301"),
    dict(freq="W", monetary_value_col="dollar_value", include_first_transaction=True),
]

HOLDOUT_CASES = [
    dict(freq="D"),
    dict(freq="W", monetary_value_col="dollar_value"),
    dict(freq="D", freq_multiplier=7, monetary_value_col="dollar_value"),
]


@pytest.mark.parametrize("kwargs", SUMMARY_CASES,
                         ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_summary_equals_lifetimes_on_cdnow(cdnow_master, kwargs):
    args = (cdnow_master, "customer_id", "date")
    expected = lifetimes_utils.summary_data_from_transaction_data(
        *args, datetime_format="%Y%m%d", **kwargs)
    actual = clv_utils.summary_data_from_transaction_data(*args, datetime_format="%Y%m%d", **kwargs)
    assert len(actual) == 23_570
    assert actual.index[0] == "00001"  # leading zeros kept
    assert_summaries_match(expected, actual)


@pytest.mark.parametrize("kwargs", HOLDOUT_CASES,
                         ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_calibration_and_holdout_equals_lifetimes_on_cdnow(cdnow_master, kwargs):
    args = (cdnow_master, "customer_id", "date")
    ends = dict(calibration_period_end="19970930", observation_period_end="19980630")
    expected = lifetimes_utils.calibration_and_holdout_data(
        *args, datetime_format="%Y%m%d", **ends, **kwargs)
    actual = clv_utils.calibration_and_holdout_data(
        *args, datetime_format="%Y%m%d", **ends, **kwargs)
    assert_summaries_match(expected, actual)
    assert actual["frequency_holdout"].sum() > 0


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60),
                            st.integers(-5, 50)),
                  min_size=1, max_size=40),
    freq=st.sampled_from(["D", "W"]),
    include_first=st.booleans(),
)
def test_summary_equals_lifetimes_on_random_logs(rows, freq, include_first):
    # Unordered rows, several on one day or in one week (the first one included), returns:
    # the periods counted on sorted lists and the first period's amount must still agree.
    customers, days, amounts = zip(*rows, strict=True)
    tx = pd.DataFrame({"customer_id": customers,
                       "date": pd.Timestamp("2024-01-03") + pd.to_timedelta(days, unit="D"),
                       "amount": np.array(amounts, dtype=float)})
    kwargs = dict(freq=freq, include_first_transaction=include_first)
    expected = lifetimes_utils.summary_data_from_transaction_data(
        tx, "customer_id", "date", "amount", **kwargs)
    actual = clv_utils.summary_data_from_transaction_data(
        tx, "customer_id", "date", "amount", **kwargs)
    assert_summaries_match(expected, actual)


def test_integer_ids_keep_their_dtype():
    tx = pd.DataFrame({"id": [3, 3, 7],
                       "day": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-03"])})
    actual = clv_utils.summary_data_from_transaction_data(tx, "id", "day")
    expected = lifetimes_utils.summary_data_from_transaction_data(tx, "id", "day")
    assert actual.index.dtype == expected.index.dtype
    assert_summaries_match(expected, actual)


def test_unsupported_freq_is_a_clear_error(cdnow_master):
    # hours are accepted (tests/test_lifetimes_dropin.py); a quarter is no numpy time unit
    with pytest.raises(ValueError, match="freq must be 'M' or a numpy time unit"):
        clv_utils.summary_data_from_transaction_data(cdnow_master, "customer_id", "date", freq="Q")
    with pytest.raises(ValueError, match="freq must be 'M' or a numpy time unit"):
        clv_utils.calibration_and_holdout_data(cdnow_master, "customer_id", "date", "19970930",
                                               freq="Q", datetime_format="%Y%m%d")

"""The churn rule's day count and lifecycle status (clvtools.data.lifecycle)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import occasions_log

from clvtools.data.landmark_arrays import sorted_occasions
from clvtools.data.lifecycle import churn_days, lifecycle_status, spell_bounds
from clvtools.errors import ClvInputError
from clvtools.units import to_days

D = dt.date


def test_churn_days_round_half_up_to_whole_days():
    assert churn_days(6, "month") == 183 and churn_days(26, "week") == 182
    assert churn_days(1, "month") == 30  # 30.44 days
    assert to_days(0.5, "day", "x") == 1
    with pytest.raises(ClvInputError, match="'churn_after' parameter must be a positive"):
        churn_days(0, "week")


def test_lifecycle_status_bands():
    rows = [("new", D(2024, 3, 20), 1.0), ("act", D(2024, 1, 1), 1.0), ("act", D(2024, 3, 25), 1.0),
            ("risk", D(2024, 1, 1), 1.0), ("risk", D(2024, 2, 26), 1.0),   # 35 days idle
            ("gone", D(2024, 1, 1), 1.0), ("gone", D(2024, 1, 22), 1.0)]   # 70 days idle
    log = occasions_log(rows, D(2024, 4, 1))
    df = lifecycle_status(log, churn_after=8, at_risk_after=4)
    got = dict(zip(df["customer_id"], df["lifecycle"], strict=True))
    assert got == {"act": "active", "gone": "churned", "new": "new", "risk": "at_risk"}
    gone = df.set_index("customer_id").loc["gone"]
    assert gone["time_since_last_purchase"] == pytest.approx(10.0)
    assert gone["declared_at"] == pd.Timestamp(D(2024, 3, 18))
    assert df.set_index("customer_id")["declared_at"].drop("gone").isna().all()
    with pytest.raises(ClvInputError, match="less than"):
        lifecycle_status(log, churn_after=4, at_risk_after=4)


def test_lifecycle_status_of_a_truncated_log_is_the_status_at_that_date():
    rows = [("a", D(2024, 1, 1), 1.0), ("a", D(2024, 3, 25), 1.0), ("b", D(2024, 2, 20), 1.0)]
    early = occasions_log(rows, D(2024, 4, 1)).until(D(2024, 3, 1))
    df = lifecycle_status(early, churn_after=10, at_risk_after=4)
    # on Mar 1, a has been idle 60 days (at risk) and b bought 10 days ago (new)
    assert df["lifecycle"].tolist() == ["at_risk", "new"]
    assert df["last_purchase"].tolist() == [pd.Timestamp(2024, 1, 1), pd.Timestamp(2024, 2, 20)]


# Ids that sort differently as text and as numbers, a customer whose only amount is missing,
# one declared churned, one at risk, one new, and amounts below the micro-unit
MIXED = [
    ("9", dt.date(2024, 1, 1), 10.25), ("9", dt.date(2024, 5, 29), None),
    ("10", dt.date(2023, 11, 2), 3.1234565), ("10", dt.date(2024, 1, 5), -2.0),
    ("100", dt.date(2024, 3, 3), None), ("2", dt.date(2024, 6, 20), 0.0000005),
    ("a", dt.date(2024, 3, 1), 5.0), ("a", dt.date(2024, 6, 20), 1e9),
]


@pytest.mark.parametrize("amounts", [True, False])
def test_lifecycle_from_the_sorted_occasions_equals_the_query(amounts):
    rows = MIXED if amounts else [(c, d, None) for c, d, _ in MIXED]
    log = occasions_log(rows, dt.date(2024, 6, 30))
    rule = dict(churn_after=8, at_risk_after=4, time_unit="week")
    by_query = lifecycle_status(log, **rule)
    by_arrays = lifecycle_status(log, sorted_rows=sorted_occasions(log, churn_days(8, "week")),
                                 **rule)
    assert set(by_query["lifecycle"]) == {"churned", "at_risk", "new", "active"}
    pd.testing.assert_frame_equal(by_arrays, by_query, check_exact=True)


def test_spell_bounds_from_the_sorted_occasions_equal_the_window_pass():
    # gaps of exactly churn_days (56) and one day less, a reactivation, a lone purchase,
    # a spell both opened and closed by one occasion, ids that sort differently as numbers
    day = dt.date(2024, 1, 1)
    gaps = {"9": [0, 56, 111, 112, 200], "10": [0], "100": [5, 60, 61, 140], "a": [3, 59]}
    rows = [(c, day + dt.timedelta(days=g), 1.0) for c, own in gaps.items() for g in own]
    log = occasions_log(rows, dt.date(2024, 9, 30))
    cd = churn_days(8, "week")
    by_window = spell_bounds(log, cd)
    log.derived.clear()
    by_arrays = spell_bounds(log, cd, sorted_rows=sorted_occasions(log, cd))
    assert by_arrays != by_window
    con = log.con
    # the same columns and types, and a spell end's year of spend beside them
    assert con.execute(f"DESCRIBE {by_arrays}").fetchall() == \
        con.execute(f"DESCRIBE {by_window}").fetchall() + [
            ("year_micro", "BIGINT", "YES", None, None, None)]
    order = "ORDER BY customer_id, date"
    want = con.execute(f"FROM {by_window} {order}").df()
    assert len(want) == 10 and want["spell_start"].sum() == 8 and want["spell_end"].sum() == 8
    got = con.execute(f"FROM {by_arrays} {order}").df()
    pd.testing.assert_frame_equal(got.drop(columns="year_micro"), want)
    # customer 9's bounds: ends on days 0, 112 (0, 56, 111 and 112 within the year up to
    # it) and 200 (all five); every purchase is 1.0 (1e6 micro-units); NULL on a bare start
    nine = got[got["customer_id"] == "9"]
    assert nine["year_micro"].fillna(-1).tolist() == [1e6, -1, 4e6, 5e6]
    assert got["year_micro"].isna().eq(~got["spell_end"]).all()
    with pytest.raises(ValueError, match="churn delay of 56 days, not 30"):
        log.derived.clear()
        spell_bounds(log, 30, sorted_rows=sorted_occasions(log, cd))

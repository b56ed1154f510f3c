"""Landmark and scoring tables (clvtools.data.survival_tables)."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import occasions_log
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clvtools.data.attributes import CustomerAttributes
from clvtools.data.generator import generate_customer_base
from clvtools.data.kpis import kpi_table
from clvtools.data.landmark_arrays import sorted_occasions
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.data.transactions import TransactionLog, read_transactions
from clvtools.errors import ClvInputError

D = dt.date
OUTCOME = ["duration", "event"]


# a: Jan 1, Jan 8, then a 53-day gap (churn declared Feb 5 = Jan 8 + 28), reactivated Mar 1.
# b: Jan 1, Jan 20 (gap 19 < 28: one spell, declared Feb 17). c: first buys on Feb 1.
ROWS = [
    ("a", D(2024, 1, 1), 10.0), ("a", D(2024, 1, 8), 20.0), ("a", D(2024, 3, 1), 5.0),
    ("b", D(2024, 1, 1), 1.0), ("b", D(2024, 1, 20), 2.0),
    ("c", D(2024, 2, 1), 3.0),
]
END = D(2024, 4, 1)


def table(landmarks, end=END, **kw):
    kw.setdefault("churn_after", 4)
    return landmark_table(occasions_log(ROWS, end), landmarks=landmarks, **kw)


def attributes(con, table_name):
    return CustomerAttributes(table_name, {}, {}, con)


def row(df, customer, landmark):
    hit = df[(df["customer_id"] == customer) & (df["landmark"] == pd.Timestamp(landmark))]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_columns_come_in_the_documented_order():
    df = table([D(2024, 1, 10)])
    assert list(df.columns) == [
        "customer_id", "landmark", "duration", "event", "n_purchases", "frequency", "tenure",
        "time_since_last_purchase", "purchases_last_4", "purchases_last_13",
        "purchases_last_26", "purchases_last_52", "spend_last_4", "spend_last_13",
        "spend_last_26", "spend_last_52", "total_spend", "average_spend", "purchase_trend"]


def test_hand_computed_first_landmark():
    df = table([D(2024, 1, 10)])
    # c has no purchase on or before Jan 10: excluded.
    assert df["customer_id"].tolist() == ["a", "b"]
    a = row(df, "a", D(2024, 1, 10))
    assert a["event"] == 1 and a["duration"] == pytest.approx(26 / 7)  # Feb 5 - Jan 10
    assert a["n_purchases"] == 2 and a["frequency"] == 1
    assert a["tenure"] == pytest.approx(9 / 7)
    assert a["time_since_last_purchase"] == pytest.approx(2 / 7)
    assert a["purchases_last_4"] == 2 and a["spend_last_4"] == 30.0
    assert a["total_spend"] == 30.0 and a["average_spend"] == 15.0
    assert a["purchase_trend"] == 2  # 2 in (Dec 13, Jan 10], 0 in (Nov 15, Dec 13]
    b = row(df, "b", D(2024, 1, 10))
    # Walk forward: Jan 1 -> Jan 20 (gap 19 days) -> none: declared Jan 20 + 28 = Feb 17.
    assert b["event"] == 1 and b["duration"] == pytest.approx(38 / 7)
    assert b["n_purchases"] == 1 and b["total_spend"] == 1.0
    assert b["time_since_last_purchase"] == pytest.approx(9 / 7)


def test_declared_on_the_landmark_is_not_at_risk_and_reactivation_counts_again():
    df = table([D(2024, 2, 5), D(2024, 3, 2)])
    # Feb 5 = a's declaration day (Jan 8 + 28): a is no longer at risk.
    assert df[df["landmark"] == pd.Timestamp(D(2024, 2, 5))]["customer_id"].tolist() == ["b", "c"]
    c = row(df, "c", D(2024, 2, 5))
    assert c["event"] == 1 and c["duration"] == pytest.approx(24 / 7)  # Feb 29 - Feb 5
    # Mar 2: a bought again on Mar 1 (reactivated) and is at risk; b and c are churned.
    assert df[df["landmark"] == pd.Timestamp(D(2024, 3, 2))]["customer_id"].tolist() == ["a"]
    a = row(df, "a", D(2024, 3, 2))
    assert a["event"] == 1 and a["duration"] == pytest.approx(27 / 7)  # Mar 29 - Mar 2
    assert a["n_purchases"] == 3 and a["tenure"] == pytest.approx(61 / 7)
    assert a["purchases_last_4"] == 1 and a["purchases_last_13"] == 3
    assert a["spend_last_4"] == 5.0 and a["total_spend"] == 35.0
    assert a["purchase_trend"] == 0  # 1 in (Feb 3, Mar 2] minus 1 (Jan 8) in (Jan 6, Feb 3]


def test_censoring_at_the_observation_end():
    df = table([D(2024, 3, 2)], end=D(2024, 3, 20))
    a = row(df, "a", D(2024, 3, 2))
    # Declaration Mar 29 falls after the observation end: censored at Mar 20.
    assert a["event"] == 0 and a["duration"] == pytest.approx(18 / 7)


def test_stacked_landmarks_equal_single_landmarks_concatenated():
    marks = [D(2024, 1, 10), D(2024, 2, 5), D(2024, 3, 2)]
    stacked = table(marks)
    singles = pd.concat([table([m]) for m in marks], ignore_index=True)
    pd.testing.assert_frame_equal(stacked, singles)
    assert len(stacked) == 2 + 2 + 1


def test_durations_stay_on_the_day_grid_in_month_units():
    df = table([D(2024, 1, 10), D(2024, 2, 5)], time_unit="month", churn_after=1)
    days = df["duration"] * (365.2425 / 12)
    np.testing.assert_allclose(days, np.round(days), atol=1e-9)
    # 1 month = 30.44 days, rounded half up to 30: b is declared Jan 20 + 30 = Feb 19.
    assert row(df, "b", D(2024, 2, 5))["duration"] * (365.2425 / 12) == pytest.approx(14)


def test_attributes_are_joined_and_missing_ones_are_nan():
    log = occasions_log(ROWS, END)
    log.con.execute("CREATE TABLE attrs AS SELECT * FROM (VALUES ('a', 'gold', 1.5), "
                    "('z', 'x', 0.0)) AS t(customer_id, tier, score)")
    df = landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4,
                        attributes=attributes(log.con, "attrs"))
    assert list(df.columns[-2:]) == ["tier", "score"]
    assert df["tier"].tolist()[0] == "gold" and np.isnan(df["score"].tolist()[1])


def test_attribute_errors_are_clear():
    log = occasions_log(ROWS, END)
    con = log.con
    con.execute("CREATE TABLE dup AS SELECT * FROM (VALUES ('a', 1), ('a', 2)) t(customer_id, x)")
    with pytest.raises(ClvInputError, match="more than once"):
        landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4,
                       attributes=attributes(con, "dup"))
    con.execute("CREATE TABLE clash AS SELECT 'a' AS customer_id, 1 AS tenure")
    with pytest.raises(ClvInputError, match="clash"):
        landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4,
                       attributes=attributes(con, "clash"))


def test_input_errors_say_what_is_wrong():
    with pytest.raises(ClvInputError, match="before the observation end"):
        table([END])
    with pytest.raises(ClvInputError, match="dated after the observation end") as err:
        table([D(2024, 1, 10)], end=D(2024, 2, 15))
    assert err.value.n_rows == 1 and err.value.rows["customer_id"].tolist() == ["a"]
    with pytest.raises(ClvInputError, match="no table or view named 'nope'"):
        landmark_table(TransactionLog(duckdb.connect(), "nope", END, True),
                       landmarks=[D(2024, 1, 10)], churn_after=4)
    with pytest.raises(ClvInputError, match="'churn_after' parameter must be a positive"):
        table([D(2024, 1, 10)], churn_after=-3)
    con = duckdb.connect()
    con.register("ts", pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2024-01-01"]),
                                     "amount": [1.0]}))
    with pytest.raises(ClvInputError, match="type DATE. Got TIMESTAMP") as err:
        landmark_table(TransactionLog(con, "ts", END, True), landmarks=[D(2024, 1, 10)],
                       churn_after=4)
    assert err.value.column == "date"


def test_spend_is_nan_without_amounts_and_zero_for_an_empty_window():
    rows = [(c, d, None) for c, d, _ in ROWS]
    df = landmark_table(occasions_log(rows, END), landmarks=[D(2024, 3, 2)], churn_after=4)
    assert df[["spend_last_4", "total_spend", "average_spend"]].isna().all().all()
    df = table([D(2024, 2, 5)])
    assert row(df, "b", D(2024, 2, 5))["spend_last_4"] == 2.0
    assert row(df, "b", D(2024, 2, 5))["spend_last_13"] == 3.0
    df = table([D(2024, 2, 5)], windows=(1,))
    assert row(df, "b", D(2024, 2, 5))["spend_last_1"] == 0.0  # nothing in (Jan 29, Feb 5]


def test_scoring_table_has_the_landmark_covariates_at_the_observation_end():
    score = scoring_table(occasions_log(ROWS, D(2024, 3, 20)), churn_after=4)
    later = table([D(2024, 3, 20)], end=D(2024, 6, 1))
    assert "duration" not in score.columns and score["customer_id"].tolist() == ["a"]
    pd.testing.assert_frame_equal(score, later.drop(columns=OUTCOME))


# ---------------------------------------------------------------- no future information
LANDMARK_DAY, END_DAY = 60, 120
ORIGIN = D(2024, 1, 1)


def day(k):
    return ORIGIN + dt.timedelta(days=int(k))


@st.composite
def histories(draw):
    """A few customers, each with distinct purchase days in [0, END_DAY] and integer amounts."""
    out = {}
    for c in "pqrs"[: draw(st.integers(1, 4))]:
        days = draw(st.sets(st.integers(0, END_DAY), min_size=1, max_size=8))
        out[c] = {d: float(draw(st.integers(1, 50))) for d in days}
    return out


_CON = duckdb.connect()  # one connection for all examples: connecting costs more than querying


def covariates(hist, churn_after, landmark_day=LANDMARK_DAY):
    rows = [(c, day(d), a) for c, h in hist.items() for d, a in h.items()]
    df = landmark_table(occasions_log(rows, day(END_DAY), con=_CON),
                        landmarks=[day(landmark_day)], churn_after=churn_after, time_unit="day",
                        windows=(7, 30))
    return df.drop(columns=OUTCOME)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hist=histories(), churn_after=st.integers(5, 40), data=st.data())
def test_transactions_after_the_landmark_change_no_covariate(hist, churn_after, data):
    before = covariates(hist, churn_after)
    customer = data.draw(st.sampled_from(sorted(hist) + ["newcomer"]))
    hist = {**hist, customer: hist.get(customer, {})}
    later = sorted(d for d in hist[customer] if d > LANDMARK_DAY)
    free = sorted(set(range(LANDMARK_DAY + 1, END_DAY + 1)) - set(hist[customer]))
    ops = (["add"] if free else []) + (["delete", "change"] if later else [])
    op = data.draw(st.sampled_from(ops))
    changed = {c: dict(h) for c, h in hist.items()}
    if op == "add":
        changed[customer][data.draw(st.sampled_from(free))] = 99.0
    else:
        d = data.draw(st.sampled_from(later))
        amount = changed[customer].pop(d)
        if op == "change":  # new amount, possibly on another day after the landmark
            changed[customer][data.draw(st.sampled_from(free + [d]))] = amount + 1
    changed = {c: h for c, h in changed.items() if h}
    pd.testing.assert_frame_equal(covariates(changed, churn_after), before)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hist=histories(), churn_after=st.integers(5, 40), data=st.data())
def test_a_transaction_up_to_the_landmark_changes_some_covariate(hist, churn_after, data):
    before = covariates(hist, churn_after)
    at_risk = before["customer_id"].tolist()
    if not at_risk:  # nobody at risk: nothing whose covariates could change
        return
    customer = data.draw(st.sampled_from(at_risk))
    earlier = sorted(d for d in hist[customer] if d <= LANDMARK_DAY)
    free = sorted(set(range(0, LANDMARK_DAY + 1)) - set(hist[customer]))
    op = data.draw(st.sampled_from(["delete", "change"] + (["add"] if free else [])))
    changed = {c: dict(h) for c, h in hist.items()}
    if op == "add":
        changed[customer][data.draw(st.sampled_from(free))] = 99.0
    elif op == "delete":
        del changed[customer][data.draw(st.sampled_from(earlier))]
    else:
        changed[customer][data.draw(st.sampled_from(earlier))] += 1
    changed = {c: h for c, h in changed.items() if h}
    after = covariates(changed, churn_after)
    assert not before.equals(after)


# ---------------------------------------------------------------- tables on a truncated log
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hist=histories(), churn_after=st.integers(5, 40),
       cut=st.integers(LANDMARK_DAY + 1, END_DAY))
def test_a_table_on_log_until_sees_no_occasion_after_the_date(hist, churn_after, cut):
    rows = [(c, day(d), a) for c, h in hist.items() for d, a in h.items()]
    kept = [r for r in rows if r[1] <= day(cut)]
    assume(kept)  # until() refuses a date before the first purchase
    kw = dict(landmarks=[day(LANDMARK_DAY)], churn_after=churn_after, time_unit="day",
              windows=(7, 30))
    until = landmark_table(occasions_log(rows, day(END_DAY), con=_CON).until(day(cut)), **kw)
    # the same table from a log that never held the later occasions
    truncated = landmark_table(occasions_log(kept, day(cut), con=_CON, name="occ_cut"), **kw)
    pd.testing.assert_frame_equal(until, truncated, check_exact=True)


def test_a_table_on_log_until_equals_one_from_the_truncated_transactions():
    tx = generate_customer_base(800, seed=7, start="2023-01-01",
                                observation_end="2024-06-30").transactions
    log = read_transactions(tx, observation_end="2024-06-30")
    cut = D(2024, 1, 31)
    early = read_transactions(tx[tx["date"] <= pd.Timestamp(cut)], observation_end=cut)
    for landmarks in ([D(2023, 10, 31)], [D(2023, 7, 31), D(2023, 10, 31), D(2024, 1, 30)]):
        pd.testing.assert_frame_equal(
            landmark_table(log.until(cut), landmarks=landmarks, churn_after=13),
            landmark_table(early, landmarks=landmarks, churn_after=13), check_exact=True)
    pd.testing.assert_frame_equal(scoring_table(log.until(cut), churn_after=13),
                                  scoring_table(early, churn_after=13), check_exact=True)
    # the whole log would have seen outcomes after the cut: censoring differs
    whole = landmark_table(log, landmarks=[D(2023, 10, 31)], churn_after=13)
    assert not whole.equals(landmark_table(log.until(cut), landmarks=[D(2023, 10, 31)],
                                           churn_after=13))


def test_spell_bounds_are_built_once_by_the_kpis_and_serve_the_query_path():
    # the landmark tables come from the sorted occasions (numpy) and build no spell table;
    # the KPIs build one per log and churn rule, which the query path (amounts too large for
    # int64 micro-units) then shares; the rows are those of a fresh log
    log = occasions_log(ROWS, END)
    late = landmark_table(log, landmarks=[D(2024, 3, 5)], churn_after=4)
    early = landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4)
    assert not [k for k in log.derived if k[0] == "spell_bounds"]
    kpi_table(log, churn_after=4)
    first = dict(log.derived)
    assert [k for k in first if k[0] == "spell_bounds"] == [("spell_bounds", 28)]
    with mock.patch("clvtools.data.survival_tables.sorted_occasions", return_value=None):
        again = landmark_table(log, landmarks=[D(2024, 3, 5)], churn_after=4)
    held = [v for k, v in log.derived.items() if k[0] == "spell_bounds"]
    assert held == [first[("spell_bounds", 28)]]
    tables = {name for (name,) in log.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_spell_bounds_%'"
    ).fetchall()}
    assert tables == set(held)
    for marks, built in (([D(2024, 3, 5)], late), ([D(2024, 1, 10)], early),
                         ([D(2024, 3, 5)], again)):
        pd.testing.assert_frame_equal(built, table(marks), check_exact=True)
    # a's last purchase, Mar 1, is declared churned on Mar 29: 24 days after the landmark
    assert row(again, "a", D(2024, 3, 5))[OUTCOME].tolist() == [24 / 7, 1]


# ---------------------------------------------------------------- numpy rows = the query's
# Ids that sort differently as text and as numbers ("10" < "9"), a day with no amount among
# others, same-day neighbours of a churn gap, a customer with one purchase, and amounts with
# digits below the micro-unit (rounded half away from zero, as money.py does).
MIXED = [
    ("9", D(2024, 1, 1), 10.25), ("9", D(2024, 1, 29), None), ("9", D(2024, 3, 1), 0.0000005),
    ("10", D(2023, 11, 2), 3.1234565), ("10", D(2024, 1, 5), -2.0), ("10", D(2024, 2, 2), 7.0),
    ("100", D(2024, 1, 3), None), ("2", D(2023, 12, 30), 1e9), ("2", D(2024, 3, 28), 0.1),
    ("a", D(2024, 2, 20), 0.3),
]
MARKS = [D(2023, 12, 31), D(2024, 1, 10), D(2024, 2, 5), D(2024, 3, 2), D(2024, 3, 30)]


def query_rows(log, function, **kw):
    """The same table by the landmark tables' SQL (kept in DuckDB, then read back)."""
    function(log, into="by_query", **kw)
    return log.con.execute("SELECT * FROM by_query").df()


@pytest.mark.parametrize("rows", [MIXED, [(c, d, None) for c, d, _ in MIXED]],
                         ids=["amounts", "no amounts"])
@pytest.mark.parametrize("churn_after", [1, 4, 9])
def test_numpy_rows_equal_the_query_bit_for_bit(rows, churn_after):
    log = occasions_log(rows, END)
    for marks in ([MARKS[0]], MARKS):
        pd.testing.assert_frame_equal(
            landmark_table(log, landmarks=marks, churn_after=churn_after),
            query_rows(log, landmark_table, landmarks=marks, churn_after=churn_after),
            check_exact=True)
    pd.testing.assert_frame_equal(
        scoring_table(log, churn_after=churn_after),
        query_rows(log, scoring_table, churn_after=churn_after), check_exact=True)


def test_numpy_rows_take_the_attributes_as_of_each_landmark_as_the_query_does():
    log = occasions_log(MIXED, END)
    log.con.execute("""CREATE TABLE attrs AS SELECT * FROM (VALUES
        ('9', 'gold', DATE '2023-06-01', DATE '2024-02-01'),
        ('10', 'silver', DATE '2022-01-01', DATE '2023-01-01'),
        ('zz', 'x', DATE '2020-01-01', DATE '2020-01-01')) AS t(customer_id, tier, signup,
                                                               _valid_from)""")
    dated = CustomerAttributes("attrs", {"tier": "categorical", "signup": "duration"},
                               {"valid_from": "_valid_from"}, log.con,
                               fills={"tier": "'(missing)'", "signup": "NULL"})
    assert dated.has_valid_from
    for attrs in (attributes(log.con, "attrs"), dated):
        pd.testing.assert_frame_equal(
            landmark_table(log, landmarks=MARKS, churn_after=4, attributes=attrs),
            query_rows(log, landmark_table, landmarks=MARKS, churn_after=4, attributes=attrs),
            check_exact=True)
        pd.testing.assert_frame_equal(
            scoring_table(log, churn_after=4, attributes=attrs),
            query_rows(log, scoring_table, churn_after=4, attributes=attrs), check_exact=True)


def test_amounts_too_large_for_int64_micro_units_take_the_query():
    # 5e12 twice is past what int64 micro-units hold for one customer: the query sums them
    rows = [("a", D(2024, 1, 1), 5e12), ("a", D(2024, 1, 8), 5e12), ("b", D(2024, 1, 2), 1.0)]
    log = occasions_log(rows, END)
    assert sorted_occasions(log, 28) is None
    df = landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4)
    assert row(df, "a", D(2024, 1, 10))["total_spend"] == 1e13
    assert [k for k in log.derived if k[0] == "spell_bounds"]   # the query's shared table


def test_given_sorted_occasions_are_used_only_for_their_churn_rule():
    log = occasions_log(MIXED, END)
    shared = sorted_occasions(log, 28)
    with mock.patch("clvtools.data.survival_tables.sorted_occasions",
                    side_effect=AssertionError("fetched again")):
        same = landmark_table(log, landmarks=MARKS, churn_after=4, sorted_rows=shared)
    pd.testing.assert_frame_equal(same, landmark_table(log, landmarks=MARKS, churn_after=4),
                                  check_exact=True)
    # another churn rule: its own fetch, its own spell ends
    pd.testing.assert_frame_equal(
        landmark_table(log, landmarks=MARKS, churn_after=2, sorted_rows=shared),
        query_rows(log, landmark_table, landmarks=MARKS, churn_after=2), check_exact=True)


@pytest.mark.parametrize("rows", [MIXED, [(c, d, None if d < D(2024, 2, 1) else a)
                                           for c, d, a in MIXED]],
                         ids=["amounts", "amounts only after February"])
def test_a_scoring_table_on_log_until_takes_the_whole_logs_sorted_occasions(rows):
    # the early warning's earlier scoring table comes from the run's sorted occasions of the
    # whole log: the same rows as its own fetch of the cut log and as the query
    log = occasions_log(rows, END)
    log.con.execute("CREATE TABLE attrs AS SELECT * FROM (VALUES ('9', 'gold'), "
                    "('2', 'silver')) AS t(customer_id, tier)")
    attrs = CustomerAttributes("attrs", {"tier": "categorical"}, {}, log.con,
                               fills={"tier": "'(missing)'"})
    whole = sorted_occasions(log, 28)
    for date in MARKS:
        cut = log.until(date)
        with mock.patch("clvtools.data.survival_tables.sorted_occasions",
                        side_effect=AssertionError("fetched again")):
            shared = scoring_table(cut, churn_after=4, attributes=attrs, sorted_rows=whole)
        assert (shared["landmark"] == pd.Timestamp(date)).all()
        pd.testing.assert_frame_equal(
            shared, scoring_table(cut, churn_after=4, attributes=attrs), check_exact=True)
        pd.testing.assert_frame_equal(
            shared, query_rows(cut, scoring_table, churn_after=4, attributes=attrs),
            check_exact=True)


def test_a_table_kept_in_duckdb_does_not_hold_its_spell_ends():
    # the chunked run keeps its one landmark table in DuckDB: no spell table is kept
    log = occasions_log(ROWS, END)
    landmark_table(log, landmarks=[D(2024, 1, 10)], churn_after=4, into="kept")
    assert not [k for k in log.derived if k[0] == "spell_bounds"]
    assert log.con.execute("SELECT count(*) FROM duckdb_tables() "
                           "WHERE table_name LIKE '_spell_%'").fetchone()[0] == 0
    kept = log.con.execute("SELECT * FROM kept").df()
    pd.testing.assert_frame_equal(kept, table([D(2024, 1, 10)]), check_exact=True)


@pytest.mark.parametrize("ordered", [True, False])
def test_searching_in_slices_finds_numpys_positions(ordered):
    """The landmark tables' searches, a chunk of targets at a time in the slice of keys they
    span: numpy's positions for targets in order (as the callers have them) or not, repeated
    keys, and targets below, between and above the keys."""
    from clvtools.data.landmark_arrays import SEARCH_CHUNK, search_in_slices
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 10**7, 20 * SEARCH_CHUNK)) * 2   # even: odd targets miss
    keys[100:200] = keys[100]                                         # a run of one key
    targets = np.r_[-5, rng.integers(-10, 2 * 10**7 + 10, 5 * SEARCH_CHUNK + 17), keys[150],
                    keys[-1] + 1]
    if ordered:
        targets = np.sort(targets)
    found = search_in_slices(keys, targets)
    assert found.dtype == np.int64
    np.testing.assert_array_equal(found, np.searchsorted(keys, targets, "left"))

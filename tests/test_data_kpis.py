"""KPIs per period and acquisition cohorts (clvtools.data.kpis)."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import occasions_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvtools.data.kpis import cohort_table, kpi_table
from clvtools.errors import ClvInputError

D = dt.date
NAN = np.nan

# Five customers over four months; churn after 30 days of silence; observed to Apr 15.
#   A: Jan 5, Jan 20, Feb 10, Mar 5, Apr 1 (gaps < 30): one spell, declared May 1 (not seen).
#   B: Jan 10: declared Feb 9.
#   C: Jan 15 (declared Feb 14), reactivated Mar 20 (declared Apr 19, after the end).
#   D: Feb 1, Feb 20: declared Mar 21.
#   E: Mar 31: declared Apr 30 (not seen).
ROWS = [
    ("A", D(2024, 1, 5), 10.0), ("A", D(2024, 1, 20), 10.0), ("A", D(2024, 2, 10), 10.0),
    ("A", D(2024, 3, 5), 10.0), ("A", D(2024, 4, 1), 10.0),
    ("B", D(2024, 1, 10), 5.0),
    ("C", D(2024, 1, 15), 7.0), ("C", D(2024, 3, 20), 3.0),
    ("D", D(2024, 2, 1), 4.0), ("D", D(2024, 2, 20), 6.0),
    ("E", D(2024, 3, 31), 100.0),
]
END = D(2024, 4, 15)
SETTINGS = dict(churn_after=30, time_unit="day")

_CON = duckdb.connect()  # one connection for all tests: connecting costs more than querying


def connect(rows, end=END):
    """A log of these occasions observed to ``end``."""
    return occasions_log(rows, end, con=_CON)


def test_kpis_by_month_figure_by_figure():
    k = kpi_table(connect(ROWS), period="month", **SETTINGS)
    assert k["label"].tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert k["period"].tolist() == [pd.Timestamp(2024, m, 1) for m in (1, 2, 3, 4)]
    expected = pd.DataFrame({
        # Jan: A, B, C arrive. Feb: D arrives, B and C are declared (Feb 9, Feb 14).
        # Mar: E arrives, C comes back (Mar 20), D is declared (Mar 21).
        # Apr (cut at Apr 15): no declaration yet (C's is Apr 19).
        "active_start": [0, 3, 2, 3],
        "new": [3, 1, 1, 0],
        "reactivated": [0, 0, 1, 0],
        "churned": [0, 2, 1, 0],
        "active_end": [3, 2, 3, 3],
        "churn_rate": [NAN, 2 / 3, 1 / 2, 0.0],
        "retention_rate": [NAN, 1 / 3, 1 / 2, 1.0],
        # Feb: of A, B, C only A is still active; Mar: of A, D only A.
        "stock_retention": [NAN, 1 / 3, 1 / 2, 1.0],
        "growth_rate": [NAN, 1 / 3, 1 / 2, 0.0],
        "net_change": [3, -1, 1, 0],
        "revenue": [32.0, 20.0, 113.0, 10.0],
        # Feb: B's last year (5) and C's first spell (7); Mar: D's spell (4 + 6)
        "revenue_lost_to_churn": [0.0, 12.0, 10.0, 0.0],
        # over the base's revenue in the 365 days up to each period's end (Apr: up to Apr 15)
        "revenue_lost_share": [0.0, 12.0 / 52.0, 10.0 / 165.0, 0.0],
        "complete": [True, True, True, False],
    })
    counts = ["active_start", "new", "reactivated", "churned", "active_end", "net_change"]
    assert (k[counts].dtypes == "int64").all(), k.dtypes
    pd.testing.assert_frame_equal(k[expected.columns], expected)


def test_revenue_lost_counts_only_the_last_year_of_the_spell_that_ended():
    # F buys for 100 in 2022, is declared churned a month later, comes back for 5 after more
    # than a year and is declared again: the second declaration loses 5, not 105
    rows = [("F", D(2022, 1, 1), 100.0), ("F", D(2023, 3, 1), 5.0)]
    k = kpi_table(connect(rows, end=D(2023, 6, 30)), period="quarter", **SETTINGS)
    lost = k.set_index("label")["revenue_lost_to_churn"]
    assert lost["2022Q1"] == 100.0 and lost["2023Q1"] == 5.0
    assert lost.drop(["2022Q1", "2023Q1"]).eq(0).all()


def test_cohorts_figure_by_figure():
    c = cohort_table(connect(ROWS), period="month", **SETTINGS)
    assert list(c.columns) == ["cohort", "label", "size", "k", "period", "active", "retention",
                               "complete"]
    # Jan cohort A, B, C: end of Jan all three; end of Feb only A; end of Mar A and C
    # (reactivated); at Apr 15 A and C. Feb cohort D: gone by end of Mar. Mar cohort E.
    assert c["label"].tolist() == ["2024-01"] * 4 + ["2024-02"] * 3 + ["2024-03"] * 2
    assert c["size"].tolist() == [3] * 4 + [1] * 3 + [1] * 2
    assert c["k"].tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1]
    assert c["active"].tolist() == [3, 1, 2, 2, 1, 0, 0, 1, 1]
    np.testing.assert_allclose(c["retention"], [1, 1 / 3, 2 / 3, 2 / 3, 1, 0, 0, 1, 1])
    assert c["complete"].tolist() == [True, True, True, False, True, True, False, True, False]
    wide = cohort_table(connect(ROWS), period="month", wide=True, **SETTINGS)
    assert list(wide.columns) == ["cohort", "label", "size", "k0", "k1", "k2", "k3"]
    np.testing.assert_allclose(wide["k2"], [2 / 3, 0, NAN])
    assert wide["k3"].isna().tolist() == [False, True, True]


def test_period_labels_and_weeks_start_on_monday():
    log = connect(ROWS)
    weeks = kpi_table(log, period="week", **SETTINGS)
    assert weeks["label"].iloc[0] == "2024-W01"
    assert weeks["period"].iloc[0] == pd.Timestamp(2024, 1, 1)
    assert (weeks["period"].dt.dayofweek == 0).all()
    quarters = kpi_table(log, period="quarter", **SETTINGS)
    assert quarters["label"].tolist() == ["2024Q1", "2024Q2"]
    assert quarters["new"].tolist() == [5, 0] and quarters["reactivated"].tolist() == [1, 0]
    years = kpi_table(log, period="year", **SETTINGS)
    assert years["label"].tolist() == ["2024"] and years["revenue"].tolist() == [175.0]
    with pytest.raises(ClvInputError, match="'period' parameter must be"):
        kpi_table(log, period="fortnight", **SETTINGS)


def test_revenue_is_nan_without_amounts_and_zero_for_a_quiet_period():
    k = kpi_table(connect([(c, d, None) for c, d, _ in ROWS]), period="month", **SETTINGS)
    assert k["revenue"].isna().all() and k["active_end"].tolist() == [3, 2, 3, 3]
    k = kpi_table(connect([("A", D(2024, 1, 5), 1.0), ("A", D(2024, 3, 5), 2.0)], D(2024, 3, 31)),
                  period="month", churn_after=90, time_unit="day")
    assert k["revenue"].tolist() == [1.0, 0.0, 2.0]


@st.composite
def histories(draw):
    out = []
    for c in "pqrstu"[: draw(st.integers(1, 6))]:
        for d in draw(st.sets(st.integers(0, 200), min_size=1, max_size=10)):
            out.append((c, D(2024, 1, 1) + dt.timedelta(days=d), 1.0))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=histories(), churn_after=st.integers(1, 60), end_extra=st.integers(0, 40),
       period=st.sampled_from(["week", "month"]))
def test_stock_flow_identity_and_cohorts_add_up(rows, churn_after, end_extra, period):
    end = max(r[1] for r in rows) + dt.timedelta(days=end_extra)
    log = connect(rows, end)
    s = dict(churn_after=churn_after, time_unit="day", period=period)
    k = kpi_table(log, **s)
    flow = k["active_start"] + k["new"] + k["reactivated"] - k["churned"]
    assert (k["active_end"] == flow).all()
    # One period's end is the next one's start; everyone is new exactly once.
    assert (k["active_end"].iloc[:-1].to_numpy() == k["active_start"].iloc[1:].to_numpy()).all()
    assert k["new"].sum() == len({r[0] for r in rows})
    assert k["complete"].tolist()[:-1] == [True] * (len(k) - 1)
    # Independent oracle for the active base: walk each customer's dates (a gap of
    # churn_after days or more ends a spell; active at b when start < b <= last + churn_after).
    spells = []
    for cust in {r[0] for r in rows}:
        dates = sorted(r[1] for r in rows if r[0] == cust)
        start = prev = dates[0]
        for d in dates[1:] + [None]:
            if d is None or (d - prev).days >= churn_after:
                spells.append((cust, start, prev + dt.timedelta(days=churn_after)))
                start = d
            prev = d
    bounds = [min(p + pd.DateOffset(weeks=1) if period == "week" else p + pd.DateOffset(months=1),
                  pd.Timestamp(end) + pd.Timedelta(days=1)) for p in k["period"]]

    def active(b):
        return {c for c, a, z in spells if pd.Timestamp(a) < b <= pd.Timestamp(z)}

    assert k["active_end"].tolist() == [len(active(b)) for b in bounds]
    # Stock retention: of those active at the start, the share active at the (cut) end,
    # whether or not they churned and came back in between.
    for start, b, got in zip(k["period"], bounds, k["stock_retention"], strict=True):
        base = active(start)
        want = len(base & active(b)) / len(base) if base else np.nan
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    c = cohort_table(log, **s)
    per_period = c.groupby("period")["active"].sum().reindex(k["period"], fill_value=0)
    assert (per_period.to_numpy() == k["active_end"].to_numpy()).all()
    assert (k["stock_retention"].dropna().between(0, 1)).all()


def test_churn_by_value_tier_uses_the_revenue_before_each_period():
    from clvtools.data.kpi_segments import churn_by_segment

    # January's base (start of Feb): A (30 in Jan), B (5), C (7); the top third by revenue
    # up to Feb 1 is A alone. B and C are declared in February, A is not.
    out = churn_by_segment(connect(ROWS), period="month", value_share=1 / 3, **SETTINGS)
    feb = out[(out["label"] == "2024-02")].set_index("segment")
    assert feb["by"].eq("value_tier").all()
    assert feb.loc["high", ["active_start", "churned"]].tolist() == [1, 0]
    assert feb.loc["low", ["active_start", "churned"]].tolist() == [2, 2]
    # the base and its churners add up to kpi_table's per period (churn_after < a month
    # here is not needed: no spell both starts and is declared within one month)
    k = kpi_table(connect(ROWS), period="month", **SETTINGS).set_index("label")
    tiers = out.groupby("label")[["active_start", "churned"]].sum()
    pd.testing.assert_series_equal(tiers["active_start"], k.loc[tiers.index, "active_start"],
                                   check_names=False)
    pd.testing.assert_series_equal(tiers["churned"], k.loc[tiers.index, "churned"],
                                   check_names=False)


def _value_tiers_by_hand(rows, end, period: str, churn_days: int, share: float,
                         year: int) -> pd.DataFrame:
    """churn_by_segment's value tiers counted customer by customer and period by period."""
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    log["date"] = pd.to_datetime(log["date"])
    freq = {"week": "W-MON", "quarter": "QS"}[period]
    start = {"week": lambda d: d - pd.Timedelta(days=d.weekday()),
             "quarter": lambda d: pd.Timestamp(d.year, 3 * ((d.month - 1) // 3) + 1, 1)}[period]
    starts = pd.date_range(start(log["date"].min()), pd.Timestamp(end), freq=freq)
    starts = starts[starts >= start(log["date"].min())]
    log["idx"] = np.searchsorted(starts, log["date"], side="right") - 1
    out = []
    for i, ps in enumerate(starts):
        base = []
        for _, own in log.groupby("customer_id"):
            dates = own["date"].sort_values().tolist()
            for k, d in enumerate(dates):   # spells: a gap of churn_days or more opens one
                if k > 0 and (d - dates[k - 1]).days < churn_days:
                    continue
                last = next((e for j, e in enumerate(dates[k:], k) if j + 1 == len(dates)
                             or (dates[j + 1] - e).days >= churn_days))
                declared = last + pd.Timedelta(days=churn_days)
                if d < ps <= declared:
                    value = own.loc[own["idx"].between(i - year, i - 1), "amount"].sum()
                    lost = declared <= pd.Timestamp(end) and start(declared) == ps
                    base.append((round(value, 6), lost))
        if base:
            values = np.array([v for v, _ in base])
            high = values > np.quantile(values, 1 - share)
            for name, chosen in (("high", high), ("low", ~high)):
                if chosen.any():
                    lost = np.array([c for _, c in base])[chosen]
                    out.append((ps, name, int(chosen.sum()), int(lost.sum())))
    return pd.DataFrame(out, columns=["period", "segment", "active_start", "churned"])


@pytest.mark.parametrize("period, year, chunk_cells, fetch", [
    ("week", 52, None, None), ("quarter", 4, None, None), ("week", 52, 7, None),
    ("week", 52, 7, 6), ("quarter", 4, None, 6), ("quarter", 4, 20, None)])
def test_value_tiers_match_a_count_by_hand(period, year, chunk_cells, fetch, monkeypatch):
    from clvtools.data import kpi_segments
    from clvtools.data.kpi_segments import churn_by_segment

    if chunk_cells is not None:     # the dense tables built one or two customers at a time
        monkeypatch.setattr(kpi_segments, "TIER_CHUNK_CELLS", chunk_cells)
    if fetch is not None:           # the 40 customers' rows fetched 6 customers at a time
        monkeypatch.setattr(kpi_segments, "TIER_FETCH_CUSTOMERS", fetch)
    rng = np.random.default_rng(7)
    start, end = D(2023, 1, 1), D(2024, 6, 30)
    rows = sorted({(f"c{c}", start + dt.timedelta(days=int(day)), float(rng.integers(1, 40)))
                   for c in range(40) for day in rng.choice(546, rng.integers(1, 9))})
    rows = list({(c, d): (c, d, a) for c, d, a in rows}.values())   # one occasion a day
    got = churn_by_segment(connect(rows, end), period=period, churn_after=45,
                           time_unit="day", value_share=0.25)
    got = got[got["by"] == "value_tier"]
    want = _value_tiers_by_hand(rows, end, period, 45, 0.25, year)
    pd.testing.assert_frame_equal(
        got[["period", "segment", "active_start", "churned"]].reset_index(drop=True),
        want.sort_values(["period", "segment"], ignore_index=True), check_dtype=False)


@pytest.mark.parametrize("chunk_cells", [None, 4])
def test_tier_counts_of_a_part_whose_last_customer_has_spend_but_no_base_period(
        chunk_cells, monkeypatch):
    from clvtools.data import kpi_segments

    if chunk_cells is not None:     # one customer at a time
        monkeypatch.setattr(kpi_segments, "TIER_CHUNK_CELLS", chunk_cells)
    # kind 0: spend (code, period a, amount n); 1: a spell's base periods a..b; 2: the same,
    # declared in period b. Customer 2 opened a spell in the last period (no base period).
    part = {"kind": np.array([0, 0, 2, 0, 1, 0, 1], np.int8),
            "code": np.array([0, 0, 0, 1, 1, 2, 2], np.int32),
            "a": np.array([0, 1, 1, 1, 2, 2, 3], np.int32),
            "b": np.array([-1, -1, 2, -1, 2, -1, 2], np.int32),
            "n": np.array([5, 7, 0, 3, 0, 9, 0], np.int64)}
    ps = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]))
    got = kpi_segments._tier_counts([part], ps, 0.5, 1)
    # period 1: customer 0 (value 5, the median: low); period 2: customer 0 (7, churned:
    # high) and customer 1 (3: low)
    assert got.values.tolist() == [
        [ps[1], "value_tier", "low", 1, 0], [ps[2], "value_tier", "high", 1, 1],
        [ps[2], "value_tier", "low", 1, 0]]


@pytest.mark.parametrize("amounts", ["all", "some missing", "none"])
def test_kpis_from_the_sorted_occasions_spell_bounds_equal_the_window_pass(amounts):
    """The risk step may build the run's spell bounds from its sorted occasions (with each
    spell end's year of spend, read by the revenue lost to churn): the same tables."""
    from clvtools.data.landmark_arrays import sorted_occasions
    from clvtools.data.lifecycle import churn_days, spell_bounds

    rng = np.random.default_rng(11)
    start, end = D(2022, 1, 1), D(2024, 6, 30)
    rows = {(f"c{c}", start + dt.timedelta(days=int(day))): float(rng.integers(1, 400)) / 7
            for c in range(60) for day in rng.choice(911, rng.integers(1, 25))}
    rows = [(c, d, None if amounts == "none" or (amounts == "some missing" and a < 15) else a)
            for (c, d), a in rows.items()]
    rule = dict(churn_after=10, time_unit="week", period="month")
    window = occasions_log(rows, end)
    arrays = occasions_log(rows, end)
    spell_bounds(arrays, churn_days(10, "week"),
                 sorted_rows=sorted_occasions(arrays, churn_days(10, "week")))
    assert arrays.derived[("spell_bounds_year_micro", 70)] is (amounts != "none")
    want = kpi_table(window, **rule)
    if amounts != "none":
        assert want["revenue_lost_to_churn"].gt(0).sum() >= 10
    pd.testing.assert_frame_equal(kpi_table(arrays, **rule), want, check_exact=True)
    pd.testing.assert_frame_equal(cohort_table(arrays, **rule), cohort_table(window, **rule),
                                  check_exact=True)


@pytest.mark.parametrize("period", ["week", "month", "quarter", "year"])
@pytest.mark.parametrize("amounts, fetch", [("all", None), ("some missing", 7), ("none", None)])
def test_value_tiers_from_the_sorted_occasions_spend_equal_the_query(period, amounts, fetch,
                                                                     monkeypatch):
    """The risk step may leave the spend per customer and period from its sorted occasions
    (kpi_segments.tier_spend_from_sorted): the same churn by segment, also fetched a few
    customers at a time."""
    from clvtools.data import kpi_segments
    from clvtools.data.kpi_segments import churn_by_segment, tier_spend_from_sorted
    from clvtools.data.landmark_arrays import sorted_occasions

    if fetch is not None:
        monkeypatch.setattr(kpi_segments, "TIER_FETCH_CUSTOMERS", fetch)
    rng = np.random.default_rng(5)
    start, end = D(2021, 12, 27), D(2024, 6, 30)     # a Monday, the week's first day
    rows = {(f"c{c}", start + dt.timedelta(days=int(day))): float(rng.integers(1, 400)) / 7
            for c in range(60) for day in rng.choice(916, rng.integers(1, 25))}
    rows = [(c, d, None if amounts == "none" or (amounts == "some missing" and a < 15) else a)
            for (c, d), a in rows.items()]
    rule = dict(churn_after=10, time_unit="week", period=period, value_share=0.3)
    query, arrays = occasions_log(rows, end), occasions_log(rows, end)
    tier_spend_from_sorted(arrays, sorted_occasions(arrays, 70), period)
    want = churn_by_segment(query, **rule)
    assert ((want["by"] == "value_tier") & (want["segment"] == "high")).sum() >= 2
    pd.testing.assert_frame_equal(churn_by_segment(arrays, **rule), want, check_exact=True)
    # read once, then dropped: not held to the end of the run
    assert not [k for k in arrays.derived if k[0] == "tier_spend"]
    assert arrays.con.execute("SELECT count(*) FROM duckdb_tables() "
                              "WHERE table_name LIKE '_tier_%'").fetchone()[0] == 0

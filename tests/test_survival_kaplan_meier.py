"""Kaplan-Meier curves, medians and log-rank tests by segment, against lifelines."""
import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_rossi
from lifelines.statistics import logrank_test, multivariate_logrank_test

from clvtools.survival import km_curves, logrank_tests, median_survival, simulate_landmark_table
from clvtools.survival.kaplan_meier import segment_rows


@pytest.fixture(scope="module")
def table():
    return simulate_landmark_table(3000, seed=21)


def test_curves_per_segment_match_lifelines(table):
    curves = km_curves(table, "channel")
    assert list(curves.columns) == ["segment", "time", "survival", "lower", "upper", "at_risk",
                                    "events", "censored"]
    assert set(curves["segment"]) == {"web", "store", "phone"}
    sub = table[table["channel"] == "store"]
    kmf = KaplanMeierFitter().fit(sub["duration"], sub["event"])
    ours = curves[curves["segment"] == "store"]
    np.testing.assert_allclose(ours["survival"], kmf.survival_function_.iloc[:, 0], rtol=1e-12)
    assert ours["time"].iloc[0] == 0 and ours["at_risk"].iloc[0] == len(sub)
    assert (ours["lower"] <= ours["survival"]).all() and (ours["survival"] <= ours["upper"]).all()


def test_one_curve_without_segments_and_two_columns(table):
    assert set(km_curves(table)["segment"]) == {"all"}
    both = km_curves(table, ["channel", "region"])
    assert "web | north" in set(both["segment"])


def test_median_survival_rossi():
    rossi = load_rossi().rename(columns={"week": "duration", "arrest": "event"})
    med = median_survival(rossi, "fin")
    # fewer than half are re-arrested within 52 weeks: the median is not reached
    assert np.isinf(med["median"]).all()
    assert list(med["n"]) == [216, 216]


def test_median_survival_simulated(table):
    med = median_survival(table, "channel").set_index("segment")
    sub = table[table["channel"] == "phone"]
    kmf = KaplanMeierFitter().fit(sub["duration"], sub["event"])
    assert med.loc["phone", "median"] == kmf.median_survival_time_
    assert med.loc["phone", "median_lower"] <= med.loc["phone", "median"] <= \
        med.loc["phone", "median_upper"]
    assert med.loc["phone", "median"] < med.loc["store", "median"]  # phone churns faster


def test_logrank_matches_lifelines(table):
    res = logrank_tests(table, "channel")
    ref = multivariate_logrank_test(table["duration"], table["channel"], table["event"])
    assert res.iloc[0]["test_statistic"] == pytest.approx(ref.test_statistic, rel=1e-12)
    assert res.iloc[0]["degrees_of_freedom"] == 2
    assert len(res) == 1 + 3
    pair = res[(res["segment_a"] == "phone") & (res["segment_b"] == "store")].iloc[0]
    a, b = table[table["channel"] == "phone"], table[table["channel"] == "store"]
    ref2 = logrank_test(a["duration"], b["duration"], a["event"], b["event"])
    assert pair["p_value"] == pytest.approx(ref2.p_value, rel=1e-10)
    two = logrank_tests(table, "region")
    assert len(two) == 2 and two.iloc[1]["segment_a"] == "north"


def test_rows_compressed_once_give_the_same_tables(table):
    rows = segment_rows(table, "channel")
    # fewer rows than the table: the compression bites
    assert len(rows) < len(table) and rows["rows"].sum() == len(table)
    for fn in (km_curves, median_survival, logrank_tests):
        pd.testing.assert_frame_equal(fn(None, None, rows=rows), fn(table, "channel"))

"""lifelines' CoxPHFitter names on ChurnModel, each compared with lifelines on the Rossi data
(penalizer 0, Efron ties): the same figures to 1e-8 relative, the same shapes and orientation.
"""
import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.statistics import proportional_hazard_test

from clvtools.errors import ClvInputError
from clvtools.survival import ChurnModel

RTOL = 1e-8
TIMES = [5.0, 10.0, 20.0, 30.0, 40.0, 52.0]  # Rossi durations: lifelines' curve is exact there


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


@pytest.fixture(scope="module")
def ours(rossi):
    return ChurnModel(duration_col="week", event_col="arrest").fit(rossi)


@pytest.fixture(scope="module")
def theirs(rossi):
    return CoxPHFitter(penalizer=0.0).fit(rossi, duration_col="week", event_col="arrest")


def test_coefficient_tables(ours, theirs):
    pd.testing.assert_series_equal(ours.hazard_ratios_, theirs.hazard_ratios_, rtol=RTOL,
                                   check_names=False, check_index_type=False)
    assert ours.hazard_ratios_.name == "exp(coef)"
    pd.testing.assert_frame_equal(ours.confidence_intervals_, theirs.confidence_intervals_,
                                  rtol=RTOL, check_names=False, check_index_type=False)
    np.testing.assert_allclose(ours.standard_errors_, theirs.standard_errors_, rtol=RTOL)
    np.testing.assert_allclose(ours.variance_matrix_, theirs.variance_matrix_, rtol=RTOL)
    # clvtools' summary holds the same figures under its own column names
    s = ours.summary
    np.testing.assert_allclose(s["hazard_ratio"], theirs.summary["exp(coef)"], rtol=RTOL)
    np.testing.assert_allclose(s["hazard_ratio_lower"], theirs.summary["exp(coef) lower 95%"],
                               rtol=RTOL)
    np.testing.assert_allclose(s["p_value"], theirs.summary["p"], rtol=1e-6)


def test_fit_statistics(ours, theirs):
    assert ours.log_likelihood_ == pytest.approx(theirs.log_likelihood_, rel=RTOL)
    assert ours.AIC_partial_ == pytest.approx(theirs.AIC_partial_, rel=RTOL)
    assert ours.AIC_partial_ == pytest.approx(-2 * ours.log_likelihood_ + 2 * 7)
    assert ours.concordance_index_ == ours.concordance_
    assert ours.concordance_index_ == pytest.approx(theirs.concordance_index_, rel=1e-12)


def test_partial_hazards(ours, theirs, rossi):
    rows = rossi.iloc[[3, 0, 200, 431]]
    for name in ("predict_log_partial_hazard", "predict_partial_hazard"):
        got, want = getattr(ours, name)(rows), getattr(theirs, name)(rows)
        assert got.index.equals(rows.index)
        np.testing.assert_allclose(got, want, rtol=RTOL)


@pytest.mark.parametrize("name", ["predict_survival_function", "predict_cumulative_hazard"])
def test_curves_at_given_times(ours, theirs, rossi, name):
    rows = rossi.iloc[[3, 0, 200, 431]]
    got, want = getattr(ours, name)(rows, times=TIMES), getattr(theirs, name)(rows, times=TIMES)
    assert got.shape == (len(TIMES), len(rows))  # times as the index, one column per row
    assert list(got.columns) == list(rows.index) and list(got.index) == TIMES
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=RTOL)


def test_curves_at_default_times_and_baselines(ours, theirs, rossi):
    rows = rossi.head(3)
    got = ours.predict_survival_function(rows)
    events = np.unique(rossi.loc[rossi["arrest"] == 1, "week"]).astype(float)
    np.testing.assert_array_equal(got.index, events)  # lifelines adds censoring-only times
    want = theirs.predict_survival_function(rows).loc[events]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours.baseline_cumulative_hazard_.to_numpy(),
                               theirs.baseline_cumulative_hazard_.loc[events].to_numpy(),
                               rtol=RTOL)
    np.testing.assert_allclose(ours.baseline_survival_.to_numpy(),
                               theirs.baseline_survival_.loc[events].to_numpy(), rtol=RTOL)
    # the former methods agree with the lifelines-named ones (transposed)
    np.testing.assert_allclose(ours.survival_function(rows, TIMES).to_numpy(),
                               ours.predict_survival_function(rows, TIMES).to_numpy().T)
    np.testing.assert_allclose(1 - ours.churn_probability(rows, 20.0),
                               ours.predict_survival_function(rows, [20.0]).iloc[0])


def test_stratified_curves(rossi):
    ours = ChurnModel(duration_col="week", event_col="arrest", strata=["wexp"],
                      check_ph=False).fit(rossi)
    theirs = CoxPHFitter().fit(rossi, duration_col="week", event_col="arrest", strata=["wexp"])
    rows = rossi.iloc[[0, 1, 2, 5, 7]]  # both strata
    got = ours.predict_survival_function(rows, times=TIMES)
    want = theirs.predict_survival_function(rows, times=TIMES)[rows.index]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=RTOL)
    assert ours.baseline_cumulative_hazard_.shape[1] == 2  # one column per stratum


def test_check_assumptions_reports_the_fit_time_check(ours, theirs, rossi, capsys):
    table = ours.check_assumptions(rossi)
    printed = capsys.readouterr().out
    test = proportional_hazard_test(theirs, rossi, time_transform="rank")
    np.testing.assert_allclose(table["ph_p_value"], test.summary["p"].loc[table.index], rtol=1e-6)
    violated = table.index[table["ph_verdict"] == "violated"].tolist()
    assert violated == ["age", "wexp"]  # as lifelines' docs find on Rossi at 5 %
    assert "2 of 7 covariates violate it" in printed
    assert "age: the effect of 'age' changes over time" in printed
    with pytest.raises(ClvInputError, match="was not run"):
        ChurnModel(duration_col="week", event_col="arrest", check_ph=False).fit(
            rossi).check_assumptions()

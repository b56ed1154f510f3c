"""Holdout validation tables and lifetimes.utils' model-based functions, against lifetimes."""
from __future__ import annotations

import warnings

import lifetimes
import lifetimes.utils as lu
import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_transaction_data

from clvtools.btyd import BetaGeoFitter
from clvtools.btyd.utils import calculate_alive_path, expected_cumulative_transactions
from clvtools.btyd.validation import calibration_vs_holdout_purchases, tracking_purchases
from clvtools.errors import ClvInputError


@pytest.fixture(scope="module")
def setting():
    """lifetimes' small example log (days), split at 2014-09-01; fitted on the calibration."""
    tx = load_transaction_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = lu.calibration_and_holdout_data(tx, "id", "date", calibration_period_end="2014-09-01",
                                              observation_period_end="2014-12-31")
    ours = BetaGeoFitter().fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
    ref = lifetimes.BetaGeoFitter()
    ref.params_ = ours.params_.copy()
    return tx, cal, ours, ref


def test_calibration_vs_holdout_matches_lifetimes_plot_data(setting):
    _, cal, ours, ref = setting
    out = calibration_vs_holdout_purchases(ours, cal, kind="frequency_cal", n=7)
    # lifetimes' plot_calibration_purchases_vs_holdout_purchases computes exactly this frame
    s = cal.copy()
    s["model_predictions"] = ref.conditional_expected_number_of_purchases_up_to_time(
        s["duration_holdout"].iloc[0], s["frequency_cal"], s["recency_cal"], s["T_cal"])
    want = s.groupby("frequency_cal")[["frequency_holdout", "model_predictions"]].mean().iloc[:7]
    pd.testing.assert_frame_equal(out[["frequency_holdout", "model_predictions"]], want,
                                  rtol=1e-6)
    assert out["n_customers"].sum() == (cal["frequency_cal"] <= out.index.max()).sum()
    np.testing.assert_allclose(out["difference"],
                               out["model_predictions"] - out["frequency_holdout"])
    by_gap = calibration_vs_holdout_purchases(ours, cal, kind="time_since_last_purchase", n=5)
    assert by_gap.index.name == "time_since_last_purchase" and len(by_gap) == 5
    with pytest.raises(ClvInputError, match="'kind' parameter"):
        calibration_vs_holdout_purchases(ours, cal, kind="bogus")


def test_tracking_matches_lifetimes_expected_cumulative_transactions(setting):
    tx, _, ours, ref = setting
    for kwargs in ({"t": 200, "freq": "D", "freq_multiplier": 7},
                   {"t": 30, "freq": "W", "set_index_date": True}):
        got = expected_cumulative_transactions(ours, tx, "date", "id", **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = lu.expected_cumulative_transactions(ref, tx, "date", "id", **kwargs)
        assert got.index.equals(want.index)
        np.testing.assert_array_equal(got["actual"], want["actual"])
        np.testing.assert_allclose(got["predicted"], want["predicted"], rtol=1e-6)
    track = tracking_purchases(ours, tx, "date", "id", t=200, freq="D", freq_multiplier=7)
    assert list(track.columns) == ["actual_cumulative", "expected_cumulative",
                                   "actual_incremental", "expected_incremental"]
    np.testing.assert_allclose(track["actual_incremental"].cumsum(), track["actual_cumulative"])
    np.testing.assert_allclose(track["expected_incremental"].cumsum(),
                               track["expected_cumulative"], rtol=1e-12)
    assert (track["expected_incremental"] >= 0).all()


def test_alive_path_matches_lifetimes(setting):
    tx, _, ours, ref = setting
    for cid in tx["id"].drop_duplicates().iloc[:5]:
        one = tx[tx["id"] == cid]
        got = calculate_alive_path(ours, one, "date", 120)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = lu.calculate_alive_path(ref, one, "date", 120)
        assert len(got) == len(want)
        np.testing.assert_allclose(got.to_numpy(), np.concatenate(want.to_numpy()), rtol=1e-6)
    # no purchase after the first: P(alive) = 1 for BG/NBD throughout
    single = tx[tx["id"] == tx["id"].value_counts().idxmin()].head(1)
    assert (calculate_alive_path(ours, single, "date", 30) == 1.0).all()


@pytest.mark.parametrize("kind", ["frequency_cal", "time_since_last_purchase", "T_cal"])
def test_calibration_vs_holdout_with_the_callers_predictions(setting, kind):
    """Given the predictions (the value step has them already), the model is not asked and
    the table is the one the model's own predictions give, bit for bit."""
    _, cal, ours, _ = setting
    want = calibration_vs_holdout_purchases(ours, cal, kind=kind, n=6)
    predictions = ours.conditional_expected_number_of_purchases_up_to_time(
        cal["duration_holdout"].iloc[0], cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
    got = calibration_vs_holdout_purchases(None, cal, kind=kind, n=6,
                                           predictions=predictions.to_numpy())
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert "model_predictions" not in cal.columns  # the caller's table is left as it was

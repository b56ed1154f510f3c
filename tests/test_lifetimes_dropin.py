"""Drop-in for lifetimes 0.11.3 users: every ``freq`` lifetimes accepts, hours included, on
its CDNOW sample given times of day; per-customer predictions the same for one customer and
for arrays of customers; the error types and phrases a lifetimes user's code may catch.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from conftest import assert_summaries_match
from lifetimes import utils as lifetimes_utils

from clvtools import btyd
from clvtools import utils as clv_utils
from clvtools.btyd import utils as btyd_utils
from clvtools.errors import ClvInputError


@pytest.fixture(scope="module")
def cdnow_timestamps() -> pd.DataFrame:
    """lifetimes' CDNOW sample (6,919 rows, 2,357 customers), each purchase given a seeded
    random time of day to the millisecond, so that hours, minutes and seconds matter."""
    spec = importlib.util.find_spec("lifetimes")
    path = Path(spec.origin).parent / "datasets" / "CDNOW_sample.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str},
                      names=["customer_id", "customer_index", "day", "quantity", "amount"])
    ms = np.random.default_rng(19).integers(0, 86_400_000, len(raw))
    stamp = pd.to_datetime(raw["day"].astype(str), format="%Y%m%d") + pd.to_timedelta(ms, "ms")
    return pd.DataFrame({"customer_id": raw["customer_id"], "date": stamp,
                         "amount": raw["amount"]})


FREQ_CASES = [
    dict(freq="h"),
    dict(freq="h", freq_multiplier=24, monetary_value_col="amount"),
    dict(freq="s", monetary_value_col="amount", include_first_transaction=True),
    dict(freq="ms"),
    dict(freq="us", freq_multiplier=1e6),
    dict(freq="2h", monetary_value_col="amount"),
    dict(freq="5D", freq_multiplier=2),
    dict(freq="W", freq_multiplier=2, monetary_value_col="amount"),
    dict(freq="h", observation_period_end="1997-06-30 17:45:00", monetary_value_col="amount"),
]


@pytest.mark.parametrize("kwargs", FREQ_CASES, ids=lambda k: "-".join(map(str, k.values())))
def test_every_lifetimes_freq_gives_lifetimes_summary(cdnow_timestamps, kwargs):
    args = (cdnow_timestamps, "customer_id", "date")
    expected = lifetimes_utils.summary_data_from_transaction_data(*args, **kwargs)
    actual = clv_utils.summary_data_from_transaction_data(*args, **kwargs)
    assert len(actual) == (2_357 if "observation_period_end" not in kwargs else len(expected))
    assert actual.index[0] == "00004"  # leading zeros kept
    assert_summaries_match(expected, actual)
    if kwargs["freq"] == "h":  # times of day count: not whole days in hours
        assert (actual["recency"] % (24 / kwargs.get("freq_multiplier", 1)) != 0).any()


HOLDOUT_CASES = [
    dict(freq="h"),
    dict(freq="h", freq_multiplier=24, monetary_value_col="amount"),
    dict(freq="s", monetary_value_col="amount", include_first_transaction=True),
    dict(freq="5D", freq_multiplier=2, monetary_value_col="amount"),
]


@pytest.mark.parametrize("kwargs", HOLDOUT_CASES, ids=lambda k: "-".join(map(str, k.values())))
def test_calibration_and_holdout_at_every_freq(cdnow_timestamps, kwargs):
    args = (cdnow_timestamps, "customer_id", "date")
    ends = dict(calibration_period_end="1997-09-30 12:00:00",
                observation_period_end="1998-03-31 18:30:00")
    expected = lifetimes_utils.calibration_and_holdout_data(*args, **ends, **kwargs)
    actual = clv_utils.calibration_and_holdout_data(*args, **ends, **kwargs)
    assert_summaries_match(expected, actual)
    assert actual["frequency_holdout"].sum() > 0


@pytest.mark.parametrize("freq", ["h", "D"])
def test_an_empty_holdout_keeps_lifetimes_phrase(cdnow_timestamps, freq):
    with pytest.raises(ValueError, match="There is no data available"):
        clv_utils.calibration_and_holdout_data(cdnow_timestamps, "customer_id", "date",
                                               "1998-07-01", "1998-07-05", freq=freq)


def test_capital_h_means_hours(cdnow_timestamps):
    # lifetimes itself raises a TypeError for "H" (numpy has no such unit); pandas spelled
    # hours "H" until 2.2, so lifetimes users' code has it
    args = (cdnow_timestamps, "customer_id", "date", "amount")
    expected = lifetimes_utils.summary_data_from_transaction_data(*args, freq="h")
    assert_summaries_match(expected, clv_utils.summary_data_from_transaction_data(*args, freq="H"))


def test_m_means_minutes(cdnow_timestamps):
    # numpy's unit, as lifetimes' docstring says; lifetimes' pandas reads "m" as months
    tx = cdnow_timestamps.assign(date=cdnow_timestamps["date"].dt.floor("min"))
    args = (tx, "customer_id", "date")
    expected = lifetimes_utils.summary_data_from_transaction_data(*args, freq="s",
                                                                 freq_multiplier=60)
    assert_summaries_match(expected, clv_utils.summary_data_from_transaction_data(*args, freq="m"))


@pytest.mark.parametrize("freq", ["Q", "min", "0h", "h2", ""])
def test_a_freq_without_a_unit_is_a_clear_error(cdnow_timestamps, freq):
    with pytest.raises(ClvInputError, match="freq must be 'M' or a numpy time unit"):
        clv_utils.summary_data_from_transaction_data(cdnow_timestamps, "customer_id", "date",
                                                     freq=freq)


def test_hours_in_the_model_based_utils(cdnow_timestamps):
    one = cdnow_timestamps[cdnow_timestamps["customer_id"] == "00004"]
    summary = clv_utils.summary_data_from_transaction_data(cdnow_timestamps, "customer_id",
                                                           "date", "amount", freq="h")
    model = btyd.BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    for freq in ("h", "H"):
        path = btyd_utils.calculate_alive_path(model, one, "date", 24 * 30, freq=freq)
        assert len(path) >= 24 * 30 + 1 and path.iloc[0] == 1.0
        clv = clv_utils._customer_lifetime_value(
            model, summary["frequency"], summary["recency"], summary["T"],
            summary["monetary_value"], time=3, freq=freq)
        assert (clv >= 0).all() and clv.sum() > 0
    reference = lifetimes.BetaGeoFitter()
    reference.params_ = model.params_.copy()
    reference.predict = reference.conditional_expected_number_of_purchases_up_to_time  # its fit
    np.testing.assert_allclose(
        clv, lifetimes_utils._customer_lifetime_value(
            reference, summary["frequency"], summary["recency"], summary["T"],
            summary["monetary_value"], time=3, freq="H"), rtol=1e-10)


# ---- predictions: one customer, arrays, matrices ------------------------------------------
@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
    return load_cdnow_summary_data_with_monetary_value()


PREDICTIONS = {
    "conditional_probability_alive": lambda x, t, T: (x, t, T),
    "conditional_expected_number_of_purchases_up_to_time": lambda x, t, T: (10.0, x, t, T),
}


#: Every model bit for bit: Pareto/NBD sums its hypergeometric series with each customer's own
#: number of terms (``horner_per_row``), whatever rows share the call.
EXACT_MODELS = ("BetaGeoFitter", "ModifiedBetaGeoFitter", "ParetoNBDFitter")


@pytest.mark.parametrize("model", EXACT_MODELS)
@pytest.mark.parametrize("method", sorted(PREDICTIONS))
def test_one_customer_an_array_and_a_matrix_agree_exactly(cdnow_summary, model, method):
    x, t, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    fitted = getattr(btyd, model)().fit(x, t, T)
    predict = getattr(fitted, method)
    column = np.asarray(predict(*PREDICTIONS[method](x, t, T)), float)
    assert column.shape == (len(x),)
    ones = [predict(*PREDICTIONS[method](x[i], t[i], T[i])) for i in range(0, len(x), 97)]
    assert all(np.ndim(v) == 0 for v in ones)
    np.testing.assert_array_equal(np.asarray(ones, float), column[::97])  # bit for bit
    n = len(x) // 2 * 2   # a matrix of customers keeps its shape
    matrix = np.asarray(predict(*PREDICTIONS[method](*(v[:n].reshape(2, -1) for v in (x, t, T)))))
    assert matrix.shape == (2, n // 2)
    np.testing.assert_array_equal(matrix.reshape(-1), column[:n])
    reference = getattr(lifetimes, model)()
    reference.params_ = fitted.params_.copy()   # the same formulas at the same parameters
    np.testing.assert_allclose(column, np.asarray(
        getattr(reference, method)(*PREDICTIONS[method](x, t, T)), float), rtol=1e-11)


def test_gamma_gamma_one_customer_and_an_array_agree_exactly(cdnow_summary):
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    fitted = btyd.GammaGammaFitter().fit(x, m)
    column = np.asarray(fitted.conditional_expected_average_profit(x, m), float)
    ones = [fitted.conditional_expected_average_profit(x[i], m[i]) for i in range(0, len(x), 41)]
    np.testing.assert_array_equal(np.asarray(ones, float), column[::41])


# ---- errors a lifetimes user's code catches -----------------------------------------------
def test_convergence_error_is_a_value_error_as_in_lifetimes():
    assert issubclass(clv_utils.ConvergenceError, ValueError)
    assert issubclass(lifetimes_utils.ConvergenceError, ValueError)
    # a fit that cannot start: lifetimes users wrap fits in `except ValueError`
    with pytest.raises(ValueError, match="did not converge"):
        btyd.BetaGeoFitter().fit([1, 2, 0], [5, 6, 0], [10, 10, 10], initial_params=[800] * 4)


def test_unfitted_model_keeps_lifetimes_phrase():
    with pytest.raises(ValueError, match="Model has not been fit yet"):
        btyd.BetaGeoFitter().conditional_probability_alive(1, 2, 3)


def test_bad_rfm_is_a_value_error_as_in_lifetimes():
    for fitter in (btyd.BetaGeoFitter(), lifetimes.BetaGeoFitter()):
        with pytest.raises(ValueError):
            fitter.fit(np.array([1.0, 2.0]), np.array([5.0, 9.0]), np.array([4.0, 10.0]))

"""The plain models' ``expected_purchases_by_horizon``: the conditional expectation at several
horizons in one pass, equal to one call per horizon (the forecast and the value step use it)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.btyd import BetaGeoFitter, ModifiedBetaGeoFitter
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.errors import ClvInputError


@pytest.mark.parametrize("fitter, params", [
    (BetaGeoFitter, {"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 4.0}),
    (ModifiedBetaGeoFitter, {"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 4.0}),
    (ParetoNBDFitter, {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 30.0}),
])
def test_plain_models_by_horizon_equal_one_call_per_horizon(fitter, params):
    """The plain models' one-pass ``expected_purchases_by_horizon`` (P(alive) once, the
    hypergeometric function once per distinct (x, T) pair) gives exactly each horizon's
    conditional expectation, for ages in weeks from whole days (not whole numbers, the
    pipeline's case) on a base large enough for the distinct pairs to be used."""
    rng = np.random.default_rng(5)
    n = 30_000
    T = rng.integers(1, 1096, n) / 7.0
    tx = np.floor(rng.uniform(0, 1, n) * T * 7) / 7
    x = np.where(tx > 0, rng.integers(1, 40, n), 0).astype(float)
    index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    model = fitter()
    model.params_ = pd.Series(params)
    horizons = np.array([4.35, 8.7, 13.04, 52.18])
    got = model.expected_purchases_by_horizon(horizons, pd.Series(x, index=index), tx, T)
    assert isinstance(got, pd.DataFrame) and got.shape == (n, 4)
    assert got.index.equals(index) and list(got.columns) == list(horizons)
    for h in horizons:
        one = model.conditional_expected_number_of_purchases_up_to_time(h, x, tx, T)
        np.testing.assert_array_equal(got[h].to_numpy(), one)
    with pytest.raises(ClvInputError, match="'horizons' argument"):
        model.expected_purchases_by_horizon([4.0, -1.0], x, tx, T)


def _weeks_base(n, seed, whole_days=True):
    """``n`` customers' (x, t_x, T) in weeks: from whole days (the pipeline's case, few
    distinct (x, T) pairs) or from any time of day (nearly every pair distinct)."""
    rng = np.random.default_rng(seed)
    days = rng.integers(1, 1096, n) if whole_days else rng.uniform(1, 1096, n)
    T = days / 7.0
    tx = np.floor(rng.uniform(0, 1, n) * days) / 7
    x = np.where(tx > 0, rng.integers(1, 40, n), 0).astype(float)
    return x, tx, T


@pytest.mark.parametrize("fitter", [BetaGeoFitter, ModifiedBetaGeoFitter])
@pytest.mark.parametrize("n, whole_days, seed", [(30_000, True, 1), (30_000, False, 2),
                                                  (40_000, True, 3), (500, True, 4)])
def test_purchases_by_period_are_the_increments_by_horizon(fitter, n, whole_days, seed):
    """``alive_and_purchases_by_period`` (increments on the distinct pairs' table, gathered a
    block at a time and times P(alive)) gives the increments of the expectations by horizon
    to a few units of the last place, and P(alive) bit for bit: with and without distinct
    pairs, with several gather blocks and a short last one (40,000 rows)."""
    x, tx, T = _weeks_base(n, seed, whole_days)
    model = fitter()
    model.params_ = pd.Series({"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 4.0})
    ends = np.array([0.14, 4.57, 8.57, 13.0, 17.3, 26.0, 52.0])
    p_alive, by_period = model.alive_and_purchases_by_period(ends, x, tx, T)
    np.testing.assert_array_equal(p_alive, model.conditional_probability_alive(x, tx, T))
    cumulative = model.expected_purchases_by_horizon(ends, x, tx, T).to_numpy()
    increments = np.diff(cumulative, axis=1, prepend=0.0)
    assert by_period.shape == (n, len(ends))
    np.testing.assert_allclose(by_period, increments, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(by_period.sum(axis=1), cumulative[:, -1], rtol=1e-13)


@pytest.mark.parametrize("values", [
    np.arange(5000.0)[::-1] % 97,                              # whole numbers (counts, days)
    np.random.default_rng(1).integers(0, 1096, 20_000) / 7.0,  # weeks of whole days
    np.random.default_rng(2).integers(0, 3000, 20_000) / (365.2425 / 12),  # months
    np.random.default_rng(3).uniform(0, 50, 20_000),           # no lattice: sorted
    np.r_[np.random.default_rng(4).integers(0, 99, 100) / 7.0, 0.5 / 7],  # off the days
    np.array([3 / 7, -2 / 7, 0.0, 3 / 7]),
])
def test_distinct_equals_numpy_unique(values):
    """:func:`_distinct` (whole days found in weeks and months without a sort) gives
    ``np.unique``'s values and inverse exactly."""
    from clvtools.btyd._distinct_rows import _distinct
    uniq, inverse = _distinct(values)
    want_uniq, want_inverse = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(uniq, want_uniq)
    np.testing.assert_array_equal(inverse, want_inverse)
    np.testing.assert_array_equal(uniq[inverse], values)

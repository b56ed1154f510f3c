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

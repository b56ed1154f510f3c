"""Contract shared by every BTYD fitter, parametrised so that a failure names the model."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from clvtools import btyd
from clvtools.btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    load_model,
)
from clvtools.errors import ClvInputError

CDNOW = load_cdnow_summary(index_col=[0])
SPEND = load_cdnow_summary_data_with_monetary_value()
SPEND = SPEND[SPEND["frequency"] > 0]


def _simulate_bgbb(n: int, n_periods: int, seed: int) -> pd.DataFrame:
    """BG/BB customers (Fader, Hardie & Shang 2010, section 2) at donation-like parameters."""
    rng = np.random.default_rng(seed)
    p, theta = rng.beta(1.2, 0.75, n), rng.beta(0.66, 2.78, n)
    alive = np.ones(n, bool)
    x, tx = np.zeros(n, int), np.zeros(n, int)
    for t in range(1, n_periods + 1):
        alive &= rng.random(n) >= theta  # may drop out before each opportunity
        buy = alive & (rng.random(n) < p)
        x += buy
        tx = np.where(buy, t, tx)
    return pd.DataFrame({"frequency": x, "recency": tx, "n_periods": n_periods},
                        index=[f"c{i}" for i in range(n)])


BGBB = _simulate_bgbb(1000, 6, seed=3)

# (class, expected params_ names, fit columns (Series), how to call the main prediction)
CASES = {
    "BetaGeoFitter": (BetaGeoFitter, ["r", "alpha", "a", "b"],
                      [CDNOW["frequency"], CDNOW["recency"], CDNOW["T"]],
                      lambda m, *c: m.conditional_probability_alive(*c)),
    "ModifiedBetaGeoFitter": (ModifiedBetaGeoFitter, ["r", "alpha", "a", "b"],
                              [CDNOW["frequency"], CDNOW["recency"], CDNOW["T"]],
                              lambda m, *c: m.conditional_expected_number_of_purchases_up_to_time(
                                  10.0, *c)),
    "BetaGeoBetaBinomFitter": (BetaGeoBetaBinomFitter, ["alpha", "beta", "gamma", "delta"],
                               [BGBB["frequency"], BGBB["recency"], BGBB["n_periods"]],
                               lambda m, *c: m.conditional_probability_alive(2, *c)),
    "GammaGammaFitter": (GammaGammaFitter, ["p", "q", "v"],
                         [SPEND["frequency"], SPEND["monetary_value"]],
                         lambda m, *c: m.conditional_expected_average_profit(*c)),
}
if btyd.ParetoNBDFitter is not None:  # written in parallel; joins the contract when present
    CASES["ParetoNBDFitter"] = (btyd.ParetoNBDFitter, ["r", "alpha", "s", "beta"],
                                [CDNOW["frequency"], CDNOW["recency"], CDNOW["T"]],
                                lambda m, *c: m.conditional_probability_alive(*c))


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    cls, names, cols, predict = CASES[request.param]
    model = cls()
    out = model.fit(*cols)
    assert out is model  # fit returns self
    return model, names, cols, predict


def test_params_and_inference(case):
    model, names, cols, _ = case
    assert list(model.params_.index) == names
    assert (model.params_ > 0).all()
    assert list(model.summary.columns) == ["coef", "se(coef)", "lower 95% bound",
                                           "upper 95% bound"]
    assert list(model.summary.index) == names
    assert (model.standard_errors_ > 0).all()
    s = model.summary
    assert ((s["lower 95% bound"] < s["coef"]) & (s["coef"] < s["upper 95% bound"])).all()
    assert model.variance_matrix_.shape == (len(names), len(names))
    np.testing.assert_allclose(model.variance_matrix_, model.variance_matrix_.T, rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(model.variance_matrix_.to_numpy()) > 0)
    assert model.log_likelihood_ < 0 or model.log_likelihood_ > 0  # finite
    assert model.AIC_ == pytest.approx(2 * len(names) - 2 * model.log_likelihood_)
    assert len(model.data) == len(cols[0]) and "weights" in model.data
    assert model.data.index.equals(cols[0].index)


def test_print_summary_and_repr(case, capsys):
    model, names, _, _ = case
    model.print_summary()
    out = capsys.readouterr().out
    assert type(model).__name__ in out and "log-likelihood" in out and "AIC" in out
    assert all(n in out for n in names)
    assert "fitted with" in repr(model)


def test_scalar_array_series_behaviour(case):
    model, _, cols, predict = case
    series = predict(model, *cols)
    assert isinstance(series, pd.Series) and series.index.equals(cols[0].index)
    assert np.all(np.isfinite(series))
    arrays = predict(model, *[c.to_numpy() for c in cols])
    assert isinstance(arrays, np.ndarray)
    np.testing.assert_array_equal(arrays, series.to_numpy())
    scalar = predict(model, *[c.iloc[3] for c in cols])
    assert isinstance(scalar, float)
    assert scalar == pytest.approx(series.iloc[3], rel=1e-12)  # same value, maybe not same ulp


def test_json_round_trip_predicts_identically(case, tmp_path):
    model, names, cols, predict = case
    path = tmp_path / "model.json"
    model.save_model(path)
    doc = json.loads(path.read_text())  # valid JSON (no NaN), not pickle
    assert doc["model_class"] == type(model).__name__
    assert doc["param_names"] == names and "clvtools_version" in doc
    assert np.shape(doc["variance_matrix"]) == (len(names), len(names))
    for loaded in (load_model(path), type(model)().load_model(path)):
        assert type(loaded) is type(model)
        pd.testing.assert_series_equal(loaded.params_, model.params_)
        pd.testing.assert_frame_equal(loaded.summary, model.summary)
        pd.testing.assert_series_equal(predict(loaded, *cols), predict(model, *cols))
        assert loaded.log_likelihood_ == model.log_likelihood_
        assert loaded.data["weights"].sum() == model.data["weights"].sum()


def test_identical_rows_collapse_into_weights(case):
    """Fitting the raw rows equals fitting the distinct rows with their counts as weights."""
    model, _, cols, _ = case
    raw = pd.concat(cols, axis=1)
    counts = raw.value_counts().rename("w").reset_index()
    assert len(counts) < len(raw)  # the data do have duplicates
    assert model.n_distinct_ == len(counts)
    weighted = type(model)().fit(*[counts[c.name] for c in cols], weights=counts["w"])
    np.testing.assert_allclose(weighted.params_, model.params_, rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(model.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(weighted.standard_errors_, model.standard_errors_, rtol=1e-4)
    assert weighted.n_customers_ == model.n_customers_


def test_unfitted_model_says_so(case):
    model, _, cols, predict = case
    with pytest.raises(ClvInputError, match="has not been fitted"):
        predict(type(model)(), *cols)


def test_load_model_rejects_other_class(tmp_path):
    path = tmp_path / "m.json"
    BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"]).save_model(path)
    with pytest.raises(ClvInputError, match="not a ModifiedBetaGeoFitter"):
        ModifiedBetaGeoFitter().load_model(path)


def test_keyword_arguments_as_lifetimes_users_write_them():
    m = BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
    by_name = m.conditional_expected_number_of_purchases_up_to_time(
        t=10, frequency=CDNOW["frequency"], recency=CDNOW["recency"], T=CDNOW["T"])
    positional = m.conditional_expected_number_of_purchases_up_to_time(
        10, CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
    pd.testing.assert_series_equal(by_name, positional)
    assert m.conditional_probability_alive(frequency=2, recency=30.43, T=38.86) == \
        m.conditional_probability_alive(2, 30.43, 38.86)
    bb = BetaGeoBetaBinomFitter().fit(BGBB["frequency"], BGBB["recency"], BGBB["n_periods"])
    assert bb.conditional_probability_alive(m_periods_in_future=1, frequency=2, recency=3,
                                            n_periods=6) == bb.conditional_probability_alive(
        1, 2, 3, 6)


@pytest.mark.parametrize("cls, params", [
    (BetaGeoFitter, (0.25, 4.0, 0.8, 2.5)),
    (btyd.ParetoNBDFitter, (0.55, 10.5, 0.6, 11.7)),
])
def test_subset_start_reaches_the_direct_optimum(cls, params, monkeypatch):
    """Large fits start from a subset fit and whiten the full fit with its Hessian; the
    optimum is the direct fit's (the threshold is lowered to 600 rows here so that a few
    thousand distinct rows take that path)."""
    from clvtools.btyd import _curvature, _optimise, simulate

    simulator = simulate.simulate_bgnbd if cls is BetaGeoFitter else simulate.simulate_pareto_nbd
    rfm = simulator(params, 8000, T=np.linspace(30, 78, 8000), seed=3)
    args = (rfm["frequency"], rfm["recency"], rfm["T"])
    direct = cls().fit(*args)
    calls = []
    monkeypatch.setattr(_optimise, "SUBSET_ROWS", 600)
    original = _curvature.subset_rows
    monkeypatch.setattr(_curvature, "subset_rows",
                        lambda counts: calls.append(len(counts)) or original(counts))
    assert direct.n_distinct_ > 2 * 600
    via_subset = cls().fit(*args)
    assert calls == [direct.n_distinct_]  # the subset path was taken
    np.testing.assert_allclose(via_subset.params_, direct.params_, rtol=1e-5)
    assert via_subset.log_likelihood_ == pytest.approx(direct.log_likelihood_, abs=1e-6)


def test_collapse_by_ordered_keys_equals_the_lexicographic_sort(monkeypatch):
    """Columns on a grid (whole numbers, whole days in weeks: sevenths) are collapsed by
    sorting their distinct mixed-radix keys; the general path sorts the distinct rows
    lexicographically: the same rows, weights and order (whole days, weeks as sevenths,
    negative values, zero weights)."""
    from clvtools.btyd import utils

    rng = np.random.default_rng(6)
    x = rng.poisson(1.5, 5000).astype(float)
    T = rng.integers(1, 200, 5000).astype(float)
    cases = [({"x": x, "t": np.floor(T * rng.uniform(0, 1, 5000)), "T": T}, np.ones(5000)),
             ({"x": x - 3, "T": T}, rng.integers(0, 3, 5000).astype(float)),
             ({"x": x, "t": np.floor(T * rng.uniform(0, 1, 5000)) / 7.0, "T": T / 7.0},
              np.ones(5000)),  # weeks of whole days (the default unit), the ordered path
             ({"x": x, "T": T / 7.3}, np.ones(5000))]  # on no grid: the general path
    fast = [utils.collapse(cols, w) for cols, w in cases]
    assert utils._ordered_key(list(cases[0][0].values())) is not None
    assert utils._ordered_key(list(cases[2][0].values())) is not None
    assert utils._ordered_key(list(cases[3][0].values())) is None
    # a range too wide for the key (here even for a float subtraction): the general path
    assert utils._ordered_key([np.array([-1e308, 1e308, 1.0])]) is None
    assert utils._ordered_key([np.array([1e308, 0.5])]) is None  # on no grid, scaled to inf
    monkeypatch.setattr(utils, "_ordered_key", lambda cols: None)
    for (cols, w), (rows, counts) in zip(cases, fast, strict=True):
        ref_rows, ref_counts = utils.collapse(cols, w)
        assert len(ref_counts) < len(w)
        np.testing.assert_array_equal(counts, ref_counts)
        for k in cols:
            np.testing.assert_array_equal(rows[k], ref_rows[k])


@pytest.mark.parametrize("series", [
    pd.Series([1.5, 2.0, np.nan], index=pd.Index(["a", "b", "c"], name="customer_id")),
    pd.Series([1, None, 3], dtype="Int64"),
    pd.Series([True, False]),
    pd.Series(["1", "2.5"]),
    pd.Series([4, 5], dtype="int32", index=[10, 20]),
])
def test_float_array_of_a_series_is_numpys(series):
    """``_to_float_array`` reads a Series through its values (numpy's attribute probes on
    the Series itself looked each name up among the index's labels): the same numbers as
    ``np.asarray(series, dtype=float)``, and text still refused clearly."""
    from clvtools.btyd.utils import _to_float_array
    np.testing.assert_array_equal(_to_float_array(series, "frequency"),
                                  np.asarray(series, dtype=float))
    with pytest.raises(ClvInputError, match="'frequency' argument must be numeric"):
        _to_float_array(pd.Series(["a", "b"]), "frequency")

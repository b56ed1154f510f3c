"""One persistence design for every model: to_dict/from_dict, save_model/load_model, and each
package's load_model dispatching on the file; files written before it still load."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvtools.btyd as btyd
import clvtools.survival as survival
from clvtools.btyd.simulate import simulate_rfm_with_covariates
from clvtools.datasets import load_cdnow_summary
from clvtools.errors import ClvInputError
from clvtools.model_io import json_ready

OLD_FILES = Path(__file__).parent / "data" / "model_files_v0"


# ---- one fitted model of every type, with a prediction to compare --------------------------
def _cdnow():
    return load_cdnow_summary().iloc[:600]


def _rfm_model(cls):
    def make():
        d = _cdnow()
        args = (d["frequency"], d["recency"], d["T"])
        return cls(penalizer_coef=0.001).fit(*args), lambda m: m.conditional_probability_alive(
            *args)
    return make


def _bgbb():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 300)
    tx = np.where(x > 0, x, 0)
    n = np.full(300, 6)
    return (btyd.BetaGeoBetaBinomFitter().fit(x, tx, n),
            lambda m: m.conditional_probability_alive(1, x, tx, n))


def _gamma_gamma():
    d = _cdnow()
    d = d[d["frequency"] > 0]
    spend = 20 + (np.arange(len(d)) % 17).astype(float)
    return (btyd.GammaGammaFitter(penalizer_coef=0.01).fit(d["frequency"], spend),
            lambda m: m.conditional_expected_average_profit(d["frequency"], spend))


def _covariate_model(cls, name):
    def make():
        rng = np.random.default_rng(7)
        n = 400
        cov = pd.DataFrame({
            "channel": rng.choice(["online", "store", "referral"], n, p=[0.5, 0.35, 0.15]),
            "vip": rng.random(n) < 0.3,
            "age": np.round(rng.normal(0.0, 1.0, n), 1),
        })
        z = np.column_stack([cov.channel == "store", cov.vip, cov.age]).astype(float)
        T = np.round(rng.uniform(30, 104, n) * 7) / 7
        rfm = simulate_rfm_with_covariates(name, (0.6, 8.0, 0.8, 4.0), z @ [0.1, 0.3, 0.15],
                                           z @ [-0.2, -0.6, 0.2], T, seed=3)
        args = (rfm["frequency"], rfm["recency"], rfm["T"], cov)
        model = cls().fit(*args, ["channel", "age"], ["channel", "vip"],
                          reference_levels={"channel": "store"})
        return model, lambda m: m.conditional_probability_alive(*args)
    return make


def _churn():
    table = survival.simulate_landmark_table(500, n_landmarks=2, shape=1.0, seed=5)
    model = survival.ChurnModel(strata=["region"], tail="constant_hazard").fit(table)
    return model, lambda m: m.survival_function(table, [1.0, 13.0, 30.0])


def _competing():
    contracts = survival.simulate_contracts(600, seed=2)
    model = survival.CompetingRisksModel(check_ph=False).fit(contracts)
    return model, lambda m: m.reason_probabilities(contracts, 12.0)


MODELS = {
    "BetaGeoFitter": (btyd, _rfm_model(btyd.BetaGeoFitter)),
    "ModifiedBetaGeoFitter": (btyd, _rfm_model(btyd.ModifiedBetaGeoFitter)),
    "ParetoNBDFitter": (btyd, _rfm_model(btyd.ParetoNBDFitter)),
    "BetaGeoBetaBinomFitter": (btyd, _bgbb),
    "GammaGammaFitter": (btyd, _gamma_gamma),
    "BetaGeoCovariatesFitter": (btyd, _covariate_model(btyd.BetaGeoCovariatesFitter, "bgnbd")),
    "ParetoNBDCovariatesFitter": (btyd, _covariate_model(btyd.ParetoNBDCovariatesFitter,
                                                         "pnbd")),
    "ChurnModel": (survival, _churn),
    "CompetingRisksModel": (survival, _competing),
}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request):
    package, make = MODELS[request.param]
    model, predict = make()
    return package, model, predict


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    else:
        np.testing.assert_array_equal(a, b)


def test_every_model_round_trips_and_predicts_identically(fitted, tmp_path):
    package, model, predict = fitted
    path = tmp_path / "model.json"
    model.save_model(path)
    doc = json.loads(path.read_text())
    assert doc == model.to_dict()  # the file is to_dict, as JSON
    cls = type(model)
    loaded = cls().load_model(path)  # lifetimes style: into the instance, which is returned
    for back in (loaded, package.load_model(path), cls.from_dict(doc)):
        assert type(back) is cls
        _same(predict(back), predict(model))
    assert json.loads(json.dumps(loaded.to_dict())) == doc  # a loaded model saves the same file


def test_package_load_model_refuses_the_other_package_s_files(tmp_path):
    d = _cdnow()
    btyd_file = tmp_path / "bgnbd.json"
    btyd.BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"]).save_model(btyd_file)
    with pytest.raises(ClvInputError, match="not a clvtools survival model file") as info:
        survival.load_model(btyd_file)
    assert str(btyd_file) in str(info.value)
    with pytest.raises(ClvInputError, match="holds a 'BetaGeoFitter', not a GammaGammaFitter"):
        btyd.GammaGammaFitter().load_model(btyd_file)
    churn_file = tmp_path / "churn.json"
    churn_file.write_text((OLD_FILES / "churn.json").read_text())
    with pytest.raises(ClvInputError, match="not a clvtools btyd model file"):
        btyd.load_model(churn_file)
    with pytest.raises(ClvInputError, match="holds a 'ChurnModel', not a CompetingRisksModel"):
        survival.CompetingRisksModel().load_model(churn_file)
    doc = json.loads((OLD_FILES / "btyd_covariates.json").read_text())
    doc["model_class"] = "GammaGammaCovariatesFitter"
    btyd_file.write_text(json.dumps(doc))
    with pytest.raises(ClvInputError, match="unknown model class 'GammaGammaCovariatesFitter'"):
        btyd.load_model(btyd_file)
    with pytest.raises(ClvInputError, match="not fitted"):
        survival.CompetingRisksModel().to_dict()
    with pytest.raises(ClvInputError, match="has not been fitted"):
        btyd.BetaGeoFitter().to_dict()


# ---- files written before one design and one encoder (tests/data/model_files_v0) ----------
@pytest.fixture(scope="module")
def expected():
    return json.loads((OLD_FILES / "expected.json").read_text())


def test_old_btyd_covariate_file_loads_and_predicts_as_before(expected):
    exp = expected["btyd_covariates"]
    model = btyd.load_model(OLD_FILES / "btyd_covariates.json")
    assert type(model) is btyd.BetaGeoCovariatesFitter
    assert list(model.params_.index) == exp["param_names"]
    np.testing.assert_array_equal(model.params_.to_numpy(), exp["params"])
    rfm = pd.DataFrame(exp["rfm"])
    cov = pd.DataFrame(exp["covariates"])
    p = model.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"], cov)
    np.testing.assert_array_equal(np.asarray(p), exp["p_alive"])
    # the encoders now write the one encoder's shape, with the same design columns
    enc = model.to_dict()["covariates"]["dropout"]
    assert enc["levels"] == {"channel": ["store", "online", "referral"], "vip": ["False", "True"]}
    assert enc["feature_names"] == ["channel=online", "channel=referral", "vip=True"]


def test_old_churn_file_loads_and_predicts_as_before(expected):
    exp = expected["churn"]
    for model in (survival.load_model(OLD_FILES / "churn.json"),
                  survival.ChurnModel().load_model(OLD_FILES / "churn.json")):
        assert model.feature_names_ == exp["feature_names"]
        np.testing.assert_array_equal(model.params_.to_numpy(), exp["params"])
        table = pd.DataFrame(exp["table"])
        np.testing.assert_array_equal(model.churn_probability(table, 13.0).to_numpy(),
                                      exp["churn_probability"])
    # the churn file's content is exactly what the model writes now (but the version), plus
    # the keys of derived features that files gained since, empty: the table's own columns
    doc = json.loads((OLD_FILES / "churn.json").read_text())
    assert model.features_ is None and model.features is None
    now = model.to_dict()
    assert now["model"].pop("features") is None
    assert now["model"]["settings"].pop("features") is None
    assert now["model"]["settings"].pop("purchase_window") is None
    assert now["model"]["settings"].pop("clip_to_training") is False
    assert now | {"version": doc["version"]} == doc


def test_json_ready():
    value = {1: np.array([1.0, np.nan, np.inf]), "b": (np.int64(3), np.bool_(True), True),
             "c": [np.float32(0.5), None, "x", 2]}
    assert json_ready(value) == {"1": [1.0, None, None], "b": [3, True, True],
                                 "c": [0.5, None, "x", 2]}
    assert type(json_ready(np.int64(3))) is int and type(json_ready(np.bool_(False))) is bool

"""JSON model files: complete, valid JSON, and a loaded model predicts identically."""
import json

import numpy as np
import pytest

from clvtools import __version__
from clvtools.errors import ClvInputError
from clvtools.survival import (
    ChurnModel,
    CompetingRisksModel,
    load_model,
    simulate_contracts,
    simulate_landmark_table,
)


@pytest.fixture(scope="module")
def table():
    return simulate_landmark_table(2000, n_landmarks=2, shape=1.0, seed=5)


@pytest.mark.parametrize("params", [
    {},
    {"strata": ["region"], "tail": "constant_hazard"},
    {"penalizer": 0.1, "l1_ratio": 0.5, "reference": {"channel": "store"}, "time_unit": "week"},
], ids=["plain", "strata+tail", "penalised"])
def test_round_trip_predicts_identically(tmp_path, table, params):
    model = ChurnModel(**params).fit(table)
    path = tmp_path / "churn.json"
    model.save_model(path)
    loaded = ChurnModel().load_model(path)
    horizons = [1.0, 4.0, 13.0, 30.0] if params.get("tail") else [1.0, 4.0, 13.0]
    np.testing.assert_array_equal(loaded.survival_function(table, horizons).to_numpy(),
                                  model.survival_function(table, horizons).to_numpy())
    np.testing.assert_array_equal(loaded.churn_probability(table, 13.0),
                                  model.churn_probability(table, 13.0))
    a, b = model.summary, loaded.summary
    assert a.drop(columns=["level", "reference"]).equals(b.drop(columns=["level", "reference"]))
    assert loaded.get_params() == model.get_params()
    assert loaded.concordance_ == model.concordance_


def test_file_content_is_plain_json(tmp_path, table):
    model = ChurnModel(strata=["region"]).fit(table)
    path = tmp_path / "churn.json"
    model.save_model(path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)
    assert d["format"] == "clvtools.survival/1" and d["version"] == __version__
    body = d["model"]
    assert set(body) >= {"settings", "encoding", "coef", "covariance", "norm_mean", "baselines",
                         "log_likelihood", "concordance", "ph_test", "robust"}
    assert set(body["baselines"]) == {"north", "south"}
    assert body["encoding"]["levels"]["channel"][0] == "web"
    assert len(body["covariance"]) == len(body["coef"])
    assert model.to_dict() == d  # save_model writes to_dict


def test_competing_model_round_trip(tmp_path):
    contracts = simulate_contracts(1500, seed=2)
    model = CompetingRisksModel(check_ph=False).fit(contracts)
    path = tmp_path / "reasons.json"
    model.save_model(path)
    for loaded in (load_model(path), CompetingRisksModel().load_model(path),
                   CompetingRisksModel.from_dict(model.to_dict())):
        assert isinstance(loaded, CompetingRisksModel)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.reason_probabilities(contracts, 12.0).to_numpy(),
                                      model.reason_probabilities(contracts, 12.0).to_numpy())
    with pytest.raises(ClvInputError, match="holds a 'CompetingRisksModel', not a ChurnModel"):
        ChurnModel().load_model(path)


def test_wrong_file_is_an_input_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ClvInputError, match="not a clvtools survival model file"):
        load_model(path)
    path.write_text(json.dumps({"format": "clvtools.survival/1", "kind": "ChurnModel",
                                "version": "0", "model": {"settings": {}}}))
    with pytest.raises(ClvInputError, match="at model, 'encoding' is a required property"):
        load_model(path)
    with pytest.raises(ClvInputError, match="Not a clvtools survival model"):
        ChurnModel.from_dict({"format": "something else"})
    with pytest.raises(ClvInputError, match="the key 'model' is missing"):
        ChurnModel.from_dict({"format": "clvtools.survival/1", "kind": "ChurnModel"})
    with pytest.raises(ClvInputError, match="not fitted"):
        ChurnModel().save_model(tmp_path / "x.json")

"""Model files follow their JSON Schemas; a damaged file is a clear error, not a traceback."""
import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.btyd import BetaGeoFitter, load_model
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base, load_cdnow_summary
from clvtools.errors import ClvInputError
from clvtools.schemas import model_schema, read_model_file
from clvtools.survival import load_model as load_churn_model


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    base = generate_customer_base(3000, seed=11)
    result = analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                     config=Settings(horizon=26))
    return result, result.write(tmp_path_factory.mktemp("run") / "out")


@pytest.fixture
def bgnbd_file(tmp_path):
    cdnow = load_cdnow_summary()
    path = tmp_path / "bgnbd.json"
    BetaGeoFitter(penalizer_coef=0.001).fit(
        cdnow["frequency"], cdnow["recency"], cdnow["T"]).save_model(path)
    return path


def test_schemas_are_valid_json_schemas():
    for kind in ("btyd", "survival"):
        jsonschema.Draft202012Validator.check_schema(model_schema(kind))


def test_main_job_model_files_follow_the_schemas_and_load_back(outputs):
    result, out = outputs
    for name in ("value", "spend"):
        doc = read_model_file(out / "models" / f"{name}.json", "btyd")
        # the run's context sits beside the fitter's own settings, not over them
        assert doc["run_settings"]["horizon"] == 26 and doc["data_fingerprint"]["customers"] > 0
        assert set(doc["settings"]) <= {"penalizer_coef", "q_constraint"}
    value = load_model(out / "models" / "value.json")
    fitted = result.value_models.purchases
    fitted = getattr(fitted, "model", fitted)
    pd.testing.assert_series_equal(value.params_, fitted.params_)
    assert value.penalizer_coef == fitted.penalizer_coef
    assert not hasattr(value, "horizon")  # no run setting leaks onto the fitter
    churn_doc = read_model_file(out / "models" / "churn.json", "survival")
    assert churn_doc["run_settings"]["horizon"] == 26
    churn = load_churn_model(out / "models" / "churn.json")
    pd.testing.assert_series_equal(churn.params_, result.churn_model.params_)


def _damage(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("fit"), r"at the top level, 'fit' is a required property"),
    (lambda d: d["params"].__setitem__(1, "4.41"),
     r"at params\[1\], '4.41' is not of type 'number'"),
    (lambda d: d["fit"].__setitem__("n_iterations", -3),
     r"at fit.n_iterations, -3 is less than the minimum of 0"),
    (lambda d: d["settings"].__setitem__("horizon", 52),
     r"at settings, Additional properties are not allowed"),
    (lambda d: d["params"].pop(), r"4 parameter names, 3 parameters and a 4 x 4 variance matrix"),
])
def test_damaged_btyd_file_names_the_field(bgnbd_file, change, message):
    _damage(bgnbd_file, change)
    with pytest.raises(ClvInputError, match=message) as info:
        load_model(bgnbd_file)
    assert str(bgnbd_file) in str(info.value)
    with pytest.raises(ClvInputError, match=message):
        BetaGeoFitter().load_model(bgnbd_file)


def test_file_of_another_kind(bgnbd_file):
    with pytest.raises(ClvInputError, match="not a clvtools survival model file"):
        load_churn_model(bgnbd_file)
    bgnbd_file.write_text("[1, 2, 3]")
    with pytest.raises(ClvInputError, match="not a clvtools btyd model file"):
        load_model(bgnbd_file)


def test_truncated_or_missing_file(bgnbd_file, tmp_path):
    bgnbd_file.write_text(bgnbd_file.read_text()[:100])
    with pytest.raises(ClvInputError, match=r"not valid JSON: .* at line \d+, column \d+"):
        load_model(bgnbd_file)
    with pytest.raises(ClvInputError, match="does not exist"):
        load_model(tmp_path / "nowhere.json")
    with pytest.raises(ClvInputError, match="does not exist"):
        load_churn_model(tmp_path / "nowhere.json")


def test_damaged_churn_file_names_the_field(outputs, tmp_path):
    _, out = outputs
    path = tmp_path / "churn.json"
    path.write_text((out / "models" / "churn.json").read_text())
    # the main job's model has a baseline per recency band: damage the first one
    key = next(iter(json.loads(path.read_text())["model"]["baselines"]))
    _damage(path, lambda d: d["model"]["baselines"][key].pop("times"))
    with pytest.raises(ClvInputError,
                       match=rf"at model.baselines.{key}, 'times' is a required property"):
        load_churn_model(path)


def test_penalizer_round_trips(bgnbd_file):
    model = load_model(bgnbd_file)
    assert model.penalizer_coef == 0.001
    assert np.isfinite(model.params_).all()

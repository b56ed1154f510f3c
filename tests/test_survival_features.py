"""The landmark feature set: ChurnModel derives its covariates from a raw landmark table, in
fit and in every prediction, and its model file carries the recipe."""
import datetime as dt
import textwrap

import numpy as np
import pandas as pd
import pytest

from clvtools.data.attributes import read_customers
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.survival import ChurnModel, load_model
from clvtools.survival.features import BehaviourFeatures, has_landmark_columns

RULE = dict(churn_after=20, time_unit="week")


@pytest.fixture(scope="module")
def tables():
    """A raw stacked landmark table (two landmarks) and the scoring table of one log."""
    base = generate_customer_base(3000, seed=4, start="2022-01-01", observation_end="2024-06-30")
    log = read_transactions(base.transactions)
    attributes = read_customers(log, base.customers.drop(columns="acquisition_date"))
    marks = [dt.date(2023, 6, 30), dt.date(2023, 12, 29)]
    survival = landmark_table(log, landmarks=marks, attributes=attributes, **RULE)
    return survival, scoring_table(log, attributes=attributes, **RULE)


@pytest.fixture(scope="module")
def model(tables):
    return ChurnModel(time_unit="week", tail="constant_hazard").fit(tables[0])


def _old_recipe(table, scale):
    """The feature construction the pipeline did itself before (pipeline.risk.model_covariates,
    weekly windows), frozen here to show the model derives exactly the same columns; spend
    now over its training median ``scale``, so that the currency unit does not matter."""
    out = pd.DataFrame({
        "time_since_last_purchase": table["time_since_last_purchase"].astype("float64"),
        "tenure": table["tenure"].astype("float64"),
        "log_frequency": np.log1p(table["frequency"].astype("float64")),
        "log_purchases_last_13": np.log1p(table["purchases_last_13"].astype("float64")),
        "purchase_trend": table["purchase_trend"].astype("float64"),
        "log_average_spend": np.log1p(table["average_spend"].clip(lower=0).astype("float64")
                                      / scale),
    })
    for column in ("channel", "region", "plan"):
        out[column] = table[column]
    return out


def test_the_recipe_is_the_pipelines_former_one(tables):
    survival, scoring = tables
    assert has_landmark_columns(survival.columns) and has_landmark_columns(scoring.columns)
    recipe = BehaviourFeatures(exclude=["customer_id", "landmark", "duration", "event"])
    recipe.fit(survival)
    scale = float(survival["average_spend"][survival["average_spend"] > 0].median())
    assert recipe.to_dict() == {"kind": "landmark", "window_column": "purchases_last_13",
                                "log_spend": True, "spend_scale": scale,
                                "attributes": ["channel", "region", "plan"]}
    for table in (survival, scoring):
        pd.testing.assert_frame_equal(recipe.transform(table), _old_recipe(table, scale))


@pytest.mark.parametrize("scale", [0.01, 1_000.0])
def test_the_currency_unit_changes_no_churn_probability(model, tables, scale):
    # amounts in cents, or in thousands: every spend column scaled alike
    survival, scoring = (t.assign(**{c: t[c] * scale for c in t.columns
                                     if c.startswith("spend_") or c.endswith("_spend")})
                         for t in tables)
    scaled = ChurnModel(time_unit="week", tail="constant_hazard").fit(survival)
    assert scaled.features_.spend_scale_ == pytest.approx(scale * model.features_.spend_scale_)
    np.testing.assert_allclose(scaled.params_, model.params_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(scaled.churn_probability(scoring, 26.0),
                               model.churn_probability(tables[1], 26.0), rtol=1e-7, atol=1e-10)


def test_default_fit_on_a_raw_landmark_table_just_works(model, tables):
    survival, scoring = tables
    assert model.features == "auto" and model.features_ is not None
    assert model.feature_names_[:6] == ["time_since_last_purchase", "tenure", "log_frequency",
                                        "log_purchases_last_13", "purchase_trend",
                                        "log_average_spend"]
    assert "n_purchases" not in model.feature_names_  # collinear with frequency: left out
    assert model.robust_  # stacked landmarks: the same customer in several rows
    p = model.churn_probability(scoring, 26.0)
    assert p.index.equals(scoring.index) and p.between(0, 1).all()


@pytest.mark.filterwarnings("ignore")  # lifelines' ill-conditioning warnings on the way
def test_every_raw_column_does_not_converge(tables):
    """What features='auto' avoids: every column of the landmark table together (n_purchases
    beside frequency, the longest windows near the whole history) leaves the fit singular."""
    from clvtools.errors import ConvergenceError

    with pytest.raises(ConvergenceError):
        ChurnModel(features=None, check_ph=False).fit(tables[0])


def test_the_saved_model_scores_raw_tables_identically(model, tables, tmp_path):
    model.save_model(tmp_path / "churn.json")
    loaded = load_model(tmp_path / "churn.json")  # the JSON Schema accepts the recipe
    assert loaded.features_.to_dict() == model.features_.to_dict()
    for table in tables:
        np.testing.assert_allclose(loaded.churn_probability(table, 26.0),
                                   model.churn_probability(table, 26.0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(loaded.predict_survival_function(table.head(50), [4, 13]),
                                   model.predict_survival_function(table.head(50), [4, 13]),
                                   rtol=0, atol=1e-12)
    assert ChurnModel.from_dict(model.to_dict()).to_dict() == model.to_dict()


def test_explicit_covariates_are_used_as_given(tables):
    survival = tables[0]
    m = ChurnModel(covariates=["time_since_last_purchase", "frequency", "channel"],
                   check_ph=False).fit(survival)
    assert m.features_ is None and m.to_dict()["model"]["features"] is None
    assert m.feature_names_ == ["time_since_last_purchase", "frequency", "channel=store",
                                "channel=referral"]
    # no recipe: the table's own columns, so the same figures from the bare columns
    bare = survival[["time_since_last_purchase", "frequency", "channel"]]
    np.testing.assert_array_equal(m.log_partial_hazard(bare), m.log_partial_hazard(survival))


def test_landmark_features_with_a_chosen_window_and_subset(tables):
    survival, scoring = tables
    m = ChurnModel(features="landmark", purchase_window=26, check_ph=False,
                   covariates=["time_since_last_purchase", "log_purchases_last_26", "plan"]
                   ).fit(survival)
    assert m.features_.window_column_ == "purchases_last_26"
    assert m.feature_names_ == ["time_since_last_purchase", "log_purchases_last_26",
                                "plan=premium"]
    assert m.churn_probability(scoring, 13.0).between(0, 1).all()


def test_strata_are_no_attribute_of_the_recipe(tables):
    m = ChurnModel(strata=["region"], check_ph=False).fit(tables[0])
    assert m.features_.attributes_ == ["channel", "plan"]
    assert not any(n.startswith("region") for n in m.feature_names_)
    assert m.churn_probability(tables[1], 13.0).notna().all()


def test_missing_behaviour_columns_are_named(model, tables):
    with pytest.raises(ClvInputError, match="purchases_last_13"):
        model.churn_probability(tables[1].drop(columns="purchases_last_13"), 13.0)
    with pytest.raises(ClvInputError, match="landmark behaviour column"):
        ChurnModel(features="landmark").fit(tables[0].drop(columns="tenure"))
    with pytest.raises(ClvInputError, match="'features' parameter"):
        ChurnModel(features="rfm").fit(tables[0])


def test_a_table_without_behaviour_columns_keeps_every_column():
    from clvtools.survival import simulate_landmark_table

    table = simulate_landmark_table(500, seed=1)
    m = ChurnModel(check_ph=False).fit(table)
    assert m.features_ is None
    assert set(m.encoder_.columns) == {"channel", "region", "time_since_last_purchase",
                                       "n_purchases"}


def test_the_packages_docstring_example_runs(tmp_path, monkeypatch):
    import clvtools.survival

    lines = []
    for line in clvtools.survival.__doc__.split("::\n", 1)[1].splitlines():
        if line and not line.startswith("    "):
            break  # the end of the literal block
        lines.append(line)
    block = "\n".join(lines)
    monkeypatch.chdir(tmp_path)  # it saves a model file
    namespace: dict = {}
    exec(textwrap.dedent(block), namespace)
    assert namespace["curves"].shape == (2, len(namespace["scoring"]))
    assert (tmp_path / "churn.json").is_file()

"""One covariate encoder for btyd and survival: each reference rule reproduces exactly what the
encoder of its model family did before (clvtools.btyd.covariate_encoding and
clvtools.survival.encoding at c533b92; the expected values below are their outputs)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.encoding import MAX_LEVELS, CovariateEncoder, as_categories
from clvtools.errors import ClvInputError


@pytest.fixture
def df():
    return pd.DataFrame({
        "plan": ["basic", "pro", "basic", "team", "pro", "basic", "team", "pro"],
        "tier": pd.Categorical(["b", "a", "b", "c", "a", "a", "c", "c"],
                               categories=["c", "b", "a", "unused"]),
        "vip": [True, False, False, True, False, False, False, True],
        "code": [10, 2, 2, 10, 3, 3, 10, 2],
        "age": [1.5, 2.0, -1.0, 0.0, 0.5, 1.0, 2.5, 3.0],
    })


def btyd_encoder(columns, reference_levels=None):
    """As the BTYD covariate fitters build it."""
    return CovariateEncoder(columns, reference="sorted", reference_levels=reference_levels)


def cox_encoder(columns, reference_levels=None, categorical=None):
    """As ChurnModel builds it."""
    return CovariateEncoder(columns, reference="most_frequent", reference_levels=reference_levels,
                            categorical=categorical, max_levels=MAX_LEVELS, allow_constant=False)


def test_sorted_rule_is_the_former_btyd_encoding(df):
    enc = btyd_encoder(["plan", "tier", "vip", "age"]).fit(df)
    # first level in sorted order; a Categorical's first (observed) category; bools as levels
    assert enc.feature_names_ == ["plan=pro", "plan=team", "tier=b", "tier=a", "vip=True", "age"]
    np.testing.assert_array_equal(enc.transform(df), [
        [0, 0, 1, 0, 1, 1.5], [1, 0, 0, 1, 0, 2.0], [0, 0, 1, 0, 0, -1.0], [0, 1, 0, 0, 1, 0.0],
        [1, 0, 0, 1, 0, 0.5], [0, 0, 0, 1, 0, 1.0], [0, 1, 0, 0, 0, 2.5], [1, 0, 0, 0, 1, 3.0]])
    # a given reference leaves the other levels in their order
    ref = btyd_encoder(["plan", "tier"], {"plan": "pro", "tier": "a"}).fit(df)
    assert ref.feature_names_ == ["plan=basic", "plan=team", "tier=c", "tier=b"]
    # sorted on the raw values: 2 before 10
    codes = CovariateEncoder(["code"], categorical=["code"]).fit(df)
    assert codes.feature_names_ == ["code=3", "code=10"]


def test_most_frequent_rule_is_the_former_churn_encoding(df):
    enc = cox_encoder(["plan", "tier", "vip", "code", "age"], categorical=["code"]).fit(df)
    # most frequent level first, ties by sort order of the strings ("10" before "2")
    assert enc.feature_names_ == ["plan=pro", "plan=team", "tier=c", "tier=b", "vip=True",
                                  "code=2", "code=3", "age"]
    assert enc.levels_ == {"plan": ["basic", "pro", "team"], "tier": ["a", "c", "b"],
                           "vip": ["False", "True"], "code": ["10", "2", "3"]}
    np.testing.assert_array_equal(enc.transform(df), [
        [0, 0, 0, 1, 1, 0, 0, 1.5], [1, 0, 0, 0, 0, 1, 0, 2.0], [0, 0, 0, 1, 0, 1, 0, -1.0],
        [0, 1, 1, 0, 1, 0, 0, 0.0], [1, 0, 0, 0, 0, 0, 1, 0.5], [0, 0, 0, 0, 0, 0, 1, 1.0],
        [0, 1, 1, 0, 0, 0, 0, 2.5], [1, 0, 1, 0, 1, 1, 0, 3.0]])
    ref = cox_encoder(["plan", "tier"], {"plan": "team"}).fit(df)
    assert ref.levels_ == {"plan": ["team", "basic", "pro"], "tier": ["a", "c", "b"]}
    assert ref.feature_names_ == ["plan=basic", "plan=pro", "tier=c", "tier=b"]
    flags = cox_encoder(["age", "vip", "flag01"]).fit(df.assign(flag01=[0, 1, 0, 1, 0, 1, 0, 1.0]))
    assert flags.to_dict() == {
        "covariates": ["age", "vip", "flag01"], "numeric": ["age", "flag01"],
        "binary": ["flag01"], "levels": {"vip": ["False", "True"]},
        "feature_names": ["age", "vip=True", "flag01"]}
    desc = ref.describe()
    assert desc.columns.tolist() == ["feature", "variable", "level", "reference"]
    assert desc.iloc[0].tolist() == ["plan=basic", "plan", "basic", "team"]


def test_round_trip_and_the_former_btyd_dict(df):
    for enc in (btyd_encoder(["plan", "tier", "vip", "age"]).fit(df),
                cox_encoder(["plan", "code", "age"], categorical=["code"]).fit(df)):
        back = CovariateEncoder.from_dict(enc.to_dict())
        assert back.to_dict() == enc.to_dict()
        np.testing.assert_array_equal(back.transform(df), enc.transform(df))
    # the BTYD encoder's former to_dict: raw level values, the reference among the levels
    old = {"columns": ["plan", "tier", "vip", "age"],
           "spec": [{"column": "plan", "kind": "categorical", "levels": ["basic", "pro", "team"],
                     "reference": "pro"},
                    {"column": "tier", "kind": "categorical", "levels": ["c", "b", "a"],
                     "reference": "c"},
                    {"column": "vip", "kind": "categorical", "levels": [False, True],
                     "reference": False},
                    {"column": "age", "kind": "numeric"}],
           "names": ["plan=basic", "plan=team", "tier=b", "tier=a", "vip=True", "age"]}
    enc = CovariateEncoder.from_dict(old)
    assert enc.levels_ == {"plan": ["pro", "basic", "team"], "tier": ["c", "b", "a"],
                           "vip": ["False", "True"]}
    assert enc.feature_names_ == old["names"]
    np.testing.assert_array_equal(
        enc.transform(df),
        btyd_encoder(["plan", "tier", "vip", "age"], {"plan": "pro"}).fit(df).transform(df))


def test_levels_are_found_whatever_the_scoring_dtype(df):
    enc = btyd_encoder(["tier", "vip"]).fit(df)
    as_strings = pd.DataFrame({"tier": ["a", "c"], "vip": np.array(["True", "False"], object)})
    np.testing.assert_array_equal(enc.transform(as_strings), [[0, 1, 1], [0, 0, 0]])


def test_no_covariates():
    enc = CovariateEncoder([]).fit(None)
    assert enc.transform(None, n_rows=3).shape == (3, 0)
    assert enc.transform(pd.DataFrame({"x": [1, 2]})).shape == (2, 0)
    assert enc.feature_names_ == []


def test_errors_say_what_and_where(df):
    with pytest.raises(ClvInputError, match="'reference' parameter of CovariateEncoder"):
        CovariateEncoder(["plan"], reference="first").fit(df)
    with pytest.raises(ClvInputError, match="duplicates"):
        CovariateEncoder(["plan", "plan"]).fit(df)
    with pytest.raises(ClvInputError, match="no covariates table"):
        CovariateEncoder(["plan"]).fit(None)
    with pytest.raises(ClvInputError, match=r"given for column\(s\) \['other'\]"):
        CovariateEncoder(["plan"], reference_levels={"other": "x"}).fit(df)
    with pytest.raises(ClvInputError, match="columns \\['x', 'y'\\] are missing"):
        CovariateEncoder(["x", "y"]).fit(df)
    with pytest.raises(ClvInputError, match="single level"):
        CovariateEncoder(["plan"]).fit(df.assign(plan="basic"))
    with pytest.raises(ClvInputError, match="does not occur"):
        CovariateEncoder(["plan"], reference_levels={"plan": "gold"}).fit(df)
    ids = pd.DataFrame({"id": [f"c{i}" for i in range(MAX_LEVELS + 1)]})
    assert len(CovariateEncoder(["id"]).fit(ids).feature_names_) == MAX_LEVELS
    with pytest.raises(ClvInputError, match="looks like an identifier"):
        cox_encoder(["id"]).fit(ids)
    constant = df.assign(age=1.0)
    assert CovariateEncoder(["age"]).fit(constant).numeric_ == ["age"]
    with pytest.raises(ClvInputError, match="constant"):
        cox_encoder(["age"]).fit(constant)
    enc = btyd_encoder(["plan", "age"]).fit(df)
    with pytest.raises(ClvInputError, match="not fitted with: \\['gold'\\]") as info:
        enc.transform(df.assign(plan=["gold"] + ["pro"] * 7))
    assert info.value.column == "plan" and info.value.n_rows == 1
    with pytest.raises(ClvInputError, match="has missing values") as info:
        enc.transform(df.assign(plan=[None] + ["pro"] * 7))
    assert info.value.n_rows == 1
    with pytest.raises(ClvInputError, match="missing or infinite") as info:
        enc.transform(df.assign(age=[np.inf] + [0.0] * 7))
    assert info.value.column == "age"
    with pytest.raises(ClvInputError, match="was numeric when the model was fitted"):
        enc.transform(df.assign(age="old"))
    with pytest.raises(ClvInputError, match="'plan' is missing from the table"):
        enc.transform(df.drop(columns="plan"))
    with pytest.raises(ClvInputError, match="needs the covariates"):
        enc.transform(None)


@pytest.mark.parametrize("reference", ["sorted", "most_frequent"])
def test_text_attributes_as_categories_encode_exactly_as_the_text(reference):
    # what the value step hands its fits: the same levels, reference, dummies and errors;
    # mixed types (1 and "1" print alike), ids that sort differently as text and as numbers
    text = pd.DataFrame({
        "plan": ["pro", "basic", "team", "basic", "pro", "basic", "team", "pro"],
        "mixed": [10, "1", 1, 9, "x", 10, 9, 1],
        "age": [1.5, 2.0, -1.0, 0.0, 0.5, 1.0, 2.5, 3.0],
    }, index=[f"c{i}" for i in range(8)])
    coded = as_categories(text)
    assert isinstance(coded["plan"].dtype, pd.CategoricalDtype)
    assert coded["age"].dtype == float and coded.index.equals(text.index)
    assert coded.astype(object).equals(text.astype(object))    # the same values
    fitted = [CovariateEncoder(list(text.columns), reference=reference).fit(t)
              for t in (text, coded)]
    assert fitted[0].levels_ == fitted[1].levels_
    assert fitted[0].feature_names_ == fitted[1].feature_names_
    for rows in (slice(None), [5, 1, 2]):   # a subset may lack some categories
        np.testing.assert_array_equal(fitted[0].transform(text.iloc[rows]),
                                      fitted[1].transform(coded.iloc[rows]))
        np.testing.assert_array_equal(fitted[0].transform(coded.iloc[rows]),
                                      fitted[1].transform(text.iloc[rows]))
    missing = as_categories(text.assign(plan=["pro", None] * 4))
    assert missing["plan"].isna().sum() == 4
    with pytest.raises(ClvInputError, match="missing values"):
        fitted[1].transform(missing)

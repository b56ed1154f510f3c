"""Bad input and non-convergence: errors that say where the problem is and what to do."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary

from clvtools.btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    InfiniteMeanWarning,
    ModifiedBetaGeoFitter,
)
from clvtools.errors import ClvInputError, ConvergenceError

CDNOW = load_cdnow_summary(index_col=[0])


def _cols(changes=None):
    df = CDNOW.head(200).astype(float)
    for (col, row), value in (changes or {}).items():
        df.loc[df.index[row], col] = value
    return df["frequency"], df["recency"], df["T"]


@pytest.mark.parametrize("cls", [BetaGeoFitter, ModifiedBetaGeoFitter])
@pytest.mark.parametrize(
    "change, column, words",
    [
        ({("frequency", 5): -1}, "frequency", "non-negative"),
        ({("frequency", 5): 1.5}, "frequency", "whole numbers"),
        ({("recency", 0): 50.0}, "recency", "must not exceed 'T'"),
        ({("recency", 2): 3.0}, "recency", "must be 0 for customers without repeat"),
        ({("T", 7): np.nan}, "T", "missing"),
        ({("recency", 0): -1.0}, "recency", "non-negative"),
    ],
)
def test_bad_rfm_rows_are_named(cls, change, column, words):
    with pytest.raises(ClvInputError) as info:
        cls().fit(*_cols(change))
    err = info.value
    assert err.column == column and words in str(err)
    assert err.n_rows == 1 and err.rows is not None and len(err.rows) == 1
    # the offending customer's id (CDNOW's ID index) is shown
    row = next(iter(change))[1]
    assert err.rows["row"].iloc[0] == CDNOW.index[row]
    assert "What to do" in str(err)


def test_no_repeat_buyers():
    n = 50
    with pytest.raises(ClvInputError, match="No customer has a repeat purchase"):
        BetaGeoFitter().fit(np.zeros(n), np.zeros(n), np.full(n, 10.0))


def test_length_mismatch_and_empty():
    with pytest.raises(ClvInputError, match="same length"):
        BetaGeoFitter().fit([1, 2], [1, 2], [3, 4, 5])
    with pytest.raises(ClvInputError, match="no customers"):
        BetaGeoFitter().fit([], [], [])


def test_bad_weights_and_settings():
    x, tx, T = _cols()
    with pytest.raises(ClvInputError, match="weights"):
        BetaGeoFitter().fit(x, tx, T, weights=-np.ones(len(x)))
    with pytest.raises(ClvInputError, match="one value per row"):
        BetaGeoFitter().fit(x, tx, T, weights=[1, 2])
    with pytest.raises(ClvInputError, match="'penalizer_coef' parameter of BetaGeoFitter must"):
        BetaGeoFitter(penalizer_coef=-1).fit(x, tx, T)
    with pytest.raises(ClvInputError, match="'initial_params' must hold 4"):
        BetaGeoFitter().fit(x, tx, T, initial_params=[0, 0])


def test_not_converged_gives_a_checklist():
    with pytest.raises(ConvergenceError) as info:
        BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"], maxiter=2)
    msg = str(info.value)
    assert "did not converge" in msg and "2 iterations" in msg
    assert "  1. " in msg and "  2. " in msg and "penalizer_coef" in msg


def test_penalizer_shrinks_parameters():
    x, tx, T = CDNOW["frequency"], CDNOW["recency"], CDNOW["T"]
    free = BetaGeoFitter().fit(x, tx, T)
    pen = BetaGeoFitter(penalizer_coef=0.1).fit(x, tx, T)
    assert np.sum(pen.params_**2) < np.sum(free.params_**2)
    assert pen.log_likelihood_ < free.log_likelihood_


def test_bgbb_needs_whole_periods():
    with pytest.raises(ClvInputError, match="whole numbers of periods"):
        BetaGeoBetaBinomFitter().fit([1, 2, 0], [1.5, 2, 0], [6, 6, 6])
    with pytest.raises(ClvInputError, match="must not exceed 'n_periods'"):
        BetaGeoBetaBinomFitter().fit([1, 2, 0], [7, 2, 0], [6, 6, 6])


@pytest.mark.parametrize(
    "frequency, monetary, words",
    [
        ([1, 2, 3], [10.0, 0.0, 5.0], "positive and finite"),
        ([1, 2, 3], [10.0, -3.0, 5.0], "positive and finite"),
        ([1, 0, 3], [10.0, 3.0, 5.0], "repeat buyers only"),
        ([1, 2.5, 3], [10.0, 3.0, 5.0], "whole numbers"),
    ],
)
def test_gamma_gamma_bad_input(frequency, monetary, words):
    with pytest.raises(ClvInputError, match=words):
        GammaGammaFitter().fit(frequency, monetary)


def _heavy_tailed_spend(n=3000, seed=7):
    """Gamma-Gamma spend with q = 0.6 < 1: the population mean spend is infinite."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, n)
    nu = rng.gamma(0.6, 1 / 10.0, n)  # q = 0.6, v = 10
    m = rng.gamma(2.0 * x, 1.0 / nu) / x  # mean of x Gamma(p = 2, nu) spends
    return x, m


def test_gamma_gamma_q_below_one_is_flagged():
    x, m = _heavy_tailed_spend()
    with pytest.warns(InfiniteMeanWarning, match="q = .* <= 1"):
        gg = GammaGammaFitter().fit(x, m)
    assert gg.params_["q"] < 1
    # lifetimes' formula would return a negative population mean here; we refuse
    with pytest.raises(ClvInputError, match="infinite mean spend"):
        gg.conditional_expected_average_profit(x, m)
    bg = BetaGeoFitter().fit(CDNOW["frequency"], CDNOW["recency"], CDNOW["T"])
    with pytest.raises(ClvInputError, match="q_constraint=True"):
        gg.customer_lifetime_value(bg, pd.Series(x), pd.Series(x * 0.0), pd.Series(x * 0 + 10.0),
                                   pd.Series(m))


def test_gamma_gamma_q_constraint_keeps_q_at_least_one():
    x, m = _heavy_tailed_spend()
    with pytest.warns(InfiniteMeanWarning):  # q = 1 exactly: still an infinite mean
        gg = GammaGammaFitter().fit(x, m, q_constraint=True)
    assert gg.params_["q"] == pytest.approx(1.0, abs=1e-9)
    assert gg.q_constraint is True

"""The value step's automatic choice of the purchase model, its holdout tables and its checks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvtools.btyd.bgnbd import BetaGeoFitter
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.btyd.simulate import simulate_pareto_nbd
from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.pipeline import value_choice
from clvtools.pipeline.holdout import auc
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.timeline import build_timeline
from clvtools.pipeline.value import value_step
from clvtools.pipeline.value_checks import (
    SPEND_CORRELATION_WARNING,
    frequency_fit,
    spend_frequency_correlation,
)
from clvtools.pipeline.value_choice import candidate_models, stratified_sample


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(3000, seed=7)


def _value(base, customers=True, **settings):
    s = Settings(**{"horizon": 26, **settings})
    attributes = base.customers.drop(columns="acquisition_date") if customers else None
    inputs = read_inputs(base.transactions, attributes, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    return value_step(inputs, timeline, s)


@pytest.fixture(scope="module")
def auto(base):
    return _value(base)


def test_auto_is_the_default_and_compares_like_with_like(auto):
    assert Settings().value_model == "auto"
    summary = auto.holdout["holdout_summary"]
    # with attributes: the two models with a covariate version, both with the attributes
    assert summary["model"].tolist() == ["bgnbd", "pnbd"]
    assert summary["chosen"].sum() == 1 and (summary["basis"] == "all customers").all()
    chosen = summary.loc[summary["chosen"], "model"].item()
    assert summary.set_index("model")["holdout_error"].idxmin() == chosen
    assert auto.choice.chosen == chosen and auto.choice.criterion == "holdout_error"
    assert hasattr(auto.models.purchases, "covariates")  # fitted with the attributes
    assert any("MBG/NBD has no covariate version" in n for n in auto.notes)
    assert auto.choice.note in auto.console_notes and f"Value model {chosen}" in auto.choice.note
    selection = auto.choice.as_dict()
    assert selection["chosen"] == chosen and len(selection["candidates"]) == 2


def test_without_attributes_all_three_candidates_are_compared(base):
    assert candidate_models("auto", None)[0] == ("bgnbd", "mbgnbd", "pnbd")
    value = _value(base, customers=False)
    summary = value.holdout["holdout_summary"]
    assert summary["model"].tolist() == ["bgnbd", "mbgnbd", "pnbd"]
    assert "error_by_segment" not in summary.columns
    assert "holdout_by_segment" not in value.holdout


def test_an_explicit_value_model_wins(base):
    value = _value(base, value_model="pnbd")
    summary = value.holdout["holdout_summary"]
    assert summary["model"].tolist() == ["pnbd"] and summary["chosen"].all()
    assert value.choice.criterion == "setting" and "as set" in value.choice.note
    assert type(value.models.purchases.model).__name__ == "ParetoNBDCovariatesFitter"


def test_without_room_for_a_holdout_the_choice_is_by_bic(base):
    value = _value(base, horizon=80)
    assert value.holdout == {}
    assert value.choice.criterion == "BIC" and "lowest BIC" in value.choice.note
    bic = {c["model"]: c["BIC"] for c in value.choice.candidates}
    assert value.choice.chosen == min(bic, key=bic.get)
    assert "p_alive_auc_holdout" not in value.checks


def test_a_large_base_is_compared_on_a_stratified_sample(base, monkeypatch):
    monkeypatch.setattr(value_choice, "SAMPLE_ABOVE", 1000)
    value = _value(base)
    summary = value.holdout["holdout_summary"]
    sampled = summary[summary["basis"] == "stratified sample"]
    assert sampled["model"].tolist() == ["bgnbd", "pnbd"]
    # proportional allocation, rounded up per stratum: about 1,000 of the window's customers
    assert 1000 <= sampled["customers"].iloc[0] <= 1100
    full = summary[summary["basis"] == "all customers"]
    assert len(full) == 1 and full["chosen"].item()
    assert full["model"].item() == sampled.set_index("model")["holdout_error"].idxmin()
    assert full["customers"].item() > 2000
    assert "stratified sample" in value.choice.note


@pytest.mark.parametrize("winner", ["best", "pnbd"])
def test_the_two_threads_choose_and_fit_as_one_thread_does(base, monkeypatch, winner):
    """On a sample, the candidates, the choice, the chosen model's refit on the window (begun
    ahead of the choice with the best of this thread's candidates) and the whole history's
    fit over two threads give the figures of the same work done in turn (``OVERLAP`` off),
    bit for bit: when the model fitted ahead is chosen, and when the other thread's wins
    (``winner="pnbd"``: the choice forced, so that the fit ahead is discarded)."""
    import threading

    from clvtools.pipeline import _threads

    monkeypatch.setattr(value_choice, "SAMPLE_ABOVE", 1000)
    if winner == "pnbd":
        pick = value_choice.ValueChoice.pick.__func__

        def pick_pnbd(cls, setting, figures, criterion, **kw):
            return pick(cls, setting, {m: {**f, criterion: 0.0 if m == "pnbd" else 1.0}
                                       for m, f in figures.items()}, criterion, **kw)
        monkeypatch.setattr(value_choice.ValueChoice, "pick", classmethod(pick_pnbd))
    ahead = threading.Event()
    window_fits = []
    fit_window, fit_candidate = value_choice.fit_value_models, value_choice.fit_purchase_model

    def recorded_fit(rfm, model, covariates=None):
        window_fits.append(model)
        ahead.set()
        return fit_window(rfm, model, covariates)

    def waiting_candidate(rfm, model, covariates=None):
        if model == "pnbd" and _threads.OVERLAP:
            ahead.wait(timeout=60)  # the other thread's fit ahead has begun
        return fit_candidate(rfm, model, covariates)

    monkeypatch.setattr(value_choice, "fit_value_models", recorded_fit)
    monkeypatch.setattr(value_choice, "fit_purchase_model", waiting_candidate)
    runs = {}
    for overlap in (False, True):
        monkeypatch.setattr(_threads, "OVERLAP", overlap)
        window_fits.clear()
        ahead.clear()
        runs[overlap] = _value(base), list(window_fits)
    (one, fits_in_turn), (two, fits_overlapped) = runs[False], runs[True]
    assert one.choice.chosen == two.choice.chosen
    assert fits_in_turn == [one.choice.chosen]
    assert fits_overlapped == (["bgnbd"] if winner == "best" else ["bgnbd", "pnbd"])
    assert one.choice.as_dict() == two.choice.as_dict()
    pd.testing.assert_frame_equal(one.scores, two.scores, check_exact=True)
    assert one.holdout.keys() == two.holdout.keys()
    for name, table in one.holdout.items():
        pd.testing.assert_frame_equal(table, two.holdout[name], check_exact=True)
    assert one.notes == two.notes


def test_stratified_sample_keeps_each_stratum_share():
    index = pd.Index([f"c{i}" for i in range(10_000)])
    strata = pd.DataFrame({"s": np.repeat(["a", "b", "c"], [6000, 3000, 1000])}, index=index)
    picked = stratified_sample(index, strata, 1000, seed=1)
    shares = strata.loc[picked, "s"].value_counts()
    assert shares.to_dict() == {"a": 600, "b": 300, "c": 100}
    assert picked.is_unique and stratified_sample(index, strata, 1000, seed=1).equals(picked)


def test_holdout_by_segment_adds_up_to_the_holdout(auto):
    by_segment = auto.holdout["holdout_by_segment"]
    summary = auto.holdout["holdout_summary"]
    chosen = summary[summary["chosen"]].iloc[0]
    by_month = auto.holdout["holdout_by_month"]
    total = by_segment[by_segment["attribute"] == "all"].iloc[0]
    assert total["customers"] == chosen["customers"]
    # the per-customer holdout revenue adds up to the log's monthly holdout revenue
    assert total["actual_revenue"] == pytest.approx(by_month["actual_revenue"].sum(), rel=1e-9)
    assert total["actual_purchases"] == pytest.approx(by_month["actual_purchases"].sum())
    assert total["expected_revenue"] == pytest.approx(by_month["expected_revenue"].sum())
    for attribute in ("channel", "region", "plan"):
        part = by_segment[by_segment["attribute"] == attribute]
        assert part["customers"].sum() == total["customers"]
        for column in ("actual_purchases", "expected_purchases", "actual_revenue",
                       "expected_revenue"):
            assert part[column].sum() == pytest.approx(total[column], rel=1e-9)
    relative = by_segment["expected_revenue"] / by_segment["actual_revenue"] - 1
    np.testing.assert_allclose(by_segment["revenue_relative_error"], relative)


def test_checks_table_and_data_quality_entries(auto):
    table = auto.checks_table()
    assert table["check"].tolist() == ["p_alive_auc_holdout", "spend_frequency_correlation",
                                       "frequency_fit"]
    assert 0.5 < auto.checks["p_alive_auc_holdout"] <= 1
    fit = auto.checks["frequency_fit"]
    assert fit["df"] == fit["bins"] - 1 - fit["parameters"]
    counts = pd.DataFrame(fit["table"])
    assert counts["observed"].sum() == len(auto.rfm)
    assert counts["expected"].sum() == pytest.approx(len(auto.rfm))
    assert (counts["expected"] >= 5).all()


def test_auc_equals_the_share_of_correctly_ordered_pairs():
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 300).astype(float)  # ties count half
    positive = rng.random(300) < 0.4
    diff = score[positive][:, None] - score[~positive][None, :]
    pairs = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert auc(score, positive) == pytest.approx(pairs, rel=1e-12)


def test_chi_square_accepts_the_true_model_and_rejects_a_wrong_one():
    """Pareto/NBD customers: the Pareto/NBD fit passes (p > 0.001), BG/NBD's is rejected
    (p < 1e-6): BG/NBD keeps one-time buyers alive and mis-shapes the frequency counts."""
    T = np.random.default_rng(0).uniform(20, 104, 20_000)
    rfm = simulate_pareto_nbd((0.6, 8.0, 0.8, 30.0), 20_000, T, seed=1)
    p_values = {}
    for fitter in (ParetoNBDFitter, BetaGeoFitter):
        model = fitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
        _table, test = frequency_fit(model, rfm, seed=1)
        p_values[fitter.__name__] = test["p_value"]
    assert p_values["ParetoNBDFitter"] > 1e-3
    assert p_values["BetaGeoFitter"] < 1e-6


def test_spend_that_grows_with_frequency_is_flagged():
    rng = np.random.default_rng(4)
    frequency = rng.integers(1, 20, 2000).astype(float)
    rfm = pd.DataFrame({"frequency": frequency, "recency": 1.0, "T": 2.0,
                        "monetary_value": 10 + 3 * frequency + rng.normal(0, 5, 2000)})
    flagged = spend_frequency_correlation(rfm)
    assert flagged["pearson_r"] > 0.3 and flagged["warning"]
    rfm["monetary_value"] = rng.gamma(5, 10, 2000)
    assert not spend_frequency_correlation(rfm)["warning"]


def _correlation_by_pandas(rfm):
    """spend_frequency_correlation as written before on the filtered frame (nunique)."""
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    if len(repeat) < 3 or min(repeat["frequency"].nunique(),
                              repeat["monetary_value"].nunique()) < 2:
        return None
    r, p = stats.pearsonr(repeat["frequency"].to_numpy(float),
                          repeat["monetary_value"].to_numpy(float))
    return {"pearson_r": float(r), "p_value": float(p), "repeat_buyers": len(repeat),
            "warning": bool(abs(r) > SPEND_CORRELATION_WARNING)}


@pytest.mark.parametrize("case", range(8))
def test_spend_frequency_correlation_on_arrays_equals_the_frame_filter(case):
    """The correlation on numpy arrays (one-value columns found by comparison) is the
    filtered frame's, with NaN, returns (spend <= 0), one-value columns and tiny bases."""
    rng = np.random.default_rng(case)
    n = [500, 500, 500, 4, 3, 500, 2, 500][case]
    frequency = rng.poisson(1.0, n).astype(float)
    spend = np.round(rng.gamma(2.0, 20.0, n), 2) * (frequency > 0) - (rng.random(n) < 0.05)
    if case == 1:
        spend[frequency > 0] = 25.0          # one spend among the repeat buyers
    if case == 2:
        frequency[:] = 3.0                   # one frequency
    if case == 5:
        spend[::7], frequency[::11] = np.nan, np.nan
    rfm = pd.DataFrame({"frequency": frequency, "monetary_value": spend},
                       index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))
    got, want = spend_frequency_correlation(rfm), _correlation_by_pandas(rfm)
    if want is None:
        assert got is None
    else:
        assert got == want

"""Churn probabilities against the known future: the closed form of P(churn declared within the
horizon) against simulation, and the main job's churn model calibrated on a generated base."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.btyd import BetaGeoFitter, ModifiedBetaGeoFitter
from clvtools.btyd.declared_churn import declared_churn_probability, simulate_declared_churn
from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.data.survival_tables import landmark_table, scoring_table
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.risk import fit_churn_model
from clvtools.pipeline.structural import STRUCTURAL_COLUMN, churn_model_inputs
from clvtools.pipeline.timeline import build_timeline

# live customers (T - recency < 26): new, light, heavy, about to be declared, just bought
X = np.array([0.0, 1.0, 3.0, 10.0, 2.0, 0.0, 5.0, 40.0])
TX = np.array([0.0, 50.0, 60.0, 75.0, 20.0, 0.0, 88.0, 99.0])
T = np.array([10.0, 60.0, 70.0, 80.0, 40.0, 20.0, 90.0, 100.0])


def _model(cls, b=4.0):
    model = cls()
    model.params_ = pd.Series({"r": 0.6, "alpha": 8.0, "a": 0.8, "b": b})
    return model


@pytest.mark.parametrize("cls", [BetaGeoFitter, ModifiedBetaGeoFitter])
@pytest.mark.parametrize("horizon", [13.0, 26.0, 39.0, 52.0])
def test_closed_form_matches_posterior_simulation(cls, horizon):
    model = _model(cls)
    exact = declared_churn_probability(model, X, TX, T, horizon=horizon, churn_after=26.0)
    # 40,000 draws each: standard error at most 0.0025
    simulated = simulate_declared_churn(model, X, TX, T, horizon=horizon, churn_after=26.0,
                                        n_draws=40_000, seed=1)
    np.testing.assert_allclose(exact, simulated, atol=0.01)


def test_hard_edges_of_a_horizon_shorter_than_churn_after():
    model = _model(BetaGeoFitter)
    p = declared_churn_probability(model, X, TX, T, horizon=13.0, churn_after=26.0)
    beyond = 26.0 - (T - TX) > 13.0  # declaration date past the horizon: never declared
    assert (p[beyond] == 0).all() and (p[~beyond] > 0).all()
    # otherwise declared unless alive and buying before the declaration date
    d = 26.0 - (T - TX)
    alive = model.conditional_probability_alive(X, TX, T)
    quiet = ((8.0 + T) / (8.0 + T + d)) ** (0.6 + X)
    np.testing.assert_allclose(p[~beyond], (1 - alive + alive * quiet)[~beyond], rtol=1e-12)


def test_large_posterior_b_uses_the_gamma_limit_continuously():
    model = _model(BetaGeoFitter, b=300.0)
    x = np.array([99.0, 101.0])  # b + x either side of the switch
    p = declared_churn_probability(model, x, [60.0, 60.0], [70.0, 70.0], horizon=52.0,
                                   churn_after=26.0)
    assert np.isfinite(p).all() and abs(p[0] - p[1]) < 1e-3


def test_longer_horizons_are_simulated():
    model = _model(BetaGeoFitter)
    p = declared_churn_probability(model, X, TX, T, horizon=70.0, churn_after=26.0,
                                   n_draws=2_000)
    longer = declared_churn_probability(model, X, TX, T, horizon=52.0, churn_after=26.0)
    assert (p >= longer - 0.05).all() and (p <= 1).all()


def test_main_job_churn_model_is_calibrated_on_a_generated_base():
    """20,000 customers, about 8,200 live at the end: a decile of about 820 has a standard
    error of at most 0.5 / sqrt(820) = 0.017 on the observed share; the tolerance 0.06 is
    3.5 of those (the benchmark's 60,000-customer bases stay within 0.05)."""
    horizon = churn_after = 26.0
    base = generate_customer_base(20_000, seed=5, follow_up=round(horizon * 7))
    settings = Settings(horizon=horizon, churn_after=churn_after,
                        observation_end=base.observation_end)
    inputs = read_inputs(base.transactions, base.customers, None, settings)
    log = inputs.log
    timeline = build_timeline(log.first_date, log.observation_end, settings)
    rule = dict(churn_after=churn_after, time_unit="week", attributes=inputs.attributes)
    survival = landmark_table(log, landmarks=list(timeline.landmarks), **rule)
    scoring = scoring_table(log, **rule)
    survival, scoring, notes = churn_model_inputs(survival, scoring, log, horizon=horizon,
                                                  churn_after=churn_after, time_unit="week")
    assert not notes
    model, _ = fit_churn_model(survival, time_unit="week")
    assert model.strata and STRUCTURAL_COLUMN in model.params_.index
    p = model.churn_probability(scoring, horizon).to_numpy()
    truth = base.declared_churn(round(churn_after * 7), round(horizon * 7))
    y = truth.set_index("customer_id")["churned"].reindex(scoring["customer_id"])
    assert y.notna().all()
    y = y.to_numpy(dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * 10 // len(p)
    gaps = [abs(p[bins == b].mean() - y[bins == b].mean()) for b in range(10)]
    assert max(gaps) < 0.06, np.round(gaps, 3)
    # better than ranking by the time since the last purchase
    from sklearn.metrics import roc_auc_score
    naive = roc_auc_score(y, scoring["time_since_last_purchase"])
    assert roc_auc_score(y, p) > naive


def test_beta_nodes_of_a_degenerate_fit_are_a_point_mass_at_the_mean():
    """BG/NBD fitted on a base without dropout heterogeneity runs to a, b ~ 1e7, where the
    quadrature rules overflow: the mean over p is then the point mass at a / (a + b)."""
    from clvtools.btyd.declared_churn import _beta_nodes

    for a, b in ((2.0e7, 3.0e7), (0.5, 1.0e9), (3.0, 5.0)):
        nodes, weights = _beta_nodes(16, a, b)
        assert np.all(np.isfinite(nodes)) and np.all(np.isfinite(weights))
        assert weights.sum() == pytest.approx(1.0)
        assert (nodes * weights).sum() == pytest.approx(a / (a + b), rel=1e-3)


def test_without_a_structural_term_for_one_table_neither_table_gets_it(monkeypatch):
    """When BG/NBD cannot be fitted for the scoring date, the survival table must not keep
    the term either (a model fitted with it could not score): both fall back to the bands."""
    from clvtools.data.transactions import read_transactions
    from clvtools.errors import ConvergenceError
    from clvtools.pipeline import structural

    base = generate_customer_base(1500, seed=3)
    log = read_transactions(base.transactions)
    landmark = log.observation_end - pd.Timedelta(days=182)
    survival = landmark_table(log, landmarks=[landmark], churn_after=26)
    scoring = scoring_table(log, churn_after=26)
    real = structural.add_structural_term

    def fails_at_the_end(table, at_log, **kwargs):
        if at_log is log and (pd.to_datetime(table["landmark"]).dt.date
                              >= log.observation_end).all():
            raise ConvergenceError("forced by the test")
        return real(table, at_log, **kwargs)

    monkeypatch.setattr(structural, "add_structural_term", fails_at_the_end)
    survival, scoring, notes = structural.churn_model_inputs(
        survival, scoring, log, horizon=26, churn_after=26, time_unit="week")
    assert structural.STRUCTURAL_COLUMN not in survival
    assert structural.STRUCTURAL_COLUMN not in scoring
    assert structural.RECENCY_BAND in survival and structural.RECENCY_BAND in scoring
    assert "No structural churn term (forced by the test)" in notes[0]


def _decile_gaps(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * 10 // len(p)
    return np.array([abs(p[bins == b].mean() - y[bins == b].mean()) for b in range(10)])


def test_cdnow_out_of_time_is_calibrated_on_average():
    """CDNOW (one cohort acquired in 1997 Q1), horizon = churn_after = 26 weeks: fitted on the
    log up to 1997-12-30 (one landmark 26 weeks earlier), scored there, compared with the churn
    declared in the 26 weeks that followed. The issue's bar: at most 0.05 on average over
    deciles. Scored at tenures its landmark never saw (40-52 weeks against 14-26), the linear
    terms are held to their training range (clip_to_training); extrapolated, the mean gap was
    0.093."""
    import datetime as dt

    from clvtools.datasets import load_cdnow_transactions

    settings = Settings(horizon=26, churn_after=26, monetary_value_col=None)
    log = read_inputs(load_cdnow_transactions()[["customer_id", "date"]], None, None,
                      settings).log
    at = log.observation_end - dt.timedelta(weeks=26)
    past = log.until(at)
    rule = dict(churn_after=26, time_unit="week")
    survival = landmark_table(past, landmarks=[at - dt.timedelta(weeks=26)], **rule)
    survival, scoring, _ = churn_model_inputs(survival, scoring_table(past, **rule), past,
                                              horizon=26, **rule)
    model, _ = fit_churn_model(survival, time_unit="week")
    p = model.churn_probability(scoring, 26).to_numpy()
    outcome = landmark_table(log, landmarks=[at], **rule).set_index("customer_id")["event"]
    y = outcome.reindex(scoring["customer_id"]).to_numpy(dtype=float)
    gaps = _decile_gaps(p, y)
    assert gaps.mean() <= 0.05, np.round(gaps, 3)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, p) > roc_auc_score(y, scoring["time_since_last_purchase"])

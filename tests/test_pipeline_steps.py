"""The main job's steps: customers.csv, value and churn models, holdout validation, timeline."""
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.data.rfm import rfm_summary
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.pipeline import build_timeline
from clvtools.pipeline.value import fit_value_models, score_customers
from clvtools.report.outputs import write_outputs
from clvtools.targeting.revenue_at_risk import revenue_at_risk

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("pipeline_steps")


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(4000, seed=5)


@pytest.fixture(scope="module")
def result(base):
    return analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                   config=Settings(horizon=26))


def test_every_customer_once_with_ids_unchanged(base, result):
    customers = result.customers
    assert customers["customer_id"].is_unique
    assert set(customers["customer_id"]) == set(base.customers["customer_id"])
    for column in ("customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                   "expected_purchases", "expected_average_spend", "revenue_if_retained",
                   "expected_revenue", "revenue_at_risk", "lapsed_revenue", "preventable_revenue",
                   "lifecycle"):
        assert column in customers
    # every figure is finite, but the churn probability of the declared churned (none) and
    # the priority rank of customers not contacted (none)
    numbers = customers.select_dtypes("number").drop(columns=["churn_probability",
                                                              "priority_rank"])
    assert np.isfinite(numbers.to_numpy()).all()


def test_value_identities_hold(result):
    c = result.customers
    assert (c["expected_revenue"] <= c["revenue_if_retained"] + 1e-9).all()
    assert (c[["revenue_at_risk", "lapsed_revenue", "preventable_revenue"]] >= 0).all().all()
    np.testing.assert_allclose(c["revenue_at_risk"], c["lapsed_revenue"] + c["preventable_revenue"])
    np.testing.assert_allclose(c["revenue_at_risk"],
                               c["revenue_if_retained"] - c["expected_revenue"], atol=1e-9)
    assert c["p_alive"].between(0, 1).all()


def test_holdout_expected_revenue_is_close_to_actual(result):
    # the data come from the model family being fitted: totals within 10 % over 26 weeks
    table = result.analysis.value.holdout["holdout_summary"]
    summary = table[table["chosen"]].iloc[-1]
    assert summary["expected_purchases"] == pytest.approx(summary["actual_purchases"], rel=0.10)
    assert summary["expected_revenue"] == pytest.approx(summary["actual_revenue"], rel=0.10)
    by_freq = result.analysis.value.holdout["holdout_by_frequency"]
    assert by_freq["frequency_cal"].iloc[0] == 0 and (by_freq["n_customers"] > 0).all()


def test_model_files_are_json_with_fingerprint(result, tmp_path):
    out = result.write(tmp_path / "out")
    doc = json.loads((out / "models" / "value.json").read_text())
    # the attributes act on purchase and dropout (value_covariates is on by default); the
    # automatic choice compares the two models with a covariate version, and says so
    chosen = doc["selection"]["chosen"]
    assert doc["model_class"] == {"bgnbd": "BetaGeoCovariatesFitter",
                                  "pnbd": "ParetoNBDCovariatesFitter"}[chosen]
    assert doc["selection"]["criterion"] == "holdout_error"
    assert {c["model"] for c in doc["selection"]["candidates"]} == {"bgnbd", "pnbd"}
    assert doc["data_fingerprint"]["customers"] == len(result.customers)
    assert doc["run_settings"]["horizon"] == 26
    spend = json.loads((out / "models" / "spend.json").read_text())
    assert spend["model_class"] == "GammaGammaFitter"
    written = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert len(written) == len(result.customers)


@pytest.mark.parametrize("value_model", ["mbgnbd", "pnbd"])
def test_other_value_models_score(base, value_model):
    log = read_transactions(base.transactions)
    rfm = rfm_summary(log)
    models = fit_value_models(rfm, value_model)
    scores = score_customers(models, rfm, horizon=13, time_unit_days=7, discount_rate=0.1)
    assert (scores["expected_revenue"] <= scores["revenue_if_retained"] + 1e-9).all()
    assert np.isfinite(scores.to_numpy()).all()


def test_without_amounts_revenue_counts_purchases(base):
    log = read_transactions(base.transactions[["customer_id", "date"]], monetary_value_col=None)
    rfm = rfm_summary(log)
    models = fit_value_models(rfm)
    assert models.spend is None and "no amounts" in models.notes[0]
    scores = score_customers(models, rfm, horizon=13, time_unit_days=7, discount_rate=0.0)
    np.testing.assert_allclose(scores["expected_revenue"], scores["expected_purchases"])


def test_short_history_skips_holdout(base):
    log = read_transactions(base.transactions)
    timeline = build_timeline(log.first_date, log.observation_end, Settings(horizon=80))
    assert timeline.holdout_start is None and timeline.holdout_months == ()


def test_cdnow_classic_split_keeps_its_holdout():
    # 1997-01-01 to 1998-06-30 with a 39-week horizon: 272 days of calibration, a day short
    # of the horizon, as lifetimes' and the papers' 39/39 split
    timeline = build_timeline(dt.date(1997, 1, 1), dt.date(1998, 6, 30), Settings(horizon=39))
    assert timeline.holdout_start == dt.date(1997, 9, 30)
    assert len(timeline.holdout_months) == 9


def test_revenue_at_risk_parts_add_up_and_keep_index():
    idx = pd.Index(["a", "b", "c"], name="customer_id")
    out = revenue_at_risk(pd.Series([1.0, 0.5, 0.0], index=idx), [100.0, 100.0, 50.0],
                          [80.0, 30.0, 0.0])
    assert out.index.equals(idx)
    assert out.loc["a"].tolist() == [20.0, 0.0, 20.0]
    assert out.loc["b"].tolist() == [70.0, 50.0, 20.0]
    assert out.loc["c"].tolist() == [50.0, 50.0, 0.0]
    with pytest.raises(ValueError, match="exceeds revenue if retained"):
        revenue_at_risk([1.0], [10.0], [11.0])


def test_churn_probabilities_come_from_the_cox_model_and_declared_churn(result):
    c = result.customers.set_index("customer_id")
    assert set(c["churn_model"]) <= {"cox", "declared_churned"}
    declared = c["churn_model"] == "declared_churned"
    assert declared.any() and c.loc[declared, "churn_probability"].isna().all()
    assert c.loc[~declared, "churn_probability"].between(0, 1).all()
    assert (c.loc[declared, "lifecycle"] == "churned").all()
    assert (c.loc[~declared, "lifecycle"] != "churned").all()
    drivers = result.analysis.risk.tables["churn_drivers"]
    assert {"hazard_ratio", "p_value", "ph_verdict"} <= set(drivers.columns)
    # the longer a customer has been idle, the sooner churn is declared: a strong, sure effect
    idle = drivers.set_index("covariate").loc["time_since_last_purchase"]
    assert idle["hazard_ratio"] > 1 and idle["p_value"] < 1e-6
    assert {"channel=referral", "plan=premium"} <= set(drivers["covariate"])


def test_churn_model_file_predicts_identically(result, tmp_path):
    from clvtools.survival import ChurnModel

    out = write_outputs(result.analysis, tmp_path / "churn")
    loaded = ChurnModel().load_model(out / "models" / "churn.json")
    table = result.analysis.risk.survival_table.head(200)  # raw: the model derives its features
    np.testing.assert_array_equal(loaded.churn_probability(table, 26),
                                  result.churn_model.churn_probability(table, 26))


def test_survival_curves_and_logrank_by_attribute(result):
    curves = result.analysis.risk.tables["survival_curves"]
    assert {"all", "channel", "region", "plan"} == set(curves["by"])
    assert curves.groupby(["by", "segment"])["survival"].apply(
        lambda s: s.is_monotonic_decreasing).all()
    medians = result.analysis.risk.tables["median_time_to_churn"]
    assert set(medians.loc[medians["by"] == "plan", "segment"]) == {"basic", "premium"}
    tests = result.analysis.risk.tables["logrank_tests"]
    overall = tests[(tests["by"] == "channel") & (tests["segment_a"] == "all segments")]
    assert len(overall) == 1 and 0 <= overall["p_value"].iloc[0] <= 1


def test_spend_falls_back_to_observed_means_when_gamma_gamma_cannot_be_fitted(base, monkeypatch):
    from clvtools.errors import ConvergenceError
    from clvtools.pipeline import value as value_step

    rfm = rfm_summary(read_transactions(base.transactions))

    def not_converging(self, *args, **kwargs):
        raise ConvergenceError("GammaGammaFitter did not converge: (forced by the test)")

    # a real non-convergence depends on the optimiser's path; force it to test the fallback
    monkeypatch.setattr(value_step.GammaGammaFitter, "fit", not_converging)
    models = fit_value_models(rfm)
    assert models.spend is None and models.observed_spend
    assert "No Gamma-Gamma spend model" in models.notes[-1]
    scores = score_customers(models, rfm, horizon=13, time_unit_days=7, discount_rate=0.1)
    repeat = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
    np.testing.assert_allclose(scores.loc[repeat, "expected_average_spend"],
                               rfm.loc[repeat, "monetary_value"])
    np.testing.assert_allclose(scores.loc[~repeat, "expected_average_spend"],
                               rfm.loc[repeat, "monetary_value"].mean())


def test_value_covariates_recover_the_generators_purchase_effect(result, base):
    model = result.value_models.purchases.model
    estimates = model.params_
    truth = base.truth["covariate_effects"]["purchase"]
    # the south buys more (a strong effect in the generator): recovered within 3 standard errors
    name = "purchase:region=south"
    assert abs(estimates[name] - truth["region_south"]) < 3 * model.standard_errors_[name]
    assert estimates[name] > 0


def test_value_covariates_can_be_turned_off(base):
    out = analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                  config=Settings(horizon=26, value_covariates=False))
    # whichever candidate the automatic choice takes, it is a plain fitter (no attributes)
    assert type(out.value_models.purchases).__name__ in (
        "BetaGeoFitter", "ModifiedBetaGeoFitter", "ParetoNBDFitter")
    assert not hasattr(out.value_models.purchases, "covariates")


def test_covariate_scoring_in_one_pass_equals_one_call_per_month(result):
    """revenue_by_month takes every month end at once from a covariate model; hiding that
    method (one conditional expectation per month) gives the same months, to 1e-12."""
    from clvtools.btyd.clv import revenue_by_month
    from clvtools.pipeline.value import BoundCovariates

    class PerMonth:  # the bound model without expected_purchases_by_horizon
        def __init__(self, bound):
            self.purchase_rate_if_alive = bound.purchase_rate_if_alive
            self.conditional_expected_number_of_purchases_up_to_time = (
                bound.conditional_expected_number_of_purchases_up_to_time)

    bound = result.value_models.purchases
    assert isinstance(bound, BoundCovariates)
    rfm = result.rfm
    x, tx, age = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    spend = np.full(len(rfm), 20.0)
    one_pass = revenue_by_month(bound, x, tx, age, spend, 26, 7, 0.1)
    per_month = revenue_by_month(PerMonth(bound), x, tx, age, spend, 26, 7, 0.1)
    assert one_pass.expected_purchases.shape == (len(rfm), 6)
    np.testing.assert_allclose(one_pass.expected_purchases, per_month.expected_purchases,
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(one_pass.expected_revenue, per_month.expected_revenue,
                               rtol=1e-12, atol=0)


def test_a_history_shorter_than_the_horizon_still_gets_a_churn_model(base):
    log = read_transactions(base.transactions)
    settings = Settings(horizon=120, churn_after=26)
    timeline = build_timeline(log.first_date, log.observation_end, settings)
    (landmark,) = timeline.landmarks
    assert log.first_date < landmark < log.observation_end
    assert timeline.holdout_start is None and timeline.validation_training is None
    assert "shorter than the horizon" in timeline.notes[0]
    results = analyze(base.transactions, config=settings)
    assert results.churn_model is not None
    assert "shorter than the horizon" in results.data_quality["timeline"]["notes"][0]
    assert "shorter than the horizon" in results.analysis.warnings()[0]  # the CLI prints it
    live = results.customers["churn_model"] == "cox"
    assert live.any() and results.customers.loc[live, "churn_probability"].between(0, 1).all()


def test_a_log_of_one_day_is_a_clear_error():
    with pytest.raises(ClvInputError, match="at least two different days"):
        build_timeline(dt.date(2024, 1, 1), dt.date(2024, 1, 1), Settings())


def test_warnings_name_a_miscalibrated_or_fallen_back_churn_model(result, monkeypatch):
    risk = result.analysis.risk
    calibration = risk.tables["churn_calibration"].copy()
    for gap, warned in ((0.2, True), (0.01, False)):
        calibration["difference"] = gap
        monkeypatch.setitem(risk.tables, "churn_calibration", calibration)
        assert any("differ by up to" in w for w in result.analysis.warnings()) is warned
    scores = risk.scores.copy()
    scores.iloc[:3, scores.columns.get_loc("churn_model")] = "btyd_1_minus_p_alive"
    monkeypatch.setattr(risk, "scores", scores)
    assert any(w.startswith("Churn probabilities of 3 customers come from the value model")
               for w in result.analysis.warnings())


def test_attributes_new_since_the_landmark_or_with_many_levels_do_not_break_the_run(base):
    """A level held only by customers acquired since the churn model's landmark, a column
    with a single value before the holdout, and a column of 60 levels: the run still scores
    every live customer with the Cox model, and says what it did."""
    customers = base.customers[["customer_id"]].copy()
    # acquired after the holdout start and the churn model's landmark (40 weeks before the end)
    log = read_transactions(base.transactions)
    settings = Settings(horizon=40, value_model="bgnbd")  # the attributes are under test
    start = build_timeline(log.first_date, log.observation_end, settings).holdout_start
    assert start is not None and start == build_timeline(
        log.first_date, log.observation_end, settings).landmarks[0]
    recent = (base.customers["acquisition_date"].dt.date > start).to_numpy()
    assert 100 < recent.sum() < len(recent) / 2
    customers["launch"] = np.where(recent, "new", "old")      # one value before the holdout
    customers["offer"] = np.where(recent, "c", np.where(np.arange(len(recent)) % 2, "a", "b"))
    customers["store"] = [f"s{i % 60:02d}" for i in range(len(customers))]
    results = analyze(base.transactions, customers=customers, config=settings)
    c = results.customers
    assert (c.loc[c["churn_model"] != "declared_churned", "churn_model"] == "cox").all()
    quality = results.data_quality
    assert quality["customers"]["typed"]["store"]["pooled_levels"] == 60 - 49
    notes = " ".join(quality["value_model_notes"] + quality["churn_model_notes"])
    assert "single value among these" in notes and "launch" in notes
    assert "scored at the attribute's reference level" in notes
    drivers = results.analysis.risk.tables["churn_drivers"]["covariate"]
    # 49 levels and "(other)" (the most frequent: the reference), within the encoder's limit
    assert sum(d.startswith("store=") for d in drivers) == 49
    assert not any(d.startswith("launch") for d in drivers)


def test_a_recency_band_without_training_rows_takes_the_nearest_baseline(result):
    from clvtools.pipeline.risk import known_levels
    from clvtools.pipeline.structural import RECENCY_BAND

    model = result.churn_model
    assert model.strata == [RECENCY_BAND]
    table = result.analysis.risk.survival_table.head(3).copy()
    highest = max(model.baselines_, key=int)
    table[RECENCY_BAND] = "99"
    aligned, replaced = known_levels(model, table)
    assert replaced == 3 and (aligned[RECENCY_BAND] == highest).all()
    assert (table[RECENCY_BAND] == "99").all()     # the caller's table is left as it was
    assert model.churn_probability(aligned, 26).between(0, 1).all()


def test_structural_term_reuses_the_value_steps_plain_bgnbd_fit(base):
    """Seeded with the value step's plain BG/NBD (the same fit on the same RFM summary), the
    structural term at the observation end equals a fresh fit's; a cached term is returned
    as computed, and a covariate or other model is never taken as the term's fit."""
    from clvtools.btyd import ParetoNBDFitter
    from clvtools.data.rfm import rfm_summary
    from clvtools.pipeline.structural import seed_structural_cache, structural_probability
    from clvtools.pipeline.value import fit_value_models

    log = read_transactions(base.transactions)
    rfm = rfm_summary(log, time_unit="week")
    models = fit_value_models(rfm, "bgnbd")
    term = dict(horizon=26, churn_after=26, time_unit="week")
    cache = seed_structural_cache(log, rfm, models.purchases, "week")
    assert len(cache) == 1
    seeded = structural_probability(log, cache=cache, **term)
    fresh = structural_probability(log, **term)
    np.testing.assert_array_equal(seeded.to_numpy(), fresh.to_numpy())
    assert seeded.index.equals(fresh.index)
    assert structural_probability(log, cache=cache, **term) is seeded
    assert seed_structural_cache(log, rfm, ParetoNBDFitter(), "week") == {}


def test_without_a_cox_model_churn_follows_the_value_models_declaration_probability(
        base, monkeypatch):
    """When no Cox model can be fitted, live customers get BG/NBD's probability of a
    declaration within the horizon (the structural term), not 1 - P(alive), and the run
    warns; 1 - P(alive) is left for a scoring table without the term."""
    import clvtools.pipeline.risk as risk_module
    from clvtools.pipeline.structural import STRUCTURAL_COLUMN, structural_probability

    monkeypatch.setattr(risk_module, "fit_churn_model",
                        lambda *_a, **_k: (None, ["No Cox churn model (forced by the test)."]))
    settings = Settings(horizon=26, churn_after=26)
    run = analyze(base.transactions, config=settings)
    customers = run.customers.set_index("customer_id")
    live = customers["churn_probability"].notna()
    assert set(customers.loc[live, "churn_model"]) == {"btyd_declared_churn"}
    assert set(customers.loc[~live, "churn_model"]) == {"declared_churned"}
    expected = structural_probability(read_transactions(base.transactions), horizon=26,
                                      churn_after=26, time_unit="week")
    got = customers.loc[expected.index, "churn_probability"]
    # the term is stored as log(-log(1 - P)) of P clipped to [1e-6, 1 - 1e-6]
    np.testing.assert_allclose(got, expected.clip(1e-6, 1 - 1e-6), rtol=1e-9, atol=1e-12)
    assert not np.allclose(got, 1 - customers.loc[expected.index, "p_alive"], atol=0.02)
    warning = next(w for w in run.analysis.warnings() if w.startswith("Churn probabilities"))
    assert "declaration within the horizon" in warning and "forced by the test" in warning
    # no structural term either: 1 - P(alive), said so
    scoring = pd.DataFrame({"customer_id": expected.index[:3]})
    scores = risk_module.churn_scores(None, scoring, 26, customer_ids=customers.index,
                                      p_alive=customers["p_alive"])
    assert set(scores["churn_model"].dropna()) == {"btyd_1_minus_p_alive", "declared_churned"}
    assert STRUCTURAL_COLUMN not in scoring


def test_customer_intervals_agree_with_parameter_draws():
    """customer_intervals: each customer's 95 % interval of revenue if retained and expected
    revenue (the models' parameter uncertainty, delta method on the log scale) against the
    2.5 and 97.5 % quantiles of the values rescored at 300 parameter draws from the fitted
    covariance (a parametric bootstrap of the estimate): the bounds agree within 20 % of the
    interval's width for the 50 customers with the most value (observed: 9 % for the lower
    bound, 14 % for the upper; on the natural scale the upper would be 19 % off)."""
    from clvtools.pipeline.value_models import models_at, parameters, score_customers

    base = generate_customer_base(2000, seed=4)
    run = analyze(base.transactions, value_model="bgnbd", value_covariates=False,
                  customer_intervals=True, horizon=26)
    customers = run.customers.set_index("customer_id")
    for column in ("revenue_if_retained", "expected_revenue"):
        lo, hi = customers[f"{column}_lo95"], customers[f"{column}_hi95"]
        assert (lo <= customers[column] + 1e-9).all() and (customers[column] <= hi + 1e-9).all()
    value = run.analysis.value
    theta, cov, k = parameters(value.models)
    draws = np.random.default_rng(0).multivariate_normal(theta, cov, size=300)
    top = value.scores["expected_revenue"].nlargest(50).index
    rfm = value.rfm.loc[top]
    scored = np.array([score_customers(models_at(value.models, th, k), rfm, horizon=26,
                                       time_unit_days=7.0, discount_rate=0.1)
                       ["expected_revenue"].to_numpy() for th in draws])
    low, high = np.quantile(scored, [0.025, 0.975], axis=0)
    width = high - low
    ours = customers.loc[top]
    assert np.all(np.abs(ours["expected_revenue_lo95"].to_numpy() - low) < 0.20 * width)
    assert np.all(np.abs(ours["expected_revenue_hi95"].to_numpy() - high) < 0.20 * width)

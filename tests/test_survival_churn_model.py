"""ChurnModel: R reference values on Rossi, agreement with lifelines, encoding, guards."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.fitters.coxph_fitter import SemiParametricPHFitter
from lifelines.statistics import proportional_hazard_test

from clvtools.errors import ClvInputError
from clvtools.survival import ChurnModel, simulate_landmark_table
from clvtools.survival._cox_math import score_residuals
from clvtools.survival.simulate import TRUE_EFFECTS


@pytest.fixture(scope="module")
def rossi():
    return load_rossi().rename(columns={"week": "duration", "arrest": "event"})


@pytest.fixture(scope="module")
def rossi_model(rossi):
    return ChurnModel().fit(rossi)


@pytest.fixture(scope="module")
def table():
    return simulate_landmark_table(3000, seed=11)


def _lifelines_frame(table):
    """The simulated table as plain lifelines wants it (dummies against web / north)."""
    x = pd.DataFrame({
        "channel=store": (table["channel"] == "store").astype(float),
        "channel=phone": (table["channel"] == "phone").astype(float),
        "region=south": (table["region"] == "south").astype(float),
        "time_since_last_purchase": table["time_since_last_purchase"],
        "n_purchases": table["n_purchases"],
    })
    return x.assign(duration=table["duration"], event=table["event"])


def test_rossi_matches_r_coxph_efron(rossi_model):
    """R 4.x, survival::coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
    data = Rossi, ties = "efron"); print(summary(fit), digits = 7); Fox & Weisberg, "Cox
    Proportional-Hazards Regression for Survival Data in R" (2018 appendix), table of coef and
    se(coef). Compared to the printed precision (atol 1e-4 on the 4-5 printed decimals)."""
    s = rossi_model.summary
    coef = {"fin": -0.3794222, "age": -0.0574, "race": 0.3139, "wexp": -0.1498,
            "mar": -0.4337, "paro": -0.0849, "prio": 0.0915}
    se = {"fin": 0.19138, "age": 0.02200, "race": 0.30799, "wexp": 0.21222, "mar": 0.38187,
          "paro": 0.19576, "prio": 0.02865}
    assert s.loc["fin", "coef"] == pytest.approx(coef["fin"], abs=1e-7)
    for k in coef:
        assert s.loc[k, "coef"] == pytest.approx(coef[k], abs=1e-4), k
        assert s.loc[k, "se"] == pytest.approx(se[k], abs=1e-4), k
    assert rossi_model.log_likelihood_ == pytest.approx(-658.7477, abs=1e-4)
    assert rossi_model.concordance_ == pytest.approx(0.6403, abs=1e-4)
    assert not rossi_model.robust_  # one row per person: model-based variance, as R


def test_summary_columns_and_hazard_ratios(rossi_model):
    s = rossi_model.summary
    assert list(s.columns) == [
        "variable", "level", "reference", "coef", "se", "hazard_ratio", "hazard_ratio_lower",
        "hazard_ratio_upper", "z", "p_value", "ph_statistic", "ph_p_value", "ph_verdict",
        "ph_advice"]
    np.testing.assert_allclose(s["hazard_ratio"], np.exp(s["coef"]), rtol=1e-12)
    assert (s["hazard_ratio_lower"] < s["hazard_ratio"]).all()
    assert (s["hazard_ratio"] < s["hazard_ratio_upper"]).all()
    # R: p for fin 0.0474, prio 0.0014
    assert s.loc["fin", "p_value"] == pytest.approx(0.0474, abs=1e-4)
    assert s.loc["prio", "p_value"] == pytest.approx(0.0014, abs=1e-4)


def test_ph_check_equals_lifelines_and_gives_advice(rossi, rossi_model):
    cph = CoxPHFitter().fit(rossi, "duration", "event")
    ref = proportional_hazard_test(cph, rossi, time_transform="rank").summary
    ph = rossi_model.ph_test_
    np.testing.assert_allclose(ph["ph_statistic"], ref["test_statistic"].reindex(ph.index),
                               rtol=1e-9)
    # age and wexp break proportional hazards in Rossi (lifelines' tutorial finds the same)
    assert set(ph.index[ph["ph_verdict"] == "violated"]) == {"age", "wexp"}
    assert "stratify" in ph.loc["wexp", "ph_advice"]  # binary: stratify
    assert "log(time)" in ph.loc["age", "ph_advice"]  # continuous: time interaction


def test_stratified_ph_and_predictions_equal_lifelines(table):
    model = ChurnModel(strata=["region"], covariates=["channel", "time_since_last_purchase",
                                                      "n_purchases"]).fit(table)
    lf = _lifelines_frame(table).drop(columns="region=south").assign(region=table["region"])
    cph = CoxPHFitter().fit(lf, "duration", "event", strata=["region"])
    np.testing.assert_allclose(model.params_, cph.params_, rtol=1e-10)
    ref = proportional_hazard_test(cph, lf, time_transform="rank").summary["test_statistic"]
    np.testing.assert_allclose(model.ph_test_["ph_statistic"],
                               ref.reindex(model.feature_names_), rtol=1e-8)
    times = [1.0, 5.0, 13.0]  # observed durations: step and lifelines' interpolation agree
    rows = lf.iloc[:50]
    expected = cph.predict_survival_function(rows, times=times).T.sort_index()
    got = model.survival_function(table.iloc[:50], times)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-12)


def test_predictions_equal_lifelines(table):
    model = ChurnModel().fit(table)
    lf = _lifelines_frame(table)
    cph = CoxPHFitter().fit(lf, "duration", "event")
    np.testing.assert_allclose(model.params_.to_numpy(), cph.params_.to_numpy(), rtol=1e-10)
    times = np.array([2.0, 13.0, 26.0])
    expected = cph.predict_survival_function(lf, times=times).T.to_numpy()
    np.testing.assert_allclose(model.survival_function(table, times).to_numpy(), expected,
                               atol=1e-12)
    p = model.churn_probability(table, 13.0)
    assert p.name == "churn_probability" and p.index.equals(table.index)
    np.testing.assert_allclose(p, 1 - expected[:, 1], atol=1e-12)


def test_sandwich_equals_lifelines_robust_without_ties(rossi):
    """Without ties lifelines' score residuals are exact: its robust clustered SEs must match
    ours to rounding."""
    rng = np.random.default_rng(1)
    df = rossi.assign(duration=rossi["duration"] + rng.uniform(0, 0.5, len(rossi)),
                      customer_id=np.arange(len(rossi)) // 2)
    ours = ChurnModel(robust=True, check_ph=False).fit(df)
    cph = CoxPHFitter().fit(df, "duration", "event", cluster_col="customer_id", robust=True)
    np.testing.assert_allclose(ours.summary["se"], cph.standard_errors_, rtol=1e-9)


def test_efron_score_residuals_sum_to_zero_at_the_mle(table):
    """With Efron's tie correction the weighted score residuals add up to the Efron score,
    which is zero at lifelines' estimate: checked on heavily tied durations (day grid) with
    non-integer weights and strata."""
    rng = np.random.default_rng(0)
    lf = _lifelines_frame(table).drop(columns="region=south").assign(
        w=rng.uniform(0.5, 2.0, len(table)), stratum=(table["region"] == "south").astype(int))
    cph = CoxPHFitter().fit(lf, "duration", "event", weights_col="w", strata=["stratum"],
                            robust=True)
    x = lf[cph.params_.index].to_numpy()
    w = lf["w"].to_numpy()
    res = score_residuals(x, lf["duration"], lf["event"], w, cph.params_.to_numpy(),
                          strata=lf["stratum"].to_numpy())
    total = (res * w[:, None]).sum(axis=0)
    scale = np.abs(res * w[:, None]).sum(axis=0)
    assert (np.abs(total) < 1e-7 * scale).all()


def test_stacked_landmarks_are_robust_by_default():
    stacked = simulate_landmark_table(2000, n_landmarks=3, shape=1.0, seed=3)
    assert stacked["customer_id"].duplicated().any()
    m = ChurnModel(check_ph=False).fit(stacked)
    naive = ChurnModel(robust=False, check_ph=False).fit(stacked)
    assert m.robust_ and not naive.robust_
    # the same customer's rows are positively correlated: robust SEs are larger
    assert (m.summary["se"] > naive.summary["se"]).all()
    assert m.n_customers_ == 2000 and m.n_rows_ == len(stacked)


def test_reference_levels_and_encoding(table):
    m = ChurnModel(reference={"channel": "phone"}, check_ph=False).fit(table)
    assert "channel=web" in m.feature_names_ and "channel=phone" not in m.feature_names_
    assert m.summary.loc["channel=web", "reference"] == "phone"
    default = ChurnModel(check_ph=False).fit(table)
    assert default.summary.loc["channel=store", "reference"] == "web"  # most frequent level
    # reparametrisation: HR(store vs web) = HR(store vs phone) / HR(web vs phone)
    a = default.params_["channel=store"]
    b = m.params_["channel=store"] - m.params_["channel=web"]
    assert a == pytest.approx(b, abs=1e-6)


def test_unknown_level_and_missing_values_are_input_errors(table):
    m = ChurnModel(check_ph=False).fit(table)
    bad = table.head(3).assign(channel=["web", "kiosk", "web"])
    with pytest.raises(ClvInputError, match="kiosk"):
        m.churn_probability(bad, 4.0)
    miss = table.head(3).assign(n_purchases=[1.0, np.nan, 2.0])
    with pytest.raises(ClvInputError, match="missing") as err:
        m.churn_probability(miss, 4.0)
    assert err.value.column == "n_purchases" and err.value.n_rows == 1
    with pytest.raises(ClvInputError, match="missing"):
        ChurnModel().fit(table.assign(n_purchases=np.where(table.index == 5, np.nan, 1.0)))


def test_parameter_validation_messages(table):
    with pytest.raises(ClvInputError, match="The 'penalizer' parameter of ChurnModel must be a "
                                            "number >= 0. Got -1 instead."):
        ChurnModel(penalizer=-1).fit(table)
    with pytest.raises(ClvInputError, match="'tail'"):
        ChurnModel(tail="flat").fit(table)
    m = ChurnModel(check_ph=False).fit(table)
    with pytest.raises(ClvInputError, match="'horizon' parameter"):
        m.churn_probability(table, -3)
    with pytest.raises(ClvInputError, match="Durations must be positive") as info:
        ChurnModel().fit(table.assign(duration=table["duration"] - 100))
    assert info.value.column == "duration"
    bad_weights = np.where(table.index == 3, -1.0, 1.0)
    with pytest.raises(ClvInputError, match="Weights must be positive") as info:
        ChurnModel(weights_col="w").fit(table.assign(w=bad_weights))
    assert info.value.column == "w" and info.value.n_rows == 1


def test_horizon_past_follow_up_is_refused_or_extrapolated(table):
    follow_up = table["duration"].max()
    strict = ChurnModel(check_ph=False).fit(table)
    with pytest.raises(ClvInputError, match="silently capped"):
        strict.churn_probability(table, follow_up + 4)
    tail = ChurnModel(check_ph=False, tail="constant_hazard").fit(table)
    p_end = tail.churn_probability(table, follow_up)
    p_more = tail.churn_probability(table, follow_up + 4)
    assert (p_more > p_end).all()  # not capped
    # within the follow-up both settings agree
    np.testing.assert_array_equal(strict.churn_probability(table, 10.0),
                                  tail.churn_probability(table, 10.0))


def test_weights_and_penalizer(table):
    w = np.where(table["region"] == "south", 2.0, 1.0)
    ref = {"region": "north"}
    weighted = ChurnModel(weights_col="w", reference=ref, check_ph=False).fit(table.assign(w=w))
    doubled = ChurnModel(reference=ref, check_ph=False).fit(
        pd.concat([table, table[table["region"] == "south"]], ignore_index=True))
    # integer weights = duplicated rows, up to Efron's tie correction, which counts a weighted
    # row as one tied death but a duplicated row as two (differences ~1e-4 relative here)
    np.testing.assert_allclose(weighted.params_, doubled.params_, rtol=5e-4)
    assert not weighted.robust_
    frac = ChurnModel(weights_col="w", check_ph=False).fit(table.assign(w=w * 0.5))
    assert frac.robust_  # non-integer weights: sandwich variance
    pen = ChurnModel(penalizer=1.0, check_ph=False).fit(table)
    plain = ChurnModel(check_ph=False).fit(table)
    assert np.abs(pen.params_).sum() < np.abs(plain.params_).sum()


def test_contributions_add_up_to_the_log_partial_hazard(table):
    m = ChurnModel(check_ph=False).fit(table)
    c = m.contributions(table.head(20))
    np.testing.assert_allclose(c.sum(axis=1), m.log_partial_hazard(table.head(20)), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(h1=st.floats(0.1, 25.0), h2=st.floats(0.1, 25.0))
def test_churn_probability_is_a_probability_increasing_in_horizon(rossi_model, rossi, h1, h2):
    lo, hi = sorted([h1, h2])
    p_lo = rossi_model.churn_probability(rossi, lo).to_numpy()
    p_hi = rossi_model.churn_probability(rossi, hi).to_numpy()
    assert ((p_lo >= 0) & (p_hi <= 1)).all()
    assert (p_hi >= p_lo).all()


def test_print_summary_header(rossi_model, capsys):
    rossi_model.print_summary()
    out = capsys.readouterr().out
    assert "rows: 432" in out and "churn events: 114" in out
    assert "log partial likelihood: -658.7477" in out and "concordance (Harrell): 0.6403" in out
    assert "PH check: age:" in out


def test_identifier_like_column_is_refused(table):
    with pytest.raises(ClvInputError, match="looks like an identifier or a date"):
        ChurnModel(covariates=["customer_id", "channel"]).fit(table)
    with pytest.raises(ClvInputError, match="single level"):
        ChurnModel(covariates=["landmark", "channel"]).fit(table)


def test_scoring_table_needs_only_covariates(table):
    m = ChurnModel(check_ph=False).fit(table)
    scoring = table.drop(columns=["duration", "event"]).set_index("customer_id")
    p = m.churn_probability(scoring, 13.0)
    assert p.index.equals(scoring.index)
    np.testing.assert_array_equal(p.to_numpy(), m.churn_probability(table, 13.0).to_numpy())


def test_lifelines_convergence_failure_becomes_a_convergence_error(table, monkeypatch):
    from lifelines.exceptions import ConvergenceError as LifelinesConvergenceError

    from clvtools.errors import ConvergenceError

    def fail(*args, **kwargs):
        raise LifelinesConvergenceError("delta contains nan value(s)")

    # the fitter CoxPHFitter delegates to, which ChurnModel calls directly
    monkeypatch.setattr(SemiParametricPHFitter, "fit", fail)
    with pytest.raises(ConvergenceError, match="penalizer=0.01"):
        ChurnModel().fit(table)


def test_constant_hazard_tail_extrapolates_an_exponential_truth():
    """Exponential truth (constant baseline hazard 1/30 per week): past the 26-week follow-up
    the constant-hazard tail reproduces the true churn probability at 39 weeks (mean absolute
    error < 0.01; measured 0.003)."""
    table = simulate_landmark_table(20_000, shape=1.0, scale=30.0, follow_up=26.0, seed=9)
    m = ChurnModel(check_ph=False, tail="constant_hazard").fit(table)
    eta = np.zeros(len(table))
    for name, b in TRUE_EFFECTS.items():
        if "=" in name:
            col, level = name.split("=")
            eta += b * (table[col] == level)
        else:
            eta += b * table[name]
    truth = 1 - np.exp(-(39.0 / 30.0) * np.exp(eta))
    assert np.abs(m.churn_probability(table, 39.0) - truth).mean() < 0.01


def test_clip_to_training_scores_within_the_training_range(tmp_path):
    table = simulate_landmark_table(800, seed=3)
    numeric = [c for c in table.columns if c not in ("customer_id", "landmark", "duration",
                                                      "event") and
               pd.api.types.is_numeric_dtype(table[c])]
    plain = ChurnModel(penalizer=0.01).fit(table)
    clipped = ChurnModel(penalizer=0.01, clip_to_training=True).fit(table)
    # inside the range: lifelines' predictions exactly
    np.testing.assert_array_equal(plain.log_partial_hazard(table),
                                  clipped.log_partial_hazard(table))
    # beyond it: the value at the edge
    column = numeric[0]
    far = table.head(5).copy()
    far[column] = table[column].max() * 10 + 100
    edge = table.head(5).copy()
    edge[column] = table[column].max()
    np.testing.assert_allclose(clipped.churn_probability(far, 4.0),
                               clipped.churn_probability(edge, 4.0), rtol=1e-12)
    assert not np.allclose(plain.churn_probability(far, 4.0), plain.churn_probability(edge, 4.0))
    # the range travels with the file
    path = tmp_path / "churn.json"
    clipped.save_model(path)
    loaded = ChurnModel().load_model(path)
    assert loaded.clip_to_training
    np.testing.assert_allclose(loaded.churn_probability(far, 4.0),
                               clipped.churn_probability(far, 4.0), rtol=1e-12)


@pytest.mark.parametrize("strata", ["band", ["band", "half"]])
def test_stratified_fit_equals_lifelines_own(strata):
    # EfronCox keeps lifelines' per-stratum partition for the whole Newton loop instead of
    # remaking it at every step, and sums each step's Efron derivatives by whole-array
    # operations (efron_derivatives): the same sums in another order, so the same fit to
    # rounding (measured 1e-13 here, 4e-12 on a landmark table of 582k rows in 26 strata)
    from clvtools.survival._efron_cox import EfronCox
    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(
        band=rng.integers(0, 4, n), half=rng.choice(["u", "v"], n), w=rng.uniform(0.5, 3.0, n),
        duration=np.ceil(rng.exponential(np.exp(-0.5 * x[:, 0]) * 20)).clip(max=30),
        event=lambda d: (d["duration"] < 30).astype(int))
    fits = []
    for cls in (SemiParametricPHFitter, EfronCox):
        cph = cls(penalizer=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # non-integer weights: lifelines' variance note
            cph.fit(frame if strata != "band" else frame.drop(columns="half"), "duration",
                    "event", weights_col="w", strata=strata)
        fits.append(cph)
    lifelines_own, ours = fits
    assert getattr(ours, "_strata_parts", None) is None    # not held past the fit
    np.testing.assert_allclose(ours.params_, lifelines_own.params_, rtol=1e-10)
    np.testing.assert_allclose(ours.standard_errors_, lifelines_own.standard_errors_,
                               rtol=1e-10)
    assert ours.log_likelihood_ == pytest.approx(lifelines_own.log_likelihood_, rel=1e-13)
    # the baseline per stratum (named as lifelines names them: a tuple for two columns)
    pd.testing.assert_frame_equal(ours.baseline_cumulative_hazard_,
                                  lifelines_own.baseline_cumulative_hazard_, rtol=1e-10)
    # its linear predictor on a frame, without lifelines' copies: lifelines' own arithmetic
    ours.params_, ours._norm_mean = lifelines_own.params_, lifelines_own._norm_mean
    assert ours.predict_log_partial_hazard(frame).equals(
        lifelines_own.predict_log_partial_hazard(frame))
    assert abs(ours.params_["a"] - 0.5) < 0.1          # the fit found the effect it should


def test_the_strata_cut_as_slices_are_lifelines_own_partition():
    """EfronCox cuts lifelines' stratum-sorted table into slices: lifelines' own partition
    (the same frames and series, in the same order), in a fit with weights and 5 strata."""
    from clvtools.survival._efron_cox import EfronCox, _stratum_runs
    rng = np.random.default_rng(8)
    n = 2000
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "band": rng.choice(["x", "y", "z", "10", "9"], n),
                          "w": rng.integers(1, 4, n).astype(float),
                          "duration": rng.integers(1, 30, n).astype(float),
                          "event": rng.integers(0, 2, n)})
    compared = []

    class Compared(EfronCox):
        def _partition_by_strata(self, X, T, E, entries, weights):
            assert _stratum_runs(X.index) is not None   # the slices, not lifelines' way
            ours = list(super()._partition_by_strata(X, T, E, entries, weights))
            compared.append((ours, list(
                SemiParametricPHFitter._partition_by_strata(self, X, T, E, entries, weights))))
            yield from ours

    Compared().fit(frame, "duration", "event", weights_col="w", strata="band")
    assert compared
    for ours, theirs in compared:
        assert [name for _, name in ours] == [name for _, name in theirs]
        for (mine, _), (lifelines_own, _) in zip(ours, theirs, strict=True):
            pd.testing.assert_frame_equal(mine[0], lifelines_own[0], check_exact=True)
            for got, expected in zip(mine[1:4], lifelines_own[1:4], strict=True):
                pd.testing.assert_series_equal(got, expected, check_exact=True)
            assert mine[4] is None and lifelines_own[4] is None


@pytest.mark.parametrize("weighted", [False, True])
def test_efron_derivatives_equal_lifelines_loop_over_the_durations(weighted):
    """The log-likelihood, gradient and Hessian of one stratum at a given beta: lifelines'
    per-duration loops (batch and single) to 1e-12, with ties of every kind: a first
    duration all censored, one all deaths, one death alone, a last duration censored only."""
    from clvtools.survival._efron_cox import efron_derivatives
    rng = np.random.default_rng(11)
    n, d = 4000, 4
    x = rng.normal(size=(n, d))
    durations = np.ceil(rng.exponential(15.0, n)).clip(max=40.0)
    events = (rng.uniform(size=n) < 0.6).astype(float)
    events[durations == 40.0] = 0.0                 # the last duration: censored only
    durations[:5], events[:5] = 0.5, 0.0            # the first: censored only
    durations[5:12], events[5:12] = 2.5, 1.0        # all deaths
    durations[12], events[12] = 3.5, 1.0            # a death alone
    weights = rng.uniform(0.5, 3.0, n) if weighted else np.ones(n)
    order = np.lexsort((events, durations))         # lifelines' order: deaths last in a tie
    x, durations, events, weights = x[order], durations[order], events[order], weights[order]
    beta = rng.normal(scale=0.3, size=d)
    ours = efron_derivatives(x, durations, events, weights, beta)
    args = (pd.DataFrame(x), pd.Series(durations), pd.Series(events.astype(bool)),
            pd.Series(weights), None, beta)
    for theirs in (SemiParametricPHFitter()._get_efron_values_batch(*args),
                   SemiParametricPHFitter()._get_efron_values_single(*args)):
        for got, expected in zip(ours, theirs, strict=True):
            scale = np.max(np.abs(expected))
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("strata", [["number"], ["share"], ["text"], ["level"], ["flag"],
                                    ["day"], ["mixed"], ["number", "text"],
                                    ["text", "share", "level"]])
def test_strata_keys_are_each_rows_values_as_text(strata):
    """A stratum's key is the text of the row's strata values (``<NA>`` for a missing one)
    joined by ``|``, made once per distinct value: each row's own text, whatever the column's
    type, and the keys sorted as numpy sorts them."""
    rng = np.random.default_rng(0)
    n = 3000
    table = pd.DataFrame({
        "number": rng.integers(0, 5, n),
        "share": np.where(rng.uniform(size=n) < .1, np.nan, rng.integers(0, 3, n) + 0.5),
        "text": np.array(["a", "b", "10", "9", None], dtype=object)[rng.integers(0, 5, n)],
        "level": pd.Categorical(rng.choice(["x", "y"], n)),
        "flag": rng.uniform(size=n) < .5,
        "day": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3, n), "D"),
        "mixed": np.array([1, "1", 2.0, "x"], dtype=object)[rng.integers(0, 4, n)]})
    model = ChurnModel(strata=strata)
    parts = [table[c].astype("string").fillna("<NA>") for c in strata]
    text = parts[0]
    for part in parts[1:]:
        text = text + "|" + part
    expected = text.to_numpy(dtype=object).astype(str)
    sorted_keys, position = model._strata_of(table)
    keys = sorted_keys[position]
    assert keys.dtype == expected.dtype and np.array_equal(keys, expected)
    assert np.array_equal(sorted_keys, np.unique(expected))

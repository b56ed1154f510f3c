"""Static covariates for BG/NBD and Pareto/NBD: encoding, equivalences, gradients, persistence.

Recovery over replications is in test_btyd_covariates_recovery.py (slow).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
from scipy.optimize import check_grad

from clvtools.btyd import _pareto_nbd_math as pm
from clvtools.btyd import load_model
from clvtools.btyd.bgnbd import BetaGeoFitter
from clvtools.btyd.bgnbd_covariates import (
    BetaGeoCovariatesFitter,
    _closed_form_if_alive,
    _expected_if_alive,
    bgnbd_rows,
)
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.btyd.pareto_nbd_covariates import ParetoNBDCovariatesFitter, pnbd_rows
from clvtools.btyd.simulate import simulate_rfm_with_covariates
from clvtools.encoding import CovariateEncoder
from clvtools.errors import ClvInputError

MODELS = {
    "pnbd": (ParetoNBDCovariatesFitter, ParetoNBDFitter, (0.6, 8.0, 0.8, 12.0)),
    "bgnbd": (BetaGeoCovariatesFitter, BetaGeoFitter, (0.6, 8.0, 0.8, 4.0)),
}
COLS = ["channel", "plan", "age"]


def make_data(model, n=1500, seed=0, coef_p=(0.0, 0.1, 0.3, 0.15), coef_d=(-0.8, -0.2, -0.6, 0.2)):
    """RFM summary and attributes with known effects (design: referral, store, premium, age)."""
    rng = np.random.default_rng(seed)
    cov = pd.DataFrame({
        "channel": rng.choice(["online", "store", "referral"], n, p=[0.5, 0.35, 0.15]),
        "plan": rng.choice(["basic", "premium"], n, p=[0.7, 0.3]),
        "age": np.round(rng.normal(0.0, 1.0, n), 1),
    })
    Z = np.column_stack([cov["channel"] == "referral", cov["channel"] == "store",
                         cov["plan"] == "premium", cov["age"]]).astype(float)
    T = np.round(rng.uniform(30, 104, n) * 7) / 7
    rfm = simulate_rfm_with_covariates(model, MODELS[model][2], Z @ np.array(coef_p),
                                       Z @ np.array(coef_d), T, seed=rng)
    rfm["recency"] = np.floor(rfm["recency"] * 7) / 7  # whole days, as real summaries
    return rfm, cov


@pytest.fixture(scope="module", params=["pnbd", "bgnbd"])
def fitted(request):
    rfm, cov = make_data(request.param)
    cls = MODELS[request.param][0]
    m = cls().fit(rfm["frequency"], rfm["recency"], rfm["T"], cov, COLS, COLS,
                  reference_levels={"channel": "online"})
    return request.param, m, rfm, cov


# ---- encoding ---------------------------------------------------------------------------
def test_encoder_reference_levels_names_and_values():
    df = pd.DataFrame({
        "region": ["south", "north", "east", "north"],
        "tier": pd.Categorical(["b", "a", "b", "a"], categories=["b", "a"]),
        "spend": [1.5, 2.0, -1.0, 0.0],
    })
    enc = CovariateEncoder(["region", "tier", "spend"], reference="sorted").fit(df)
    # sorted first level ("east") is the reference; a Categorical keeps its first category
    assert enc.feature_names_ == ["region=north", "region=south", "tier=a", "spend"]
    Z = enc.transform(df)
    np.testing.assert_array_equal(Z, [[0, 1, 0, 1.5], [1, 0, 1, 2.0], [0, 0, 0, -1.0],
                                      [1, 0, 1, 0.0]])
    enc2 = CovariateEncoder(["region"], reference_levels={"region": "north"}).fit(df)
    assert enc2.feature_names_ == ["region=east", "region=south"]
    np.testing.assert_array_equal(enc2.transform(df)[:, 0], [0, 0, 1, 0])
    # JSON-friendly round trip of the encoding
    enc3 = CovariateEncoder.from_dict(enc.to_dict())
    np.testing.assert_array_equal(enc3.transform(df), Z)


def test_encoder_errors_say_what_and_where():
    df = pd.DataFrame({"region": ["south", "north"], "x": [1.0, 2.0]})
    enc = CovariateEncoder(["region"]).fit(df)
    with pytest.raises(ClvInputError, match="not fitted with.*'west'") as e:
        enc.transform(pd.DataFrame({"region": ["north", "west"]}))
    assert e.value.column == "region" and e.value.n_rows == 1
    with pytest.raises(ClvInputError, match="has missing values") as e:
        enc.transform(pd.DataFrame({"region": ["north", None, "south"]}))
    assert e.value.n_rows == 1
    # the same levels as a Categorical, or integer codes as numpy or Python ints, encode alike
    cat = pd.DataFrame({"region": pd.Categorical(["north", "south", "north"])})
    np.testing.assert_array_equal(enc.transform(cat)[:, 0], [0, 1, 0])
    codes = CovariateEncoder(["k"]).fit(pd.DataFrame({"k": np.array(["1", "2"], dtype=object)}))
    np.testing.assert_array_equal(codes.transform(pd.DataFrame({"k": ["2", "1", "2"]}))[:, 0],
                                  [1, 0, 1])
    with pytest.raises(ClvInputError, match="missing"):
        enc.transform(pd.DataFrame({"other": ["north"]}))
    with pytest.raises(ClvInputError, match="missing values"):
        CovariateEncoder(["region"]).fit(pd.DataFrame({"region": ["a", None, "b"]}))
    with pytest.raises(ClvInputError, match="missing or infinite"):
        CovariateEncoder(["x"]).fit(pd.DataFrame({"x": [1.0, np.nan]}))
    with pytest.raises(ClvInputError, match="single level"):
        CovariateEncoder(["region"]).fit(pd.DataFrame({"region": ["a", "a"]}))
    with pytest.raises(ClvInputError, match="does not occur"):
        CovariateEncoder(["region"], reference_levels={"region": "west"}).fit(df)


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_fit_input_errors(model):
    rfm, cov = make_data(model, n=200)
    cls = MODELS[model][0]
    with pytest.raises(ClvInputError, match="one row per customer"):
        cls().fit(rfm["frequency"], rfm["recency"], rfm["T"], cov.iloc[:10], ["plan"])
    with pytest.raises(ClvInputError, match="list of column names"):
        cls().fit(rfm["frequency"], rfm["recency"], rfm["T"], cov, "plan")
    with pytest.raises(ClvInputError, match="is missing"):
        cls().fit(rfm["frequency"], rfm["recency"], rfm["T"], cov, ["nope"])


# ---- the model without covariates is the plain model ------------------------------------
@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_no_covariates_reproduces_plain_fitter(model):
    rfm, _ = make_data(model, n=2000, seed=3)
    cls, plain_cls, _ = MODELS[model]
    args = (rfm["frequency"], rfm["recency"], rfm["T"])
    plain = plain_cls().fit(*args, tol=1e-10)
    ours = cls().fit(*args, tol=1e-10)
    assert list(ours.params_.index) == list(plain.params_.index)
    # both optimise the same likelihood; the plain fitters stop at a gradient of ~1e-5 on
    # this flat surface (s, beta), ours takes a final Newton step: optima agree to 1e-5
    # (relative) and the log-likelihoods to 1e-6 ...
    np.testing.assert_allclose(ours.params_.to_numpy(), plain.params_.to_numpy(), rtol=1e-5)
    assert ours.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-6)
    # ... and ours is the plain likelihood's optimum to 1e-6: its gradient (plain fitter's
    # code, log-parameters, total over 2,000 customers) vanishes there
    cols = {c: rfm[c].to_numpy() for c in ("frequency", "recency", "T")}
    prep = plain._prepare_data(cols, np.ones(len(rfm)))
    ll, g = plain._loglik_and_grad(ours.params_.to_numpy(), prep, np.ones(len(rfm)))
    assert ll == pytest.approx(ours.log_likelihood_, abs=1e-8)
    assert np.max(np.abs(np.asarray(g) * ours.params_.to_numpy())) < 1e-6
    np.testing.assert_allclose(ours.standard_errors_, plain.standard_errors_, rtol=1e-4)
    # and at the same parameters every prediction agrees to 1e-10
    ours.params_ = plain.params_.copy()
    x, tx, T = (v.to_numpy() for v in args)
    for name, a, b in [
        ("p_alive", ours.conditional_probability_alive(x, tx, T),
         plain.conditional_probability_alive(x, tx, T)),
        ("cond", ours.conditional_expected_number_of_purchases_up_to_time(26.0, x, tx, T),
         plain.conditional_expected_number_of_purchases_up_to_time(26.0, x, tx, T)),
        ("new", ours.expected_number_of_purchases_up_to_time(np.array([1.0, 10.0, 52.0])),
         plain.expected_number_of_purchases_up_to_time(np.array([1.0, 10.0, 52.0]))),
        ("rate", ours.purchase_rate_if_alive(x, tx, T), plain.purchase_rate_if_alive(x, tx, T)),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-10, err_msg=name)


# ---- the maths with covariates ------------------------------------------------------------
def test_pnbd_rows_equal_plain_likelihood_with_customer_parameters():
    """Per-row alpha_i/beta_i (both alpha_i >= beta_i and < beta_i occur) against the
    scalar-parameter likelihood of _pareto_nbd_math, group by group."""
    rfm, _ = make_data("pnbd", n=1200, seed=5)
    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    g = np.arange(len(x)) % 3
    alpha_i = np.array([8.0, 40.0, 3.0])[g]
    beta_i = np.array([12.0, 5.0, 3.0])[g]
    ll = pnbd_rows((0.6, 1.0, 0.8, 1.0), alpha_i, beta_i, x, tx, T, grad=False)
    for k in range(3):
        ref = pm.loglik((0.6, alpha_i[g == k][0], 0.8, beta_i[g == k][0]), x[g == k], tx[g == k],
                        T[g == k])
        np.testing.assert_allclose(ll[g == k], ref, rtol=1e-12, atol=1e-12)


def test_bgnbd_rows_against_paper_and_numerical_integral():
    x = np.array([0.0, 1, 3, 10, 40])
    tx = np.array([0.0, 5, 20, 30, 39])
    T = np.full(5, 40.0)
    r, alpha, a, b = 0.6, 8.0, 0.8, 4.0
    al = np.full(5, alpha)
    # m = 1: eq. (6) of Fader, Hardie & Lee (2005) written out directly
    ll, _ = bgnbd_rows((r, alpha, a, b), al, np.ones(5), x, tx, T, grad=False)
    A1 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    A2 = np.where(x > 0, special.betaln(a + 1, b + np.maximum(x, 1) - 1) - special.betaln(a, b)
                  - (r + x) * np.log(alpha + tx), -np.inf)
    ref = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + np.logaddexp(A1, A2)
    np.testing.assert_allclose(ll, ref, rtol=1e-12)
    # m != 1: integrate the survival (1 - p0)^m over p0 ~ Beta(a, b) numerically
    m = 2.5
    ll_m, _ = bgnbd_rows((r, alpha, a, b), al, np.full(5, m), x, tx, T, grad=False)
    for i in range(5):
        def dens(p0, i=i):
            surv = (1 - p0) ** m
            alive = surv ** x[i] * (alpha + T[i]) ** -(r + x[i])
            dead = (surv ** (x[i] - 1) - surv ** x[i]) * (alpha + tx[i]) ** -(r + x[i]) \
                if x[i] > 0 else 0.0
            return (alive + dead) * p0 ** (a - 1) * (1 - p0) ** (b - 1) / special.beta(a, b)
        val = integrate.quad(dens, 0, 1, epsabs=0, epsrel=1e-12, limit=200)[0]
        ref_i = special.gammaln(r + x[i]) - special.gammaln(r) + r * np.log(alpha) + np.log(val)
        assert ll_m[i] == pytest.approx(ref_i, rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("r,a,b,m", [(0.6, 0.8, 4.0, 1.0), (0.6, 0.8, 4.0, 2.0),
                                     (0.5, 0.3, 0.5, 0.3), (1.0, 1.5, 20.0, 0.5)])
def test_bgnbd_expectation_quadrature(r, a, b, m):
    """The quadrature against the closed form (m = 1) or scipy's adaptive quad (m != 1)."""
    x = np.array([0.0, 1, 5, 50, 300])
    T = np.array([0.0, 10, 40, 40, 40])
    al, t = np.full(5, 8.0), np.full(5, 26.0)
    q = _expected_if_alive(r, al, a, b, np.full(5, m), t, x, T)
    if m == 1.0:
        ref = _closed_form_if_alive(r, al, a, b, t, x, T)
    else:
        ref = []
        for xi, Ti in zip(x, T, strict=True):
            bp, rp, ap = b + m * xi, r + xi, 8.0 + Ti

            def f(p0, bp=bp, rp=rp, ap=ap):
                p = -np.expm1(m * np.log1p(-p0))
                g = -np.expm1(-rp * np.log1p(p * 26.0 / ap)) / p
                return g * np.exp((a - 1) * np.log(p0) + (bp - 1) * np.log1p(-p0)
                                  - special.betaln(a, bp))
            ref.append(integrate.quad(f, 0, 1, epsabs=0, epsrel=1e-11, limit=400,
                                      points=[1e-6, 1e-3, 0.1])[0])
    np.testing.assert_allclose(q, ref, rtol=1e-7)


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_analytic_gradient_matches_finite_differences(model):
    rfm, cov = make_data(model, n=600, seed=7)
    cls = MODELS[model][0]
    m = cls()
    Z = np.column_stack([cov["channel"] == "referral", cov["channel"] == "store",
                         cov["plan"] == "premium", cov["age"]]).astype(float)
    data = {c: rfm[c].to_numpy() for c in ("frequency", "recency", "T")}
    w = np.random.default_rng(0).integers(1, 4, len(Z)).astype(float)
    rng = np.random.default_rng(11)
    base = np.log(MODELS[model][2])
    for _ in range(4):
        theta = np.concatenate([base + rng.normal(0, 0.3, 4), rng.normal(0, 0.4, 8)])

        def f(th):
            return -m._total(th, Z, Z, data, w)[0] / w.sum()

        def g(th):
            return -m._total(th, Z, Z, data, w)[1] / w.sum()

        err = check_grad(f, g, theta, epsilon=1e-7)
        assert err < 2e-5 * max(1.0, np.linalg.norm(g(theta))), err


# ---- the fitted models ----------------------------------------------------------------
def test_summary_and_attributes(fitted):
    model, m, rfm, _ = fitted
    base = list(MODELS[model][1]._param_names)
    coef = ["channel=referral", "channel=store", "plan=premium", "age"]
    names = base + [f"purchase:{c}" for c in coef] + [f"dropout:{c}" for c in coef]
    assert list(m.params_.index) == names
    s = m.summary
    assert list(s.columns) == ["coef", "se(coef)", "lower 95% bound", "upper 95% bound"]
    assert list(s.index) == names
    assert np.all(np.isfinite(s.to_numpy()))
    assert np.all(s["se(coef)"] > 0)
    assert m.variance_matrix_.shape == (12, 12)
    assert m.AIC_ == pytest.approx(2 * 12 - 2 * m.log_likelihood_)
    assert m.BIC_ == pytest.approx(12 * np.log(len(rfm)) - 2 * m.log_likelihood_)
    assert m.log_likelihood_ < 0


def test_weights_equal_repeated_rows(fitted):
    """Rows with identical (x, t_x, T, z) collapse: fitting every row twice equals fitting
    the rows once with weight 2."""
    model, _, rfm, cov = fitted
    cls = MODELS[model][0]
    sub, csub = rfm, cov
    twice = cls().fit(pd.concat([sub, sub])["frequency"], pd.concat([sub, sub])["recency"],
                      pd.concat([sub, sub])["T"], pd.concat([csub, csub]), ["plan"], ["channel"])
    weighted = cls().fit(sub["frequency"], sub["recency"], sub["T"], csub, ["plan"], ["channel"],
                         weights=np.full(len(sub), 2.0))
    assert twice.n_distinct_ == weighted.n_distinct_ <= len(sub)
    np.testing.assert_allclose(twice.params_, weighted.params_, rtol=1e-6)
    assert twice.log_likelihood_ == pytest.approx(weighted.log_likelihood_, rel=1e-10)


def test_predictions_use_customer_parameters(fitted):
    """A customer's predictions are the plain model's with alpha_i, beta_i (or m_i = 1 for
    BG/NBD customers at the dropout reference)."""
    model, m, rfm, cov = fitted
    plain = MODELS[model][1]()
    x, tx, T = (rfm[c].to_numpy()[:300] for c in ("frequency", "recency", "T"))
    c = cov.iloc[:300]
    p = m.params_
    Z = np.column_stack([c["channel"] == "referral", c["channel"] == "store",
                         c["plan"] == "premium", c["age"]]).astype(float)
    eta_p = Z @ p.iloc[4:8].to_numpy()
    eta_d = Z @ p.iloc[8:12].to_numpy()
    got_alive = m.conditional_probability_alive(x, tx, T, c)
    got_cond = m.conditional_expected_number_of_purchases_up_to_time(13.0, x, tx, T, c)
    got_rate = m.purchase_rate_if_alive(x, tx, T, c)
    assert isinstance(got_alive, pd.Series) and got_alive.index.equals(c.index)
    for i in range(0, 300, 37):
        q = p.iloc[:4].copy()
        q["alpha"] = p["alpha"] * np.exp(-eta_p[i])
        if model == "pnbd":
            q["beta"] = p["beta"] * np.exp(-eta_d[i])
        plain.params_ = q
        assert got_rate.iloc[i] == pytest.approx(plain.purchase_rate_if_alive(x[i], tx[i], T[i]),
                                                 rel=1e-12)
        if model == "bgnbd":
            continue
        assert got_alive.iloc[i] == pytest.approx(
            plain.conditional_probability_alive(x[i], tx[i], T[i]), rel=1e-10)
        assert got_cond.iloc[i] == pytest.approx(
            plain.conditional_expected_number_of_purchases_up_to_time(13.0, x[i], tx[i], T[i]),
            rel=1e-10)
    assert np.all((got_alive > 0) & (got_alive <= 1))
    # one history scored for several attribute profiles: one value per profile
    prof = m.conditional_probability_alive(2.0, 10.0, 30.0, c.iloc[:3])
    assert isinstance(prof, pd.Series) and prof.index.equals(c.index[:3])
    assert isinstance(m.conditional_probability_alive(2.0, 10.0, 30.0, c.iloc[:1]), float)
    # a new customer of each attribute profile; one row of covariates broadcasts
    new = m.expected_number_of_purchases_up_to_time(np.array([4.0, 52.0]), c.iloc[[0]])
    assert new.shape == (2,) and 0 < new[0] < new[1]


def test_dropout_effect_moves_p_alive_the_right_way(fitted):
    """Same history, longer-lived profile (referral, premium) -> higher P(alive)."""
    _, m, _, _ = fitted
    prof = pd.DataFrame({"channel": ["online", "referral"], "plan": ["basic", "premium"],
                         "age": [0.0, 0.0]})
    pa = m.conditional_probability_alive(np.array([3.0, 3.0]), np.array([40.0, 40.0]),
                                         np.array([60.0, 60.0]), prof)
    assert pa[1] > pa[0] + 0.05


def test_unknown_level_and_missing_covariates_at_prediction(fitted):
    _, m, _, _ = fitted
    bad = pd.DataFrame({"channel": ["partner"], "plan": ["basic"], "age": [0.0]})
    with pytest.raises(ClvInputError, match="'partner'"):
        m.conditional_probability_alive(2.0, 5.0, 30.0, bad)
    with pytest.raises(ClvInputError, match="needs the covariates"):
        m.conditional_probability_alive(2.0, 5.0, 30.0)


def test_json_round_trip_predicts_identically(fitted, tmp_path):
    model, m, rfm, cov = fitted
    path = tmp_path / f"{model}.json"
    m.save_model(path)
    back = load_model(path)
    assert type(back) is type(m)
    pd.testing.assert_series_equal(back.params_, m.params_)
    pd.testing.assert_frame_equal(back.summary, m.summary)
    args = (rfm["frequency"], rfm["recency"], rfm["T"], cov)
    pd.testing.assert_series_equal(back.conditional_probability_alive(*args),
                                   m.conditional_probability_alive(*args))
    pd.testing.assert_series_equal(
        back.conditional_expected_number_of_purchases_up_to_time(26.0, *args),
        m.conditional_expected_number_of_purchases_up_to_time(26.0, *args))
    assert back.log_likelihood_ == m.log_likelihood_


def test_heavy_buyers_give_finite_numbers(fitted):
    model, m, _, _ = fitted
    x = np.array([200.0, 1000.0, 5000.0, 300.0])
    tx = np.array([38.0, 100.0, 100.0, 1.0])
    T = np.array([40.0, 100.0, 100.0, 100.0])
    prof = pd.DataFrame({"channel": ["referral"] * 4, "plan": ["premium"] * 4, "age": [3.0] * 4})
    pa = m.conditional_probability_alive(x, tx, T, prof)
    ce = m.conditional_expected_number_of_purchases_up_to_time(52.0, x, tx, T, prof)
    assert np.all(np.isfinite(pa)) and np.all(np.isfinite(ce))
    assert np.all((pa >= 0) & (pa <= 1))
    assert pa[3] < 1e-6 < pa[1]  # 300 purchases then silence for 99 weeks: gone
    assert ce[1] > 100  # a heavy buyer still alive keeps buying
    # the likelihood of such rows is finite too
    p = m.params_.to_numpy()
    if model == "pnbd":
        ll = pnbd_rows(p[:4], np.full(4, p[1]), np.full(4, p[3]), x, tx, T, grad=False)
    else:
        ll, _ = bgnbd_rows(p[:4], np.full(4, p[1]), np.full(4, 3.0), x, tx, T, grad=False)
    assert np.all(np.isfinite(ll))


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_subset_start_reaches_the_same_optimum(model, monkeypatch):
    """Above 2 x SUBSET_ROWS distinct rows the fit starts from a subset fit and whitens the
    full fit with its Hessian; the optimum is the direct fit's (here with the threshold
    lowered to a subset of 600 rows, whatever the model's share of it, so that 1,500 rows
    take that path)."""
    from clvtools.btyd import _optimise

    rfm, cov = make_data(model, n=1500, seed=4)
    cls = MODELS[model][0]
    args = (rfm["frequency"], rfm["recency"], rfm["T"], cov, ["plan", "age"], ["channel"])
    direct = cls().fit(*args)
    monkeypatch.setattr(_optimise, "SUBSET_ROWS", round(600 / cls._subset_share))
    via_subset = cls().fit(*args)
    assert via_subset.optimizer_message_ == "Newton" != direct.optimizer_message_
    np.testing.assert_allclose(via_subset.params_, direct.params_, rtol=1e-5, atol=1e-6)
    assert via_subset.log_likelihood_ == pytest.approx(direct.log_likelihood_, abs=1e-6)


def test_bgnbd_expectation_falls_back_to_quadrature_without_closed_form():
    """a + b + x - 1 < 0 (new customers with a + b < 1): the Euler-transformed closed form
    (also BetaGeoFitter's) is NaN from t = 10 on (its 2F1 goes negative); the quadrature
    takes over there and agrees with it where it is finite."""
    x, t, T = np.zeros(3), np.array([1.0, 10.0, 52.0]), np.zeros(3)
    al, one = np.full(3, 8.0), np.ones(3)
    with np.errstate(all="ignore"):
        closed = _closed_form_if_alive(0.5, al, 0.3, 0.5, t, x, T)
    assert np.isfinite(closed[0]) and np.all(np.isnan(closed[1:]))
    got = BetaGeoCovariatesFitter()._if_alive(t, x, T, 0.5, al, 0.3, 0.5, one)
    np.testing.assert_allclose(got, _expected_if_alive(0.5, al, 0.3, 0.5, one, t, x, T),
                               rtol=1e-14)
    assert got[0] == pytest.approx(closed[0], rel=1e-12)
    assert np.all(np.diff(got) > 0) and got[0] > 0


def test_expected_purchases_by_horizon_equals_one_call_per_horizon(fitted):
    """The one-pass version (P(alive) once; BG/NBD also shares the quadrature weights)
    gives each horizon's conditional expectation, for BG/NBD customers at the dropout
    reference (closed form) and elsewhere (quadrature) alike."""
    model, m, rfm, cov = fitted
    horizons = np.array([4.3, 8.7, 13.0, 52.0])
    got = m.expected_purchases_by_horizon(horizons, rfm["frequency"], rfm["recency"], rfm["T"],
                                          cov)
    assert isinstance(got, pd.DataFrame) and got.shape == (len(rfm), 4)
    assert got.index.equals(rfm.index) and list(got.columns) == list(horizons)
    for h in horizons:
        one = m.conditional_expected_number_of_purchases_up_to_time(
            h, rfm["frequency"], rfm["recency"], rfm["T"], cov)
        np.testing.assert_allclose(got[h], one, rtol=1e-13, atol=0)
    assert np.all(np.diff(got.to_numpy(), axis=1) > 0)
    for bad in ([4.0, -1.0], [], ["a month"]):
        with pytest.raises(ClvInputError, match="'horizons' argument"):
            m.expected_purchases_by_horizon(bad, rfm["frequency"], rfm["recency"], rfm["T"], cov)


def test_alive_and_expected_by_horizon_equal_the_two_calls_bit_for_bit(fitted):
    """The pair the revenue months take (P(alive) computed once) is
    ``conditional_probability_alive`` and ``expected_purchases_by_horizon``, bit for bit,
    and revenue_by_month keeps that P(alive) for the scores."""
    from clvtools.btyd.clv import revenue_by_month
    from clvtools.pipeline.value_models import BoundCovariates

    _, m, rfm, cov = fitted
    x, tx, T = rfm["frequency"], rfm["recency"], rfm["T"]
    horizons = np.array([4.3, 8.7, 13.0, 52.0])
    p_alive, expected = m.alive_and_expected_by_horizon(horizons, x, tx, T, cov)
    np.testing.assert_array_equal(p_alive, m.conditional_probability_alive(x, tx, T, cov))
    np.testing.assert_array_equal(expected,
                                  m.expected_purchases_by_horizon(horizons, x, tx, T, cov))
    months = revenue_by_month(BoundCovariates(m, cov), x, tx, T, 1.0, 52.0, 7.0, 0.0)
    np.testing.assert_array_equal(months.p_alive, p_alive)


def test_bgnbd_horizons_fall_back_to_quadrature_row_by_row():
    """A reference-level row whose closed form is NaN at a long horizon (a + b < 1) goes to
    the quadrature for all its horizons; a row with a finite closed form keeps it."""
    x, T = np.array([0.0, 3.0]), np.array([0.0, 20.0])
    al, one = np.full(2, 8.0), np.ones(2)
    t = np.tile([1.0, 10.0, 52.0], (2, 1))
    got = BetaGeoCovariatesFitter()._if_alive(t, x, T, 0.5, al, 0.3, 0.5, one)
    for k in range(3):
        alone = BetaGeoCovariatesFitter()._if_alive(t[:, k].copy(), x, T, 0.5, al, 0.3, 0.5, one)
        np.testing.assert_allclose(got[:, k], alone, rtol=1e-12)
    np.testing.assert_allclose(got[0], _expected_if_alive(0.5, al[:1], 0.3, 0.5, one[:1], t[:1],
                                                          x[:1], T[:1])[0], rtol=1e-14)
    assert np.all(np.isfinite(got)) and np.all(np.diff(got, axis=1) > 0)


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_rowwise_hessian_equals_forward_differences_of_the_gradient(model, monkeypatch):
    """The Hessian assembled from each row's 6 x 6 second derivatives (6 gradient
    evaluations) equals the forward-difference Hessian of the total gradient (one evaluation
    per parameter, the former method) to 1e-5 of its scale: same variance matrix, same fit."""
    from clvtools.btyd._optimise import forward_hessian
    from clvtools.btyd.covariates import CovariateBTYDFitter

    rfm, cov = make_data(model, n=800, seed=3)
    cls = MODELS[model][0]
    args = (rfm["frequency"], rfm["recency"], rfm["T"], cov, COLS, COLS)
    rowwise = cls(penalizer_coef=0.01).fit(*args)
    seen = []

    def by_parameter(self, theta, zps, zds, data, counts, h=1e-6):
        new = CovariateBTYDFitter._loglik_hessian(self, theta, zps, zds, data, counts)
        old = forward_hessian(lambda th: self._total(th, zps, zds, data, counts)[1], theta)
        seen.append(np.max(np.abs(new - old)) / np.max(np.abs(old)))
        return old

    monkeypatch.setattr(cls, "_loglik_hessian", by_parameter)
    reference = cls(penalizer_coef=0.01).fit(*args)
    assert seen and max(seen) < 1e-5
    np.testing.assert_allclose(rowwise.params_, reference.params_, rtol=1e-7, atol=1e-9)
    ref = reference.variance_matrix_.to_numpy()
    np.testing.assert_allclose(rowwise.variance_matrix_.to_numpy(), ref, rtol=1e-4,
                               atol=1e-8 * np.abs(ref).max())


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_hessian_summed_by_pattern_equals_the_rowwise_sum(model, monkeypatch):
    """With categorical attributes only, the Hessian sums the rows' curvature by covariate
    pattern (6 patterns here) before the products with the designs: the row-by-row sum's
    figures to rounding (1e-12 of its scale), on all rows and on a subset of the rows that
    lacks some patterns (the subset start's Hessian)."""
    from clvtools.btyd.covariates import CovariateBTYDFitter, _pattern_sums

    rfm, cov = make_data(model, n=900, seed=5)
    cls = MODELS[model][0]
    calls = []

    def capture(self, theta, zps, zds, data, counts, h=1e-6):
        calls.append((self, theta, zps, zds, data, counts))
        return CovariateBTYDFitter._loglik_hessian(self, theta, zps, zds, data, counts)

    monkeypatch.setattr(cls, "_loglik_hessian", capture)
    cls().fit(rfm["frequency"], rfm["recency"], rfm["T"], cov, ["channel", "plan"],
              ["channel", "plan"])
    fitter, theta, zps, zds, data, counts = calls[-1]
    fitter._fit_memo = None
    assert data["design_pattern"].max() + 1 == 6 and _pattern_sums(
        data["design_pattern"], counts) is not None
    keep = np.flatnonzero(data["design_pattern"] != 0)     # a subset without pattern 0
    cases = [(data, zps, zds, counts),
             ({k: v[keep] for k, v in data.items()}, zps[keep], zds[keep], counts[keep])]
    for dat, zp, zd, cnt in cases:
        summed = CovariateBTYDFitter._loglik_hessian(fitter, theta, zp, zd, dat, cnt)
        rowwise = CovariateBTYDFitter._loglik_hessian(
            fitter, theta, zp, zd, {k: v for k, v in dat.items() if k != "design_pattern"},
            cnt)
        assert np.max(np.abs(summed - rowwise)) < 1e-12 * np.max(np.abs(rowwise))


def test_encoded_covariates_predict_as_the_dataframe(fitted):
    """Covariates encoded once (EncodedCovariates) give the DataFrame's predictions exactly,
    a row subset's encoding is the subset's, and a bound model copied with other parameter
    values (the delta method's) keeps the encoding and predicts as a fresh bound model."""
    from clvtools.pipeline.value_models import BoundCovariates, with_params

    _, m, rfm, cov = fitted
    x, tx, T = rfm["frequency"], rfm["recency"], rfm["T"]
    encoded = m.encode(cov)
    assert len(encoded) == len(cov) and encoded.index.equals(cov.index)
    for method in ("conditional_probability_alive", "purchase_rate_if_alive"):
        pd.testing.assert_series_equal(getattr(m, method)(x, tx, T, encoded),
                                       getattr(m, method)(x, tx, T, cov))
    pd.testing.assert_frame_equal(m.expected_purchases_by_horizon([4.0, 26.0], x, tx, T, encoded),
                                  m.expected_purchases_by_horizon([4.0, 26.0], x, tx, T, cov))
    rows = np.arange(0, len(cov), 7)
    part = encoded.take(rows)
    np.testing.assert_array_equal(part.purchase, m.encode(cov.iloc[rows]).purchase)
    np.testing.assert_array_equal(part.dropout, m.encode(cov.iloc[rows]).dropout)
    bound = BoundCovariates(m, cov)
    moved = m.params_.to_numpy() * 1.01
    copy = with_params(bound, moved)
    assert copy.encoded is bound.encoded
    fresh = BoundCovariates(with_params(m, moved), cov)
    np.testing.assert_array_equal(copy.conditional_probability_alive(x, tx, T),
                                  fresh.conditional_probability_alive(x, tx, T))
    sample = bound.take(rows)
    np.testing.assert_array_equal(
        sample.purchase_rate_if_alive(x.iloc[rows], tx.iloc[rows], T.iloc[rows]),
        m.purchase_rate_if_alive(x.iloc[rows], tx.iloc[rows], T.iloc[rows], cov.iloc[rows]))
    with pytest.raises(ClvInputError, match="must be a pandas DataFrame"):
        m.encode(cov.to_numpy())


@pytest.mark.parametrize("model", ["pnbd", "bgnbd"])
def test_shared_evaluations_leave_the_fit_unchanged(model, monkeypatch):
    """A fit reuses, within itself, the rows' gradients of its last evaluation as the
    Hessian's starting point and (BG/NBD) its rows' (pattern, frequency) pairs: fewer passes
    over the rows, and parameters, variance and log-likelihood equal to the last bit to a
    fit that shares nothing (here on the subset-start path, with its Newton iterations)."""
    from clvtools.btyd import _optimise

    rfm, cov = make_data(model, n=1500, seed=4)
    args = (rfm["frequency"], rfm["recency"], rfm["T"], cov, COLS, COLS)
    cls = MODELS[model][0]
    monkeypatch.setattr(_optimise, "SUBSET_ROWS", round(600 / cls._subset_share))

    class Counted(cls):
        row_passes = 0

        def _rows(self, *args, **kwargs):
            type(self).row_passes += 1
            return super()._rows(*args, **kwargs)

    class SharesNothing(Counted):
        row_passes = 0
        _fit_memo = property(lambda self: None, lambda self, value: None)

    shared, alone = Counted().fit(*args), SharesNothing().fit(*args)
    assert shared.optimizer_message_ == "Newton"
    assert Counted.row_passes < SharesNothing.row_passes
    np.testing.assert_array_equal(shared.params_.to_numpy(), alone.params_.to_numpy())
    np.testing.assert_array_equal(shared.variance_matrix_.to_numpy(),
                                  alone.variance_matrix_.to_numpy())
    assert shared.log_likelihood_ == alone.log_likelihood_
    assert shared._fit_memo is None  # the fit's row arrays are not kept with the model


def test_newton_returns_the_objective_where_it_stops():
    """The Newton iterations hand back the objective and gradient at their stopping point,
    as an evaluation there gives them (the fit then does not evaluate every row again)."""
    from clvtools.btyd._covariate_fit import _newton

    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    target = np.array([0.3, -1.2])

    def objective(theta):
        d = theta - target
        return float(d @ A @ d) / 2 + np.sin(theta[0]) * 1e-3, A @ d + [np.cos(theta[0]) * 1e-3, 0]

    theta, iterations, f, grad = _newton(objective, np.zeros(2), A, tol=1e-10)
    assert theta is not None and iterations > 0
    f_there, grad_there = objective(theta)
    assert f == f_there
    np.testing.assert_array_equal(grad, grad_there)

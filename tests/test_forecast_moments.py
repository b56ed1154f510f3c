"""Moments of future purchases and revenue (clvtools.forecast.moments) against the models'
own means and against simulation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvtools.btyd import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from clvtools.btyd.simulate import simulate_bgnbd, simulate_mbgnbd, simulate_pareto_nbd
from clvtools.forecast import (
    SpendMoments,
    grouped_revenue_variance,
    purchase_posterior,
    revenue_variance,
    spend_moments,
    window_moments,
)

BG = ("r", "alpha", "a", "b"), (0.8, 6.0, 0.6, 2.5)
PNBD = ("r", "alpha", "s", "beta"), (0.6, 8.0, 0.7, 12.0)
CASES = [(BetaGeoFitter, simulate_bgnbd, BG), (ModifiedBetaGeoFitter, simulate_mbgnbd, BG),
         (ParetoNBDFitter, simulate_pareto_nbd, PNBD)]
#: Histories (x, t_x, T) and windows (start, end] after T of the direct simulation.
HISTORIES = [(0, 0.0, 30.0), (3, 20.0, 40.0), (12, 39.0, 40.0)]
WINDOWS = np.array([[0.0, 10.0], [5.0, 12.0], [0.0, 26.0]])


def _fitter(cls, spec):
    names, values = spec
    model = cls()
    model.params_ = pd.Series(values, index=names)
    return model


@pytest.mark.parametrize(("cls", "simulate", "spec"), CASES)
def test_means_are_the_models_conditional_expectations(cls, simulate, spec):
    model = _fitter(cls, spec)
    rng = np.random.default_rng(1)
    base = simulate(spec[1], 3000, rng.uniform(5, 60, 3000), seed=2)
    x, tx, age = base["frequency"], base["recency"], base["T"]
    mo = window_moments(purchase_posterior(model, x, tx, age), WINDOWS[:, 0], WINDOWS[:, 1])
    for w, (u, e) in enumerate(WINDOWS):
        expected = (np.asarray(model.conditional_expected_number_of_purchases_up_to_time(
            e, x, tx, age)) - np.asarray(model.conditional_expected_number_of_purchases_up_to_time(
                u, x, tx, age)))
        np.testing.assert_allclose(mo.n1[:, w], expected, rtol=1e-8, atol=1e-12)
    rate = np.asarray(model.purchase_rate_if_alive(x, tx, age))
    np.testing.assert_allclose(mo.y1, rate[:, None] * (WINDOWS[:, 1] - WINDOWS[:, 0]), rtol=1e-12)
    # second moments are at least the squared means (variances >= 0), Y N >= N^2 (N <= Y)
    assert np.all(mo.n2 >= mo.n1**2 - 1e-12)
    assert np.all(mo.yn >= mo.n2 - 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "simulate", "spec"), CASES)
def test_second_moment_over_a_simulated_base(cls, simulate, spec):
    """Law of total expectation: over customers simulated from the model (an independent
    simulator), the mean of E[N^2 | history] is the mean of the realised N^2 in the holdout."""
    model = _fitter(cls, spec)
    rng = np.random.default_rng(3)
    base = simulate(spec[1], 200_000, rng.uniform(10, 60, 200_000), seed=4, holdout=20.0)
    mo = window_moments(purchase_posterior(model, base["frequency"], base["recency"],
                                           base["T"]), [0.0], [20.0])
    realised = base["frequency_holdout"].to_numpy(float) ** 2
    se = realised.std() / np.sqrt(len(realised))
    assert abs(mo.n2[:, 0].mean() - realised.mean()) < 4 * se


def _simulate_future(family, spec, history, n_draws, rng):
    """Draws of (N, Y) per window for one customer: alive with P(alive), the rates from their
    posterior given alive, then the purchase and dropout processes run forward."""
    names, values = spec
    prm = dict(zip(names, values, strict=True))
    x, _, age = history
    e_max = WINDOWS[:, 1].max()
    lam = rng.gamma(prm["r"] + x, 1.0 / (prm["alpha"] + age), n_draws)
    k = rng.poisson(lam * e_max)
    width = int(k.max()) + 1
    times = rng.uniform(0, e_max, (n_draws, width))
    times[np.arange(width)[None, :] >= k[:, None]] = np.inf  # k purchases, in time order
    times = np.sort(times, axis=1)
    if family == "geometric":
        p = rng.beta(prm["a"], prm["b"] + x, n_draws)
        kept = rng.geometric(p)  # dropout right after this purchase
        keep = np.arange(1, width + 1)[None, :] <= kept[:, None]
    else:
        tau = rng.exponential(1.0 / rng.gamma(prm["s"], 1.0 / (prm["beta"] + age), n_draws))
        keep = times <= tau[:, None]
    n_out, y_out = [], []
    for u, e in WINDOWS:
        inside = (times > u) & (times <= e)
        y_out.append(inside.sum(axis=1))
        n_out.append((inside & keep).sum(axis=1))
    return np.array(n_out).T, np.array(y_out).T


@pytest.mark.parametrize(("cls", "family", "spec"), [(BetaGeoFitter, "geometric", BG),
                                                    (ParetoNBDFitter, "exponential", PNBD)])
@pytest.mark.parametrize("history", HISTORIES)
def test_window_moments_match_a_direct_simulation(cls, family, spec, history):
    """E[N], E[N^2] and E[Y N] of each window against the processes simulated forward from
    the posterior (4 standard errors)."""
    model = _fitter(cls, spec)
    post = purchase_posterior(model, [history[0]], [history[1]], [history[2]])
    mo = window_moments(post, WINDOWS[:, 0], WINDOWS[:, 1])
    alive = post.p_alive[0]
    n, y = _simulate_future(family, spec, history, 400_000, np.random.default_rng(7))
    for name, analytic, draws in (("E[N]", mo.n1[0] / alive, n), ("E[N^2]", mo.n2[0] / alive,
                                                                   n**2),
                                  ("E[YN]", mo.yn[0] / alive, y * n)):
        mc = draws.mean(axis=0)
        se = draws.std(axis=0) / np.sqrt(len(draws))
        assert np.all(np.abs(analytic - mc) < 4 * se + 1e-12), (name, analytic, mc, se)


def test_revenue_variance_of_a_compound_sum_matches_simulation():
    """Revenue of C purchases with Gamma-Gamma spends sharing the customer's nu."""
    rng = np.random.default_rng(11)

    class Spend:  # Gamma-Gamma's parameters only
        params_ = pd.Series({"p": 6.0, "q": 4.0, "v": 25.0})

    x, m = np.array([0.0, 3.0]), np.array([0.0, 30.0])
    p, q, v = 6.0, 4.0, 25.0
    mean_spend = p * (v + x * m) / (p * x + q - 1)
    sm = spend_moments(Spend(), x, m, mean_spend)
    lam = 2.5  # purchases: Poisson(lam)
    var = revenue_variance(np.full((2, 1), lam), np.full((2, 1), lam + lam**2), sm)
    draws = 400_000
    for i in range(2):
        nu = rng.gamma(q + p * x[i], 1.0 / (v + x[i] * m[i]), draws)
        c = rng.poisson(lam, draws)
        revenue = rng.gamma(np.maximum(c * p, 1e-300), 1.0 / nu) * (c > 0)
        se_var = revenue.var() * np.sqrt(2.0 / draws) * 3  # heavy tails: a wide margin
        assert abs(revenue.mean() - lam * mean_spend[i]) < 4 * revenue.std() / np.sqrt(draws)
        assert abs(revenue.var() - var[i, 0]) < 4 * se_var, (revenue.var(), var[i, 0])


def test_no_spend_model_means_a_fixed_spend():
    sm = spend_moments(None, [1.0], [5.0], [2.0])
    assert isinstance(sm, SpendMoments)
    var = revenue_variance(np.array([[1.0]]), np.array([[3.0]]), sm)
    assert var[0, 0] == pytest.approx(4.0 * (3.0 - 1.0))


@pytest.mark.parametrize(("cls", "spec"), [(BetaGeoFitter, BG), (ModifiedBetaGeoFitter, BG),
                                           (ParetoNBDFitter, PNBD)])
def test_extreme_customers_give_finite_moments(cls, spec):
    model = _fitter(cls, spec)
    x = np.array([0.0, 0.0, 500.0, 500.0, 1.0, 2000.0])
    tx = np.array([0.0, 0.0, 1e4, 10.0, 1e-6, 5000.0])
    age = np.array([1e-6, 1e4, 1e4, 1e4, 1e-6, 5000.0])
    mo = window_moments(purchase_posterior(model, x, tx, age), [0.0, 1e-3, 0.0],
                        [1e-3, 1e4, 1e4])
    for arr in (mo.n1, mo.n2, mo.y1, mo.y2, mo.yn):
        assert np.all(np.isfinite(arr)) and np.all(arr >= 0)
    assert np.all(mo.n2 >= mo.n1**2 * (1 - 1e-9))


@pytest.mark.parametrize(("cls", "spec"), [(BetaGeoFitter, BG), (ParetoNBDFitter, PNBD)])
def test_grouped_variances_are_the_customers_variances_summed(cls, spec):
    """grouped_revenue_variance sums by group, without per-customer arrays, exactly what
    revenue_variance gives customer by customer (with a seasonal scale and a weight)."""
    model = _fitter(cls, spec)
    rng = np.random.default_rng(5)
    n = 400
    x = rng.integers(0, 6, n).astype(float)
    age = rng.integers(10, 15, n).astype(float)
    tx = np.where(x > 0, age * rng.uniform(0.2, 1, n), 0.0)
    post = purchase_posterior(model, x, tx, age)
    spend = SpendMoments(rng.uniform(5, 50, n), np.zeros(n), rng.uniform(0, 100, n))
    spend = SpendMoments(spend.mean, spend.mean**2 * rng.uniform(1, 1.5, n), spend.within)
    groups = rng.integers(0, 3, n)
    scale, window = rng.uniform(0.5, 2, n), np.array([0.8, 1.3])
    weight = rng.uniform(0, 1, n)
    grouped = grouped_revenue_variance(post, [0.0, 4.0], [4.0, 9.0], spend, groups, 3,
                                       customer_scale=scale, window_scale=window,
                                       weights={"w": weight})
    mo = window_moments(post, [0.0, 4.0], [4.0, 9.0])
    f = scale[:, None] * window[None, :]
    per = {"expected": revenue_variance(mo.n1, mo.n2, spend, f),
           "retained": revenue_variance(mo.y1, mo.y2, spend, f),
           "loss": revenue_variance(mo.y1 - mo.n1, mo.y2 - 2 * mo.yn + mo.n2, spend, f)}
    per["w"] = weight[:, None] * per["loss"]
    for name, values in per.items():
        expected = np.vstack([[values[groups == g].sum(axis=0) for g in range(3)],
                              values.sum(axis=0)])
        np.testing.assert_allclose(grouped[name], expected, rtol=1e-9)
    # the horizon's whole beside the spread months, in the same call: unscaled there
    both = grouped_revenue_variance(post, [0.0, 4.0, 0.0], [4.0, 9.0, 9.0], spend, groups, 3,
                                    customer_scale=scale, window_scale=np.append(window, 1.0),
                                    unscaled=np.array([False, False, True]),
                                    weights={"w": weight})
    whole = grouped_revenue_variance(post, [0.0], [9.0], spend, groups, 3, weights={"w": weight})
    for name in per:
        np.testing.assert_allclose(both[name][:, :2], grouped[name], rtol=1e-12)
        np.testing.assert_allclose(both[name][:, 2:], whole[name], rtol=1e-12)


def test_batched_beta_nodes_agree_with_scipys_rule_one_pair_at_a_time():
    """The batched Golub-Welsch rule (one eigen-decomposition for every posterior) against
    scipy's roots_jacobi / roots_genlaguerre pair by pair, extreme fits included (a point
    mass where the rules overflow)."""
    from clvtools.btyd.declared_churn import _beta_nodes, beta_nodes

    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(0.05, 5, 200), [1e6, 1e6, 0.5, 300.0, 0.8]])
    b = np.concatenate([rng.uniform(0.2, 1000, 200), [500.0, 1e7, 2e3, 100.0, 4.0]])
    nodes, weights = beta_nodes(16, a, b)
    for i in range(len(a)):
        p, w = _beta_nodes(16, a[i], b[i])
        for j in (1, 2, 5):
            assert (nodes[i] ** j) @ weights[i] == pytest.approx((p ** j) @ w, rel=1e-9)

"""Tests of clvtools.targeting.evaluation: MP and EMPC against empulse and by hand, lift, Gini,
the profit curve, and the one formula shared with the allocation.

Tolerances: against empulse (an independent implementation: ROC convex hull, sympy) a
relative 1e-9 (both are exact up to rounding; we observe about 1e-15); against a numerical
integral over the acceptance rate 1e-7 (quad's own accuracy).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from empulse.metrics import empb_score
from empulse.metrics import empc_score as empulse_empc
from empulse.metrics import mpc_score as empulse_mpc
from scipy import integrate, stats

from clvtools.targeting.allocation import Action, action_economics
from clvtools.targeting.evaluation import (
    acceptance_beta,
    empc_score,
    gini_coefficient,
    measures_of_groups,
    mpc_score,
    plan_by_ranking,
    profit_curve,
    ranking_measures,
    targeting_profit_lines,
    top_decile_lift,
)

REL = 1e-9

#: empulse's documented example (empc_score, mpc_score and empb_score docstrings)
Y = [0, 1, 0, 1, 0, 1, 0, 1]
SCORE = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9]
CLV = np.array([100, 200, 150, 300, 120, 250, 180, 220], dtype=float)


def test_documented_examples_equal_empulse():
    ours = empc_score(Y, SCORE, clv=200, alpha=6, beta=14, incentive_cost=10, contact_cost=1)
    theirs = dict(alpha=6, beta=14, clv=200, incentive_cost=10, contact_cost=1)
    assert ours[0] == pytest.approx(empulse_empc(Y, SCORE, **theirs), rel=REL)
    assert ours[1] == pytest.approx(empulse_empc.optimal_rate(Y, SCORE, **theirs), rel=REL)
    mp = mpc_score(Y, SCORE, clv=200, accept_rate=0.3, incentive_cost=10, contact_cost=1)
    theirs = dict(accept_rate=0.3, clv=200, incentive_cost=10, contact_cost=1)
    assert mp[0] == pytest.approx(empulse_mpc(Y, SCORE, **theirs), rel=REL)
    assert mp[1] == pytest.approx(empulse_mpc.optimal_rate(Y, SCORE, **theirs), rel=REL)
    # per-customer values: empb maximises the expected profit, i.e. MP at the Beta's mean,
    # with an incentive that is a fraction of each customer's value
    mp = mpc_score(Y, SCORE, clv=CLV, accept_rate=6 / 20, incentive_cost=0.05 * CLV,
                   contact_cost=15)
    theirs = dict(clv=CLV, alpha=6, beta=14, incentive_fraction=0.05, contact_cost=15)
    assert mp[0] == pytest.approx(empb_score(Y, SCORE, **theirs), rel=REL)
    assert mp[1] == pytest.approx(empb_score.optimal_rate(Y, SCORE, **theirs), rel=REL)


@pytest.mark.parametrize("n, seed", [(60, 0), (2_000, 1), (20_000, 2)])
@pytest.mark.parametrize("alpha, beta, clv, d, f", [(6, 14, 200, 10, 1), (2, 8, 50, 5, 2),
                                                    (9, 3, 1000, 100, 20)])
def test_larger_samples_with_ties_equal_empulse(n, seed, alpha, beta, clv, d, f):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = np.round(rng.random(n) * 0.6 + 0.3 * y, 2)     # many ties
    ours = empc_score(y, score, clv=clv, alpha=alpha, beta=beta, incentive_cost=d,
                      contact_cost=f)
    theirs = dict(alpha=alpha, beta=beta, clv=clv, incentive_cost=d, contact_cost=f)
    assert ours[0] == pytest.approx(empulse_empc(y, score, **theirs), rel=REL)
    assert ours[1] == pytest.approx(empulse_empc.optimal_rate(y, score, **theirs), rel=REL)
    values = rng.gamma(2.0, 100.0, n)
    mp = mpc_score(y, score, clv=values, accept_rate=alpha / (alpha + beta),
                   incentive_cost=0.05 * values, contact_cost=f)
    theirs = dict(clv=values, alpha=alpha, beta=beta, incentive_fraction=0.05, contact_cost=f)
    assert mp[0] == pytest.approx(empb_score(y, score, **theirs), rel=REL)
    assert mp[1] == pytest.approx(empb_score.optimal_rate(y, score, **theirs), rel=REL)


def test_mp_by_hand():
    # ranked: churner worth 100, stayer, churner worth 40, stayer; f = 1, d = 5, gamma = 0.5
    # profits: 0.5 * 95 - 1 = 46.5; -6; 0.5 * 35 - 1 = 16.5; -6
    # cumulative: 0, 46.5, 40.5, 57.0, 51.0 -> best 57 at 3 of 4
    y, score, value = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], [100.0, 999.0, 40.0, 999.0]
    mp, share = mpc_score(y, score, clv=value, accept_rate=0.5, incentive_cost=5,
                          contact_cost=1)
    assert mp == pytest.approx(57.0 / 4, rel=1e-12)
    assert share == 0.75
    # unconditional offer: the incentive is paid by every customer contacted
    # 0.5 * 100 - 6 = 44; -6; 0.5 * 40 - 6 = 14; -6 -> 0, 44, 38, 52, 46
    mp, share = mpc_score(y, score, clv=value, accept_rate=0.5, incentive_cost=5,
                          contact_cost=1, offer="unconditional")
    assert (mp, share) == (pytest.approx(52.0 / 4, rel=1e-12), 0.75)
    # tied scores are targeted together: the stayer tied with the first churner comes along
    mp, share = mpc_score(y, [0.9, 0.9, 0.7, 0.1], clv=value, accept_rate=0.5,
                          incentive_cost=5, contact_cost=1)
    assert (mp, share) == (pytest.approx(57.0 / 4, rel=1e-12), 0.75)
    mp, share = mpc_score(y, [0.9, 0.8, 0.8, 0.1], clv=value, accept_rate=0.5,
                          incentive_cost=5, contact_cost=1)
    assert (mp, share) == (pytest.approx(57.0 / 4, rel=1e-12), 0.75)


def test_empc_with_own_values_equals_the_integral_of_the_maximum():
    rng = np.random.default_rng(7)
    n = 300
    y = (rng.random(n) < 0.25).astype(int)
    score = rng.random(n) + 0.4 * y
    values = rng.lognormal(4.0, 1.0, n)
    alpha, beta = acceptance_beta(0.2)
    slope, intercept = targeting_profit_lines(y, values, incentive_cost=8, contact_cost=3)
    order = np.argsort(-score)
    a, b = np.r_[0, np.cumsum(slope[order])], np.r_[0, np.cumsum(intercept[order])]

    def best(gamma):
        return np.max(gamma * a + b) * stats.beta.pdf(gamma, alpha, beta)

    expected, _ = integrate.quad(best, 0, 1, limit=500, epsabs=1e-10)
    ours, share = empc_score(y, score, clv=values, alpha=alpha, beta=beta, incentive_cost=8,
                             contact_cost=3)
    assert ours == pytest.approx(expected / n, rel=1e-7)
    assert 0 < share < 1
    # the expectation of the maximum is at least the maximum of the expectation (MP)
    mp, _ = mpc_score(y, score, clv=values, accept_rate=0.2, incentive_cost=8, contact_cost=3)
    assert ours >= mp - 1e-12


def test_beta_of_the_acceptance_rate():
    assert acceptance_beta(0.3) == pytest.approx((6.0, 14.0))
    with pytest.raises(ValueError, match="strictly between"):
        acceptance_beta(0.0)


@pytest.mark.parametrize("offer", ["conditional", "unconditional"])
def test_profit_is_the_allocation_formula_with_the_outcome(offer):
    rng = np.random.default_rng(3)
    n = 50
    y = (rng.random(n) < 0.4).astype(int)
    value = rng.gamma(2.0, 50.0, n)
    slope, intercept = targeting_profit_lines(y, value, incentive_cost=7, contact_cost=2,
                                              offer=offer)
    # the pipeline's outcome frame: the realised churn, and the value lost by churners only
    outcome = pd.DataFrame({"churn_probability": y.astype(float),
                            "preventable_revenue": y * value, "lapsed_revenue": 0.0})
    net = action_economics(outcome, Action("push", 2.0, 7.0, 0.35), offer=offer)["net_benefit"]
    np.testing.assert_allclose(0.35 * slope + intercept, net.to_numpy(), rtol=1e-12)


def test_lift_and_gini():
    y = np.r_[np.ones(20), np.zeros(180)]
    perfect = np.linspace(1, 0, 200)
    assert gini_coefficient(y, perfect) == pytest.approx(1.0)
    assert gini_coefficient(y, -perfect) == pytest.approx(-1.0)
    assert gini_coefficient(y, np.zeros(200)) == pytest.approx(0.0)
    # the top decile holds every churner: lift = 1 / base rate
    assert top_decile_lift(y, perfect) == pytest.approx(10.0)
    assert top_decile_lift(y, -perfect) == pytest.approx(0.0)
    # all tied: the top decile is the base on average
    assert top_decile_lift(y, np.zeros(200)) == pytest.approx(1.0)
    assert np.isnan(top_decile_lift(np.zeros(10), np.arange(10)))
    # Gini agrees with the Mann-Whitney statistic on random scores with ties
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(int)
    score = np.round(rng.random(500) + 0.2 * y, 1)
    u = stats.mannwhitneyu(score[y == 1], score[y == 0]).statistic
    assert gini_coefficient(y, score) == pytest.approx(2 * u / (y.sum() * (500 - y.sum())) - 1)


def test_profit_curve_properties():
    rng = np.random.default_rng(5)
    n = 1_000
    y = (rng.random(n) < 0.3).astype(int)
    benefit = np.where(y == 1, rng.gamma(2.0, 40.0, n) * 0.2 - 3.0, -8.0)
    rankings = {"perfect": benefit, "noisy": benefit + rng.normal(0, 30, n),
                "random": rng.random(n)}
    curve = profit_curve(benefit, rankings, y_true=y)
    wide = curve.pivot(index="share_targeted", columns="ranking", values="net_benefit")
    assert (wide.loc[0.0] == 0).all()
    np.testing.assert_allclose(wide.loc[1.0], benefit.sum(), rtol=1e-12)
    # sorting by the benefit itself is the best possible ranking at every share
    assert (wide["perfect"] >= wide[["noisy", "random"]].max(axis=1) - 1e-9).all()
    # the perfect curve is concave: its increments never grow
    assert (np.diff(np.diff(wide["perfect"].to_numpy())) <= 1e-9).all()
    last = curve[curve["share_targeted"] == 1.0]
    assert (last["churners_targeted"] == y.sum()).all()
    assert (last["share_of_churners"] == 1.0).all()
    # with nothing to keep, every contact loses money: MP is 0, targeting nobody
    measures = ranking_measures(y, {"noisy": rankings["noisy"]}, clv=np.zeros(n),
                                incentive_cost=0.0, contact_cost=1.0, accept_rate=0.5)
    mp = measures.set_index("measure")["value"]
    assert mp["mp"] == 0.0 and mp["mp_share_targeted"] == 0.0


def test_mp_is_the_top_of_the_realised_curve():
    rng = np.random.default_rng(11)
    n = 500
    y = (rng.random(n) < 0.4).astype(int)
    value = rng.gamma(2.0, 60.0, n)
    score = rng.random(n) + 0.5 * y
    slope, intercept = targeting_profit_lines(y, value, incentive_cost=4, contact_cost=2)
    benefit = 0.3 * slope + intercept
    curve = profit_curve(benefit, {"model": score}, shares=np.arange(n + 1) / n)
    mp, share = mpc_score(y, score, clv=value, accept_rate=0.3, incentive_cost=4,
                          contact_cost=2)
    best = curve["net_benefit"].idxmax()
    assert mp == pytest.approx(curve["net_benefit"].max() / n, rel=1e-12)
    assert share == pytest.approx(curve.loc[best, "share_targeted"])


def test_plan_by_ranking():
    action = plan_by_ranking([0.1, 0.9, 0.5, 0.7, 0.3], push=1, pull=2,
                             eligible=[True, False, True, True, True])
    assert list(action) == ["none", "none", "pull", "push", "pull"]
    # one str object per label, shared by the rows (memory at a million customers)
    assert action.dtype == object and len({id(a) for a in action}) == 3


def test_bad_outcomes_are_refused():
    with pytest.raises(ValueError, match="0 \\(stayed\\) and 1"):
        mpc_score([0, 2], [0.1, 0.2], clv=1, accept_rate=0.3, incentive_cost=0,
                  contact_cost=0)
    with pytest.raises(ValueError, match="offer"):
        targeting_profit_lines([0, 1], 1, incentive_cost=0, contact_cost=0, offer="maybe")


@pytest.mark.parametrize("offer", ["conditional", "unconditional"])
def test_measures_of_groups_equal_the_measures_by_customer(offer):
    # a chunked run sums each group of tied scores in DuckDB: the finish from those sums
    # gives ranking_measures' figures (ties in many groups, one group spanning the top decile)
    rng = np.random.default_rng(4)
    n = 2_000
    score = np.round(rng.random(n), 2)      # about 100 groups of tied scores
    score[:300] = 0.995                     # the top group holds the decile's boundary
    y = (rng.random(n) < 0.3).astype(int)
    clv = rng.gamma(2.0, 50.0, n)
    expected = ranking_measures(y, {"r": score}, clv=clv, incentive_cost=10, contact_cost=2,
                                accept_rate=0.3, offer=offer).set_index("measure")["value"]
    frame = pd.DataFrame({"score": score, "y": y, **dict(zip(("slope", "intercept"),
                          targeting_profit_lines(y, clv, incentive_cost=10, contact_cost=2,
                                                 offer=offer), strict=True))})
    groups = frame.groupby("score", sort=True).agg(
        customers=("y", "size"), churners=("y", "sum"), slope=("slope", "sum"),
        intercept=("intercept", "sum")).iloc[::-1]
    got = measures_of_groups(*(groups[c].to_numpy() for c in groups), accept_rate=0.3)
    assert list(got) == list(expected.index)
    for measure, value in got.items():
        assert value == pytest.approx(expected[measure], rel=REL, abs=1e-12), measure
    # lift and Gini are counts: the same figures bit for bit
    assert got["top_decile_lift"] == expected["top_decile_lift"]
    assert got["gini"] == expected["gini"]

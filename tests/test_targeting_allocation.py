"""Push/pull economics and the plan: net benefits computed by hand (both offers, the declared
churned), and every solver against brute force (all subsets, all assignments) on small random
instances; capacities and budgets are never exceeded and the greedy's gap bound holds."""
import functools
import itertools

import numpy as np
import pandas as pd
import pytest

from clvtools.targeting import Action, action_economics, allocate, net_benefit
from clvtools.targeting import knapsack as ks
from clvtools.targeting.allocation import EconomicsInputs, economics_arrays, solve, solve_economics

PUSH = Action("push", cost=20.0, incentive=10.0, uplift=0.2, reactivation=0.05)
PULL = Action("pull", cost=1.0, incentive=5.0, uplift=0.05, reactivation=0.01)


def _by_hand():
    return pd.DataFrame({"churn_probability": [0.4, np.nan],
                         "preventable_revenue": [100.0, 0.0],
                         "lapsed_revenue": [50.0, 200.0], "cell": ["protect", "churned"]},
                        index=["live", "gone"])


def test_net_benefit_conditional_by_hand():
    nb = net_benefit(_by_hand(), PUSH, margin=2.0, offer="conditional")
    # live: saved = 0.2*100 + 0.05*50 = 22.5; P(stay) = 1 - 0.4*(1 - 0.2) = 0.68
    #       net = 2*22.5 - 20 - 10*0.68 = 18.2
    # churned: saved = 0.05*200 = 10; incentive paid with probability w = 0.05
    #       net = 2*10 - 20 - 10*0.05 = -0.5
    assert nb.name == "net_benefit_push"
    np.testing.assert_allclose(nb.to_numpy(), [18.2, -0.5], rtol=1e-12)


def test_net_benefit_unconditional_by_hand():
    eco = action_economics(_by_hand(), PUSH, margin=2.0, offer="unconditional")
    # live: 2*22.5 - 20 - 10 = 15; churned: 2*10 - 20 - 10 = -10
    np.testing.assert_allclose(eco["net_benefit"], [15.0, -10.0], rtol=1e-12)
    np.testing.assert_allclose(eco["saved_revenue"], [22.5, 10.0], rtol=1e-12)
    np.testing.assert_allclose(eco["expected_cost"], [30.0, 30.0], rtol=1e-12)


def test_uplift_by_cell_and_per_customer():
    df = _by_hand()
    by_cell = Action("push", 0.0, 0.0, {"protect": 0.5}, 0.0)
    per_customer = Action("push", 0.0, 0.0, pd.Series({"gone": 0.9, "live": 0.5}), 0.0)
    np.testing.assert_allclose(net_benefit(df, by_cell), [50.0, 0.0])
    np.testing.assert_allclose(net_benefit(df, per_customer), [50.0, 0.0])
    with pytest.raises(ValueError, match="no value for"):
        net_benefit(df.assign(cell="monitor"), by_cell)
    with pytest.raises(ValueError, match="fraction"):
        net_benefit(df, Action("push", 0.0, 0.0, 1.5, 0.0))
    with pytest.raises(ValueError, match="offer"):
        net_benefit(df, PUSH, offer="sometimes")


def _instance(seed: int, n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    p[rng.uniform(size=n) < 0.2] = np.nan
    return pd.DataFrame({"churn_probability": p,
                         "preventable_revenue": np.where(np.isnan(p), 0.0,
                                                         rng.gamma(1.0, 150.0, n)),
                         "lapsed_revenue": rng.gamma(1.0, 150.0, n)})


def _options(df, contactable=None):
    """(n, 3) net benefit of none / pull / push and (n, 3) cost; -inf where not allowed."""
    nb = np.column_stack([np.zeros(len(df)), net_benefit(df, PULL), net_benefit(df, PUSH)])
    cost = np.column_stack([np.zeros(len(df)),
                            action_economics(df, PULL)["expected_cost"],
                            action_economics(df, PUSH)["expected_cost"]])
    allowed = nb > 0
    allowed[:, 0] = True
    if contactable is not None:
        allowed[~np.asarray(contactable), 1:] = False
    return np.where(allowed, nb, -np.inf), cost


@functools.cache
def _grid(n: int) -> np.ndarray:
    """Every assignment of none (0), pull (1), push (2) to n customers, shape (3**n, n)."""
    return np.array(list(itertools.product(range(3), repeat=n)))


def _brute(df, *, capacity=None, push_budget=None, total_budget=None, contactable=None):
    """Best total net benefit over all 3^n assignments that respect the limit."""
    nb, cost = _options(df, contactable)
    n = len(df)
    grid = _grid(n)
    rows = np.arange(n)
    value = nb[rows, grid].sum(axis=1)
    ok = np.isfinite(value)
    if capacity is not None:
        ok &= (grid == 2).sum(axis=1) <= capacity
    if push_budget is not None:
        ok &= np.where(grid == 2, cost[rows, grid], 0.0).sum(axis=1) <= push_budget + 1e-9
    if total_budget is not None:
        ok &= cost[rows, grid].sum(axis=1) <= total_budget + 1e-9
    return value[ok].max()


def _check_plan(df, alloc, *, capacity=None, push_budget=None, total_budget=None,
                contactable=None):
    plan = alloc.plan
    assert (plan["expected_net_benefit"] >= 0).all()                 # never a loss
    assert (plan.loc[plan["action"] != "none", "expected_net_benefit"] > 0).all()
    push = plan["action"] == "push"
    if capacity is not None:
        assert push.sum() <= capacity
    if push_budget is not None:
        assert plan.loc[push, "expected_cost"].sum() <= push_budget * (1 + 1e-12) + 1e-9
    if total_budget is not None:
        assert plan["expected_cost"].sum() <= total_budget * (1 + 1e-12) + 1e-9
    if contactable is not None:
        assert (plan.loc[~np.asarray(contactable), "action"] == "none").all()
    assert alloc.summary["expected_net_benefit"] == pytest.approx(
        plan["expected_net_benefit"].sum())


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_capacity_matches_brute_force(seed):
    df = _instance(seed)
    contactable = np.random.default_rng(seed).uniform(size=len(df)) > 0.15
    for capacity in (0, 1, 3, 10):
        alloc = allocate(df, PUSH, PULL, capacity=capacity, contactable=contactable)
        _check_plan(df, alloc, capacity=capacity, contactable=contactable)
        assert alloc.summary["expected_net_benefit"] == pytest.approx(
            _brute(df, capacity=capacity, contactable=contactable), rel=1e-9, abs=1e-9)
        assert alloc.summary["not_contactable"] == int((~contactable).sum())


def _budgets(df):
    _, cost = _options(df)
    return [0.0, float(np.median(cost[:, 2])), float(cost[:, 2].sum() / 3),
            float(cost[:, 1:].sum() / 4)]


@pytest.mark.parametrize("constraint", ["push_budget", "total_budget"])
@pytest.mark.parametrize("seed", SEEDS)
def test_budget_milp_matches_brute_force(seed, constraint):
    df = _instance(seed)
    for budget in _budgets(df):
        alloc = allocate(df, PUSH, PULL, **{constraint: budget})
        _check_plan(df, alloc, **{constraint: budget})
        assert alloc.summary["solver"] in ("milp", "all_fit")
        assert alloc.summary["expected_net_benefit"] == pytest.approx(
            _brute(df, **{constraint: budget}), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("limit", ["push_budget", "total_budget"])
@pytest.mark.parametrize("seed", SEEDS)
def test_greedy_is_feasible_and_within_its_bound(seed, limit, monkeypatch):
    monkeypatch.setattr(ks, "EXACT_MAX_CUSTOMERS", 0)        # force the greedy LP relaxation
    df = _instance(seed)
    nb, _ = _options(df)
    largest_step = np.nanmax(np.where(np.isfinite(nb), nb, np.nan))
    solvers = set()
    for budget in _budgets(df):
        alloc = allocate(df, PUSH, PULL, **{limit: budget})
        _check_plan(df, alloc, **{limit: budget})
        s = alloc.summary
        best = _brute(df, **{limit: budget})
        assert s["expected_net_benefit"] <= best + 1e-9
        assert s["bound"] >= best - 1e-9                      # the LP bound is a bound
        assert s["gap"] == pytest.approx(s["bound"] - s["expected_net_benefit"], abs=1e-9)
        assert 0 <= s["gap"] <= largest_step + 1e-9           # one fractional customer
        solvers.add(s["solver"])
    assert "greedy_lp" in solvers


def test_priority_rank_push_first_then_pull_by_benefit():
    df = _instance(3, n=200)
    plan = allocate(df, PUSH, PULL, capacity=20).plan
    ranked = plan.dropna(subset=["priority_rank"]).sort_values("priority_rank")
    assert ranked["priority_rank"].tolist() == list(range(1, len(ranked) + 1))
    n_push = (ranked["action"] == "push").sum()
    assert (ranked["action"].iloc[:n_push] == "push").all()
    assert (ranked["action"].iloc[n_push:] == "pull").all()
    for action in ("push", "pull"):
        b = ranked.loc[ranked["action"] == action, "expected_net_benefit"]
        assert b.is_monotonic_decreasing
    assert plan.loc[plan["action"] == "none", "priority_rank"].isna().all()


def test_unconstrained_takes_each_customers_best_action():
    df = _instance(5, n=300)
    plan = allocate(df, PUSH, PULL).plan
    best = np.maximum(np.maximum(plan["net_benefit_push"], plan["net_benefit_pull"]), 0.0)
    np.testing.assert_allclose(plan["expected_net_benefit"], best)


def test_only_one_limit_at_a_time():
    with pytest.raises(ValueError, match="at most one"):
        allocate(_instance(0), PUSH, PULL, capacity=3, push_budget=10.0)


@pytest.mark.parametrize("limit", [float("nan"), -1.0])
def test_a_limit_that_is_not_a_number_or_negative_is_refused(limit):
    """NaN compares false with everything: without the check a NaN budget took every
    customer in one engine and none in another."""
    from clvtools.config import Settings

    for name in ("capacity", "push_budget", "total_budget"):
        with pytest.raises(ValueError, match="zero or more"):
            allocate(_instance(0), PUSH, PULL, **{name: limit})
    for name in ("push_budget", "total_budget", "push_cost"):
        with pytest.raises(ValueError, match="must be zero or more"):
            Settings(**{name: limit})


@pytest.mark.parametrize("limit", [{}, {"capacity": 3}, {"push_budget": 40.0},
                                   {"total_budget": 60.0}])
def test_solve_is_the_plan_without_its_table(limit):
    """What the sensitivity's scenarios read (solve, totals, the economics as arrays) is the
    plan allocate returns: the same choice per customer and the same summary figures."""
    df = _instance(3, n=40)
    contactable = np.arange(40) % 7 != 0
    plan = allocate(df, PUSH, PULL, contactable=contactable, **limit)
    solution = solve(df, PUSH, PULL, contactable=contactable, **limit)
    codes = np.array(["none", "pull", "push"], dtype=object)[solution.choice]
    np.testing.assert_array_equal(codes, plan.plan["action"].to_numpy())
    totals = solution.totals()
    assert totals == {k: plan.summary[k] for k in totals}
    assert solution.not_contactable == plan.summary["not_contactable"] == 6
    eco = action_economics(df, PUSH, margin=1.5)
    for array, column in zip(economics_arrays(df, PUSH, margin=1.5), eco.columns, strict=True):
        np.testing.assert_array_equal(array, eco[column].to_numpy())


@pytest.mark.parametrize("limit", [{}, {"capacity": 3}, {"push_budget": 40.0},
                                   {"total_budget": 60.0}])
def test_solve_economics_on_a_subset_is_solve_on_those_rows(limit):
    """The sensitivity prices each scenario once over the base and solves it on the
    candidates' rows (EconomicsInputs.subset, solve_economics): the same economics, choice
    and totals as solve on a table of those rows."""
    df = _instance(5, n=40)
    rows = np.arange(40) % 3 != 1
    inputs = EconomicsInputs.of(df).subset(rows)
    pair = [inputs.economics(a.uplift_of(df)[rows], a.reactivation, a, margin=1.5)
            for a in (PUSH, PULL)]
    for got, want in zip(pair[0], economics_arrays(df[rows], PUSH, margin=1.5), strict=True):
        np.testing.assert_array_equal(got, want)
    solution = solve_economics(*pair, **limit)
    expected = solve(df[rows], PUSH, PULL, margin=1.5, **limit)
    np.testing.assert_array_equal(solution.choice, expected.choice)
    assert solution.totals() == expected.totals()
    assert solution.taken() is solution.taken()     # computed once, shared by the totals
    with pytest.raises(ValueError, match="at most one"):
        solve_economics(*pair, capacity=1, push_budget=1.0)
    with pytest.raises(ValueError, match="offer"):
        inputs.economics(np.zeros(rows.sum()), 0.0, PUSH, offer="sometimes")


def _economics_by_the_formulas(inputs: EconomicsInputs, uplift, reactivation, action, margin,
                               offer):
    """The economics as the formulas read, one temporary per operation (the reference of the
    in-place computation)."""
    churned, p = inputs.churned, inputs.churn_probability
    u = np.where(churned, 0.0, uplift)
    saved = u * inputs.preventable_revenue + reactivation * inputs.lapsed_revenue
    pays = (np.where(churned, reactivation, 1.0 - np.where(churned, 0.0, p) * (1.0 - u))
            if offer == "conditional" else np.ones_like(p))
    cost = action.cost + action.incentive * pays
    return saved, cost, margin * saved - cost


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("offer", ["conditional", "unconditional"])
def test_economics_in_place_are_the_formulas_bit_for_bit(seed, offer):
    rng = np.random.default_rng(seed)
    n = 300
    p = np.where(rng.random(n) < 0.3, np.nan, rng.random(n))
    customers = pd.DataFrame({"churn_probability": p,
                              "preventable_revenue": rng.lognormal(3, 2, n),
                              "lapsed_revenue": rng.lognormal(3, 2, n)})
    inputs = EconomicsInputs.of(customers)
    action = Action("push", rng.random() * 5, rng.random() * 20, 0.0, 0.0)
    # the same inputs priced again (the probability of the live cached between calls)
    for _ in range(3):
        uplift, reactivation, margin = rng.random(n), rng.random(), rng.random() + 0.5
        got = inputs.economics(uplift, reactivation, action, margin=margin, offer=offer)
        expected = _economics_by_the_formulas(inputs, uplift, reactivation, action, margin,
                                              offer)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)
            assert np.signbit(g).tolist() == np.signbit(e).tolist()
    with pytest.raises(ValueError, match="offer"):
        inputs.economics(uplift, reactivation, action, offer="sometimes")

"""The plan's sensitivity table: factor 1 is the plan as stated, every scenario is the plan
that allocate() gives under its own assumptions, limits hold, and the overlap is counted."""
import numpy as np
import pandas as pd
import pytest

from clvtools.targeting import Action, allocate
from clvtools.targeting.sensitivity import FACTORS, plan_sensitivity, scaled

PUSH = Action("push", cost=20.0, incentive=10.0, uplift={"protect": 0.3, "maintain": 0.2,
                                                        "retain_cheaply": 0.1, "monitor": 0.1},
              reactivation=0.05)
PULL = Action("pull", cost=1.0, incentive=5.0, uplift=0.05, reactivation=0.01)


def _customers(n=400, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.9, n)
    p[rng.uniform(size=n) < 0.15] = np.nan
    cells = rng.choice(["protect", "maintain", "retain_cheaply", "monitor"], n)
    return pd.DataFrame({
        "churn_probability": p,
        "preventable_revenue": np.where(np.isnan(p), 0.0, rng.gamma(0.8, 200.0, n)),
        "lapsed_revenue": rng.gamma(0.8, 150.0, n),
        "cell": np.where(np.isnan(p), "churned", cells)})


def test_scaled_action_caps_at_one_and_resolves_cells():
    df = _customers()
    doubled = scaled(PUSH, df, 4.0)
    u = doubled.uplift_of(df)
    np.testing.assert_allclose(u, np.minimum(PUSH.uplift_of(df) * 4.0, 1.0))
    assert doubled.reactivation == pytest.approx(0.2)
    assert scaled(PUSH, df, 100.0).reactivation == 1.0


@pytest.mark.parametrize("limit", [{}, {"capacity": 25}, {"push_budget": 600.0},
                                   {"total_budget": 900.0}])
def test_each_scenario_is_the_plan_under_its_assumptions(limit):
    df = _customers()
    base = allocate(df, PUSH, PULL, **limit)
    table = plan_sensitivity(df, PUSH, PULL, base, **limit)
    assert list(table["factor"]) == [*FACTORS, *FACTORS]
    uplift_rows = table[table["scenario"] == "uplift_and_reactivation"]
    limit_rows = table[table["scenario"] != "uplift_and_reactivation"]
    assert len(uplift_rows) == len(limit_rows) == len(FACTORS)
    # factor 1 is the stated plan, in both halves
    for rows in (uplift_rows, limit_rows):
        one = rows[rows["factor"] == 1].iloc[0]
        assert one["push"] == base.summary["push"]
        assert one["expected_net_benefit"] == pytest.approx(base.summary["expected_net_benefit"])
        assert one["push_kept"] == 1.0 and one["push_added"] == 0
    # every other row is allocate() again with that scenario's assumptions
    for _, row in uplift_rows.iterrows():
        again = allocate(df, scaled(PUSH, df, row["factor"]), scaled(PULL, df, row["factor"]),
                         **limit)
        assert row["push"] == again.summary["push"]
        assert row["expected_net_benefit"] == pytest.approx(
            again.summary["expected_net_benefit"], rel=1e-12)
    name = next(iter(limit), "capacity")
    for _, row in limit_rows.iterrows():
        plan = allocate(df, PUSH, PULL, **{name: row["limit"]})
        assert row["push"] == plan.summary["push"]
        pushed = plan.plan["action"] == "push"
        if name == "capacity":
            assert pushed.sum() <= row["limit"]
        elif name == "push_budget":
            assert plan.plan.loc[pushed, "expected_cost"].sum() <= row["limit"] + 1e-9
        else:
            assert plan.plan["expected_cost"].sum() <= row["limit"] + 1e-9
    assert table["push_kept"].between(0, 1).all()


def test_larger_uplift_never_loses_value_without_a_limit():
    # with an unconditional offer each action's cost is fixed, so a larger uplift raises every
    # action's net benefit; with no limit each customer takes their best action, and the
    # plan's net benefit can only grow
    df = _customers()
    terms = dict(offer="unconditional")
    table = plan_sensitivity(df, PUSH, PULL, allocate(df, PUSH, PULL, **terms), **terms)
    rows = table[table["scenario"] == "uplift_and_reactivation"]
    assert rows["expected_net_benefit"].is_monotonic_increasing
    assert rows["expected_net_benefit"].iloc[-1] > rows["expected_net_benefit"].iloc[0]
    # the limit rows cap push at shares of the plan's push count
    capped = table[table["scenario"] == "push_capacity"]
    pushed = int(rows.loc[rows["factor"] == 1, "push"].iloc[0])
    assert list(capped["limit"]) == [int(np.floor(pushed * f)) for f in FACTORS]
    assert (capped["push"] <= capped["limit"]).all()


def test_actions_sharing_a_name_keep_their_own_uplifts():
    """The scenarios price each action with its own uplift, whatever the actions are called
    (a review found the pull uplift priced for both when the names were equal)."""
    rng = np.random.default_rng(7)
    n = 200
    customers = pd.DataFrame({
        "churn_probability": rng.uniform(0.05, 0.9, n),
        "preventable_revenue": rng.gamma(2.0, 300.0, n),
        "lapsed_revenue": np.zeros(n),
        "cell": "high_value_high_risk"})
    figures = []
    for names in (("push", "pull"), ("offer", "offer")):
        push = Action(names[0], cost=10.0, incentive=0.0, uplift=0.3)
        pull = Action(names[1], cost=1.0, incentive=0.0, uplift=0.02)
        base = allocate(customers, push, pull, capacity=30)
        figures.append(plan_sensitivity(customers, push, pull, base, capacity=30))
    pd.testing.assert_frame_equal(figures[0], figures[1])
    assert (figures[1].loc[figures[1]["factor"] == 0.5, "push"] > 0).all()

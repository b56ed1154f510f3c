"""The targeting evaluated out of time in the main job (clvtools.pipeline.evaluation).

The generated base is followed for one horizon after its observation end (the generator's
follow-up: the same customers' processes carried on) and the run is given the log with that
follow-up, so that the evaluation date (one horizon before the run's end) is the base's own
observation end and "what followed" is the simulated truth.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze, demo
from clvtools.config import Settings
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.evaluation import RANKINGS

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("pipeline_evaluation")

HORIZON_WEEKS = 26
MEASURES = {"mp", "mp_share_targeted", "empc", "empc_share_targeted", "top_decile_lift", "gini",
            "realised_net_benefit", "expected_net_benefit", "customers_pushed",
            "customers_pulled", "churners_pushed"}


@pytest.fixture(scope="module")
def followed():
    base = generate_customer_base(4_000, seed=11, follow_up=7 * HORIZON_WEEKS)
    log = pd.concat([base.transactions, base.future_transactions], ignore_index=True)
    end = base.observation_end + dt.timedelta(days=7 * HORIZON_WEEKS)
    # push cheap enough that the plan pushes a few hundred customers (the default push costs
    # more than most customers of a generated base are worth over half a year)
    settings = Settings(horizon=HORIZON_WEEKS, observation_end=end, push_cost=2.0,
                        push_incentive=5.0, push_uplift=0.3, push_capacity=400)
    results = analyze(log, customers=base.customers.drop(columns="acquisition_date"),
                      config=settings)
    return base, results.analysis


def _measures(analysis) -> pd.Series:
    table = analysis.evaluation.measures
    return table.set_index(["ranking", "measure"])["value"]


def test_the_evaluation_date_is_the_holdout_start(followed):
    base, analysis = followed
    table = analysis.evaluation.measures
    assert analysis.timeline.holdout_start == base.observation_end
    assert (table["evaluation_date"] == base.observation_end).all()
    assert (table["outcome_end"] == analysis.timeline.observation_end).all()
    for ranking in RANKINGS:
        assert set(table.loc[table["ranking"] == ranking, "measure"]) == MEASURES
    # every live customer at the evaluation date is scored, and only those
    customers = analysis.evaluation.customers
    live = base.customer_truth.set_index("customer_id")
    assert len(customers) == _measures(analysis)[("all", "customers")]
    assert customers["customer_id"].is_unique
    assert set(customers["customer_id"]) <= set(live.index.astype(str))


def test_what_followed_is_the_follow_up(followed):
    base, analysis = followed
    customers = analysis.evaluation.customers.set_index("customer_id")
    truth = base.future_transactions.groupby(base.future_transactions["customer_id"].astype(str))[
        "amount"].sum()
    np.testing.assert_allclose(customers["realised_revenue"],
                               truth.reindex(customers.index, fill_value=0.0), rtol=1e-9)
    # churned: from the last purchase by the evaluation date, the first gap of churn_after
    # days or more between purchases (or to the end of time) starts by the window's end
    # minus churn_after (a churner may come back after being declared)
    churn_days = dt.timedelta(days=analysis.timeline.churn_after_days)
    start, end = analysis.timeline.holdout_start, analysis.timeline.observation_end
    dates = pd.concat([base.transactions, base.future_transactions])
    dates = dates.assign(customer_id=dates["customer_id"].astype(str),
                         date=pd.to_datetime(dates["date"]).dt.date)
    by_customer = dates.groupby("customer_id")["date"].apply(lambda d: sorted(set(d)))

    def declared(days):
        days = [d for d in days if d >= max(x for x in days if x <= start)]
        for this, following in zip(days, [*days[1:], dt.date.max], strict=True):
            if following == dt.date.max or following - this >= churn_days:
                return int(this + churn_days <= end)
        return 0

    expected = by_customer.reindex(customers.index).map(declared)
    assert (customers["churned"] == expected).all()
    # value lost only by churners, and never negative
    assert (customers.loc[customers["churned"] == 0, "value_lost"] == 0).all()
    assert (customers["value_lost"] >= 0).all()


def test_the_model_beats_random_on_realised_profit(followed):
    _, analysis = followed
    m = _measures(analysis)
    # a check that could fail: the plan chosen at the earlier date against a random plan of
    # the same size, on what the simulated customers then did
    assert m[("model", "realised_net_benefit")] > m[("random", "realised_net_benefit")]
    assert m[("model", "customers_pushed")] > 100
    # the churn scores rank the churners that followed
    assert m[("churn_probability", "gini")] > 0.3
    assert m[("churn_probability", "top_decile_lift")] > 1.3
    assert abs(m[("random", "gini")]) < 0.1
    # the curves end where everybody is pushed, whatever the ranking
    curve = analysis.evaluation.profit_curve
    ends = curve.loc[curve["share_targeted"] == 1.0, "net_benefit"]
    np.testing.assert_allclose(ends, ends.iloc[0], rtol=1e-9)


def test_realised_net_benefit_splits_the_value_lost_as_the_plan_split_it(followed):
    """A churner's lost value is credited as the plan's economics credit the revenue at risk:
    uplift on the preventable share, reactivation on the lapsed share (by hand, push,
    conditional offer)."""
    _, analysis = followed
    s = analysis.settings
    c = analysis.evaluation.customers
    share = np.where(c["revenue_at_risk"] > 0,
                     c["preventable_revenue"] / c["revenue_at_risk"].where(
                         c["revenue_at_risk"] > 0, 1.0), 1.0)
    u, w = s.push_uplift, s.push_reactivation
    churner = c["churned"] == 1
    by_hand = np.where(churner,
                       s.margin * (u * share + w * (1 - share)) * c["value_lost"]
                       - s.push_cost - s.push_incentive * u,
                       -s.push_cost - s.push_incentive)
    np.testing.assert_allclose(c["realised_net_benefit_push"], by_hand, rtol=1e-9, atol=1e-9)
    # some churners were partly lapsed in the plan's eyes: the split matters
    assert ((share < 0.99) & churner).sum() > 10


def test_a_short_history_has_no_evaluation():
    base = generate_customer_base(400, seed=3, start="2024-06-01", observation_end="2024-12-31")
    analysis = analyze(base.transactions, config=Settings(horizon=26)).analysis
    assert analysis.evaluation.measures is None
    assert "No targeting evaluation" in analysis.evaluation.notes[0]


def test_the_demo_writes_the_evaluation(tmp_path):
    out = demo(1_500, seed=4).write(tmp_path / "out")
    table = pd.read_csv(out / "targeting_evaluation.csv")
    curve = pd.read_csv(out / "profit_curve.csv")
    assert set(table["ranking"]) == {*RANKINGS, "all"}
    assert set(curve["ranking"]) == set(RANKINGS)
    assert len(curve) == 101 * len(RANKINGS)


def test_survival_by_matrix_cell_out_of_time(followed):
    """The cells drawn at the evaluation date, and the declarations that followed: the
    high-risk cells lose their customers faster (a check of the risk axis that could fail),
    the log-rank test tells the cells apart, and the curves are stacked with the risk step's
    in survival_curves.csv."""
    _, analysis = followed
    by_cell = analysis.evaluation.survival_by_cell
    curves = by_cell["survival_curves"]
    assert set(curves["by"]) == {"matrix cell"}
    customers = analysis.evaluation.customers
    medians = by_cell["median_time_to_churn"].set_index("segment")
    for cell in set(customers["cell"]):
        assert medians.loc[cell, "n"] == (customers["cell"] == cell).sum()
    # share still not declared churned at the horizon, by cell: high risk below low risk
    at = analysis.settings.horizon
    alive = {cell: float(part.loc[part["time"] <= at, "survival"].iloc[-1])
             for cell, part in curves.groupby("segment")}
    assert alive["protect"] < alive["maintain"] and alive["retain_cheaply"] < alive["monitor"]
    tests = by_cell["logrank_tests"]
    overall = tests[tests["segment_a"] == "all segments"].iloc[0]
    assert overall["p_value"] < 0.01
    stacked = analysis.survival_tables()["survival_curves"]
    assert {"all", "matrix cell"} <= set(stacked["by"])

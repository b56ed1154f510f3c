"""The forecast's churner intervals against a known Cox truth (slow).

Each replication fits the churn model on a landmark table simulated from known hazard ratios
(clvtools.survival.simulate_landmark_table: 2,000 customers), scores 1,500 other customers
drawn from the same truth, and asks whether the interval of the customers declared churned
within the horizon (forecast.csv's churners, all months) covers how many of them the truth
then declared. The interval carries the customers' Bernoulli randomness, the coefficients'
uncertainty and the Breslow baseline's; without the baseline's it covered 54 of 60 at 95 %
and 39 of 60 at 80 %. Seeds fixed in advance.
"""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from clvtools.forecast import normal_bounds
from clvtools.pipeline.churner_forecast import churner_totals
from clvtools.pipeline.forecasting import SEGMENTS
from clvtools.pipeline.risk import COX, RiskResult
from clvtools.survival import ChurnModel, simulate_landmark_table
from clvtools.survival.io import load_model

HORIZON = 26.0
MONTH_ENDS = np.array([4.3, 8.7, 13.0, 17.4, 21.7, 26.0])
REPLICATIONS = 100


def _interval(model, seed):
    """(realised churners, their forecast's 95 % and 80 % bounds) for one scoring sample."""
    future = simulate_landmark_table(1500, seed=seed, follow_up=HORIZON)
    realised = int(((future["event"] == 1) & (future["duration"] <= HORIZON)).sum())
    scoring = future.drop(columns=["duration", "event"])
    scoring.index = pd.Index(scoring["customer_id"].astype(str), name="customer_id")
    p = model.churn_probability(scoring, HORIZON, source="scoring table").to_numpy(float)
    customers = pd.DataFrame({"cell": "monitor", "churn_model": COX, "churn_probability": p},
                             index=scoring.index)
    risk = RiskResult(None, None, model, customers[["churn_probability", "churn_model"]], {},
                      [], scoring)
    codes = np.full(len(customers), SEGMENTS.index("monitor"), dtype=np.intp)
    mean, var, param = churner_totals(risk, customers, codes, MONTH_ENDS,
                                      types.SimpleNamespace(horizon=HORIZON), [], len(SEGMENTS))
    bounds = normal_bounds(mean[-1:, -1:], (var + param)[-1:, -1:])
    return realised, {k: float(v[0, 0]) for k, v in bounds.items()}


@pytest.mark.slow
def test_churner_intervals_cover_the_realised_churners():
    covered = {"95": 0, "80": 0}
    for r in range(REPLICATIONS):
        model = ChurnModel(time_unit="week").fit(simulate_landmark_table(2000, seed=r,
                                                                         follow_up=HORIZON))
        realised, bounds = _interval(model, 10_000 + r)
        for level in covered:
            covered[level] += bounds[f"lo{level}"] <= realised <= bounds[f"hi{level}"]
    print(f"\nchurner coverage over {REPLICATIONS}: 95 % {covered['95']}, 80 % {covered['80']}")
    assert covered["95"] >= 0.90 * REPLICATIONS, covered
    assert covered["80"] >= 0.70 * REPLICATIONS, covered


def test_the_baseline_variance_is_kept_in_the_model_file(tmp_path):
    model = ChurnModel(time_unit="week").fit(simulate_landmark_table(800, seed=1))
    (base,) = model.baselines_.values()
    # Breslow's variance grows with time, and is about H_0^2 / events at the end
    assert np.all(np.diff(base["cumhaz_var"]) >= 0) and base["cumhaz_var"][-1] > 0
    model.save_model(tmp_path / "churn.json")
    again = load_model(tmp_path / "churn.json")
    np.testing.assert_allclose(next(iter(again.baselines_.values()))["cumhaz_var"],
                               base["cumhaz_var"], rtol=1e-12)
    # a file written before the variance was kept: none added, the rest as before
    del again.baselines_[next(iter(again.baselines_))]["cumhaz_var"]
    _, hazard, variance = again.baseline_variance(
        simulate_landmark_table(5, seed=2).drop(columns=["duration", "event"]), [10.0])
    assert hazard[0, 0] > 0 and variance[0, 0] == 0

"""Benchmark: the targeting evaluation on 1M customers.

Run: ``python benchmarks/bench_targeting_evaluation.py [--n 1000000] [--seed 0]``

Phases, each timed on its own (wall clock, best of ``--repeat``), then measured again under
``tracemalloc`` for the peak memory (numpy reports its buffers to it):
  1. orders: the four rankings sorted (stable), shared by the next two phases;
  2. measures: MP, EMPC (exact, upper convex hull), top-decile lift and Gini of four rankings;
  3. curve: the profit curve of four rankings (101 shares);
  4. step: the whole evaluation step after the data (clvtools.pipeline.evaluation): revenue
     at risk, the matrix and the plan at the earlier date, realised economics of push and
     pull, naive plans, measures and curve, from per-customer scores given as the value and
     risk steps leave them.
Not included: the data work the step reuses (the value model's holdout refit and the churn
validation, which the run does anyway) and the one it adds: a second landmark in the churn
validation's evaluation table (its rows and the structural BG/NBD at the holdout start).
Target (issue 15): under 2 s for the evaluation on 1M customers.
"""
from __future__ import annotations

import argparse
import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
from _common import machine_line, time_phase

from clvtools.config import Settings
from clvtools.pipeline.evaluation import evaluation_step
from clvtools.targeting.evaluation import profit_curve, ranking_measures, ranking_order


def holdout_frames(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The value step's ``holdout_customers`` and the risk step's ``churn_scores_at_holdout``
    for ``n`` live customers, shaped like the demo's (churn tied to the score)."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"C{i:08d}" for i in range(n)], name="customer_id")
    p = rng.beta(1.2, 2.0, n)
    churned = (rng.uniform(size=n) < p).astype(int)
    v = rng.gamma(0.8, 250.0, n)
    alive = rng.uniform(0.2, 1.0, n)
    holdout = pd.DataFrame({"p_alive": alive, "revenue_if_retained": v,
                            "expected_revenue": v * alive * (1 - 0.6 * p),
                            "realised_revenue": v * (1 - churned) * rng.uniform(0.5, 1.5, n)},
                           index=ids)
    scores = pd.DataFrame({"churn_probability": p, "churned": churned}, index=ids)
    return holdout, scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine_line(), flush=True)
    holdout, scores = holdout_frames(args.n, args.seed)
    y = scores["churned"].to_numpy()
    rng = np.random.default_rng(args.seed + 1)
    rankings = {"model": scores["churn_probability"].to_numpy() * holdout["revenue_if_retained"]
                .to_numpy(), "churn_probability": scores["churn_probability"].to_numpy(),
                "revenue_at_risk": holdout["revenue_if_retained"].to_numpy(),
                "random": rng.random(args.n)}
    value_lost = np.where(y == 1, holdout["revenue_if_retained"].to_numpy(), 0.0)
    benefit = np.where(y == 1, 0.2 * value_lost - 22.0, -30.0)
    settings = Settings(push_capacity=args.n // 50)
    end = dt.date(2024, 12, 31)
    timeline = SimpleNamespace(holdout_start=end - dt.timedelta(days=364), observation_end=end,
                               validation_training=end - dt.timedelta(days=855))
    value = SimpleNamespace(holdout={"holdout_customers": holdout})
    risk = SimpleNamespace(tables={"churn_scores_at_holdout": scores})
    inputs = SimpleNamespace(attributes=None)
    orders = {name: ranking_order(score) for name, score in rankings.items()}
    phases = {
        "orders": lambda: {name: ranking_order(score) for name, score in rankings.items()},
        "measures": lambda: ranking_measures(y, rankings, clv=value_lost, incentive_cost=10.0,
                                             contact_cost=20.0, accept_rate=0.2,
                                             orders=orders),
        "curve": lambda: profit_curve(benefit, rankings, y_true=y, orders=orders),
        "step": lambda: evaluation_step(value, risk, inputs, timeline, settings),
    }
    print(f"{args.n:,} customers live at the evaluation date, {int(y.sum()):,} churned after")
    for name, run in phases.items():
        best, peak, out = time_phase(run, args.repeat)
        line = f"{name:>9}: {best:6.2f} s, peak {peak:,.0f} MB"
        if name == "step":
            m = out.measures.set_index(["ranking", "measure"])["value"]
            line += "; realised net benefit " + ", ".join(
                f"{r} {m[(r, 'realised_net_benefit')]:,.0f}"
                for r in ("model", "churn_probability", "revenue_at_risk", "random"))
        print(line)


if __name__ == "__main__":
    main()

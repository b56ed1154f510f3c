"""Benchmark: the value-risk matrix and the push/pull allocation on 1M customers.

Run: ``python benchmarks/bench_targeting.py [--n 1000000] [--seed 0]``

Phases, each timed on its own (wall clock, best of ``--repeat``), then measured again under
``tracemalloc`` for the peak memory (numpy reports its buffers to it):
  1. the matrix: cells from quantiles over the live customers, per-cell totals, concentration;
  2. the allocation under a push capacity (exact, by sorting);
  3. under a push budget (0/1 knapsack: greedy LP relaxation at this size, gap stated);
  4. under a total budget (multiple-choice knapsack, greedy on the convex hulls, gap stated);
  5. the sensitivity table (sensitivity.csv) for each limit: eight more allocations.
Target (issue 14): matrix and allocation under a capacity or a budget under 3 s together.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import machine_line, time_phase

from clvtools.targeting import (
    Action,
    allocate,
    concentration,
    matrix_table,
    revenue_at_risk,
    value_risk_matrix,
)
from clvtools.targeting.sensitivity import plan_sensitivity

PUSH = Action("push", cost=20.0, incentive=10.0, uplift=0.2, reactivation=0.05)
PULL = Action("pull", cost=1.0, incentive=5.0, uplift=0.05, reactivation=0.01)


def customers(n: int, seed: int) -> pd.DataFrame:
    """A base shaped like the demo's: 20 % declared churned, gamma-distributed value."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 2.0, n)
    p[rng.uniform(size=n) < 0.2] = np.nan
    v = rng.gamma(0.8, 250.0, n)
    alive = rng.uniform(0.2, 1.0, n)
    e = v * alive * (1 - 0.6 * np.nan_to_num(p))
    df = pd.DataFrame({"churn_probability": p, "revenue_if_retained": v, "expected_revenue": e})
    return df.join(revenue_at_risk(alive, v, e).set_index(df.index))


def matrix_phase(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(cell=value_risk_matrix(df["revenue_if_retained"],
                                          df["churn_probability"])["cell"])
    matrix_table(df)
    concentration(df["expected_revenue"])
    return df


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine_line(), flush=True)
    df = matrix_phase(customers(args.n, args.seed))
    # limits scaled to the base: about 2 % pushed, budgets of the same order
    limits = {"capacity": {"capacity": args.n // 50},
              "push_budget": {"push_budget": 20.0 * args.n / 50},
              "total_budget": {"total_budget": 40.0 * args.n / 50}}
    phases = {"matrix": lambda: matrix_phase(df)}
    phases.update({name: (lambda kw=kw: allocate(df, PUSH, PULL, **kw))
                   for name, kw in limits.items()})
    plans = {name: allocate(df, PUSH, PULL, **kw) for name, kw in limits.items()}
    phases.update({f"sensitivity ({name})": (
        lambda kw=kw, name=name: plan_sensitivity(df, PUSH, PULL, plans[name], **kw))
        for name, kw in limits.items()})
    print(f"{args.n:,} customers, {int(df['churn_probability'].isna().sum()):,} declared churned")
    for name, run in phases.items():
        best, peak, out = time_phase(run, args.repeat)
        line = f"{name:>26}: {best:6.2f} s, peak {peak:,.0f} MB"
        if name in limits:
            s = out.summary
            line += (f"; push {s['push']:,}, pull {s['pull']:,}, solver {s['solver']}, "
                     f"net benefit {s['expected_net_benefit']:,.0f}, gap {s['gap']:,.2f} "
                     f"({s['gap'] / s['bound']:.1e} of the bound)")
        print(line)


if __name__ == "__main__":
    main()

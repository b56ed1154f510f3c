"""Benchmark: what the forecast with intervals adds to ``analyze`` on 1M customers, 12 months.

Run: ``python benchmarks/bench_forecast.py [--n 1000000] [--model bgnbd] [--repeat 3]
[--covariates] [--seasonal]`` (with ``--covariates``, three random attributes and the value
model fitted with them: nearly every customer's posterior is then distinct; with
``--seasonal``, the months spread by a seasonal index).

Each repeat runs in a fresh process (:func:`_common.run_isolated`). Set up first, untimed: an
RFM summary of ``--n`` customers simulated from the model (weeks, ages of 1 to 104 weeks),
Gamma-Gamma spend, the value models fitted and scored month by month over 12 calendar months
(the value step's own work, which the forecast reuses), random matrix cells, and a Cox model
(fitted on a 50,000-row simulated landmark table) with a 1M-row scoring table. Timed: the
forecast step's work on top of that, as :func:`clvtools.pipeline.forecasting.forecast_step`
does it, in two phases:

* ``money``: means, the customer-level variances of purchases and spend (quadrature on the
  distinct posteriors) and the delta method over the value and spend models' parameters on
  a stratified sample, summed by month and cell (:func:`money_totals`);
* ``churners``: each live customer's survival curve at the 12 month ends, the Bernoulli
  variances and the delta method over the Cox coefficients, then the table.

Reported: wall time of each phase (median of the repeats), and peak resident memory: the
child's VmHWM (set-up included) and the growth above the resident size at the start of the
forecast, sampled every 5 ms. Not included: the seasonal index (one DuckDB query over the log,
only with two years of history).
Target (issue 15): under 3 s for the forecast with intervals.
"""
from __future__ import annotations

import argparse
import statistics

from _common import machine_line, run_isolated

CHILD = """
import threading, time, types
import numpy as np, pandas as pd
from clvtools.btyd.simulate import simulate_{model}, simulate_gamma_gamma
from clvtools.pipeline.churner_forecast import churner_totals
from clvtools.pipeline.forecasting import SEGMENTS, Spread, _seasonal_levels, money_totals
from clvtools.forecast import monthly_forecast
from clvtools.pipeline.risk import RiskResult, COX
from clvtools.pipeline.value import ValueResult, fit_value_models, score_customers_by_month
from clvtools.survival import ChurnModel, simulate_landmark_table

n = {n}
rng = np.random.default_rng(0)
params = {params}
ages = rng.integers(7, 729, n) / 7
rfm = simulate_{model}(params, n, ages, seed=1)[["frequency", "recency", "T"]]
spend = simulate_gamma_gamma((6.0, 4.0, 25.0), rfm["frequency"].to_numpy(), seed=2)
rfm["monetary_value"] = np.where(rfm["frequency"] > 0, np.round(spend, 2), 0.0)
rfm.index = pd.Index([f"C{{i}}" for i in range(n)], name="customer_id")
covariates = None
if {covariates}:  # attributes as users have them: the posteriors are then nearly all distinct
    covariates = pd.DataFrame({{
        "channel": rng.choice(["online", "store", "referral"], n, p=[0.5, 0.35, 0.15]),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "plan": rng.choice(["basic", "premium"], n, p=[0.7, 0.3])}}, index=rfm.index)
models = fit_value_models(rfm, "{model}", covariates)
days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], float)
ends = np.cumsum(days) / 7
scores, months = score_customers_by_month(models, rfm, horizon=ends[-1], time_unit_days=7,
                                          discount_rate=0.1, period_ends=ends)
value = ValueResult(rfm, models, scores, {{}}, [], months=months)
codes = rng.integers(0, len(SEGMENTS), n).astype(np.intp)
cells = np.array(SEGMENTS, dtype=object)[codes]
saved_share = np.where(rng.random(n) < 0.05, 0.2, 0.0)
cox = ChurnModel(time_unit="week").fit(simulate_landmark_table(50_000, seed=3, follow_up=60.0))
scoring = simulate_landmark_table(n, seed=4).drop(columns=["duration", "event"])
live = cells != "churned"
scoring = scoring.iloc[:int(live.sum())].set_axis(pd.Index(rfm.index[live], name="customer_id"))
customers = pd.DataFrame({{"cell": cells, "churn_model": np.where(live, COX, "declared_churned"),
                          "churn_probability": np.where(live, 0.3, np.nan)}}, index=rfm.index)
risk = RiskResult(None, None, cox, customers[["churn_probability", "churn_model"]], {{}}, [],
                  scoring)
horizon = types.SimpleNamespace(horizon=float(ends[-1]))  # the settings' horizon
month_table = pd.DataFrame({{"month": [f"2025-{{m:02d}}" for m in range(1, 13)],
                            "days": days.astype(int), "partial": False}})

with open("/proc/self/statm") as f:
    page = 4096
start_rss = peak = 0
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
stop = threading.Event()
def watch():
    global peak
    while not stop.is_set():
        peak = max(peak, rss())
        time.sleep(0.005)
start_rss = peak = rss()
thread = threading.Thread(target=watch, daemon=True)
thread.start()
t0 = time.perf_counter()
spread = None
if {seasonal}:  # as forecast_step spreads the months by an observed seasonal index
    weights = 1.0 + 0.2 * np.sin(np.arange(12) / 12 * 2 * np.pi)
    spread = Spread(weights, _seasonal_levels(months.expected_purchases, weights),
                    _seasonal_levels(months.purchases_if_retained, weights))
totals = money_totals(value, ends, codes, saved_share=saved_share, spread=spread)
t1 = time.perf_counter()
mean, var, param = churner_totals(risk, customers, codes, ends, horizon, [], len(SEGMENTS))
totals["expected_churners"] = (mean, var + param)
table = monthly_forecast(totals, np.append(np.bincount(codes, minlength=len(SEGMENTS)), n),
                         SEGMENTS, month_table)
t2 = time.perf_counter()
stop.set()
thread.join()
result["money_seconds"] = t1 - t0
result["churners_seconds"] = t2 - t1
result["seconds"] = t2 - t0
result["growth_mb"] = (peak - start_rss) / 1e6
result["rows"] = len(table)
"""

PARAMS = {"bgnbd": (0.6, 8.0, 0.8, 4.0), "pareto_nbd": (0.55, 10.0, 0.6, 15.0)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--model", choices=["bgnbd", "pnbd"], default="bgnbd")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seasonal", action="store_true",
                        help="the months spread by a seasonal index, as with two years of "
                             "history (the index's own query is not timed)")
    parser.add_argument("--covariates", action="store_true",
                        help="customers with attributes (channel, region, plan) and the "
                             "value model fitted with them")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    sim = "bgnbd" if args.model == "bgnbd" else "pareto_nbd"
    code = CHILD.replace("simulate_{model}", f"simulate_{sim}").format(
        n=args.n, model=args.model, params=PARAMS[sim], covariates=args.covariates,
        seasonal=args.seasonal)
    runs = [run_isolated(code) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("seconds", "money_seconds", "churners_seconds")}
    with_covariates = (", with attributes" if args.covariates else "") + (
        ", seasonal spread" if args.seasonal else "")
    print(f"{args.n:,} customers, {args.model}{with_covariates}, 12 calendar months, "
          f"{runs[0]['rows']} rows")
    each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    print(f"forecast with intervals: {med['seconds']:.2f} s (median of {args.repeat}: {each}); "
          f"money {med['money_seconds']:.2f} s, churners {med['churners_seconds']:.2f} s")
    print(f"memory: growth during the forecast {max(r['growth_mb'] for r in runs):,.0f} MB; "
          f"child's peak (set-up included) {max(r['peak_rss_mb'] for r in runs):,.0f} MB")


if __name__ == "__main__":
    main()

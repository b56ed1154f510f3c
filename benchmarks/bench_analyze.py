"""Benchmark: the main job (``analyze`` and writing every output) on a million customers, step
by step, against a hand-made lifetimes + lifelines script on the same file (issue 18).

Run: ``python benchmarks/bench_analyze.py [--customers 1000000] [--ids int|str]
[--attributes both|without|with] [--peer | --no-peer] [--data DIR] [--out DIR]``

Data, generated once into ``--data`` (default ``/tmp/clvtools_bench``) and reused: the demo's
customer base (BG/NBD with three attributes acting on purchase and dropout, 2022 to 2024)
with the purchase rate raised so that a million customers make about 9.4 million
transactions; timestamps with a random time of day, rows in time order (as real logs arrive),
integer or string ids, Parquet. ``without`` runs ``analyze`` on the transactions alone,
``with`` adds the three attributes (customers file); every step is included (the automatic
choice among value models, both validations, targets, evaluation, forecast and backtest,
KPIs, then writing every file, report.html and forecast.xlsx).

Each run is a fresh process (:func:`_common.run_isolated`): wall time per step (from the
progress callback), total, and peak resident memory (VmHWM, DuckDB's and numpy's memory
included). The peer (``--peer``, on by default) is the script a statistician would write
without clvtools, on the same Parquet file: pandas reads it, lifetimes summarises it
(calibration/holdout and full RFM), fits BG/NBD on the calibration window and scores the
holdout, fits BG/NBD and Gamma-Gamma on the whole history and computes a year's CLV, and
lifelines fits a Cox model of churn (26 weeks without a purchase) on one landmark table of
the customers' RFM at the landmark. It does less than clvtools (one model, no automatic
choice, no targets, forecast, intervals, KPIs or report), so the ratio flatters the peer.

Targets (issue 18): under 20 s without attributes and under 30 s with three, peak memory
under 3 GB, on this 2-core machine. The BLAS kernel each figure was measured on is printed.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _common import blas_kernel, run_isolated

GENERATE = """
import numpy as np, pandas as pd
from clvtools.data.generator import generate_customer_base
base = generate_customer_base({n}, model="bgnbd", seed=1, start="2022-01-01",
                              observation_end="2024-12-31", params={{"alpha": 3.4}})
tx = base.transactions
rng = np.random.default_rng(0)
tx["date"] = pd.to_datetime(tx["date"]) + pd.to_timedelta(rng.integers(0, 86400, len(tx)), "s")
tx = tx.sort_values("date", kind="stable", ignore_index=True)
customers = base.customers.drop(columns=["acquisition_date"])
if "{ids}" == "int":
    tx["customer_id"] = tx["customer_id"].str[1:].astype("int64")
    customers["customer_id"] = customers["customer_id"].str[1:].astype("int64")
tx.to_parquet("{tx}", index=False)
customers.to_parquet("{customers}", index=False)
result["transactions"] = len(tx)
"""

ANALYZE = """
import time, shutil
import clvtools
steps = []
def on_step(message):
    steps.append((message, time.perf_counter()))
start, cpu_start = time.perf_counter(), time.process_time()
results = clvtools.analyze("{tx}", customers={customers}, on_step=on_step)
steps.append(("Writing every output (CSV, JSON, report.html, forecast.xlsx)",
              time.perf_counter()))
shutil.rmtree("{out}", ignore_errors=True)
results.write("{out}")
end = time.perf_counter()
marks = [t for _, t in steps] + [end]
result["steps"] = [[m, marks[i + 1] - t] for i, (m, t) in enumerate(steps)]
result["seconds"], result["cpu"] = end - start, time.process_time() - cpu_start
result["value_model"] = results.analysis.value.choice.chosen
"""

PEER = """
import time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data
from lifelines import CoxPHFitter
steps = []
def step(name):
    steps.append((name, time.perf_counter()))
start, cpu_start = time.perf_counter(), time.process_time()
step("read")
tx = pd.read_parquet("{tx}")
tx["date"] = tx["date"].dt.normalize()
step("holdout RFM")
cal = calibration_and_holdout_data(tx, "customer_id", "date", calibration_period_end="2024-06-30",
                                   observation_period_end="2024-12-31", freq="W",
                                   monetary_value_col="amount")
step("holdout BG/NBD fit and check")
bg = BetaGeoFitter(penalizer_coef=0.0).fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
pred = bg.conditional_expected_number_of_purchases_up_to_time(
    cal["duration_holdout"], cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
step("RFM")
rfm = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="amount",
                                         observation_period_end="2024-12-31", freq="W")
step("BG/NBD, Gamma-Gamma, CLV")
bg = BetaGeoFitter(penalizer_coef=0.0).fit(rfm["frequency"], rfm["recency"], rfm["T"])
rep = rfm[rfm["frequency"] > 0]
gg = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
clv = gg.customer_lifetime_value(bg, rfm["frequency"], rfm["recency"], rfm["T"],
                                 rfm["monetary_value"], time=12, freq="W", discount_rate=0.01)
step("landmark table and Cox")
landmark = pd.Timestamp("2024-06-30")
before = tx[tx["date"] <= landmark]
lm = summary_data_from_transaction_data(before, "customer_id", "date",
                                        monetary_value_col="amount",
                                        observation_period_end=landmark, freq="W")
live = lm[lm["T"] - lm["recency"] < 26].copy()
nxt = tx[tx["date"] > landmark].groupby("customer_id")["date"].min()
last = landmark - pd.to_timedelta((live["T"] - live["recency"]) * 7, "D")
gap_end = nxt.reindex(live.index).fillna(pd.Timestamp("2024-12-31"))
live["event"] = ((gap_end - last).dt.days >= 182).astype(int)
live["duration"] = np.clip((np.minimum(gap_end, last + pd.Timedelta(days=182)) - landmark).dt.days
                           / 7, 1 / 7, None)
cph = CoxPHFitter().fit(live[["frequency", "recency", "T", "monetary_value", "duration",
                              "event"]], "duration", "event")
risk = cph.predict_partial_hazard(live[["frequency", "recency", "T", "monetary_value"]])
end = time.perf_counter()
marks = [t for _, t in steps] + [end]
result["steps"] = [[m, marks[i + 1] - t] for i, (m, t) in enumerate(steps)]
result["seconds"], result["cpu"] = end - start, time.process_time() - cpu_start
"""


def gigabytes(megabytes: float) -> float:
    """``run_isolated``'s peak (MB) in GB of 10^9 bytes, the unit of the target."""
    return megabytes / 1e3


def print_run(title: str, run: dict) -> None:
    # CPU time (every thread of the process) beside the wall time: on a shared machine the
    # same code's wall time moved by 10 % from one hour to the next, its CPU time less
    print(f"\n{title}: {run['seconds']:.1f} s ({run['cpu']:.1f} CPU-s), "
          f"peak RSS {gigabytes(run['peak_rss_mb']):.2f} GB"
          + (f", value model {run['value_model']}" if "value_model" in run else ""))
    for message, seconds in run["steps"]:
        print(f"  {seconds:7.2f} s  {message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--ids", choices=["int", "str"], default="int")
    parser.add_argument("--attributes", choices=["both", "without", "with"], default="both")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--data", default="/tmp/clvtools_bench")
    parser.add_argument("--out", default=None,
                        help="folder of the outputs (default: under --data); give each "
                             "concurrent run its own")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    stem = f"{args.customers}_{args.ids}"
    tx, customers = data / f"transactions_{stem}.parquet", data / f"customers_{stem}.parquet"
    if not tx.exists() or not customers.exists():
        made = run_isolated(GENERATE.format(n=args.customers, ids=args.ids, tx=tx,
                                            customers=customers))
        print(f"Generated {made['transactions']:,} transactions in {made['seconds']:.0f} s")
    import pyarrow.parquet as pq
    n_rows = pq.ParquetFile(tx).metadata.num_rows
    print(f"{args.customers:,} customers, {n_rows:,} transactions ({args.ids} ids, timestamps "
          f"with time of day, time order), Parquet; BLAS: {blas_kernel()}; "
          f"{os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    kinds = {"both": ["without", "with"]}.get(args.attributes, [args.attributes])
    runs = {}
    for kind in kinds:
        code = ANALYZE.format(tx=tx, customers=repr(str(customers)) if kind == "with" else None,
                              out=Path(args.out or data) / f"out_{kind}")
        runs[kind] = run_isolated(code)
        print_run(f"clvtools analyze, {kind} attributes", runs[kind])
    if args.peer:
        peer = run_isolated(PEER.format(tx=tx))
        print_run("hand-made lifetimes + lifelines script", peer)
        for kind, run in runs.items():
            print(f"\nspeed-up {kind} attributes: {peer['seconds'] / run['seconds']:.2f}x "
                  f"(clvtools {run['seconds']:.1f} s doing more, peer {peer['seconds']:.1f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\n" + json.dumps({k: {"seconds": round(v["seconds"], 1), "cpu": round(v["cpu"], 1),
                                 "peak_gb": round(gigabytes(v["peak_rss_mb"]), 2)}
                             for k, v in runs.items()}))


if __name__ == "__main__":
    main()

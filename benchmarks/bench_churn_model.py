"""Benchmark: the clvtools churn model against plain lifelines on the same landmark-like table.

    python benchmarks/bench_churn_model.py [--customers 1000000] [--strata 26] [--stacked]

The table: ``--customers`` customers, whole-day durations (time unit: day, follow-up 180 days),
11 design columns (2 categorical attributes giving 3 dummies, 8 numeric covariates). Steps:

* lifelines: ``CoxPHFitter().fit`` on the prepared design table (dummies made beforehand),
  then ``predict_survival_function`` at 12 horizons for every customer;
* clvtools: ``ChurnModel().fit`` on the raw landmark table (it encodes the categorical
  attributes, computes the Efron PH check on every row and the training concordance on a
  20,000-row sample), then ``survival_function`` at the same 12 horizons;
* with ``--strata K``: both fits stratified by a column of K levels (the main job's landmark
  table has about 26 strata: landmark x recency band), whose baselines both scorings use;
* with ``--stacked``: ``ChurnModel().fit`` on a stacked table (3 landmarks, the same customer
  in several rows), which adds the clustered sandwich variance.

For each step: wall time, CPU time of the process (steadier than wall time on a shared
machine) and peak resident memory above the level at the step's start (sampled every 5 ms
from /proc/self/statm).
"""
from __future__ import annotations

import argparse
import gc
import os
import threading
import time

import numpy as np
import pandas as pd
from _common import MEGABYTE, machine_line  # the script's folder is on sys.path
from lifelines import CoxPHFitter

from clvtools.survival import ChurnModel, simulate_landmark_table

PAGE = os.sysconf("SC_PAGE_SIZE")
HORIZONS = np.arange(15.0, 181.0, 15.0)  # 12 horizons, days


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Peak:
    """Context manager measuring wall time and peak RSS growth."""

    def __enter__(self):
        gc.collect()
        self.start_rss = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.mb = (self.peak - self.start_rss) / MEGABYTE


def _design(table: pd.DataFrame) -> pd.DataFrame:
    x = pd.DataFrame({
        "channel=store": (table["channel"] == "store").astype(float),
        "channel=phone": (table["channel"] == "phone").astype(float),
        "region=south": (table["region"] == "south").astype(float),
    })
    num = [c for c in table.columns if c.startswith("noise_")] + [
        "time_since_last_purchase", "n_purchases"]
    for c in num:
        x[c] = table[c].to_numpy(dtype=float)
    if "band" in table.columns:
        x["band"] = table["band"].to_numpy()
    x["duration"] = table["duration"].to_numpy(dtype=float)
    x["event"] = table["event"].to_numpy(dtype=float)
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--strata", type=int, default=1)
    ap.add_argument("--stacked", action="store_true")
    args = ap.parse_args(argv)
    print(machine_line(), flush=True)
    sim = dict(shape=1.0, scale=200.0, follow_up=180.0, grid=1.0, n_numeric_noise=6)
    table = simulate_landmark_table(args.customers, seed=7, **sim)
    strata = None
    if args.strata > 1:
        strata = ["band"]
        table["band"] = np.random.default_rng(9).integers(0, args.strata, len(table))
    design = _design(table)
    print(f"rows {len(table):,}, design columns {design.shape[1] - 2 - (strata is not None)}, "
          f"distinct durations {table['duration'].nunique()}, events {table['event'].mean():.2f}, "
          f"strata {args.strata}")
    rows = []

    with Peak() as p:
        cph = CoxPHFitter().fit(design, "duration", "event", strata=strata)
    rows.append(("lifelines fit", p.seconds, p.cpu, p.mb))
    with Peak() as p:
        sf = cph.predict_survival_function(design.drop(columns=["duration", "event"]),
                                           times=HORIZONS)
    rows.append(("lifelines survival at 12 horizons", p.seconds, p.cpu, p.mb))
    del cph

    with Peak() as p:
        model = ChurnModel(time_unit="day", strata=strata).fit(table)
    rows.append(("clvtools fit (encoding, PH check, concordance)", p.seconds, p.cpu, p.mb))
    with Peak() as p:
        ours = model.survival_function(table, HORIZONS)
    rows.append(("clvtools survival at 12 horizons", p.seconds, p.cpu, p.mb))
    # lifelines gives a stratified model's curves stratum by stratum: back in row order
    assert np.allclose(ours.to_numpy(), sf.T.loc[design.index].to_numpy(), atol=1e-9)
    del sf, ours

    if args.stacked:
        stacked = simulate_landmark_table(args.customers // 2, seed=8, n_landmarks=3,
                                          spacing=30.0, **sim)
        with Peak() as p:
            m2 = ChurnModel(time_unit="day").fit(stacked)
        rows.append((f"clvtools fit, {len(stacked):,} stacked rows, robust={m2.robust_}",
                     p.seconds, p.cpu, p.mb))

    out = pd.DataFrame(rows, columns=["step", "seconds", "cpu_seconds", "peak_mb_above_start"])
    print(out.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for col in ["seconds", "cpu_seconds"]:
        plain = out[col].iloc[0] + out[col].iloc[1]
        ours = out[col].iloc[2] + out[col].iloc[3]
        print(f"fit + scoring ({col}): lifelines {plain:.2f}, clvtools {ours:.2f}, "
              f"ratio {ours / plain:.2f}")


if __name__ == "__main__":
    main()

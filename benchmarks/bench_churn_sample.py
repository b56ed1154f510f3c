"""Benchmark: the Cox churn model fitted on a stratified, weighted sample of a large landmark
table against the fit on the whole table (issue 20).

Run: ``python benchmarks/bench_churn_sample.py [--rows 10000000] [--sample 2000000]
[--seeds 1] [--data DIR]``

Data, generated once into ``--data`` (default ``/tmp/clvtools_bench``) and reused:
:func:`clvtools.survival.simulate_landmark_table` with two stacked landmarks (the same
customer in up to two rows, so the variance is clustered by customer), a constant baseline
hazard, durations in whole days on a week scale, 26 weeks of follow-up, known hazard ratios
(two categorical attributes giving three dummies, two behaviour covariates, three noise
covariates with none), as Parquet; about ``--rows`` rows.

Each fit is a fresh process (:func:`_common.run_isolated`): it reads the table, then fits
``ChurnModel(time_unit="week", check_ph=False)`` on every row, or on
``stratified_sample(table, --sample, by=["landmark"])`` with ``weights_col`` and
``robust=True``, as the main job does above ``churn_sample_rows``. Printed: wall time of the
fit (reading apart), peak resident memory of the process (the table included), and for each
sample seed how many of the full-data hazard ratios lie inside the sample fit's robust 95 %
interval, with the largest gap between the two in standard errors of the sample fit.
The proportional-hazards check is off in both: it is a diagnostic on the fitted model, not
part of the estimate compared here.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import machine_line, run_isolated

GENERATE = """
from clvtools.survival import simulate_landmark_table
table = simulate_landmark_table({customers}, n_landmarks=2, shape=1.0, follow_up=26.0,
                                spacing=4.0, n_numeric_noise=3, seed=7)
table.to_parquet("{path}", index=False)
result["rows"] = len(table)
result["events"] = int(table["event"].sum())
result["customers"] = int(table["customer_id"].nunique())
"""

FIT = """
import time
import pandas as pd
from clvtools.survival import ChurnModel
from clvtools.survival.sampling import SAMPLE_WEIGHT, stratified_sample
start = time.perf_counter()
table = pd.read_parquet("{path}")
fit_start = time.perf_counter()
result["read_seconds"] = fit_start - start
settings = dict(time_unit="week", check_ph=False)
if {sample} is None:
    model = ChurnModel(**settings).fit(table)
else:
    sample = stratified_sample(table, {sample}, by=["landmark"], seed={seed})
    del table
    model = ChurnModel(**settings, weights_col=SAMPLE_WEIGHT, robust=True).fit(sample.table)
    result["sample"] = sample.as_dict()
result["fit_seconds"] = time.perf_counter() - fit_start
s = model.summary
result["summary"] = {{c: s[c].tolist() for c in ("coef", "se", "hazard_ratio",
                                                 "hazard_ratio_lower", "hazard_ratio_upper")}}
result["covariates"] = list(s.index)
result["robust"] = model.robust_
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sample", type=int, default=2_000_000)
    parser.add_argument("--seeds", type=int, default=1, help="sample fits, seeds 0, 1, ...")
    parser.add_argument("--data", default="/tmp/clvtools_bench")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    # two landmarks four weeks apart: about 1.82 rows per customer at this hazard
    customers = int(args.rows / 1.82)
    path = Path(args.data) / f"landmark_table_{customers}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        made = run_isolated(GENERATE.format(customers=customers, path=path))
        print(f"generated {made['rows']:,} rows ({made['customers']:,} customers, "
              f"{made['events']:,} events) in {made['seconds']:.0f} s")
    full = run_isolated(FIT.format(path=path, sample=None, seed=0))
    print(f"\nfull fit   : {full['fit_seconds']:7.1f} s  (reading {full['read_seconds']:.1f} s)  "
          f"peak RSS {full['peak_rss_mb']:7.0f} MB")
    hr = full["summary"]["hazard_ratio"]
    names = full["covariates"]
    for seed in range(args.seeds):
        part = run_isolated(FIT.format(path=path, sample=args.sample, seed=seed))
        s = part["summary"]
        inside = [lo <= h <= hi for h, lo, hi in zip(hr, s["hazard_ratio_lower"],
                                                    s["hazard_ratio_upper"], strict=True)]
        gaps = [abs(a - b) / se for a, b, se in zip(full["summary"]["coef"], s["coef"], s["se"],
                                                    strict=True)]
        sample = part["sample"]
        print(f"sample fit : {part['fit_seconds']:7.1f} s  (reading {part['read_seconds']:.1f} s, "
              f"sampling included)  peak RSS {part['peak_rss_mb']:7.0f} MB  seed {seed}: "
              f"{sample['rows']:,} of {sample['rows_total']:,} rows (events at "
              f"{sample['event_fraction']:.3f}, censored at {sample['censored_fraction']:.3f})")
        print(f"  full-data hazard ratio inside the sample's robust 95 % interval: "
              f"{sum(inside)} of {len(inside)}; largest gap {max(gaps):.2f} sample se")
        for name, h, lo, hi, se_full, se in zip(names, hr, s["hazard_ratio_lower"],
                                                s["hazard_ratio_upper"], full["summary"]["se"],
                                                s["se"], strict=True):
            print(f"    {name:<26} full {h:8.4f}   sample [{lo:8.4f}, {hi:8.4f}]   "
                  f"se full {se_full:.5f} sample {se:.5f}")
    print(json.dumps({"full": {k: v for k, v in full.items() if k != "summary"}}))


if __name__ == "__main__":
    main()

"""Benchmark: how ``analyze`` and the data layer's summaries grow with the data, under a
``memory_limit`` (issue 20; docs/scaling.rst quotes the figures).

Run: ``python benchmarks/bench_scaling.py [--analyze 1M 10M] [--summaries 1M 10M 100M]
[--chunked 1M 10M 100M] [--memory-limit 6GB] [--data DIR] [--guard-gb 14]``

Data, generated once into ``--data`` (default ``/tmp/clvtools_bench/scaling``) and reused: for
each size, a folder of Parquet files (a glob, ``part-*.parquet``), made in chunks of 500,000
customers, each chunk in a fresh process (:func:`_common.run_isolated`) so that generating
never holds more than one chunk: the demo's customer base
(:func:`clvtools.data.generator.generate_customer_base`, BG/NBD, 2022 to 2024) with the
purchase rate of benchmarks/bench_analyze.py (about 9.4 transactions per customer), a random
time of day, integer ids (unique across chunks), transactions only (no customers file).
Sizes are in transactions: 1M, 10M and 100M are about 106k, 1.06M and 10.6M customers.

Measured, each in a fresh process, with ``memory_limit`` (DuckDB's cap; pandas and numpy are
outside it) and DuckDB's spill folder under ``--data``:

* ``--analyze``: ``clvtools.analyze(glob, memory_limit=...)`` and writing every output, per
  step (the progress callback's steps): wall time, CPU time (every thread of the process:
  the figure to compare on a loaded machine), resident memory of the process at the step's
  start and its peak during the step (VmRSS sampled every 20 ms), and the largest size of
  DuckDB's spill folder.
* ``--chunked``: ``clvtools analyze --engine chunked`` (:func:`clvtools.scale.chunked_run.
  analyze_chunked`, BG/NBD named, the default control group, a push capacity of 1 % of the
  customers)
  and its ``write``, where ``memory_limit`` is the whole process's budget; the same per-step
  figures.
* ``--summaries``: the data layer alone on the same glob: reading and validating into
  purchase occasions (``read_transactions``), the RFM summary, the landmark survival table at
  one landmark a year before the end, and the monthly KPI table; the same per-step figures.

A run whose resident memory passes ``--guard-gb`` is stopped by its own watchdog, which
reports the step it was in (so that a run that cannot fit says where, instead of taking the
machine's memory from everyone else); each step's figures are also appended, as it ends, to
``progress_KIND_SIZE.jsonl`` under ``--data``, to follow a long run. The machine's load
average is printed beside the figures: on this shared 2-core machine, wall times under a load
above 2 are slower.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from _common import machine_line, run_isolated

#: Customers per generated file: a chunk's generation holds about 1 GB.
CHUNK_CUSTOMERS = 500_000
#: Transactions per customer at the generator's settings below (measured: 9.40).
TX_PER_CUSTOMER = 9.4

GENERATE = """
import numpy as np, pandas as pd
from clvtools.data.generator import generate_customer_base
base = generate_customer_base({n}, model="bgnbd", seed={seed}, start="2022-01-01",
                              observation_end="2024-12-31", params={{"alpha": 3.4}})
tx = base.transactions
rng = np.random.default_rng({seed})
tx["date"] = pd.to_datetime(tx["date"]) + pd.to_timedelta(rng.integers(0, 86400, len(tx)), "s")
tx["customer_id"] = tx["customer_id"].str[1:].astype("int64") + {offset}
tx.to_parquet("{path}", index=False)
result["transactions"] = len(tx)
"""

#: Per-step wall time and peak RSS, the spill folder's largest size, and a watchdog; the
#: measured code calls step(name) at the start of each step.
WATCH = """
import os, threading, time
def _rss_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) * 1024 / 1e6
def _folder_mb(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 1e6
_state = {{"peak": 0.0, "spill": 0.0, "step": "start", "t": time.perf_counter(),
          "cpu": time.process_time(), "start": 0.0}}
result["steps"] = []
def _watch():
    n = 0
    while True:
        rss = _rss_mb()
        _state["peak"] = max(_state["peak"], rss)
        if n % 25 == 0:
            _state["spill"] = max(_state["spill"], _folder_mb("{spill}"))
        if rss > {guard_gb} * 1000:
            step("stopped by the watchdog")
            result["stopped"] = f"resident memory {{rss:.0f}} MB above {guard_gb} GB"
            result["seconds"] = time.perf_counter() - _t0
            print(json.dumps(result), flush=True)
            os._exit(0)
        n += 1
        time.sleep(0.02)
def step(name):
    now, cpu = time.perf_counter(), time.process_time()   # CPU: every thread of the process
    if result["steps"] or _state["step"] != "start":
        result["steps"].append([_state["step"], now - _state["t"], _state["peak"],
                                _state["spill"], cpu - _state["cpu"], _state["start"]])
    rss = _rss_mb()
    _state.update(step=name, t=now, peak=rss, spill=0.0, cpu=cpu, start=rss)
    with open("{progress}", "a") as progress:  # read while a long run goes on
        progress.write(json.dumps([name, time.strftime("%H:%M:%S"), result["steps"][-1:]])
                       + "\\n")
threading.Thread(target=_watch, daemon=True).start()
"""

ANALYZE = """
import shutil
import clvtools
results = clvtools.analyze("{glob}", memory_limit="{memory_limit}", temp_directory="{spill}",
                           on_step=step)
step("Writing every output (CSV, JSON, report.html, forecast.xlsx)")
shutil.rmtree("{out}", ignore_errors=True)
results.write("{out}")
step("end")
result["customers"] = len(results.customers)
result["survival_rows"] = len(results.analysis.risk.survival_table)
model = results.analysis.risk.model
result["churn_sample"] = None if model is None else model.sample_
"""

CHUNKED = """
import shutil
from clvtools.config import Settings
from clvtools.scale.chunked_run import analyze_chunked
# BG/NBD named (auto chooses by BIC among three fits here); the default control group (10 %);
# a push capacity of 1 % of the customers, ranked over the whole base
settings = Settings(memory_limit="{memory_limit}", temp_directory="{spill}",
                    value_model="bgnbd", push_capacity={capacity})
run = analyze_chunked("{glob}", settings=settings, step=step)
step("Writing customers.csv, the Parquet files, the lists and the small files")
shutil.rmtree("{out}", ignore_errors=True)
run.write("{out}")
step("end")
result["customers"] = run.summary["customers"]
result["chunks"] = run.chunks
result["survival_rows"] = run.survival_rows
model = run.scorers.churn
result["churn_sample"] = None if model is None else model.sample_
"""

SUMMARIES = """
import datetime as dt
from clvtools.data.engine import connect
from clvtools.data.kpis import kpi_table
from clvtools.data.rfm import rfm_summary
from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import read_transactions
con = connect(memory_limit="{memory_limit}", temp_directory="{spill}")
step("Reading and validating into purchase occasions")
log = read_transactions("{glob}", con=con)
step("RFM summary")
rfm = rfm_summary(log, time_unit="week")
step("Landmark survival table (one landmark)")
landmark = log.observation_end - dt.timedelta(weeks=52)
table = landmark_table(log, landmarks=[landmark], churn_after=26, time_unit="week")
step("KPI table (monthly)")
kpis = kpi_table(log, churn_after=26, time_unit="week", period="month")
step("end")
result["customers"] = len(rfm)
result["landmark_rows"] = len(table)
# the summaries' results live in pandas, outside memory_limit
result["rfm_mb"] = rfm.memory_usage(deep=True).sum() / 1e6
result["landmark_mb"] = table.memory_usage(deep=True).sum() / 1e6
result["kpi_rows"] = len(kpis)
result["transactions"] = log.quality.get("rows_read")
"""

SIZES = {"0.1M": 100_000, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}


def generate(size: str, data: Path) -> str:
    """The glob of the Parquet files of ``size`` transactions, generated if missing."""
    folder = data / f"tx_{size}"
    done = folder / "complete.json"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        customers = round(SIZES[size] / TX_PER_CUSTOMER)
        total = 0
        for k, start in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
            n = min(CHUNK_CUSTOMERS, customers - start)
            made = run_isolated(GENERATE.format(n=n, seed=100 + k, offset=start,
                                                path=folder / f"part-{k:03d}.parquet"))
            total += made["transactions"]
            print(f"  {size}: chunk {k} ({n:,} customers) in {made['seconds']:.0f} s, "
                  f"peak RSS {made['peak_rss_mb']:.0f} MB", flush=True)
        done.write_text(json.dumps({"customers": customers, "transactions": total}))
    info = json.loads(done.read_text())
    print(f"{size}: {info['transactions']:,} transactions of {info['customers']:,} customers "
          f"in {folder}", flush=True)
    return str(folder / "part-*.parquet")


def measure(kind: str, size: str, glob: str, args) -> dict:
    spill = Path(args.data) / f"spill_{kind}_{size}"
    shutil.rmtree(spill, ignore_errors=True)
    spill.mkdir(parents=True)
    body = {"analyze": ANALYZE, "chunked": CHUNKED, "summaries": SUMMARIES}[kind].format(
        glob=glob, memory_limit=args.memory_limit, spill=spill,
        out=Path(args.data) / f"out_{kind}_{size}",
        capacity=SIZES[size] // int(TX_PER_CUSTOMER * 100))
    progress = Path(args.data) / f"progress_{kind}_{size}.jsonl"
    progress.unlink(missing_ok=True)
    watch = WATCH.format(spill=spill, guard_gb=args.guard_gb, progress=progress)
    load = os.getloadavg()
    result = run_isolated(watch + body)
    shutil.rmtree(spill, ignore_errors=True)
    print(f"\n{kind} on {size} transactions (memory_limit {args.memory_limit}; load average "
          f"at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f})")
    for name, seconds, peak, spilled, cpu, start in result["steps"]:
        print(f"  {name[:62]:<62} {seconds:8.1f} s  CPU {cpu:8.1f} s  RSS at start "
              f"{start:7.0f} MB, peak {peak:7.0f} MB  spill {spilled:6.0f} MB")
    print(f"  {'total':<62} {result['seconds']:8.1f} s  peak RSS "
          f"{result['peak_rss_mb']:7.0f} MB")
    if "stopped" in result:
        print(f"  STOPPED: {result['stopped']}")
    print("  " + json.dumps({k: v for k, v in result.items() if k != "steps"}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyze", nargs="*", default=["1M", "10M"], choices=list(SIZES))
    parser.add_argument("--summaries", nargs="*", default=["1M", "10M", "100M"],
                        choices=list(SIZES))
    parser.add_argument("--chunked", nargs="*", default=[], choices=list(SIZES))
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--guard-gb", type=float, default=14.0)
    parser.add_argument("--data", default="/tmp/clvtools_bench/scaling")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(data).free / 2**30
    print(f"free disk under {data}: {free:.0f} GB")
    for size in args.summaries:
        measure("summaries", size, generate(size, data), args)
    for size in args.analyze:
        measure("analyze", size, generate(size, data), args)
    for size in args.chunked:
        measure("chunked", size, generate(size, data), args)


if __name__ == "__main__":
    main()

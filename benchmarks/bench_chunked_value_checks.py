"""Benchmark: the chunked run's value checks step alone (value_checks.csv,
:mod:`clvtools.scale.chunked_value_checks`) on a scaling glob (issue 20).

Run: ``python benchmarks/bench_chunked_value_checks.py [--data GLOB] [--memory-limit 6GB]
[--repeat 2]``

The log is read into DuckDB, the RFM table stored and the value model fitted on its compressed
rows as the chunked run does (BG/NBD, no attributes: the scaling data have none); then the step
is timed ``--repeat`` times in this process under the run's Python share of DuckDB's limit:
wall and CPU time (every thread of the process), resident memory at its start and its peak
during it (VmRSS sampled every 10 ms), after the memory freed before it is handed back as the
run does between steps. The machine's load average is printed beside the figures.
"""
from __future__ import annotations

import argparse
import os
import threading
import time

from _common import megabytes  # the script's folder is on sys.path

from clvtools.data.chunked_tables import chunk_bounds, store_rfm
from clvtools.data.transactions import read_transactions
from clvtools.pipeline.memory_budget import release_unused_memory
from clvtools.scale.chunked_run import memory_plan
from clvtools.scale.chunked_value_checks import chunked_value_checks
from clvtools.scale.compressed_fit import fit_value_on_table


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return megabytes(int(line.split()[1]))
    raise RuntimeError("no VmRSS in /proc/self/status")


def _measured(work):
    """``work()``'s result, wall and CPU seconds, resident MB at its start and its peak."""
    peak, done = [_rss_mb()], threading.Event()

    def sample():
        while not done.wait(0.01):
            peak.append(_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    start_rss, wall, cpu = peak[0], time.perf_counter(), time.process_time()
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return (result, time.perf_counter() - wall, time.process_time() - cpu, start_rss,
            max(peak + [_rss_mb()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/clvtools_bench/scaling/tx_10M/part-*.parquet")
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    plan = memory_plan(args.memory_limit)
    log = read_transactions(args.data)
    con = log.con
    con.execute("SET memory_limit = ?", [plan.sql_limit])
    customers = store_rfm(log, time_unit="week", into="chunked_rfm")
    con.execute("SET memory_limit = ?", [plan.python_limit])
    models, chosen, _ = fit_value_on_table(con, "chunked_rfm", None, "bgnbd", log.has_amounts)
    bounds = chunk_bounds(con, "chunked_rfm", plan.chunk_rows)
    print(f"{customers:,} customers, {len(bounds)} chunks; memory_limit {args.memory_limit} "
          f"(DuckDB {plan.python_limit} during the step)")
    for run in range(args.repeat):
        release_unused_memory()
        (checks, _), wall, cpu, start, peak = _measured(lambda: chunked_value_checks(
            con, "chunked_rfm", models, chosen, holdout_summary=None, covariates=None,
            bounds=bounds, seed=0))
        load = os.getloadavg()[0]
        print(f"run {run + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s, RSS at start {start:,.0f} MB, "
              f"peak {peak:,.0f} MB (+{peak - start:,.0f} MB), load {load:.2f}; chi-square "
              f"{checks['frequency_fit']['chi_square']:.1f} on {checks['frequency_fit']['df']} "
              f"df, draws {checks['frequency_fit']['draws']:,}")


if __name__ == "__main__":
    main()

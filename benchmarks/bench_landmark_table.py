"""Benchmark: a landmark survival table from ~8M purchase occasions of 1M customers.

Simulates a simple purchase log with numpy (each customer starts on a uniform day in the
first half of three years and makes 1 + Poisson purchases with exponential gaps of mean
``--gap`` days, cut at the end of the three years), writes it to Parquet in a temporary
folder, loads it into DuckDB as the occasions table of a
:class:`~clvtools.data.transactions.TransactionLog`, and times
:func:`clvtools.data.survival_tables.landmark_table` (churn after 26 weeks, landmarks every
91 days back from the observation end).
Prints the wall time of each step and the process's peak resident memory (DuckDB runs
in-process, so its memory is included). Target: under 10 s for the table.

Run: ``python benchmarks/bench_landmark_table.py [--customers 1000000] [--landmarks 1]``
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from _common import machine_line, megabytes  # the script's folder is on sys.path

from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import TransactionLog

ORIGIN = dt.date(2021, 1, 1)
DAYS = 3 * 365


def simulate(n_customers: int, purchases: float, gap: float, seed: int) -> pd.DataFrame:
    """Occasions as (customer int, day offset, amount); about ``purchases`` per customer."""
    rng = np.random.default_rng(seed)
    n = 1 + rng.poisson(purchases - 1, n_customers)          # purchases per customer
    customer = np.repeat(np.arange(n_customers, dtype=np.int64), n)
    first = np.repeat(rng.integers(0, DAYS // 2, n_customers), n)
    # Gaps within each customer: the first gap of every customer is zero.
    gaps = rng.exponential(gap, customer.size)
    starts = np.cumsum(n) - n
    gaps[starts] = 0.0
    cum = np.cumsum(gaps)
    day = first + np.floor(cum - np.repeat(cum[starts], n)).astype(np.int64)
    amount = np.round(rng.gamma(2.0, 20.0, customer.size), 2)
    keep = day < DAYS
    return pd.DataFrame({"customer": customer[keep], "day": day[keep], "amount": amount[keep]})


def peak_mb() -> float:
    """Peak resident memory of this process in MB since start or the last reset_peak()."""
    try:
        with open("/proc/self/status") as f:
            return megabytes(next(int(x.split()[1]) for x in f if x.startswith("VmHWM")))
    except (OSError, StopIteration):
        return megabytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # Linux: KiB


def reset_peak() -> bool:
    """Reset the kernel's peak-memory mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def build(path: str, n_landmarks: int) -> None:
    """Load the Parquet file into DuckDB, time landmark_table and print the figures.

    Runs in its own process so that the peak memory printed is that of loading and
    building, not of simulating.
    """
    con = duckdb.connect()
    t0 = time.perf_counter()
    # The input contract: one row per customer per day, amounts summed.
    con.execute(f"""
        CREATE TABLE occ AS
        SELECT 'c' || customer::VARCHAR AS customer_id, DATE '{ORIGIN}' + day::INTEGER AS date,
               sum(amount) AS amount
        FROM read_parquet('{path}') GROUP BY ALL""")
    t_load = time.perf_counter() - t0
    n_rows, n_cust = con.execute("SELECT count(*), count(DISTINCT customer_id) FROM occ").fetchone()
    end = ORIGIN + dt.timedelta(days=DAYS - 1)
    marks = [end - dt.timedelta(days=91 * (i + 1)) for i in range(n_landmarks)]
    peak_load = peak_mb()
    reset = reset_peak()
    t0 = time.perf_counter()
    # the log's contract, without read_transactions' validation (not what is timed here)
    log = TransactionLog(con, "occ", end, has_amounts=True)
    table = landmark_table(log, landmarks=marks, churn_after=26, time_unit="week")
    t_table = time.perf_counter() - t0
    print(f"occasions: {n_rows:,} of {n_cust:,} customers; landmarks: {len(marks)}; "
          f"DuckDB threads: {con.execute('SELECT current_setting(?)', ['threads']).fetchone()[0]}")
    print(f"load Parquet into DuckDB: {t_load:.1f} s")
    print(f"landmark_table: {t_table:.2f} s wall, {len(table):,} rows x {table.shape[1]} columns, "
          f"event rate {table['event'].mean():.3f}, "
          f"{table['duration'].nunique()} distinct durations")
    print(f"peak resident memory: {peak_load:,.0f} MB while loading; "
          + (f"{peak_mb():,.0f} MB while building the table" if reset
             else f"{peak_mb():,.0f} MB overall (could not reset the peak mark)"))
    print("target: landmark_table under 10 s -> " + ("met" if t_table < 10 else "NOT met"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--purchases", type=float, default=8.5, help="mean occasions per customer")
    ap.add_argument("--gap", type=float, default=45.0, help="mean days between purchases")
    ap.add_argument("--landmarks", type=int, default=1, help="landmarks 91 days apart, stacked")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", metavar="PARQUET", help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    print(machine_line(), flush=True)
    if args.build:
        build(args.build, args.landmarks)
        return
    t0 = time.perf_counter()
    df = simulate(args.customers, args.purchases, args.gap, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "transactions.parquet")
        con = duckdb.connect()
        con.register("sim", df)
        con.execute(f"COPY sim TO '{path}' (FORMAT parquet)")  # our own temp path
        con.close()
        del df
        print(f"simulate and write Parquet: {time.perf_counter() - t0:.1f} s")
        subprocess.run([sys.executable, __file__, "--build", path,
                        "--landmarks", str(args.landmarks)], check=True)


if __name__ == "__main__":
    main()

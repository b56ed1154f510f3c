"""RFM summary from one Parquet file: clvtools, lifetimes 0.11.3 and a bare DuckDB query.

    python benchmarks/bench_rfm_summary.py [--sizes 1000 100000 1000000] [--repeats 3]
        [--lifetimes-max 1000000] [--data /tmp/clvtools_bench_rfm]

For each number of customers (about 9.4 transactions each: the generator's BG/NBD base over
three years) the same rows are written eight ways, the ways users' logs come: in time order
or sorted by customer, with integer or string ids (``C0000001``), with timestamps (a random
time of day) or dates only. On each file, each in a fresh process (imports excluded from the
time, the file's read included), three summaries:

- clvtools: ``clvtools.utils.summary_data_from_transaction_data`` (reading, validating and
  counting the rows as the product does, then the summary, ordered by customer id);
- lifetimes: ``pandas.read_parquet`` then its ``summary_data_from_transaction_data``;
- bare DuckDB: the least query giving frequency, recency, T and monetary value per customer
  from the file (one aggregation per customer and day, one per customer over the days, the
  observation end from the file's last date), without validation, ordering or an index.

Outputs are checked equal (counts and times exactly, monetary values to 1e-12 relative).
Each figure is the median of ``repeats`` runs of wall time and CPU time (the process's and
DuckDB's threads, ``time.process_time``): the machine is shared, and CPU time is the fairer
figure when other jobs compete for the two cores. The load average is printed before and
after. lifetimes runs once per file, and not at all above ``--lifetimes-max`` customers
(its row then says so).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_line, run_isolated  # noqa: E402

ORDERS = ("time", "customer")
IDS = ("int", "str")
CLOCKS = ("timestamp", "date")

CLVTOOLS = """
from clvtools.utils import summary_data_from_transaction_data
_w, _c = time.perf_counter(), time.process_time()
out = summary_data_from_transaction_data({path!r}, "customer_id", "date", "amount")
result["seconds"], result["cpu"] = time.perf_counter() - _w, time.process_time() - _c
out.to_parquet({out!r})
"""

LIFETIMES = """
import warnings; warnings.simplefilter("ignore")
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
_w, _c = time.perf_counter(), time.process_time()
tx = pd.read_parquet({path!r})
out = summary_data_from_transaction_data(tx, "customer_id", "date", "amount")
result["seconds"], result["cpu"] = time.perf_counter() - _w, time.process_time() - _c
out.to_parquet({out!r})
"""

BARE = """
import duckdb, pandas as pd
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # stdout carries the result
_w, _c = time.perf_counter(), time.process_time()
out = con.execute('''
    WITH days AS (SELECT customer_id, date::DATE AS day, sum(amount) AS amount
                  FROM read_parquet({path!r}) GROUP BY ALL),
    customers AS (SELECT customer_id, count(*) - 1 AS frequency, min(day) AS first,
                         max(day) AS last, sum(amount) AS total,
                         arg_min(amount, day) AS first_amount
                  FROM days GROUP BY customer_id)
    SELECT customer_id, frequency, datediff('day', first, last) AS recency,
           datediff('day', first, (SELECT max(date)::DATE FROM read_parquet({path!r}))) AS T,
           CASE WHEN frequency > 0 THEN (total - first_amount) / frequency ELSE 0 END
           AS monetary_value
    FROM customers''').fetchnumpy()
result["seconds"], result["cpu"] = time.perf_counter() - _w, time.process_time() - _c
pd.DataFrame(out).to_parquet({out!r})
"""


def write_logs(n_customers: int, folder: Path) -> dict[tuple, Path]:
    """The eight files of one size (written once, reused when ``folder`` holds them)."""
    paths = {(order, ids, clock): folder / f"rfm_{n_customers}_{order}_{ids}_{clock}.parquet"
             for order in ORDERS for ids in IDS for clock in CLOCKS}
    if all(p.exists() for p in paths.values()):
        return paths
    from clvtools.data.generator import generate_customer_base

    folder.mkdir(parents=True, exist_ok=True)
    base = generate_customer_base(n_customers, model="bgnbd", seed=1, start="2022-01-01",
                                  observation_end="2024-12-31", params={"alpha": 3.4})
    tx = base.transactions[["customer_id", "date", "amount"]].copy()
    rng = np.random.default_rng(0)
    stamps = pd.to_datetime(tx["date"]) + pd.to_timedelta(rng.integers(0, 86400, len(tx)), "s")
    for ids in IDS:
        ided = tx.assign(customer_id=tx["customer_id"].str[1:].astype("int64")
                         if ids == "int" else tx["customer_id"])
        for clock in CLOCKS:
            # dates only: one DATE column; lifetimes is given the same day as a timestamp
            dated = ided.assign(date=stamps if clock == "timestamp" else stamps.dt.normalize())
            for order in ORDERS:
                keys = ["date"] if order == "time" else ["customer_id", "date"]
                rows = dated.sort_values(keys, kind="stable", ignore_index=True)
                if clock == "date":
                    rows["date"] = rows["date"].dt.date
                rows.to_parquet(paths[(order, ids, clock)], index=False)
    return paths


def median_run(code: str, repeats: int) -> dict:
    """Medians of wall and CPU time over ``repeats`` fresh processes, and the largest peak."""
    runs = [run_isolated(code) for _ in range(repeats)]
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def check_equal(ours: Path, other: Path, name: str) -> None:
    """Raise unless the two summaries agree (ids compared as text)."""
    a = pd.read_parquet(ours)
    b = pd.read_parquet(other)
    if "customer_id" in b.columns:
        b = b.set_index("customer_id")
    b.index = b.index.astype(str)
    b = b.loc[a.index]
    for column in ("frequency", "recency", "T"):  # days (freq "D"), counts
        assert np.array_equal(a[column].to_numpy(), b[column].to_numpy()), (name, column)
    np.testing.assert_allclose(a["monetary_value"], b["monetary_value"], rtol=1e-12,
                               err_msg=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000)
    parser.add_argument("--data", default="/tmp/clvtools_bench_rfm")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    folder = Path(args.data)
    print("seconds: wall / CPU (process + DuckDB threads), medians of "
          f"{args.repeats} runs (lifetimes: one run)")
    header = (f"{'customers':>9} {'rows':>10} {'order':>8} {'ids':>3} {'clock':>9} | "
              f"{'clvtools':>11} | {'bare DuckDB':>11} | {'lifetimes':>11} | "
              f"{'/bare wall,CPU':>14} | {'lifetimes/ wall,CPU':>19}")
    print(header)
    for n in args.sizes:
        t0 = time.perf_counter()
        paths = write_logs(n, folder)
        n_rows = pd.read_parquet(paths[("time", "int", "date")], columns=["amount"]).shape[0]
        print(f"  ({n:,} customers, {n_rows:,} rows: data ready in "
              f"{time.perf_counter() - t0:.1f} s)")
        for (order, ids, clock), path in paths.items():
            out = {k: folder / f"out_{k}.parquet" for k in ("ours", "bare", "peer")}
            ours = median_run(CLVTOOLS.format(path=str(path), out=str(out["ours"])),
                              args.repeats)
            bare = median_run(BARE.format(path=str(path), out=str(out["bare"])), args.repeats)
            check_equal(out["ours"], out["bare"], "bare")
            peer = None
            if n <= args.lifetimes_max:
                peer = median_run(LIFETIMES.format(path=str(path), out=str(out["peer"])), 1)
                check_equal(out["ours"], out["peer"], "lifetimes")
            peer_text = (f"{peer['seconds']:5.2f}/{peer['cpu']:5.2f}" if peer
                         else f"not run >{args.lifetimes_max:,}")
            speedup = (f"{peer['seconds'] / ours['seconds']:8.1f}x,"
                       f"{peer['cpu'] / ours['cpu']:5.1f}x" if peer else "")
            print(f"{n:>9,} {n_rows:>10,} {order:>8} {ids:>3} {clock:>9} | "
                  f"{ours['seconds']:5.2f}/{ours['cpu']:5.2f} | "
                  f"{bare['seconds']:5.2f}/{bare['cpu']:5.2f} | {peer_text:>11} | "
                  f"{ours['seconds'] / bare['seconds']:5.2f}x,{ours['cpu'] / bare['cpu']:5.2f}x "
                  f"| {speedup:>19}", flush=True)
        print(f"  clvtools peak RSS at {n:,}: {ours['peak_rss_mb']:.0f} MB (last file)")
    print("outputs equal (counts and times exactly, monetary values to 1e-12 relative)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Benchmark: what writing forecast.xlsx costs a run.

Run: ``python benchmarks/bench_workbook.py [--n 200000] [--repeat 3]``

Set up first, untimed: ``clvtools.api.demo(n)`` (the whole main job on ``n`` generated
customers). Timed, in the same process (best of ``--repeat``): the workbook written from the
run's tables, as ``write_outputs`` writes it, with ``pseudonymise`` off and on. What grows with
the base is the contact lists (each capped at ``MAX_LIST_ROWS`` rows in the workbook) and, with
``pseudonymise``, the count of each text value over the whole base. ``--tile K`` repeats the
customers and the contact lists K times (ids suffixed), the lists and base of a K times larger
run without running it: ``--n 20000 --tile 50`` stands for a million customers.
Target (issue 17): a couple of seconds on a million customers.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import machine_line  # the script's folder is on sys.path

from clvtools import api
from clvtools.report.outputs import OUTPUTS
from clvtools.report.pseudonymise import KEY_VARIABLE
from clvtools.report.workbook import write_workbook


def _best(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _tiled(content, k: int):
    """The content with its customers and lists repeated ``k`` times, in priority order."""
    def tile(frame):
        return pd.concat([frame.assign(customer_id=frame["customer_id"].astype(str) + f"-{i}")
                          for i in range(k)], ignore_index=True)
    targets = tile(content.targets)
    targets = pd.concat([targets[targets["action"] == a] for a in ("push", "pull")],
                        ignore_index=True)
    return dataclasses.replace(content, targets=targets, customers=tile(content.customers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tile", type=int, default=1)
    args = parser.parse_args()
    print(machine_line(), flush=True)
    start = time.perf_counter()
    analysis = api.demo(args.n, seed=1).analysis
    print(f"demo({args.n:,}): {time.perf_counter() - start:.1f} s (untimed set-up)")
    workbook = next(o for o in OUTPUTS if o.name == "forecast.xlsx")
    content = workbook.content(analysis, {})
    if args.tile > 1:
        content = _tiled(content, args.tile)
    pseudonymised = dataclasses.replace(
        content, settings=content.settings.model_copy(update={"pseudonymise": True}))
    os.environ.setdefault(KEY_VARIABLE, "benchmark-key-" + "0" * 32)
    actions = content.targets["action"].value_counts()
    print(f"push list {actions.get('push', 0):,} rows, pull list {actions.get('pull', 0):,} "
          f"rows, {len(content.customers):,} customers")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forecast.xlsx"
        write_workbook(content, path)   # warm-up: imports and first-call costs
        plain = _best(lambda: write_workbook(content, path), args.repeat)
        size = path.stat().st_size
        hashed = _best(lambda: write_workbook(pseudonymised, path), args.repeat)
    print(f"forecast.xlsx: {plain:.2f} s ({size / 1e6:.1f} MB); pseudonymised {hashed:.2f} s "
          f"(best of {args.repeat})")


if __name__ == "__main__":
    main()

"""Benchmark: what writing forecast.xlsx costs a run.

Run: ``python benchmarks/bench_workbook.py [--n 200000] [--repeat 3]``

Set up first, untimed: ``clvtools.api.demo(n)`` (the whole main job on ``n`` generated
customers). Timed, in the same process (best of ``--repeat``): the workbook written from the
run's tables, as ``write_outputs`` writes it, with ``pseudonymise`` off and on. What grows with
the base is the contact lists (each capped at ``MAX_LIST_ROWS`` rows in the workbook) and, with
``pseudonymise``, the count of each text value over the whole base.
Target (issue 17): a couple of seconds on a million customers.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    analysis = api.demo(args.n, seed=1).analysis
    print(f"demo({args.n:,}): {time.perf_counter() - start:.1f} s (untimed set-up)")
    workbook = next(o for o in OUTPUTS if o.name == "forecast.xlsx")
    content = workbook.content(analysis, {})
    pseudonymised = dataclasses.replace(
        content, settings=content.settings.model_copy(update={"pseudonymise": True}))
    os.environ.setdefault(KEY_VARIABLE, "benchmark-key-" + "0" * 32)
    actions = analysis.targets.targets["action"].value_counts()
    print(f"push list {actions.get('push', 0):,} rows, pull list {actions.get('pull', 0):,} rows")
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

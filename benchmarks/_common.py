"""Shared helpers of the benchmark scripts: run a step in a fresh process, report time and peak
memory."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

#: Bytes in a megabyte, as the targets count them (10^6). The kernel counts in KiB (its "kB")
#: and tracemalloc in bytes; every figure these scripts print as MB or GB is converted here.
MEGABYTE = 1e6


def megabytes(kib: float) -> float:
    """The kernel's kB (KiB, 1,024 bytes: ``VmHWM``, ``VmRSS``, ``ru_maxrss``) in MB."""
    return kib * 1024 / MEGABYTE


def run_isolated(code: str) -> dict:
    """Run ``code`` in a fresh Python process and return what it prints as JSON on its last line.

    The child measures its own wall time and its peak resident memory (``peak_rss_mb``, in MB
    of 10^6 bytes), which includes DuckDB's and numpy's native allocations (unlike
    tracemalloc). The peak is the kernel's
    ``VmHWM`` of the child's own address space: ``ru_maxrss`` would not do, because Linux
    carries it over from the forking parent through ``exec``, so a child of a benchmark that
    holds a large generated data set in memory would report the parent's size.
    """
    wrapper = textwrap.dedent(
        """
        import json, resource, time
        _t0 = time.perf_counter()
        result = {}
        {body}
        result.setdefault("seconds", time.perf_counter() - _t0)
        try:
            with open("/proc/self/status") as _status:
                _hwm = next(line for line in _status if line.startswith("VmHWM:"))
            _kib = int(_hwm.split()[1])
        except (OSError, StopIteration):  # not Linux: the best there is
            _kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["peak_rss_mb"] = _kib * 1024 / 1e6   # the kernel's kB are KiB
        print(json.dumps(result))
        """
    ).replace("{body}", textwrap.indent(textwrap.dedent(code), "").replace("\n", "\n"))
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1].strip())


def run_repeated(code: str, repeats: int) -> dict:
    """:func:`run_isolated` ``repeats`` times: the median time (this 2-core machine is noisy),
    every time, and the largest peak memory."""
    runs = [run_isolated(code) for _ in range(repeats)]
    times = sorted(r["seconds"] for r in runs)
    return {**runs[-1], "seconds": statistics.median(times), "all_seconds": times,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def _times(result: dict) -> str:
    spread = result.get("all_seconds", [])
    if len(spread) < 2:
        return ""
    return f"   (median of {len(spread)}: {', '.join(f'{t:.2f}' for t in spread)})"


def report(title: str, ours: dict, peer: dict, peer_name: str) -> None:
    """Print both times, the ratio and both peak memories."""
    ratio = peer["seconds"] / ours["seconds"]
    print(f"\n{title}")
    print(f"  clvtools   : {ours['seconds']:8.2f} s   "
          f"peak RSS {ours['peak_rss_mb']:8.0f} MB{_times(ours)}")
    print(f"  {peer_name:<11}: {peer['seconds']:8.2f} s   "
          f"peak RSS {peer['peak_rss_mb']:8.0f} MB{_times(peer)}")
    print(f"  speed-up   : {ratio:8.1f}x   memory ratio (peer / clvtools) "
          f"{peer['peak_rss_mb'] / ours['peak_rss_mb']:.2f}")


def time_phase(run, repeat: int) -> tuple[float, float, object]:
    """(best wall time in s over ``repeat`` runs, tracemalloc peak in MB of one more run, the
    last result) of an in-process phase; numpy reports its buffers to tracemalloc."""
    import tracemalloc

    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / MEGABYTE
    tracemalloc.stop()
    return min(times), peak, out


def blas_kernel() -> str:
    """The BLAS library and its kernel (numpy's build info and OPENBLAS_CORETYPE)."""
    import numpy as np
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{info.get('name')} {info.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - the report is informative only
        name = "unknown"
    try:
        from threadpoolctl import threadpool_info
        cores = {i.get("internal_api"): i.get("architecture") for i in threadpool_info()}
        name += f", kernel {cores.get('openblas') or next(iter(cores.values()), '?')}"
    except Exception:  # noqa: BLE001
        pass
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return name + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")


def machine_line() -> str:
    """The conditions a benchmark's figures were measured in: the load average and the BLAS
    kernel (printed first by every script)."""
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"load average {load}; BLAS: {blas_kernel()}"

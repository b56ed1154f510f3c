"""Shared helpers of the benchmark scripts: run a step in a fresh process, report time and peak memory."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run_isolated(code: str) -> dict:
    """Run ``code`` in a fresh Python process and return what it prints as JSON on its last line.

    The child measures its own wall time; its peak resident memory (``ru_maxrss``, which
    includes DuckDB's and numpy's native allocations, unlike tracemalloc) is added here.
    """
    wrapper = textwrap.dedent(
        """
        import json, resource, time
        _t0 = time.perf_counter()
        result = {}
        {body}
        result.setdefault("seconds", time.perf_counter() - _t0)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        """
    ).replace("{body}", textwrap.indent(textwrap.dedent(code), "").replace("\n", "\n"))
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1].strip())


def report(title: str, ours: dict, peer: dict, peer_name: str) -> None:
    """Print both times, the ratio and both peak memories."""
    ratio = peer["seconds"] / ours["seconds"]
    print(f"\n{title}")
    print(f"  clvtools   : {ours['seconds']:8.2f} s   peak RSS {ours['peak_rss_mb']:8.0f} MB")
    print(f"  {peer_name:<11}: {peer['seconds']:8.2f} s   peak RSS {peer['peak_rss_mb']:8.0f} MB")
    print(f"  speed-up   : {ratio:8.1f}x   memory ratio (peer / clvtools) "
          f"{peer['peak_rss_mb'] / ours['peak_rss_mb']:.2f}")

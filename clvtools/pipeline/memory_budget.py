"""What a ``memory_limit`` means for a whole run: its size in bytes, the share of it DuckDB
gets in a chunked run, and the standard engine's early refusal of a base it cannot hold.

``memory_limit`` caps DuckDB (:func:`clvtools.data.engine.connect`); the standard engine's
per-customer pandas tables come on top of it, about :data:`BYTES_PER_CUSTOMER` a customer
at its peak (measured: 4.2 kB at a million customers without attributes, 5.6 kB with three).
A base whose customers clearly need more than the limit is refused right after reading, with
the chunked engine named, rather than dying of memory minutes later.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import re

from ..errors import ClvInputError

__all__ = ["BYTES_PER_CUSTOMER", "memory_bytes", "check_standard_engine_fits",
           "release_unused_memory"]

#: The standard engine's peak resident memory per customer, bytes (the low end measured).
BYTES_PER_CUSTOMER = 4_000
#: How far over the limit the estimate must be to refuse (an estimate, not a measurement).
MARGIN = 1.25
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|b|[kmgtp]i?b)\s*$", re.IGNORECASE)
#: DuckDB's units: KB, MB, ... are powers of 1000; KiB, MiB, ... of 1024.
_UNITS = {"b": 1, **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgtp")},
          **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgtp")}}


def memory_bytes(limit: str) -> int:
    """``limit`` (``"6GB"``, ``"512MiB"``, ``"50%"`` of the machine's memory) in bytes, as
    DuckDB reads it."""
    match = _SIZE.match(limit)
    if match is None:
        raise ClvInputError(f"The 'memory_limit' setting must be a size such as '4GB', "
                            f"'512MiB' or '50%'. Got {limit!r} instead.")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(total * number / 100)
    return int(number * _UNITS[unit])


def check_standard_engine_fits(customers: int, memory_limit: str | None) -> None:
    """Refuse a standard run whose customers clearly exceed ``memory_limit``.

    Parameters
    ----------
    customers : int
        Customers with purchases, as counted after reading.
    memory_limit : str or None
        The setting; None: no check.

    Raises
    ------
    ClvInputError
        ``customers`` x :data:`BYTES_PER_CUSTOMER` is more than :data:`MARGIN` times the limit.
    """
    if memory_limit is None:
        return
    limit, needed = memory_bytes(memory_limit), customers * BYTES_PER_CUSTOMER
    if needed <= MARGIN * limit:
        return
    raise ClvInputError(
        f"{customers:,} customers need about {needed / 1e9:.1f} GB in the standard engine "
        f"(about {BYTES_PER_CUSTOMER / 1000:g} kB each), more than memory_limit = "
        f"{memory_limit!r} allows: its per-customer tables are held whole.",
        source="memory_limit",
        advice="Run with --engine chunked (clvtools.analyze_chunked), which scores the "
               "customers in chunks within the limit, or raise memory_limit.")


def release_unused_memory() -> None:
    """Hand memory freed by the last step back to the system before the next one.

    pandas' and numpy's freed blocks stay with glibc's allocator, and Arrow's with its own pool
    (mimalloc or jemalloc), so the process's resident memory keeps the last step's peak; the
    next step's DuckDB share then comes on top of it (measured at 100M transactions: the KPI
    step at 6.3 GB under a 6 GB limit). Collects cycles, releases Arrow's unused pool and trims
    glibc's heap (``malloc_trim``; skipped where the C library has none).
    """
    gc.collect()
    try:
        import pyarrow
        pyarrow.default_memory_pool().release_unused()
    except ImportError:     # pragma: no cover - pyarrow is a dependency
        pass
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache     # looked up once, not at every step
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:     # pragma: no cover - a C library that cannot be loaded
        return None

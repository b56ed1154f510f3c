"""How a run was made: package versions, the BLAS kernel, the seed and the settings.

Recorded in data_quality.json and in every model file, because the last digits of a fit
may differ between BLAS kernels and versions: a reader can tell two runs apart.
"""
from __future__ import annotations

import platform
from importlib import metadata

from threadpoolctl import threadpool_info

from .._version import __version__
from ..config import Settings

__all__ = ["PACKAGES", "run_provenance"]

#: The packages whose versions can change a result.
PACKAGES = ("numpy", "scipy", "pandas", "duckdb", "lifelines", "pyarrow")


def _blas() -> list[dict]:
    """The BLAS libraries loaded, with the kernel in use (OpenBLAS' core type)."""
    keys = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
    found = [{k: info.get(k) for k in keys} for info in threadpool_info()
             if info.get("user_api") == "blas"]
    # in a fixed order: threadpoolctl lists the libraries in the order they were loaded
    return sorted(found, key=lambda lib: tuple(str(lib[k]) for k in keys))


def run_provenance(settings: Settings) -> dict:
    """Versions of clvtools, Python and the numerical packages, the BLAS kernel, the seed and
    the settings of this run (a JSON-ready dict)."""
    versions = {"clvtools": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # an optional package
            versions[name] = None
    return {"versions": versions, "blas": _blas(), "seed": settings.seed,
            "settings": settings.model_dump(mode="json")}

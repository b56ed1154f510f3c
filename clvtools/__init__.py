"""clvtools: customer lifetime value, churn hazards and retention targeting from a transaction log.

The main job is ``clvtools.analyze(transactions, customers=..., contracts=...)``, whose
results ``.write(out)`` every output file. The BTYD fitters are re-exported here with
lifetimes' names, so that ``from lifetimes import BetaGeoFitter`` becomes
``from clvtools import BetaGeoFitter``.
"""
from ._version import __version__
from .btyd import (
    BetaGeoBetaBinomFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
)

__all__ = [
    "__version__",
    "analyze",
    "demo",
    "evaluate",
    "Results",
    "EvaluationResults",
    "BetaGeoFitter",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "BetaGeoBetaBinomFitter",
    "GammaGammaFitter",
]


def __getattr__(name):
    # the main job pulls in DuckDB, lifelines and the report: loaded on first use, so that
    # ``from clvtools import BetaGeoFitter`` stays light
    if name in ("analyze", "demo", "evaluate", "Results", "EvaluationResults"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'clvtools' has no attribute {name!r}")

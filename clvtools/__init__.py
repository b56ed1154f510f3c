"""clvtools: customer lifetime value, churn hazards and retention targeting from a transaction log.

The BTYD fitters are re-exported here with lifetimes' names, so that
``from lifetimes import BetaGeoFitter`` becomes ``from clvtools import BetaGeoFitter``.
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
    "BetaGeoFitter",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "BetaGeoBetaBinomFitter",
    "GammaGammaFitter",
]

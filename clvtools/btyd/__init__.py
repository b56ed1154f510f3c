"""BTYD models: BG/NBD, MBG/NBD, Pareto/NBD, BG/BB and Gamma-Gamma, with lifetimes' API."""
from .base import BTYDFitter, InfiniteMeanWarning, load_model
from .bgbb import BetaGeoBetaBinomFitter
from .bgnbd import BetaGeoFitter
from .gamma_gamma import GammaGammaFitter
from .mbgnbd import ModifiedBetaGeoFitter

try:  # written in parallel by another engineer; the lead removes this guard at integration
    from .pareto_nbd import ParetoNBDFitter
except ImportError:  # pragma: no cover
    ParetoNBDFitter = None

__all__ = [
    "BTYDFitter",
    "BetaGeoBetaBinomFitter",
    "BetaGeoFitter",
    "GammaGammaFitter",
    "InfiniteMeanWarning",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "load_model",
]

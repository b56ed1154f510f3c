"""BTYD models: BG/NBD, MBG/NBD, Pareto/NBD, BG/BB and Gamma-Gamma, with lifetimes' API."""
from .base import BTYDFitter, InfiniteMeanWarning, load_model
from .bgbb import BetaGeoBetaBinomFitter
from .bgnbd import BetaGeoFitter
from .gamma_gamma import GammaGammaFitter
from .mbgnbd import ModifiedBetaGeoFitter
from .pareto_nbd import ParetoNBDFitter

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

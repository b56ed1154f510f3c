"""BTYD models: BG/NBD, MBG/NBD, Pareto/NBD, BG/BB and Gamma-Gamma, with lifetimes' API."""
from .alive_ahead import probability_alive_ahead
from .base import BTYDFitter, InfiniteMeanWarning, load_model
from .bgbb import BetaGeoBetaBinomFitter
from .bgnbd import BetaGeoFitter
from .bgnbd_covariates import BetaGeoCovariatesFitter
from .dert import (
    clv_continuous,
    continuous_discount_rate,
    dert,
    discounted_expected_residual_transactions,
    per_period_discount_rate,
)
from .gamma_gamma import GammaGammaFitter
from .mbgnbd import ModifiedBetaGeoFitter
from .pareto_nbd import ParetoNBDFitter
from .pareto_nbd_covariates import ParetoNBDCovariatesFitter
from .simulate import (
    simulate_bgbb,
    simulate_bgnbd,
    simulate_gamma_gamma,
    simulate_mbgnbd,
    simulate_pareto_nbd,
)

__all__ = [
    "BTYDFitter",
    "BetaGeoBetaBinomFitter",
    "BetaGeoFitter",
    "BetaGeoCovariatesFitter",
    "ParetoNBDCovariatesFitter",
    "GammaGammaFitter",
    "InfiniteMeanWarning",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "load_model",
    "probability_alive_ahead",
    "dert",
    "discounted_expected_residual_transactions",
    "clv_continuous",
    "continuous_discount_rate",
    "per_period_discount_rate",
    "simulate_bgnbd",
    "simulate_mbgnbd",
    "simulate_pareto_nbd",
    "simulate_bgbb",
    "simulate_gamma_gamma",
]

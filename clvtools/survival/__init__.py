"""Churn hazards: the Cox churn model over lifelines, Kaplan-Meier and log-rank by segment,
competing churn reasons, out-of-time validation and JSON model files.

Typical use (the pipeline does the same)::

    from clvtools.survival import ChurnModel
    model = ChurnModel(time_unit="week").fit(landmark_table)
    model.summary                                   # hazard ratios, CIs, p-values, PH check
    p = model.churn_probability(scoring_table, horizon=13)
    model.save_model("models/churn.json")      # JSON; clvtools.survival.load_model reads it
"""
from ..encoding import CovariateEncoder
from .churn_model import ChurnModel
from .competing_risks import CompetingRisksModel, cumulative_incidence
from .io import load_model
from .kaplan_meier import km_curves, logrank_tests, median_survival
from .metrics import (
    brier_score,
    calibration_by_decile,
    check_out_of_time,
    dynamic_auc,
    harrell_concordance,
    ipcw_concordance,
    validate_out_of_time,
)
from .simulate import simulate_contracts, simulate_landmark_table

__all__ = [
    "ChurnModel", "CompetingRisksModel", "CovariateEncoder", "cumulative_incidence",
    "load_model",
    "km_curves", "median_survival", "logrank_tests",
    "harrell_concordance", "ipcw_concordance", "dynamic_auc", "brier_score",
    "calibration_by_decile", "check_out_of_time", "validate_out_of_time",
    "simulate_landmark_table", "simulate_contracts",
]

"""Churn hazards: the Cox churn model over lifelines, Kaplan-Meier and log-rank by segment,
competing churn reasons, out-of-time validation and JSON model files.

Typical use (the pipeline does the same), on the raw tables of
:func:`clvtools.data.survival_tables.landmark_table` and ``scoring_table`` (the demo writes the
first as survival_table.csv)::

    import datetime as dt
    from clvtools.data.survival_tables import landmark_table, scoring_table
    from clvtools.data.transactions import read_transactions
    from clvtools.datasets import generate_customer_base
    from clvtools.survival import ChurnModel, load_model

    log = read_transactions(generate_customer_base(5000, seed=1).transactions)
    rule = dict(churn_after=26, time_unit="week")
    table = landmark_table(log, landmarks=[dt.date(2024, 6, 28)], **rule)
    scoring = scoring_table(log, **rule)            # covariates at the observation end

    model = ChurnModel(time_unit="week").fit(table)  # derives its own features
    model.summary                                   # hazard ratios, CIs, p-values, PH check
    p = model.churn_probability(scoring, horizon=13)
    curves = model.predict_survival_function(scoring, times=[4, 13])  # times x customers
    model.save_model("churn.json")                  # JSON, with the feature recipe
    assert (load_model("churn.json").churn_probability(scoring, horizon=13) == p).all()

On a table with the landmark table's behaviour columns and no ``covariates`` list, the model
derives the landmark feature set (:mod:`clvtools.survival.features`: recency, tenure, log1p
counts, trend, log1p mean spend, every attribute) in ``fit`` and in every prediction; with an
explicit ``covariates=[...]`` or on any other table it uses the columns as they are.
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

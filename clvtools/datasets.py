"""Data sets: a simulated customer base with known truth, and the classic CDNOW and donations data.

``generate_customer_base`` needs nothing beyond clvtools; the loaders read the files that
the ``lifetimes`` package ships (``pip install clvtools[test]``) and keep lifetimes'
function names.
"""
from .data.generator import (
    ATTRIBUTE_LEVELS,
    DEFAULT_COVARIATE_EFFECTS,
    DEFAULT_PARAMS,
    SimulatedBase,
    generate_customer_base,
)
from .data.loaders import (
    lifetimes_data_dir,
    load_cdnow_sample,
    load_cdnow_summary,
    load_cdnow_summary_data_with_monetary_value,
    load_cdnow_transactions,
    load_donations,
    load_transaction_data,
)

__all__ = [
    "ATTRIBUTE_LEVELS",
    "DEFAULT_COVARIATE_EFFECTS",
    "DEFAULT_PARAMS",
    "SimulatedBase",
    "generate_customer_base",
    "lifetimes_data_dir",
    "load_cdnow_sample",
    "load_cdnow_summary",
    "load_cdnow_summary_data_with_monetary_value",
    "load_cdnow_transactions",
    "load_donations",
    "load_transaction_data",
]

"""Monthly revenue and churn forecasts with intervals: sums over per-customer arrays.

Pure arrays and frames; imports the model packages (btyd, survival) and nothing above them.
"""
from .churners import bernoulli_variance, declared_at_date, declared_by_month
from .intervals import (
    LEVELS,
    delta_variance,
    normal_bounds,
    presampled_positions,
    size_sample,
    stratified_sample,
    systematic_pick,
)
from .moments import (
    PurchasePosterior,
    SpendMoments,
    WindowMoments,
    grouped_revenue_variance,
    purchase_posterior,
    revenue_variance,
    spend_moments,
    window_moments,
)
from .monthly import (
    ALL_MONTHS,
    MEASURES,
    SCENARIOS,
    TOTAL,
    monthly_forecast,
    segment_indicator,
    segment_sums,
    with_whole,
)

__all__ = [
    "ALL_MONTHS", "LEVELS", "MEASURES", "SCENARIOS", "TOTAL", "PurchasePosterior",
    "SpendMoments", "WindowMoments", "bernoulli_variance", "declared_at_date",
    "declared_by_month", "delta_variance", "grouped_revenue_variance", "monthly_forecast",
    "normal_bounds", "presampled_positions", "purchase_posterior", "revenue_variance",
    "segment_indicator", "segment_sums", "size_sample", "spend_moments", "stratified_sample",
    "systematic_pick", "window_moments", "with_whole",
]

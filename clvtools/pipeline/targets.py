"""Step 5, the decisions: one row per customer with both axes side by side (value and revenue
at risk from the value model, churn probability from the churn model, lifecycle status).

The value-versus-risk matrix and the push/pull allocation (clvtools.targeting) join here.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..targeting.revenue_at_risk import revenue_at_risk
from .risk import RiskResult
from .value import ValueResult

__all__ = ["TargetsResult", "targets_step"]


@dataclass
class TargetsResult:
    """What the decisions step computed.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer (``customers.csv``): RFM, value, churn probability, revenue at
        risk (lapsed and preventable) and lifecycle status.
    """

    customers: pd.DataFrame


def targets_step(value: ValueResult, risk: RiskResult) -> TargetsResult:
    """The per-customer table that the decisions are made on."""
    scores = value.scores
    at_risk = revenue_at_risk(
        scores["p_alive"], scores["revenue_if_retained"], scores["expected_revenue"]
    )
    customers = (
        value.rfm.join(scores[["p_alive", "expected_purchases", "expected_average_spend"]])
        .join(risk.scores)
        .join(scores[["revenue_if_retained", "expected_revenue"]]).join(at_risk)
        .join(risk.lifecycle.set_index("customer_id")[["lifecycle"]])
        .rename_axis("customer_id").reset_index()
    )
    return TargetsResult(customers)

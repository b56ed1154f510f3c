"""Targeting: revenue at risk, the value-risk matrix, push/pull allocation, early warning.

Frames in, frames out: these functions work on any DataFrame with value and risk columns and
know nothing of settings or models."""
from .allocation import Action, Allocation, action_economics, allocate, net_benefit
from .matrix import CELLS, CHURNED, concentration, matrix_table, value_risk_matrix
from .revenue_at_risk import revenue_at_risk

__all__ = ["Action", "Allocation", "CELLS", "CHURNED", "action_economics", "allocate",
           "concentration", "matrix_table", "net_benefit", "revenue_at_risk",
           "value_risk_matrix"]

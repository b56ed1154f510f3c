"""Targeting: revenue at risk, the value-risk matrix, push/pull allocation, early warning."""
from .revenue_at_risk import revenue_at_risk

__all__ = ["revenue_at_risk"]

"""Step 6: the retention KPIs that management reads, per calendar period, and cohorts."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import Settings
from ..data.kpi_segments import churn_by_segment, contract_ends_by_reason
from ..data.kpis import cohort_table, kpi_table
from .inputs import Inputs

__all__ = ["KpiResult", "kpi_step"]


@dataclass
class KpiResult:
    """Retention KPIs per period (``kpis``), retention by acquisition cohort (``cohorts``) and
    churn rates per period by value tier, categorical attribute and contract end reason
    (``churn_by_segment``)."""

    kpis: pd.DataFrame
    cohorts: pd.DataFrame
    churn_by_segment: pd.DataFrame | None = None


def kpi_step(inputs: Inputs, settings: Settings) -> KpiResult:
    """KPIs, cohorts and churn by segment over the whole log, by ``kpi_period``."""
    common = dict(churn_after=settings.churn_after, time_unit=settings.time_unit,
                  period=settings.kpi_period)
    segments = churn_by_segment(inputs.log, attributes=inputs.attributes,
                                segments=inputs.categorical_attributes, **common)
    if inputs.contracts is not None:
        ends = contract_ends_by_reason(inputs.log, inputs.contracts, period=settings.kpi_period)
        segments = pd.concat([segments, ends], ignore_index=True)
    return KpiResult(kpi_table(inputs.log, **common), cohort_table(inputs.log, **common),
                     segments)

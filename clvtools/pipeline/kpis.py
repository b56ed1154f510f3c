"""Step 6: the retention KPIs that management reads, per calendar period, and cohorts."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import Settings
from ..data.kpis import cohort_table, kpi_table
from .inputs import Inputs

__all__ = ["KpiResult", "kpi_step"]


@dataclass
class KpiResult:
    """Retention KPIs per period (``kpis``) and retention by acquisition cohort (``cohorts``)."""

    kpis: pd.DataFrame
    cohorts: pd.DataFrame


def kpi_step(inputs: Inputs, settings: Settings) -> KpiResult:
    """KPIs and cohorts over the whole log, by ``kpi_period``."""
    common = dict(churn_after=settings.churn_after, time_unit=settings.time_unit,
                  period=settings.kpi_period)
    return KpiResult(kpi_table(inputs.log, **common), cohort_table(inputs.log, **common))

"""The report's sections, one module each, in the order of the page.

Each module's ``section(result)`` returns a :class:`~clvtools.report.blocks.Section` (or None
when the run has nothing for it), built only from what the run computed: a panel whose table
is missing is left out, never computed here.
"""
from . import (
    campaign,
    data_quality,
    forecast,
    kpis,
    matrix,
    models,
    summary,
    survival,
    targets,
)

#: The sections every run has a page for, in order (the campaign evaluation comes last, and
#: only when one is given: :func:`campaign.section`).
SECTIONS = (summary, data_quality, kpis, models, survival, matrix, targets, forecast)

__all__ = ["SECTIONS", "campaign"]

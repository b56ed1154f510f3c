"""report.html: one self-contained page for everyone, assembled from the sections with jinja2.

Autoescape is always on: every text from the data (ids, column names, attribute values) is
escaped by the template, and the page's Content-Security-Policy forbids scripts and every
request, so that the page opens offline and nothing in the data can run in it.
"""
from __future__ import annotations

from functools import lru_cache

import jinja2
import pandas as pd

from .._version import __version__
from ..pipeline import AnalysisResult
from .blocks import Section
from .sections import SECTIONS, campaign
from .tables import shared_population

__all__ = ["render_report", "render_page", "report_sections"]

TEMPLATE = "report.html.j2"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("clvtools.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)


def report_sections(result: AnalysisResult, *,
                    campaign_evaluation: pd.DataFrame | None = None) -> list[Section]:
    """The page's sections, in order, leaving out those the run has nothing for.

    Parameters
    ----------
    result : AnalysisResult
        What the run computed (read only: nothing is fitted here).
    campaign_evaluation : pandas.DataFrame, optional
        The last campaign's measured against predicted uplift and return per action and
        cell; its section is added at the end (:func:`.sections.campaign.section`).
    """
    sections = [module.section(result) for module in SECTIONS]
    sections.append(campaign.section(campaign_evaluation, result.settings))
    return [s for s in sections if s is not None]


def render_report(result: AnalysisResult, *,
                  campaign_evaluation: pd.DataFrame | None = None) -> str:
    """The HTML of report.html (see :func:`report_sections` for the parameters)."""
    with shared_population(result.targets.customers):
        sections = report_sections(result, campaign_evaluation=campaign_evaluation)
    return render_page(sections, result.inputs.log.quality["customers"], result.timeline)


def render_page(sections: list[Section], customers: int, timeline) -> str:
    """The HTML of report.html from its sections, for a base of ``customers`` over
    ``timeline`` (any engine's run)."""
    return _environment().get_template(TEMPLATE).render(
        title="Customer value and churn report",
        subtitle=(f"{customers:,} customers, data from "
                  f"{timeline.first_date.isoformat()} to {timeline.observation_end.isoformat()}"),
        sections=sections,
        footer=(f"Written by clvtools {__version__}. Every figure on this page is in the CSV "
                "files beside it; data_quality.json and config.toml say how the run was made."),
    )

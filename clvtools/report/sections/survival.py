"""Survival curves: Kaplan-Meier curves to declared churn overall and by segment, with the
log-rank tests, and the cumulative incidence of each contract end reason (survival_curves.csv,
logrank_tests.csv, median_time_to_churn.csv, contract_cumulative_incidence.csv)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Paragraph, Section
from ..figures import PALETTE, draw_chart, label_text, percent_axis
from ..tables import fmt, table
from ._words import units

__all__ = ["section", "section_from", "km_chart", "incidence_chart"]

#: Segments drawn per panel (the largest), so that the legend stays readable.
_SEGMENTS = 6
#: Panels per row.
_COLUMNS = 2


def _overall_p(tests: pd.DataFrame | None, by: str) -> str:
    if tests is None:
        return ""
    row = tests[(tests["by"] == by) & (tests["segment_a"] == "all segments")]
    if row.empty:
        return ""
    p = fmt(row["p_value"].iloc[0], "p")
    return f"log-rank p {p}" if p.startswith("<") else f"log-rank p = {p}"


def km_chart(curves: pd.DataFrame, medians: pd.DataFrame, tests: pd.DataFrame | None,
             settings):
    """Kaplan-Meier curves, one panel per segmenting attribute (``all`` first)."""
    groups = list(dict.fromkeys(curves["by"]))
    rows = math.ceil(len(groups) / _COLUMNS)

    def draw(fig):
        axes = np.atleast_1d(fig.subplots(rows, min(_COLUMNS, len(groups)), squeeze=False)
                             ).ravel()
        for ax, by in zip(axes, groups, strict=False):
            part = curves[curves["by"] == by]
            sizes = medians[medians["by"] == by].set_index("segment")["n"]
            shown = sizes.sort_values(ascending=False).index[:_SEGMENTS]
            for colour, segment in zip(PALETTE, shown, strict=False):
                curve = part[part["segment"] == segment]
                ax.step(curve["time"], curve["survival"], where="post", color=colour, lw=2,
                        label=label_text(f"{segment} ({sizes[segment]:,})"))
                ax.fill_between(curve["time"], curve["lower"], curve["upper"], step="post",
                                color=colour, alpha=0.12, lw=0)
            test = _overall_p(tests, by)
            ax.set_title(label_text(f"{'all customers' if by == 'all' else by}"
                                    f"{'; ' + test if test else ''}"), loc="left", fontsize=11)
            ax.set_ylim(0, 1.02)
            percent_axis(ax.yaxis)
            ax.set_xlabel(f"{units(settings)} since the landmark")
            ax.set_ylabel("not yet declared churned")
            ax.legend(loc="upper right", fontsize=9)
        for ax in axes[len(groups):]:
            ax.set_visible(False)

    return draw_chart(
        "Survival to declared churn, by segment",
        "Kaplan-Meier curves: the share of the customers at risk at the landmark who are not "
        "yet declared churned after so many " + units(settings) + ", with 95 % bands, overall "
        "and per level of each attribute (customers in brackets); the log-rank p-value tests "
        "whether an attribute's curves differ. By matrix cell: the cells drawn one horizon "
        "before the end and the declarations that followed, a check of the risk axis out of "
        "time.", draw, height=3.4 * rows)


def incidence_chart(incidence: pd.DataFrame, settings):
    """Cumulative incidence of each contract end reason (Aalen-Johansen)."""
    part = incidence[incidence["segment"] == "all"] if "segment" in incidence else incidence

    def draw(fig):
        ax = fig.subplots()
        for colour, reason in zip(PALETTE, dict.fromkeys(part["reason"]), strict=False):
            curve = part[part["reason"] == reason]
            ax.step(curve["time"], curve["cumulative_incidence"], where="post", color=colour,
                    lw=2, ls="--" if reason == "all" else "-",
                    label=label_text("any reason" if reason == "all" else reason))
        ax.set_ylim(0, None)
        percent_axis(ax.yaxis)
        ax.set_xlabel(f"contract duration ({units(settings)})")
        ax.set_ylabel("share of contracts ended")
        ax.legend(loc="upper left")

    return draw_chart(
        "Contract ends by reason",
        "Cumulative incidence (Aalen-Johansen) of each contract end reason: the share of "
        "contracts ended for that reason by each duration, the other reasons competing.", draw,
        height=3.8)


def section(r: AnalysisResult) -> Section | None:
    """The survival section; None when the run has no curves."""
    return section_from(r.settings, r.survival_tables(),
                        r.risk.tables.get("contract_cumulative_incidence"))


def section_from(s, tables: dict, incidence: pd.DataFrame | None = None) -> Section | None:
    """The survival section from ``tables`` (``survival_curves``, ``median_time_to_churn``,
    ``logrank_tests``, as :meth:`~clvtools.pipeline.AnalysisResult.survival_tables` gives
    them, or an engine's from counts) and the contracts' ``incidence``; None without curves
    nor incidence."""
    curves, medians = tables.get("survival_curves"), tables.get("median_time_to_churn")
    if (curves is None or curves.empty) and incidence is None:
        return None
    out = Section("survival", "Survival curves")
    out.add(Paragraph(
        f"How long customers last: time from the landmark to the declaration of churn "
        f"({s.churn_after:g} {s.time_unit}s after the last purchase)."))
    if curves is not None and not curves.empty and medians is not None:
        out.add(km_chart(curves, medians, tables.get("logrank_tests"), s))
        out.add(table(medians, s, f"Median time to declared churn ({units(s)}, with its 95 % "
                      "interval; ∞ where the curve never falls to a half).",
                      formats={"median": "1f", "median_lower": "1f", "median_upper": "1f"},
                      headers={"by": "segment of"}))
    if incidence is not None and not incidence.empty:
        out.add(incidence_chart(incidence, s))
    return out

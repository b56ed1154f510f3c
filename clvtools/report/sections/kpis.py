"""KPIs per period and the cohort retention table as a heat map (kpis.csv, cohorts.csv,
churn_by_segment.csv)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Paragraph, Section
from ..figures import PALETTE, draw_chart, percent_axis
from ..tables import table

__all__ = ["section", "section_from", "kpi_chart", "cohort_chart"]

#: KPI periods shown in the table (the latest).
_TABLE_PERIODS = 12
#: Complete periods pooled for the churn rate by segment.
_SEGMENT_PERIODS = 3
#: Cohorts shown in the heat map (the latest), so that its rows stay readable.
_COHORTS = 48


def _ticks(axis, labels: list[str], most: int = 12) -> None:
    step = max(1, int(np.ceil(len(labels) / most)))
    positions = np.arange(0, len(labels), step)
    axis.set_ticks(positions, [labels[i] for i in positions])


def kpi_chart(kpis: pd.DataFrame, period: str):
    """Active customers per period (with new and churned), and churn, growth and stock
    retention rates per period."""
    labels = kpis["label"].astype(str).tolist()
    x = np.arange(len(labels))
    complete = kpis["complete"].astype(bool).to_numpy()

    def draw(fig):
        left, right = fig.subplots(1, 2)
        left.plot(x, kpis["active_end"], color=PALETTE[0], lw=2, label="active at the end")
        left.bar(x - 0.2, kpis["new"], width=0.4, color=PALETTE[2], label="new")
        left.bar(x + 0.2, kpis["churned"], width=0.4, color=PALETTE[1], label="churned")
        left.set_ylabel("customers")
        left.set_xlabel(period)
        left.set_title("Customers", loc="left", fontsize=11)
        left.legend(loc="upper left")
        _ticks(left.xaxis, labels, 4)
        for column, colour, name in (("churn_rate", PALETTE[1], "churn rate"),
                                     ("growth_rate", PALETTE[2], "growth rate")):
            values = kpis[column].to_numpy(float)
            right.plot(x[complete], values[complete], color=colour, lw=2, label=name)
            if (~complete).any():
                right.plot(x[~complete], values[~complete], "o", color=colour, mfc="white")
        right.set_ylim(0, None)
        percent_axis(right.yaxis)
        right.set_ylabel(f"share of the active customers\nat the {period}'s start")
        right.set_xlabel(period)
        right.set_title("Churn and growth rates", loc="left", fontsize=11)
        right.legend(loc="upper right")
        _ticks(right.xaxis, labels, 4)

    return draw_chart(
        f"Customers and retention per {period}", f"Left: customers active at the end of each "
        f"{period}, with the new and the churned ones; right: churn rate (churned / active at "
        f"the start; retention is one minus it) and growth rate (new / active at the start); "
        f"an open circle marks an incomplete {period}.",
        draw, height=4.0)


def cohort_chart(cohorts: pd.DataFrame, period: str):
    """The share of each acquisition cohort still active k periods later, as a heat map."""
    shown = cohorts[cohorts["label"].isin(cohorts["label"].drop_duplicates().tail(_COHORTS))]
    grid = (shown.assign(retention=shown["retention"].where(shown["complete"].astype(bool)))
            .pivot_table(index="label", columns="k", values="retention", aggfunc="first",
                         dropna=False, sort=True))
    labels = [str(c) for c in grid.index]

    def draw(fig):
        ax = fig.subplots()
        image = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                          interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.04)
        bar.set_label("share of the cohort still active")
        percent_axis(bar.ax.yaxis)
        ax.grid(False)
        _ticks(ax.yaxis, labels, 16)
        ax.set_ylabel(f"acquisition cohort ({period} of the first purchase)")
        ax.set_xlabel(f"{period}s since acquisition")

    return draw_chart(
        "Retention by acquisition cohort", f"Each row is the customers acquired in one "
        f"{period}; the colour is the share of them still active (not declared churned) that "
        f"many {period}s later; blank cells are not observed yet.", draw,
        height=min(6.5, 2.5 + 0.09 * len(labels)))


def _segment_churn(by: pd.DataFrame | None, kpis: pd.DataFrame) -> pd.DataFrame | None:
    if by is None or by.empty:
        return None
    done = kpis.loc[kpis["complete"].astype(bool) & kpis["churn_rate"].notna(), "label"]
    recent = by[by["label"].isin(done.tail(_SEGMENT_PERIODS))]
    if recent.empty:
        return None
    pooled = recent.groupby(["by", "segment"], sort=False, as_index=False)[
        ["active_start", "churned"]].sum()
    return pooled.assign(churn_rate=pooled["churned"] / pooled["active_start"].where(
        pooled["active_start"] > 0))


def section(r: AnalysisResult) -> Section:
    """The KPI section."""
    return section_from(r.settings, r.kpi.kpis, r.kpi.cohorts, r.kpi.churn_by_segment)


def section_from(s, kpis: pd.DataFrame, cohorts: pd.DataFrame | None,
                 churn_by_segment: pd.DataFrame | None) -> Section:
    """The KPI section of any run, from kpis.csv, cohorts.csv and churn_by_segment.csv."""
    out = Section("kpis", "KPIs and cohorts")
    period = s.kpi_period
    out.add(Paragraph(f"Retention as management reads it, per {period}: a customer counts as "
                      f"churned when no purchase has followed for {s.churn_after:g} "
                      f"{s.time_unit}s (declared then), and as reactivated on buying again."))
    if len(kpis):
        out.add(kpi_chart(kpis, period))
        recent = kpis.tail(_TABLE_PERIODS)
        out.add(table(recent, s, f"The last {len(recent)} {period}s (kpis.csv has them all).",
                      columns=["label", "active_start", "new", "reactivated", "churned",
                               "churn_rate", "stock_retention", "growth_rate", "revenue",
                               "revenue_lost_to_churn"],
                      formats={"churn_rate": "percent", "retention_rate": "percent",
                               "stock_retention": "percent", "growth_rate": "percent",
                               "revenue": "money", "revenue_lost_to_churn": "money"},
                      headers={"label": period}))
    segments = _segment_churn(churn_by_segment, kpis)
    if segments is not None:
        out.add(table(segments, s, f"Churn rate by segment over the last {_SEGMENT_PERIODS} "
                      f"complete {period}s (churned / active at each start, pooled); value "
                      "tiers by each customer's trailing 12 months' revenue at the time.",
                      formats={"churn_rate": "percent"}, headers={"by": "segment of"}))
    if cohorts is not None and len(cohorts):
        out.add(cohort_chart(cohorts, period))
    return out

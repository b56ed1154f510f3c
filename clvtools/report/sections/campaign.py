"""The last campaign evaluation: measured against predicted uplift and return per action and
cell (``analyze --evaluation DIR``), when one is given.

:func:`section` is the hook: it takes the evaluation's table as it is (None: no section),
so that wiring ``--evaluation`` needs no change here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...config import Settings
from ..blocks import Paragraph, Section
from ..figures import PALETTE, draw_chart, label_text, percent_axis
from ..tables import table

__all__ = ["section", "uplift_chart"]

#: The columns the chart reads (the table shows whatever the evaluation has).
MEASURED, PREDICTED = "measured_uplift", "predicted_uplift"


def _labels(frame: pd.DataFrame) -> list[str]:
    parts = [c for c in ("action", "cell") if c in frame]
    if not parts:
        return [str(i) for i in range(len(frame))]
    return [label_text(" / ".join(str(v) for v in row))
            for row in frame[parts].itertuples(index=False, name=None)]


def uplift_chart(evaluation: pd.DataFrame):
    """Measured (with its 95 % interval, where given) against predicted uplift per action and
    cell."""
    labels = _labels(evaluation)
    y = np.arange(len(labels))[::-1]
    measured = evaluation[MEASURED].to_numpy(float)

    def draw(fig):
        ax = fig.subplots()
        ax.scatter(evaluation[PREDICTED].to_numpy(float), y, marker="s", s=50,
                   color=PALETTE[1], label="predicted (the plan's assumption)", zorder=3)
        low, high = f"{MEASURED}_lo95", f"{MEASURED}_hi95"
        if low in evaluation and high in evaluation:
            ax.errorbar(measured, y, xerr=[measured - evaluation[low].to_numpy(float),
                                           evaluation[high].to_numpy(float) - measured],
                        fmt="o", color=PALETTE[0], capsize=3, label="measured, 95 % interval")
        else:
            ax.scatter(measured, y, color=PALETTE[0], label="measured", zorder=3)
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(y, labels)
        percent_axis(ax.xaxis)
        ax.set_xlabel("uplift: share of would-be churners kept")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)

    return draw_chart(
        "Last campaign: measured against predicted uplift",
        "Per action and cell, the uplift the control group measured against the one the plan "
        "assumed: where they differ, the next plan should use the measured one.", draw,
        height=min(8.0, 2.2 + 0.4 * len(labels)))


def section(evaluation: pd.DataFrame | None, settings: Settings) -> Section | None:
    """The last campaign evaluation section, or None when no evaluation is given.

    Parameters
    ----------
    evaluation : pandas.DataFrame or None
        One row per action and cell (``action``, ``cell``) with the measured and predicted
        uplift (``measured_uplift``, ``predicted_uplift``, optionally
        ``measured_uplift_lo95``/``_hi95``) and return; any further columns are shown.
    settings : Settings
        The run's settings (the table goes through the report's shareable filter).
    """
    if evaluation is None:
        return None
    out = Section("campaign", "Last campaign evaluation")
    out.add(Paragraph("What the last campaign achieved, measured against its control group, "
                      "next to what its plan predicted."))
    if {MEASURED, PREDICTED} <= set(evaluation.columns):
        # the declared-churned cells have a reactivation rate, no uplift: not on this chart
        charted = evaluation[evaluation[[MEASURED, PREDICTED]].notna().any(axis=1)]
        if len(charted):
            out.add(uplift_chart(charted))
    keys = [c for c in ("action", "cell") if c in evaluation.columns]
    rate_columns = [c for c in evaluation.columns if "uplift" in c or "reactivation" in c]
    rest = [c for c in evaluation.columns if c not in rate_columns]
    # two tables, so that neither runs off a laptop's screen: the rates, then the rest
    if rate_columns:
        counts = [c for c in ("read_out", "treated", "control") if c in evaluation.columns]
        out.add(table(evaluation[keys + counts + rate_columns], settings,
                      "Measured against predicted uplift and reactivation per action and cell.",
                      formats=dict.fromkeys(rate_columns, "percent")))
        rest = keys + [c for c in rest if c not in keys + counts]
    if len(rest) > len(keys):
        out.add(table(evaluation[rest], settings, "Measured against predicted return per action "
                      "and cell, and what the figures allow one to say."))
    return out

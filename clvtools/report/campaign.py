"""The files of ``clvtools evaluate``: what a carried-out campaign measured
(:data:`EVALUATION_FILES` names them and says what each holds)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..pipeline.campaign import CampaignEvaluation
from .output_folder import OWNERSHIP_FILE, check_output_folder
from .outputs import write_folder

__all__ = ["EVALUATION_FILES", "check_evaluation_folder", "write_evaluation"]

#: The files ``clvtools evaluate`` writes, with their meaning.
EVALUATION_FILES = {
    "evaluation.csv": "measured against predicted, per action and cell, per action and in "
                      "total: customers treated and in control, churn, uplift and reactivation "
                      "with 95 % intervals, revenue saved, cost, net benefit, return",
    "evaluation_customers.csv": "every plan customer: action, group, cell and the outcomes "
                                "over the window (purchases, revenue, churned, came back)",
    "measured_settings.toml": "the plan's settings with the measured uplifts and reactivation "
                              "rates, for the next clvtools analyze --config",
    "evaluation.json": "the window, the read-out (final or early), the counts and the notes",
    OWNERSHIP_FILE: "the files this run wrote: proves the folder is clvtools' own",
}


def check_evaluation_folder(out: str | os.PathLike, inputs=()) -> Path:
    """Refuse, before the work, an output folder for evaluate that holds anything else than a
    previous evaluation, or one of its ``inputs`` (the plan's folder, the transactions)."""
    return check_output_folder(out, EVALUATION_FILES, marker="evaluation.json", inputs=inputs)


def _cents(table: pd.DataFrame) -> pd.DataFrame:
    """Money columns (revenue, cost, net benefit) rounded to the cent; rates kept whole."""
    money = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])
             and any(k in c for k in ("revenue", "cost", "net_benefit"))
             and "per_" not in c]
    return table.assign(**{c: table[c].round(2) for c in money})


def write_evaluation(evaluation: CampaignEvaluation, out: str | os.PathLike) -> Path:
    """Write the evaluation's files into ``out`` atomically."""
    contents = {
        "evaluation.csv": lambda: _cents(evaluation.measures),
        "evaluation_customers.csv": lambda: _cents(evaluation.customers),
        "measured_settings.toml": evaluation.measured_settings_toml,
        "evaluation.json": lambda: evaluation.summary,
    }
    return write_folder(contents, out, marker="evaluation.json")

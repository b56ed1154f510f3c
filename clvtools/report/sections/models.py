"""Model fit: the value model's parameters and holdout validation, the churn model's hazard
ratios, proportional-hazards verdicts and out-of-time calibration (what the run validated;
nothing is refitted here)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Paragraph, Section
from ..figures import PALETTE, draw_chart, label_text, log_labels, percent_axis
from ..tables import table
from ._words import horizon, units

__all__ = ["section", "parameters_table", "holdout_frequency_chart", "tracking_chart",
           "forest_chart", "calibration_chart", "churn_drivers_blocks",
           "churn_validation_blocks", "value_holdout_blocks", "value_checks_blocks"]

_PARAMETERS = {"coef": "estimate", "se(coef)": "standard error",
               "lower 95% bound": "95 % lower", "upper 95% bound": "95 % upper"}


def parameters_table(model, name: str, settings):
    """A fitted model's parameters with standard errors and intervals (None without)."""
    summary = getattr(model, "summary", None)
    if not isinstance(summary, pd.DataFrame) or summary.empty:
        return None
    frame = summary.rename_axis("parameter").reset_index()
    covariates = frame["parameter"].astype(str).str.contains(":").any()
    return table(frame, settings, f"{name}: parameters with standard errors and 95 % "
                 f"intervals{' (covariate effects on the log scale)' if covariates else ''}.",
                 headers=_PARAMETERS)


def holdout_frequency_chart(by_frequency: pd.DataFrame, settings):
    """Actual versus expected holdout purchases per customer, by calibration frequency."""
    def draw(fig):
        ax = fig.subplots()
        x = by_frequency["frequency_cal"].to_numpy(float)
        ax.plot(x, by_frequency["frequency_holdout"], "o-", color=PALETTE[0], lw=2,
                label="actual")
        ax.plot(x, by_frequency["model_predictions"], "s--", color=PALETTE[1], lw=2,
                label="expected by the model")
        ax.set_xlabel("repeat purchases in the calibration period (the last bin: that many "
                      "or more)")
        ax.set_ylabel("mean purchases per customer\nin the holdout")
        ax.legend()

    return draw_chart(
        "Holdout validation: purchases by calibration frequency",
        f"The value model refitted without the last {horizon(settings)} predicts each "
        "customer's purchases in them; the two lines are the actual and the predicted mean "
        "per group of customers with the same number of repeat purchases before.", draw,
        height=3.6)


def tracking_chart(by_month: pd.DataFrame, settings):
    """Actual versus expected purchases per month of the holdout (the tracking plot)."""
    def draw(fig):
        ax = fig.subplots()
        x = pd.to_datetime(by_month["start"])
        ax.plot(x, by_month["actual_purchases"], "o-", color=PALETTE[0], lw=2, label="actual")
        ax.plot(x, by_month["expected_purchases"], "s--", color=PALETTE[1], lw=2,
                label="expected by the model")
        ax.set_ylim(0, None)
        ax.set_xlabel("month of the holdout (start date)")
        ax.set_ylabel("purchases per month")
        ax.legend()

    return draw_chart(
        "Holdout validation: purchases per month",
        "The tracking plot: purchases of the calibration period's customers in each month of "
        f"the holdout ({horizon(settings)} after the calibration end), actual against the "
        "refitted model's expectation.", draw, height=3.4)


def forest_chart(drivers: pd.DataFrame):
    """Hazard ratios with their 95 % intervals on a log scale (a forest plot)."""
    rows = drivers.iloc[::-1]
    y = np.arange(len(rows))
    ratio = rows["hazard_ratio"].to_numpy(float)
    low, high = rows["hazard_ratio_lower"].to_numpy(float), rows[
        "hazard_ratio_upper"].to_numpy(float)
    significant = rows["p_value"].to_numpy(float) < 0.05
    labels = [label_text(c) for c in rows["covariate"]]

    def draw(fig):
        ax = fig.subplots()
        colours = np.where(significant, PALETTE[1], "#888888")
        ax.errorbar(ratio, y, xerr=[ratio - low, high - ratio], fmt="none", ecolor=colours,
                    elinewidth=2)
        ax.scatter(ratio, y, c=colours, zorder=3, s=36)
        ax.axvline(1.0, color="black", lw=1)
        ax.set_xscale("log")
        log_labels(ax.xaxis, lambda v: f"{v:g}")
        ax.set_yticks(y, labels)
        ax.set_xlabel("hazard ratio (log scale; above 1: churns sooner)")
        ax.grid(axis="y", visible=False)

    return draw_chart(
        "What drives churn: hazard ratios of the churn model",
        "Each row is one covariate of the Cox model with its 95 % interval; orange ones are "
        "significant at 5 %; for an attribute level, the ratio is against the reference level, "
        "for a number, per unit.", draw, height=min(12.0, 1.6 + 0.32 * len(rows)))


def calibration_chart(calibration: pd.DataFrame, settings):
    """Predicted versus observed churn by decile of predicted risk, out of time."""
    def draw(fig):
        ax = fig.subplots()
        predicted = calibration["predicted"].to_numpy(float)
        observed = calibration["observed"].to_numpy(float)
        ax.plot([0, 1], [0, 1], color="#888888", lw=1, ls="--", label="perfect calibration")
        ax.errorbar(predicted, observed,
                    yerr=[observed - calibration["observed_lower"].to_numpy(float),
                          calibration["observed_upper"].to_numpy(float) - observed],
                    fmt="o", color=PALETTE[0], capsize=3, label="decile of predicted risk")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        percent_axis(ax.xaxis)
        percent_axis(ax.yaxis)
        ax.set_xlabel(f"predicted churn within {horizon(settings)}")
        ax.set_ylabel("observed churn (Kaplan-Meier)")
        ax.legend(loc="upper left")

    return draw_chart(
        "Churn calibration, out of time",
        "The churn model fitted on earlier data scored customers at a later landmark; per "
        "tenth of predicted risk, the observed share declared churned within the horizon, with "
        "its 95 % interval; on the diagonal the probabilities can be read as they are.", draw,
        height=5.0, width=7.0)


def _value_part(r: AnalysisResult, out: Section) -> None:
    s, value = r.settings, r.value
    purchases = value.models.purchases
    if value.choice is not None:
        out.add(Paragraph(value.choice.note))
    name = type(getattr(purchases, "model", purchases)).__name__
    out.add(parameters_table(purchases, f"Purchase model ({name})", s))
    out.add(parameters_table(value.models.spend, "Spend model (Gamma-Gamma)", s))
    for block in value_holdout_blocks(value.holdout, s):
        out.add(block)
    for block in value_checks_blocks(value.checks_table(), s):
        out.add(block)


def value_checks_blocks(checks: pd.DataFrame | None, s) -> list:
    """The value model's checks table (value_checks.csv's rows; none when absent)."""
    if checks is None or not len(checks):
        return []
    return [table(checks, s, "The value model's checks (flagged: worth a look).",
                  formats={"p_value": "p"})]


def value_holdout_blocks(holdout: dict, s) -> list:
    """The value model's holdout table (totals per candidate) and its two charts (by
    calibration frequency, by month), from the ``holdout_*`` tables (none when absent)."""
    blocks = []
    summary = holdout.get("holdout_summary")
    if summary is not None and len(summary):
        blocks.append(table(summary, s, "Holdout totals per candidate purchase model (the "
                            "chosen one marked): actual against expected purchases and "
                            "revenue.",
                            columns=["model", "chosen", "actual_purchases", "expected_purchases",
                                     "actual_revenue", "expected_revenue", "holdout_error",
                                     "p_alive_auc"],
                            formats={"actual_revenue": "money", "expected_revenue": "money"},
                            headers={"p_alive_auc": "P(alive) AUC"}))
    by_frequency = holdout.get("holdout_by_frequency")
    if by_frequency is not None and len(by_frequency):
        blocks.append(holdout_frequency_chart(by_frequency, s))
    by_month = holdout.get("holdout_by_month")
    if by_month is not None and len(by_month):
        blocks.append(tracking_chart(by_month, s))
    return blocks


def _churn_part(r: AnalysisResult, out: Section) -> None:
    s, tables = r.settings, r.risk.tables
    for block in [*churn_drivers_blocks(tables.get("churn_drivers"), s),
                  *churn_validation_blocks(tables, s)]:
        out.add(block)
    agreement = tables.get("churn_agreement")
    if agreement is not None and len(agreement):
        out.add(table(agreement, s, "Agreement of the churn probability with the value "
                      "model's 1 - P(alive) over the live customers (Spearman rank "
                      "correlation).", formats={"mean_churn_probability": "percent",
                                                "mean_one_minus_p_alive": "percent"}))


def churn_drivers_blocks(drivers: pd.DataFrame | None, s) -> list:
    """The churn model's hazard ratios (forest chart) and proportional-hazards checks
    (table), from churn_drivers' table (none when absent)."""
    if drivers is None or not len(drivers):
        return []
    return [forest_chart(drivers),
            table(drivers, s, "The proportional-hazards check of each covariate: "
                  "'violated' means its effect changes over time, and the advice says "
                  "what to do.", columns=["covariate", "hazard_ratio", "p_value",
                                          "ph_p_value", "ph_verdict", "ph_advice"],
                  formats={"p_value": "p", "ph_p_value": "p"},
                  headers={"ph_p_value": "PH p-value", "ph_verdict": "PH verdict",
                           "ph_advice": "advice"})]


def churn_validation_blocks(tables: dict, s) -> list:
    """The churn model's out-of-time validation table and calibration chart, from the
    ``churn_validation`` and ``churn_calibration`` tables (none when absent)."""
    blocks = []
    validation = tables.get("churn_validation")
    if validation is not None and len(validation):
        blocks.append(table(validation, s, "Out-of-time validation of the churn model: "
                            "fitted at the training landmark, scored at the evaluation "
                            "landmark."))
    calibration = tables.get("churn_calibration")
    if calibration is not None and len(calibration):
        blocks.append(calibration_chart(calibration, s))
    return blocks


def section(r: AnalysisResult) -> Section:
    """The model fit section."""
    s = r.settings
    out = Section("models", "Model fit")
    out.add(Paragraph(
        f"Money comes from the value model (purchases and spend, in {units(s)}), risk from "
        "the churn model (a Cox model on landmark survival tables): both are checked here "
        "against data they were not fitted on."))
    _value_part(r, out)
    if r.risk.model is None:
        out.add(Paragraph("No churn model could be fitted: churn probabilities come from the "
                          "value model (see the notes under data quality)."))
    _churn_part(r, out)
    return out

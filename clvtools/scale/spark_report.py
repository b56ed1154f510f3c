"""report.html of a Spark run (:mod:`.spark_run`): the standard report's sections fed the
run's small tables (matrix, KPIs, plan summary, control power, forecast, backtest, the
models), as the chunked run's page is (:mod:`.chunked_report`), and the matrix's figure drawn
from counts binned on the executors (a Spark ``groupBy`` over a fine grid), so that no
per-customer table reaches the driver.

What a Spark run does not compute is said in the page, one line where it would be
(:data:`NOT_COMPUTED`), never silently left out.
"""
from __future__ import annotations

import math

import pandas as pd

from ..report.blocks import Section
from ..report.html import render_page
from ..report.sections import data_quality, forecast, kpis, models, summary, targets
from ..targeting.matrix import CHURNED
from .chunked_report import (
    MATRIX_BINS,
    SURVIVAL_BY_CELL,
    VALUE_CHECKS,
    fitted_models,
    matrix_head,
    stating_not_computed,
    survival_section,
)

__all__ = ["render_spark_report", "spark_matrix_bins", "spark_sections", "NOT_COMPUTED",
           "NOT_COMPUTED_LINE"]

#: What the sentence of each part a Spark run leaves out ends with.
NOT_COMPUTED_LINE = "not computed by the Spark engine: run --engine duckdb"
#: The report's parts a Spark run does not compute, per section id.
NOT_COMPUTED = {
    "summary": ("the three things to do this month",),
    "models": (VALUE_CHECKS, "the churn model's proportional-hazards checks"),
    "survival": (SURVIVAL_BY_CELL,),
    "matrix": ("the P(alive) map", "value concentration (Lorenz curve and 80/20 table)"),
    "targets": ("the sensitivity table", "the contact lists' tables",
                "the targeting evaluation"),
}


def spark_matrix_bins(customers, value_axis: str, bins: int = MATRIX_BINS) -> pd.DataFrame:
    """The live customers counted on a fine grid of churn probability and log value, on the
    executors (the grid of :func:`~clvtools.scale.chunked_report.matrix_bins`).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        One row per customer: ``cell``, ``churn_probability`` and ``value_axis``.
    value_axis : str
        The matrix's value column (money over the horizon).
    bins : int
        Bins on each axis.

    Returns
    -------
    pandas.DataFrame, shape (<= bins ** 2, 3)
        ``churn_probability`` and ``value_axis`` at each non-empty bin's centre (values below
        the smallest positive value, at least 0.01, raised to it as the standard figure does)
        and ``customers``, the bin's count.
    """
    from pyspark.sql import functions as F

    def finite(c):
        return c.isNotNull() & ~F.isnan(c) & (F.abs(c) < F.lit(math.inf))

    risk, value = F.col("churn_probability"), F.col(value_axis)
    live = customers.where((F.col("cell") != CHURNED) & finite(risk) & finite(value)).select(
        risk.alias("risk"), value.alias("value"))
    span = live.agg(F.min(F.when(F.col("value") > 0, F.col("value"))).alias("positive"),
                    F.max("value").alias("largest"), F.count("*").alias("n")).collect()[0]
    if not span["n"]:
        return pd.DataFrame(columns=["churn_probability", value_axis, "customers"])
    low = math.log10(max(0.01, span["positive"] if span["positive"] is not None else 0.01))
    high = math.log10(max(0.01, span["largest"]) * 1.05)
    width = max(high - low, 1e-9)
    i = F.least(F.floor(F.col("risk") * bins), F.lit(bins - 1))
    j = F.least(F.floor((F.log10(F.greatest(F.col("value"), F.lit(10.0 ** low))) - low)
                        / width * bins), F.lit(bins - 1))
    frame = (live.groupBy(i.alias("i"), j.alias("j")).agg(F.count("*").alias("customers"))
             .orderBy("i", "j").toPandas())
    return pd.DataFrame({
        "churn_probability": (frame["i"] + 0.5) / bins,
        value_axis: 10 ** (low + (frame["j"] + 0.5) * (width / bins)),
        "customers": frame["customers"].astype(float)})


def _not_computed(out: Section) -> Section:
    return stating_not_computed(out, NOT_COMPUTED, NOT_COMPUTED_LINE)


def _matrix(run) -> Section:
    return _not_computed(matrix_head(run, spark_matrix_bins(run.customers,
                                                            run.settings.value_axis)))


def _models(run) -> Section:
    out = fitted_models(
        run, f"Fitted on the driver from compressed statistics the executors collected (value "
             f"model chosen: {run.value_model}); the churn model on the landmark table of "
             f"{run.survival_rows:,} rows, or its stratified weighted sample.",
        run.value_holdout)
    for block in models.churn_validation_blocks(run.churn_validation, run.settings):
        out.add(block)
    return _not_computed(out)


def _targets(run) -> Section:
    s = run.settings
    out = Section("targets", "Targets")
    out.add(targets.assumptions(s))
    out.add(targets.plan_figures(run.summary, s))
    out.add(targets.control_power_table(run.control_power, s))
    return _not_computed(out)


def spark_sections(run) -> list[Section]:
    """The page's sections for a Spark run, in the standard page's order."""
    s = run.settings
    return [s_ for s_ in (
        _not_computed(summary.headline_section(s, run.timeline, run.matrix, run.kpis,
                                               run.summary)),
        data_quality.section_from(s, run.data_quality(), list(run.notes), run.timeline),
        _not_computed(kpis.section_from(s, run.kpis, run.cohorts, run.churn_by_segment)),
        _models(run),
        _not_computed(survival_section(s, run.survival_curves)),
        _matrix(run),
        _targets(run),
        forecast.section_from(s, run.forecast, run.backtest),
    ) if s_ is not None]


def render_spark_report(run) -> str:
    """The HTML of a Spark run's report.html.

    Parameters
    ----------
    run : SparkRun
        What the run computed (read only; the matrix's figure counts its customers in Spark).
    """
    return render_page(spark_sections(run), run.log.quality["customers"], run.timeline)

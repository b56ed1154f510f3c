"""report.html of a chunked run (:mod:`.chunked_run`): the standard report's sections fed the
run's small tables (matrix, KPIs, cohorts, plan summary, forecast, backtest, the models), and
the matrix's figure drawn from counts binned in DuckDB over the scored part files, so that no
per-customer table is ever whole in pandas.

What the chunked engine does not compute is said in the page, one line where it would be
(:data:`NOT_COMPUTED`), never silently left out.
"""
from __future__ import annotations

import pandas as pd

from ..data.chunked_plan import parts
from ..data.engine import quote_ident
from ..report.blocks import Note, Paragraph, Section
from ..report.html import render_page
from ..report.sections import data_quality, forecast, kpis, matrix, models, summary, targets
from ..targeting.matrix import CHURNED

__all__ = ["render_chunked_report", "matrix_bins", "NOT_COMPUTED", "NOT_COMPUTED_LINE"]

#: Fine bins on each axis of the matrix's figure, counted in DuckDB; the figure's hexagons
#: (40 across) gather about five of them each, so the picture matches the standard one.
MATRIX_BINS = 200
#: What the sentence of each part the chunked engine leaves out ends with.
NOT_COMPUTED_LINE = "not computed by the chunked engine: run --engine duckdb"
#: The report's parts the chunked engine does not compute, per section id.
NOT_COMPUTED = {
    "summary": ("the three things to do this month",),
    "models": ("the value model's holdout validation and checks",
               "the churn model's proportional-hazards checks, out-of-time validation and "
               "calibration"),
    "survival": ("survival curves",),
    "matrix": ("the P(alive) map", "value concentration (Lorenz curve and 80/20 table)"),
    "targets": ("the sensitivity table", "the contact lists' tables",
                "the targeting evaluation"),
}


def matrix_bins(con, decided: str, value_axis: str, bins: int = MATRIX_BINS) -> pd.DataFrame:
    """The live customers counted on a fine grid of churn probability and log value, in
    DuckDB.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    decided : str
        SQL of the decided part files (``cell``, ``churn_probability``, ``value_axis``).
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
    value = quote_ident(value_axis)
    frame = con.execute(f"""
        WITH live AS (
            SELECT churn_probability AS risk, {value} AS value FROM {decided}
            WHERE cell <> ? AND isfinite(churn_probability) AND isfinite({value})),
        span AS (
            SELECT log10(greatest(0.01, coalesce(min(value) FILTER (WHERE value > 0), 0.01)))
                       AS low,
                   log10(greatest(0.01, max(value)) * 1.05) AS high FROM live)
        SELECT least(floor(risk * {bins}), {bins} - 1) AS i,
               least(floor((log10(greatest(value, pow(10, low))) - low)
                           / greatest(high - low, 1e-9) * {bins}), {bins} - 1) AS j,
               count(*) AS customers, any_value(low) AS low, any_value(high) AS high
        FROM live, span GROUP BY i, j ORDER BY i, j""", [CHURNED]).df()
    width = (frame["high"] - frame["low"]).clip(lower=1e-9) / bins
    return pd.DataFrame({
        "churn_probability": (frame["i"] + 0.5) / bins,
        value_axis: 10 ** (frame["low"] + (frame["j"] + 0.5) * width),
        "customers": frame["customers"].astype(float)})


def _not_computed(out: Section) -> Section:
    for part in NOT_COMPUTED.get(out.id, ()):
        out.add(Note(f"{part[0].upper()}{part[1:]}: {NOT_COMPUTED_LINE}."))
    return out


def _matrix(run) -> Section:
    s, cuts = run.settings, run.cut_points
    out = Section("matrix", "Value and risk")
    out.add(Paragraph(matrix.cuts_in_words(s, cuts["value"], cuts["risk"])))
    binned = matrix_bins(run.log.con, parts(run.work / "decided"), s.value_axis)
    if len(binned):
        out.add(matrix.matrix_chart(binned, s.value_axis, float(cuts["value"]), float(cuts["risk"]),
                             run.matrix, s, weight="customers"))
    out.add(matrix.cells_table(run.matrix, s))
    return _not_computed(out)


def _models(run) -> Section:
    s, scorers = run.settings, run.scorers
    out = Section("models", "Model fit")
    purchases = scorers.value.purchases
    name = type(getattr(purchases, "model", purchases)).__name__
    out.add(Paragraph(f"Fitted on compressed statistics (value model chosen: "
                      f"{run.value_model}); the churn model on the landmark table of "
                      f"{run.survival_rows:,} rows, or its stratified weighted sample."))
    out.add(models.parameters_table(purchases, f"Purchase model ({name})", s))
    out.add(models.parameters_table(scorers.value.spend, "Spend model (Gamma-Gamma)", s))
    if scorers.churn is None:
        out.add(Paragraph("No churn model could be fitted: churn probabilities come from the "
                          "value model (see the notes under data quality)."))
    else:
        out.add(models.parameters_table(scorers.churn, "Churn model (Cox)", s))
    return _not_computed(out)


def _targets(run) -> Section:
    s = run.settings
    out = Section("targets", "Targets")
    out.add(targets.assumptions(s))
    out.add(targets.plan_figures(run.summary, s))
    out.add(targets.control_power_table(run.control_power, s))
    return _not_computed(out)


def chunked_sections(run) -> list[Section]:
    """The page's sections for a chunked run, in the standard page's order."""
    s = run.settings
    quality = run.data_quality()
    return [s_ for s_ in (
        _not_computed(summary.headline_section(s, run.timeline, run.matrix, run.kpis,
                                               run.summary)),
        data_quality.section_from(s, quality, list(run.notes), run.timeline),
        kpis.section_from(s, run.kpis, run.cohorts, run.churn_by_segment),
        _models(run),
        _not_computed(Section("survival", "Survival curves")),
        _matrix(run),
        _targets(run),
        forecast.section_from(s, run.forecast, run.backtest),
    ) if s_ is not None]


def render_chunked_report(run) -> str:
    """The HTML of a chunked run's report.html.

    Parameters
    ----------
    run : ChunkedRun
        What the run computed (read only; the matrix's figure counts its part files).
    """
    return render_page(chunked_sections(run), run.log.quality["customers"], run.timeline)

"""report.html of a chunked run (:mod:`.chunked_run`): the standard report's sections fed the
run's small tables (matrix, KPIs, cohorts, plan summary, sensitivity, forecast, backtest, the
models); the matrix's figure, the P(alive) map and the Lorenz curve drawn from aggregates in
DuckDB over the decided part files (:mod:`.chunked_spread`), the lists' tables from their first
ranks and the three things to do from their totals in SQL, so that no per-customer table is
ever whole in pandas.

What the chunked engine does not compute is said in the page, one line where it would be
(:data:`NOT_COMPUTED`), never silently left out.
"""
from __future__ import annotations

import pandas as pd

from ..data.chunked_plan import parts
from ..data.engine import quote_ident
from ..pipeline.value_checks import checks_table
from ..report.blocks import Items, Note, Paragraph, Section
from ..report.html import render_page
from ..report.sections import (
    data_quality,
    forecast,
    kpis,
    matrix,
    models,
    summary,
    survival,
    targets,
)
from ..targeting.matrix import CHURNED
from .chunked_plan_files import PLAN_TABLE
from .chunked_spread import alive_grid_of, lorenz_curve_of
from .run_files import TARGET_COLUMNS

__all__ = ["render_chunked_report", "matrix_bins", "list_tops", "fitted_models", "matrix_head",
           "stating_not_computed", "survival_section", "NOT_COMPUTED", "NOT_COMPUTED_LINE",
           "SURVIVAL_BY_CELL", "VALUE_CHECKS"]

#: Fine bins on each axis of the matrix's figure, counted in DuckDB; the figure's hexagons
#: (40 across) gather about five of them each, so the picture matches the standard one.
MATRIX_BINS = 200
#: The models section's part a Spark run leaves out (value_checks.csv's table).
VALUE_CHECKS = ("the value model's checks (Gamma-Gamma's spend-frequency correlation, the "
                "purchase model's fit by repeat-purchase count)")
#: The survival section's part that comes with the targeting evaluation (not on Spark).
SURVIVAL_BY_CELL = "the survival curves by matrix cell (with the targeting evaluation)"
#: What the sentence of each part the chunked engine leaves out ends with.
NOT_COMPUTED_LINE = "not computed by the chunked engine: run --engine duckdb"
#: The report's parts the chunked engine does not compute, per section id (none now: the
#: value model's checks are :mod:`.chunked_value_checks`').
NOT_COMPUTED: dict[str, tuple[str, ...]] = {}


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


def stating_not_computed(out: Section, not_computed: dict, line: str) -> Section:
    """``out`` with one note per part of it that an engine leaves out (``not_computed``: the
    parts per section id), each ending with ``line``: never silently missing."""
    for part in not_computed.get(out.id, ()):
        out.add(Note(f"{part[0].upper()}{part[1:]}: {line}."))
    return out


def _not_computed(out: Section) -> Section:
    return stating_not_computed(out, NOT_COMPUTED, NOT_COMPUTED_LINE)


def matrix_head(run, binned: pd.DataFrame) -> Section:
    """The matrix section's words, figure (from ``binned``, :func:`matrix_bins`' counts) and
    cells table, as a chunked or a Spark run has them (``run.settings``, ``cut_points``,
    ``matrix``)."""
    s, cuts = run.settings, run.cut_points
    out = Section("matrix", "Value and risk")
    out.add(Paragraph(matrix.cuts_in_words(s, cuts["value"], cuts["risk"])))
    if len(binned):
        out.add(matrix.matrix_chart(binned, s.value_axis, float(cuts["value"]),
                                    float(cuts["risk"]), run.matrix, s, weight="customers"))
    out.add(matrix.cells_table(run.matrix, s))
    return out


def _matrix(run) -> Section:
    out = matrix_head(run, matrix_bins(run.log.con, parts(run.work / "decided"),
                                       run.settings.value_axis))
    s = run.settings
    grid = alive_grid_of(run.log.con, parts(run.work / "decided"))
    if grid is not None:
        out.add(matrix.p_alive_chart(grid, s))
        out.add(matrix.lorenz_chart(lorenz_curve_of(run.log.con, parts(run.work / "decided")),
                                    s))
    out.add(matrix.concentration_table(run.concentration, s))
    return _not_computed(out)


def fitted_models(run, fitted_on: str, holdout: dict | None = None,
                  checks: pd.DataFrame | None = None) -> Section:
    """The models section's parameter tables, after the sentence ``fitted_on`` (where and on
    what the models were fitted), as a chunked or a Spark run has them (``run.settings``,
    ``scorers``), the value model's ``holdout`` tables and charts and its ``checks``
    (value_checks.csv's rows) after its own, as on the standard page."""
    s, scorers = run.settings, run.scorers
    out = Section("models", "Model fit")
    purchases = scorers.value.purchases
    name = type(getattr(purchases, "model", purchases)).__name__
    out.add(Paragraph(fitted_on))
    out.add(models.parameters_table(purchases, f"Purchase model ({name})", s))
    out.add(models.parameters_table(scorers.value.spend, "Spend model (Gamma-Gamma)", s))
    for block in [*models.value_holdout_blocks(holdout or {}, s),
                  *models.value_checks_blocks(checks, s)]:
        out.add(block)
    if scorers.churn is None:
        out.add(Paragraph("No churn model could be fitted: churn probabilities come from the "
                          "value model (see the notes under data quality)."))
    else:
        out.add(models.parameters_table(scorers.churn, "Churn model (Cox)", s))
    return out


def _models(run) -> Section:
    out = fitted_models(run, f"Fitted on compressed statistics (value model chosen: "
                             f"{run.value_model}); the churn model on the landmark table of "
                             f"{run.survival_rows:,} rows, or its stratified weighted sample.",
                        run.value_holdout, checks_table(run.value_checks, run.value_model))
    s, scorers = run.settings, run.scorers
    drivers = None if scorers.churn is None else scorers.churn.summary.reset_index()
    for block in [*models.churn_drivers_blocks(drivers, s),
                  *models.churn_validation_blocks(run.churn_validation, s)]:
        out.add(block)
    return _not_computed(out)


def list_tops(run) -> tuple:
    """The first :data:`~clvtools.report.sections.targets.TOP` rows of each list, read by
    rank, and the lists' lengths (:func:`~clvtools.report.sections.targets.list_tables`'
    arguments)."""
    con, top = run.log.con, targets.TOP
    push, pull = int(run.summary["push"]), int(run.summary["pull"])
    first = (f"(p.priority_rank <= {top} OR (p.priority_rank > {push} "
             f"AND p.priority_rank <= {push + top}))")
    contacts = con.execute(run.customers_sql(TARGET_COLUMNS, contacts=True, where=first)).df()
    ranked = []
    for table, rank in ((run.lists and run.lists.early_warning, "early_warning_rank"),
                        (run.lists and run.lists.win_back, "win_back_rank")):
        if table is None:
            ranked += [None, None]
            continue
        ranked += [con.execute(f"SELECT * FROM {table} WHERE {rank} <= {top} ORDER BY {rank}"
                               ).df(),
                   con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]]
    return (contacts, {"push": push, "pull": pull}, *ranked)


def _targets(run) -> Section:
    s = run.settings
    out = Section("targets", "Targets")
    out.add(targets.assumptions(s))
    out.add(targets.plan_figures(run.summary, s))
    for block in [*targets.sensitivity_blocks(run.sensitivity, s),
                  *targets.list_tables(s, *list_tops(run))]:
        out.add(block)
    out.add(targets.control_power_table(run.control_power, s))
    targets.evaluation_blocks(run, out)     # the standard section's chart and table
    return _not_computed(out)


def things_to_do(run) -> list[str]:
    """The summary's three things to do this month, from the lists' totals in SQL (the
    standard sentences, :func:`~clvtools.report.sections.summary.things_to_do_from`)."""
    con = run.log.con
    treated = "\"group\" = 'treatment'"
    totals = con.execute(f"""
        SELECT action, count(*), coalesce(sum(expected_net_benefit), 0),
               coalesce(sum(expected_cost), 0)
        FROM {PLAN_TABLE} WHERE {treated} AND action IN ('push', 'pull')
        GROUP BY action""").fetchall()
    by_action = {a: (int(n), float(net), float(cost)) for a, n, net, cost in totals}
    lists = run.lists
    warned = worth = None
    if lists is not None and lists.early_warning is not None:
        warned = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE early_warning_rank <= ?),
                   coalesce(sum(value_at_stake) FILTER (WHERE early_warning_rank <= ?), 0)
            FROM {lists.early_warning}""", [summary.WARNING_TOP] * 2).fetchall()[0]
    if lists is not None and lists.win_back is not None:
        worth = con.execute(f"""
            SELECT count(*) FILTER (WHERE net_benefit > 0),
                   coalesce(sum(lapsed_revenue) FILTER (WHERE net_benefit > 0), 0)
            FROM {lists.win_back}""").fetchall()[0]
    return summary.things_to_do_from(by_action.get("push", (0, 0.0, 0.0)),
                                     by_action.get("pull", (0, 0.0, 0.0)), warned, worth)


def survival_section(s, tables: dict) -> Section:
    """The survival section from a run's curves overall and by segment (``tables``, as
    :func:`~clvtools.report.sections.survival.section_from` takes them), or the section's
    title alone without any."""
    return survival.section_from(s, tables) or Section("survival", "Survival curves")


def _summary(run) -> Section:
    out = summary.headline_section(run.settings, run.timeline, run.matrix, run.kpis,
                                   run.summary)
    todo = things_to_do(run)
    if todo:
        out.add(Items(todo, numbered=True, title=summary.TODO_TITLE))
    return _not_computed(out)


def chunked_sections(run) -> list[Section]:
    """The page's sections for a chunked run, in the standard page's order."""
    s = run.settings
    quality = run.data_quality()
    return [s_ for s_ in (
        _summary(run),
        data_quality.section_from(s, quality, list(run.notes), run.timeline),
        kpis.section_from(s, run.kpis, run.cohorts, run.churn_by_segment),
        _models(run),
        _not_computed(survival_section(run.settings, run.survival_tables())),
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

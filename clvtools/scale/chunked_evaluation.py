"""The chunked run's targeting evaluation out of time (targeting_evaluation.csv,
profit_curve.csv), as the standard engine's (:mod:`clvtools.pipeline.evaluation`, whose
module text defines every figure) without a whole-base pandas table.

- The value model is refitted at the holdout start on the compressed rows of the RFM table
  there (a DuckDB table, as the run's own fit); the churn model is the out-of-time
  validation's (:func:`~.chunked_validation.chunked_churn_validation` returns it), scoring the
  landmark rows at the holdout start with the structural term fitted there.
- Pass 1, a chunk of customers at a time: the value there (the standard engine's
  :func:`~clvtools.btyd.clv.revenue_by_month`, undiscounted), churn probability, outcomes
  (declared churn within the horizon, realised revenue) and revenue at risk, to Parquet part
  files. The matrix's cut points are DuckDB's exact quantiles over them.
- Pass 2, a part at a time: the cells and economics (:func:`~clvtools.pipeline.scoring.
  decide_chunk`), the realised net benefits, the rankings' scores (the random one drawn from
  the same seeded stream, chunk after chunk) and each customer's profit line. The model's
  plan is the run's allocation in DuckDB (a push capacity by a global ranking, a budget by the
  standard knapsack: :func:`~.chunked_run.store_evaluated_plan`).
- The measures: per ranking, the groups of tied scores summed in DuckDB (MP, EMPC, lift and
  Gini finished by :func:`~clvtools.targeting.evaluation.measures_of_groups`; the cut-off
  lines summed by group rather than by customer agree with the standard figures to about
  1e-12 relative); the naive plans' figures by ``row_number()`` over the ranking; the profit
  curve from the ranking's rows streamed in order from DuckDB and summed as numpy sums them
  (the same figures bit for bit). Every sum in DuckDB is exact (money in micro-units, the
  computed figures in units of 1e-12: :mod:`clvtools.data.money`), so that
  targeting_evaluation.csv is the same bit for bit however many threads DuckDB runs.
- The survival curves by matrix cell at the evaluation date: the customers counted per cell,
  duration and event in DuckDB, finished by the standard engine's Kaplan-Meier
  (:func:`~clvtools.pipeline.evaluation.survival_by_cell`).

What it holds in memory beyond a chunk: per ranking, three numbers per group of tied scores
(at most 24 bytes a customer, one ranking at a time).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..btyd.clv import revenue_by_month
from ..config import Settings, parse_cut
from ..data.chunked_plan import parts, quantile, write_part
from ..data.chunked_tables import (
    chunk_bounds,
    chunk_frame,
    compressed_rows,
    rfm_at_sql,
    store_rfm,
)
from ..data.decision_flags import flags_of_chunk
from ..data.engine import quote_ident
from ..data.money import figure_sum, money_sum
from ..data.survival_tables import landmark_table
from ..pipeline.churn_fit import known_levels
from ..pipeline.evaluation import (
    NO_EVALUATION,
    RANKINGS,
    EvaluationResult,
    evaluation_note,
    evaluation_table,
    plan_figures,
    survival_by_cell,
)
from ..pipeline.inputs import CONTACTABLE
from ..pipeline.scoring import bound_models, decide_chunk
from ..pipeline.structural import STRUCTURAL_COLUMN, add_recency_band
from ..pipeline.value_models import expected_spend
from ..targeting.allocation import Action, action_economics
from ..targeting.evaluation import curve_frame, measures_of_groups, targeting_profit_lines
from ..targeting.revenue_at_risk import revenue_at_risk
from .compressed_fit import fit_value_on_table, structural_at_landmark, structural_on_rows

__all__ = ["chunked_evaluation", "EVALUATION_PLAN", "EVALUATION_RFM", "EVALUATION_LANDMARKS"]

#: The DuckDB tables of the RFM at the holdout start (kept for the backtest's first origin,
#: which its caller drops), and of the landmark rows there (the main training table's rows
#: at that landmark when the run kept them, else queried here).
EVALUATION_RFM, EVALUATION_LANDMARKS = "chunked_eval_rfm", "chunked_eval_landmarks"
_RFM, _LANDMARKS, _REVENUE = EVALUATION_RFM, EVALUATION_LANDMARKS, "chunked_eval_revenue"
#: The DuckDB table of the evaluation's model plan (dropped once read).
EVALUATION_PLAN = "chunked_eval_plan"
#: Each ranking's score column in the evaluation's part files.
_SCORES = {"model": "net_benefit_push", "churn_probability": "churn_probability",
           "revenue_at_risk": "revenue_at_risk", "random": "random_score"}


def chunked_evaluation(con, log, timeline, settings: Settings, *, churn, value_model: str,
                       covariates: str | None, attributes, push: Action, pull: Action,
                       chunk_rows: int, work: Path, store_plan,
                       flags: str | None = None
                       ) -> tuple[EvaluationResult, tuple[str, object] | None]:
    """targeting_evaluation.csv and profit_curve.csv of a chunked run.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    log : TransactionLog
    timeline : Timeline
        Its holdout start (the evaluation date) and observation end.
    settings : Settings
    churn : ChurnModel or None
        The out-of-time validation's model (fitted at the validation's training landmark).
    value_model : str
        The purchase model the run fitted (refitted at the holdout start).
    covariates : str or None
        SQL of the attributes the purchase model takes, one row per customer.
    attributes : CustomerAttributes or None
        Joined to the landmark rows as the churn model's covariates.
    push, pull : Action
    chunk_rows : int
        Customers handled at a time.
    work : pathlib.Path
        A scratch folder for the part files (removed here).
    store_plan : callable
        ``store_plan(decided_sql, into)``: the run's allocation of the decided parts.
    flags : str, optional
        The table of the customers file's ``contactable`` flags
        (:func:`~clvtools.data.decision_flags.store_yes_no_flags`); None: everyone may be
        contacted.

    Returns
    -------
    (EvaluationResult, (str, ValueModels) or None)
        ``measures``, ``profit_curve`` and ``survival_by_cell`` (``customers`` is None: not
        kept a chunk at a time); and the RFM table at the holdout start with
        the value models refitted on it (the backtest's first origin is that date: the
        standard backtest reuses this refit too), whose table the caller drops.
    """
    s = settings
    if churn is None or timeline.holdout_start is None:
        return EvaluationResult(notes=[NO_EVALUATION]), None
    start = timeline.holdout_start
    fitted = None
    try:
        _store_inputs(con, log, timeline, s, attributes)
        models, _, _ = fit_value_on_table(con, _RFM, covariates, value_model, log.has_amounts)
        fitted = (_RFM, models)
        structural = None
        if STRUCTURAL_COLUMN in churn.params_.index:
            structural = structural_on_rows(compressed_rows(
                con, f"({rfm_at_sql(log.until(start), time_unit=s.time_unit)})",
                ["frequency", "recency", "T"]))
        bounds = chunk_bounds(con, _RFM, chunk_rows)
        for k in range(len(bounds)):
            chunk = _scored_chunk(con, bounds, k, models, churn, structural, timeline, s,
                                  covariates)
            chunk[CONTACTABLE] = flags_of_chunk(con, flags, CONTACTABLE, chunk.index, bounds,
                                                k)
            write_part(chunk, work / "eval_scored", k)
    finally:
        for table in (_LANDMARKS, _REVENUE) if fitted else (_RFM, _LANDMARKS, _REVENUE):
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    try:
        return _evaluate(con, work, timeline, s, push, pull, store_plan), fitted
    finally:
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(EVALUATION_PLAN)}")
        shutil.rmtree(work / "eval_scored", ignore_errors=True)
        shutil.rmtree(work / "eval_decided", ignore_errors=True)


def _store_inputs(con, log, timeline, s: Settings, attributes) -> None:
    """The RFM at the holdout start, each customer's revenue after it and the landmark rows
    there, as DuckDB tables."""
    start = timeline.holdout_start
    store_rfm(log, time_unit=s.time_unit, into=_RFM, at=start)
    total = money_sum("amount") if log.has_amounts else "count(*)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {quote_ident(_REVENUE)} AS
        SELECT r.customer_id, coalesce(v.revenue, 0.0) AS realised_revenue
        FROM {quote_ident(_RFM)} AS r LEFT JOIN (
            SELECT customer_id, {total}::DOUBLE AS revenue FROM {log.occasions}
            WHERE date > $start AND date <= $end GROUP BY customer_id) AS v
        ON r.customer_id = v.customer_id""",
                {"start": start, "end": log.observation_end})
    kept = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                       [_LANDMARKS]).fetchone()[0]
    if not kept:
        landmark_table(log, landmarks=[start], attributes=attributes,
                       churn_after=s.churn_after, time_unit=s.time_unit, into=_LANDMARKS)


def _scored_chunk(con, bounds, k, models, churn, structural, timeline, s: Settings,
                  covariates) -> pd.DataFrame:
    """One chunk's customers live at the holdout start: value there, churn probability,
    outcomes and revenue at risk (the standard engine's ``customers`` before its plan)."""
    rfm = chunk_frame(con, _RFM, bounds, k)
    revenue = chunk_frame(con, _REVENUE, bounds, k)
    attrs = None if covariates is None else chunk_frame(con, covariates, bounds, k)
    bound = bound_models(models, rfm, attrs)
    x, tx, age = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    # as evaluate_candidate values each customer of the holdout window: undiscounted
    months = revenue_by_month(bound.purchases, x, tx, age, expected_spend(bound, rfm),
                              s.horizon, timeline.unit_days, 0.0)
    p_alive = months.p_alive if months.p_alive is not None else np.asarray(
        bound.purchases.conditional_probability_alive(x, tx, age), float)
    holdout = pd.DataFrame({
        "p_alive": p_alive, "revenue_if_retained": months.revenue_if_retained.sum(axis=1),
        "expected_revenue": months.expected_revenue.sum(axis=1),
        "realised_revenue": revenue["realised_revenue"].reindex(rfm.index).to_numpy(float),
    }, index=rfm.index)
    rows = chunk_frame(con, _LANDMARKS, bounds, k).reset_index()
    if structural is not None and len(rows):
        ids = rows["customer_id"].astype(str).to_numpy()
        rows[STRUCTURAL_COLUMN] = structural_at_landmark(
            structural, rfm, ids, timeline.holdout_start, horizon=s.horizon,
            churn_after=s.churn_after, seed=s.seed)
    rows, _ = known_levels(churn, add_recency_band(rows, s.churn_after))
    probability = (churn.churn_probability(rows, s.horizon, source="scoring table")
                   if len(rows) else pd.Series([], dtype=float))
    scores = pd.DataFrame({
        "churn_probability": np.asarray(probability, dtype=float),
        "churned": ((rows["event"] == 1) & (rows["duration"] <= s.horizon)).astype(int)
        .to_numpy(),
        # time to the declaration (or censoring) after the landmark, for the curves by cell
        "duration": rows["duration"].to_numpy(dtype=float),
        "event": rows["event"].to_numpy(dtype=int),
    }, index=pd.Index(rows["customer_id"].astype(str).to_numpy(), name="customer_id"))
    customers = scores.join(holdout, how="inner")
    at_risk = revenue_at_risk(customers["p_alive"], customers["revenue_if_retained"],
                              customers["expected_revenue"])
    return pd.concat([customers, at_risk], axis=1)


def _evaluate(con, work: Path, timeline, s: Settings, push: Action, pull: Action,
              store_plan) -> EvaluationResult:
    """Cells, plans, realised figures and the measures over the scored parts."""
    scored = parts(work / "eval_scored")
    n = int(con.execute(f"SELECT count(*) FROM {scored}").fetchone()[0])
    if n == 0:
        return EvaluationResult(notes=[NO_EVALUATION])
    cuts = {}
    for name, column, cut in (("value", s.value_axis, parse_cut(s.value_cut)),
                              ("risk", "churn_probability", parse_cut(s.risk_cut))):
        kind, number = cut if isinstance(cut, tuple) else ("absolute", cut)
        cuts[name] = float(number) if kind == "absolute" else quantile(con, scored, column,
                                                                       number)
    rng = np.random.default_rng(s.seed)   # the standard draw, in the customers' order
    offset = 0
    for k, part in enumerate(sorted((work / "eval_scored").glob("*.parquet"))):
        chunk = pq.read_table(part).to_pandas().set_index("customer_id")
        write_part(_decided_chunk(chunk, cuts, s, push, pull, rng, offset),
                    work / "eval_decided", k)
        offset += len(chunk)
    decided = parts(work / "eval_decided")
    store_plan(decided, EVALUATION_PLAN)
    rows = (f"(SELECT d.*, p.action FROM {decided} AS d JOIN {quote_ident(EVALUATION_PLAN)} "
            "AS p ON d.customer_id = p.customer_id)")
    n_push, n_pull = (int(con.execute(f"SELECT count(*) FROM {quote_ident(EVALUATION_PLAN)} "
                                      "WHERE action = ?", [a]).fetchone()[0])
                      for a in ("push", "pull"))
    # money and figures summed exactly (data.money): the file is the same on any threads
    base = con.execute(f"""SELECT sum(churned)::DOUBLE, avg(churned),
        {money_sum("realised_revenue")}, {figure_sum("value_lost")},
        {figure_sum("uplift")} / count(*) FROM {decided}""").fetchone()
    uplift = float(base[4])
    accept = float(np.clip(uplift, 1e-6, 1 - 1e-6))
    measures, plans, curves = [], {}, []
    shares = np.linspace(0.0, 1.0, 101)
    k = np.round(shares * n).astype(int)
    for name in RANKINGS:
        score = _SCORES[name]
        groups = con.execute(f"""SELECT count(*), sum(churned)::DOUBLE, {figure_sum("slope")},
            {figure_sum("intercept")} FROM {decided} GROUP BY {score} ORDER BY {score} DESC
            """).fetchnumpy()
        values = measures_of_groups(*(groups[c] for c in groups), accept_rate=accept)
        measures += [{"ranking": name, "measure": m, "value": v} for m, v in values.items()]
        plans[name] = _plan_figures(con, rows, name, score, n_push, n_pull)
        curves.append(_curve(con, decided, name, score, shares, k, float(base[0])))
    table = evaluation_table(pd.DataFrame(measures), plans, {
        "customers": n, "churners": float(base[0]), "churn_rate": float(base[1]),
        "realised_revenue": float(base[2]), "value_lost": float(base[3]),
        "mean_push_uplift": uplift}, timeline)
    return EvaluationResult(table, pd.concat(curves, ignore_index=True), None,
                            _survival_by_cell(con, decided), [evaluation_note(timeline, n)])


def _survival_by_cell(con, decided: str) -> dict[str, pd.DataFrame]:
    """The standard curves by matrix cell from the customers counted per cell, duration
    and event in DuckDB (:func:`~clvtools.survival.kaplan_meier.segment_rows`' rows: a
    missing cell labelled as there; a few hundred rows a cell)."""
    rows = con.execute(f"""
        SELECT coalesce(cell::VARCHAR, '<missing>') AS segment, duration::DOUBLE AS duration,
               event::DOUBLE AS event, count(*) AS "rows", count(*) AS weight
        FROM {decided} GROUP BY ALL ORDER BY ALL""").df()
    cells = con.execute(f"SELECT count(DISTINCT cell) FROM {decided}").fetchone()[0]
    return survival_by_cell(rows, cells > 1)


def _decided_chunk(chunk: pd.DataFrame, cuts, s: Settings, push: Action, pull: Action, rng,
                   offset: int) -> pd.DataFrame:
    """A part's cells and economics (the plan's inputs), its realised net benefits, the
    rankings' scores and each customer's profit line (standard engine's formulas)."""
    decided = chunk.join(decide_chunk(chunk, cut_points=cuts, value_axis=s.value_axis,
                                      push=push, pull=pull, margin=s.margin, offer=s.offer,
                                      contactable=chunk[CONTACTABLE].to_numpy(bool)))
    churned = decided["churned"].to_numpy(dtype=int)
    value_lost = np.where(churned == 1, np.maximum(
        decided["revenue_if_retained"] - decided["realised_revenue"], 0.0), 0.0)
    at_risk = decided["revenue_at_risk"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(at_risk > 0, decided["preventable_revenue"].to_numpy(float) / at_risk,
                         1.0)
    outcome = decided.assign(churn_probability=churned.astype(float),
                             preventable_revenue=value_lost * share,
                             lapsed_revenue=value_lost * (1.0 - share))
    realised = {a.name: action_economics(outcome, a, margin=s.margin, offer=s.offer)
                ["net_benefit"].to_numpy() for a in (push, pull)}
    slope, intercept = targeting_profit_lines(churned, s.margin * value_lost,
                                              incentive_cost=push.incentive,
                                              contact_cost=push.cost, offer=s.offer)
    return decided.assign(
        value_lost=value_lost, realised_push=realised[push.name],
        realised_pull=realised[pull.name], uplift=np.asarray(push.uplift_of(decided), float),
        random_score=rng.random(len(decided)), pos=offset + np.arange(len(decided)),
        slope=slope, intercept=intercept)


def _plan_figures(con, rows: str, name: str, score: str, n_push: int, n_pull: int) -> dict:
    """:func:`~clvtools.pipeline.evaluation.plan_figures` of the model's plan, or of the
    naive plan of the same size by ``score`` (push to the top contactable customers, pull
    to the next; ties in the customers' order)."""
    if name == "model":
        action = "action"
        source = rows
    else:
        action = (f"CASE WHEN r <= {n_push} THEN 'push' WHEN r <= {n_push + n_pull} "
                  "THEN 'pull' ELSE 'none' END")
        source = (f"(SELECT *, row_number() OVER (ORDER BY {score} DESC, pos) AS r "
                  f"FROM {rows} WHERE {CONTACTABLE})")

    def taken(figure: str) -> str:   # the planned action's figure, NULL for none
        return (f"CASE planned WHEN 'push' THEN {figure}_push "
                f"WHEN 'pull' THEN {figure}_pull END")

    realised, expected, churners = con.execute(f"""
        WITH planned AS (SELECT *, {action} AS planned FROM {source})
        SELECT coalesce({figure_sum(taken("realised"))}, 0.0),
               coalesce({figure_sum(taken("net_benefit"))}, 0.0),
               coalesce(sum(CASE WHEN planned = 'push' THEN churned END), 0)::DOUBLE
        FROM planned""").fetchone()
    return plan_figures(float(realised), float(expected), n_push, n_pull, float(churners))


def _curve(con, decided: str, name: str, score: str, shares, k, churners: float
           ) -> pd.DataFrame:
    """One ranking's profit curve: its rows streamed in order, summed as numpy's cumulative
    sum adds them (each batch continues the running sum)."""
    # a cursor of its own: the streamed result must not be left open on the run's connection
    cursor = con.cursor()
    try:
        return _curve_of(cursor.sql(f"SELECT realised_push, churned::DOUBLE AS churned FROM "
                                    f"{decided} ORDER BY {score} DESC, pos"
                                    ).to_arrow_reader(1_000_000), name, shares, k, churners)
    finally:
        cursor.close()


def _curve_of(reader, name, shares, k, churners) -> pd.DataFrame:
    net, caught = np.zeros(len(k)), np.zeros(len(k))
    done, carry = 0, np.zeros(2)
    for batch in reader:
        size = batch.num_rows
        if not size:
            continue
        sums = [np.cumsum(np.r_[carry[i], batch.column(i).to_numpy()])[1:] for i in range(2)]
        inside = (k > done) & (k <= done + size)
        for i, target in enumerate((net, caught)):
            target[inside] = sums[i][k[inside] - done - 1]
        carry = np.array([sums[0][-1], sums[1][-1]])
        done += size
    return curve_frame(name, shares, k, net, caught, churners)

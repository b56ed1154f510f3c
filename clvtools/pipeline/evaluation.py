"""Step 6, the targeting evaluated out of time: the plan the run would have chosen one
horizon before the observation end, against what followed and against naive plans.

Dates. The evaluation date is the value model's holdout start (one horizon before the end):
the value step's holdout refit gives each customer's value there
(:func:`~clvtools.pipeline.holdout.evaluate_candidate`), and the risk step's out-of-time churn
model (fitted at the validation's training landmark, outcomes censored at its evaluation
landmark, 1.1 horizons before the end) scores the customers live at that date
(:func:`~clvtools.pipeline.risk.validate_churn_model`); neither saw anything after the
evaluation date. Nothing is fitted here.

What followed, per customer live at the evaluation date:

- ``churned``: churn declared within the horizon after it (the churn rule; fully observed,
  since the window ends at the observation end);
- ``realised_revenue``: revenue over that horizon (nominal, as the holdout's value);
- ``value_lost``: for a churner, the revenue if retained (value model, at the evaluation
  date, undiscounted) less the revenue they still brought before leaving, at least 0; 0 for
  the others. It is the realised counterpart of the revenue at risk.

The realised net benefit of an action is the allocation's one formula
(:func:`~clvtools.targeting.allocation.action_economics`) with the outcome in place of the
forecast: churn probability = ``churned`` (0 or 1), and the value lost split as the plan split
the customer's revenue at risk, ``s = preventable / (preventable + lapsed)``: preventable
revenue = ``s * value_lost`` (kept with the uplift u), lapsed revenue = ``(1 - s) *
value_lost`` (won back with the reactivation rate w; a customer the model thought already
gone cannot be kept by a retention offer, only won back). So a pushed churner is worth
``margin * (u s + w (1 - s)) * value_lost - f - d * u`` and a pushed stayer ``-f - d`` (a
conditional offer). Crediting the uplift on the whole value lost instead would reward a ranking
for targeting customers who had already quietly left. MP and EMPC use the same numbers: the
customer's value is ``margin * value_lost``, the incentive and contact cost are push's, and
the acceptance rate is Beta with the mean push uplift
(:data:`~clvtools.targeting.evaluation.ACCEPTANCE_CONCENTRATION`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings, parse_cut
from ..survival.kaplan_meier import km_curves, logrank_tests, median_survival, segment_rows
from ..targeting.allocation import allocate, economics_arrays
from ..targeting.evaluation import (
    ACCEPTANCE_CONCENTRATION,
    plan_by_ranking,
    profit_curve,
    ranking_measures,
    ranking_order,
)
from ..targeting.matrix import value_risk_matrix
from ..targeting.revenue_at_risk import revenue_at_risk
from .inputs import Inputs
from .risk import RiskResult
from .targets import _action, _contactable
from .timeline import Timeline
from .value import ValueResult

__all__ = ["EvaluationResult", "RANKINGS", "NO_EVALUATION", "evaluation_step", "plan_figures",
           "evaluation_table", "evaluation_note", "survival_by_cell",
           "survival_with_cells"]

#: The note of a run whose history is too short for the evaluation.
NO_EVALUATION = ("No targeting evaluation: it needs the value model's holdout and the churn "
                 "model's out-of-time validation (a history of about 2.35 horizons).")

#: The ``by`` label of the survival curves by matrix cell.
BY_CELL = "matrix cell"

#: The rankings compared: the model's plan (expected net benefit of push, from churn
#: probability and value together) and the naive ones.
RANKINGS = ("model", "churn_probability", "revenue_at_risk", "random")


@dataclass
class EvaluationResult:
    """The targeting evaluated on the horizon that followed an earlier date.

    Attributes
    ----------
    measures : pandas.DataFrame or None
        ``targeting_evaluation.csv``: ``evaluation_date``, ``outcome_end``, ``ranking``
        (:data:`RANKINGS`, or ``all`` for the base's figures), ``measure``, ``value``.
    profit_curve : pandas.DataFrame or None
        ``profit_curve.csv``: realised net benefit of pushing the top share of each ranking.
    customers : pandas.DataFrame or None
        Per customer live at the evaluation date: scores, outcomes, realised net benefits and
        each plan's action (for the API and the tests; not a file).
    survival_by_cell : dict of pandas.DataFrame
        Kaplan-Meier curves to declared churn after the evaluation date by the matrix cell
        the customer was in then, their medians and the log-rank tests between the cells
        (``by`` = :data:`BY_CELL`; the shapes of the risk step's segment curves, which the
        files and the report stack them with).
    notes : list of str
    """

    measures: pd.DataFrame | None = None
    profit_curve: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    survival_by_cell: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def evaluation_step(value: ValueResult, risk: RiskResult, inputs: Inputs, timeline: Timeline,
                    settings: Settings) -> EvaluationResult:
    """Evaluate the targeting at the holdout start against what followed (see the module)."""
    s = settings
    holdout = value.holdout.get("holdout_customers")
    scores = risk.tables.get("churn_scores_at_holdout")
    if holdout is None or scores is None or scores.empty:
        return EvaluationResult(notes=[NO_EVALUATION])
    customers = scores.join(holdout, how="inner").rename_axis("customer_id").reset_index()
    at_risk = revenue_at_risk(customers["p_alive"], customers["revenue_if_retained"],
                              customers["expected_revenue"])
    customers = pd.concat([customers, at_risk], axis=1)
    customers["cell"] = value_risk_matrix(
        customers[s.value_axis], customers["churn_probability"],
        value_cut=parse_cut(s.value_cut), risk_cut=parse_cut(s.risk_cut))["cell"].to_numpy()
    aside = inputs.attributes.set_aside if inputs.attributes is not None else None
    push, pull = (_action(s, name, customers, aside) for name in ("push", "pull"))
    contactable = _contactable(customers, aside)
    plan = allocate(customers, push, pull, margin=s.margin, offer=s.offer,
                    capacity=s.push_capacity, push_budget=s.push_budget,
                    total_budget=s.total_budget, contactable=contactable).plan

    churned = customers["churned"].to_numpy(dtype=int)
    customers["value_lost"] = np.where(
        churned == 1, np.maximum(customers["revenue_if_retained"]
                                 - customers["realised_revenue"], 0.0), 0.0)
    # a churner's lost value splits as the plan's economics split the revenue at risk: the
    # preventable part (kept with the uplift) and the lapsed part (won back with the
    # reactivation rate), so that a plan is judged by the accounting it was chosen by
    at_risk = customers["revenue_at_risk"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(at_risk > 0, customers["preventable_revenue"].to_numpy(float) / at_risk,
                         1.0)
    # the columns the economics read (ECONOMICS_COLUMNS), not a copy of the whole table
    value_lost = customers["value_lost"].to_numpy(dtype=float)
    outcome = pd.DataFrame({"churn_probability": churned.astype(float),
                            "preventable_revenue": value_lost * share,
                            "lapsed_revenue": value_lost * (1.0 - share),
                            "cell": customers["cell"].to_numpy()}, index=customers.index)
    realised = {a.name: economics_arrays(outcome, a, margin=s.margin, offer=s.offer)[2]
                for a in (push, pull)}
    expected = {"push": plan["net_benefit_push"].to_numpy(),
                "pull": plan["net_benefit_pull"].to_numpy()}
    rankings = {
        "model": expected["push"],
        "churn_probability": customers["churn_probability"].to_numpy(float),
        "revenue_at_risk": customers["revenue_at_risk"].to_numpy(float),
        "random": np.random.default_rng(s.seed).random(len(customers)),
    }
    orders = {name: ranking_order(score) for name, score in rankings.items()}  # sorted once
    # object arrays of the plan's own label objects (a str array in a frame would become a
    # str object per row: 4 columns of them were 0.1 GB at a million customers)
    actions = {"model": plan["action"].to_numpy(dtype=object)}
    n_push, n_pull = (int((actions["model"] == a).sum()) for a in ("push", "pull"))
    for name in RANKINGS[1:]:
        actions[name] = plan_by_ranking(rankings[name], push=n_push, pull=n_pull,
                                        eligible=contactable, order=orders[name])
    uplift = push.uplift_of(customers)
    measures = ranking_measures(churned, rankings, clv=s.margin * customers["value_lost"],
                                incentive_cost=push.incentive, contact_cost=push.cost,
                                accept_rate=float(np.clip(uplift.mean(), 1e-6, 1 - 1e-6)),
                                offer=s.offer, orders=orders)
    plans = {}
    for name in RANKINGS:
        action = actions[name]
        customers[f"action_{name}"] = action
        # each label compared once (object arrays: a string comparison per row)
        pushed, pulled = action == "push", action == "pull"
        plans[name] = plan_figures(_taken(pushed, pulled, realised),
                                   _taken(pushed, pulled, expected), n_push, n_pull,
                                   float(churned[pushed].sum()))
    base = {"customers": len(customers), "churners": float(churned.sum()),
            "churn_rate": float(churned.mean()) if len(churned) else np.nan,
            "realised_revenue": float(customers["realised_revenue"].sum()),
            "value_lost": float(customers["value_lost"].sum()),
            "mean_push_uplift": float(uplift.mean())}
    table = evaluation_table(measures, plans, base, timeline)
    curve = profit_curve(realised["push"], rankings, y_true=churned, orders=orders)
    customers["realised_net_benefit_push"] = realised["push"]
    customers["realised_net_benefit_pull"] = realised["pull"]
    note = evaluation_note(timeline, len(customers))
    return EvaluationResult(table, curve, customers, _survival_by_cell(customers), [note])


def plan_figures(realised: float, expected: float, pushed: int, pulled: int,
                 churners_pushed: float) -> dict[str, float]:
    """One plan's rows of targeting_evaluation.csv: its realised and expected net benefit
    (currency), the customers it pushes and pulls and the churners among those pushed."""
    return {"realised_net_benefit": realised, "expected_net_benefit": expected,
            "customers_pushed": pushed, "customers_pulled": pulled,
            "churners_pushed": churners_pushed}


def evaluation_table(measures: pd.DataFrame, plans: dict[str, dict], base: dict,
                     timeline: Timeline) -> pd.DataFrame:
    """targeting_evaluation.csv from its parts (shared by the standard and chunked runs).

    Parameters
    ----------
    measures : pandas.DataFrame
        :func:`~clvtools.targeting.evaluation.ranking_measures`' rows.
    plans : dict of str to dict
        Per ranking (:data:`RANKINGS`' order), :func:`plan_figures`.
    base : dict
        The base's figures: ``customers``, ``churners``, ``churn_rate``,
        ``realised_revenue``, ``value_lost``, ``mean_push_uplift``.
    timeline : Timeline
        Its holdout start (the evaluation date) and observation end.
    """
    rows = [measures]
    rows += [pd.DataFrame({"ranking": name, "measure": list(figures),
                           "value": list(figures.values())}) for name, figures in plans.items()]
    base = {**base, "acceptance_concentration": ACCEPTANCE_CONCENTRATION}
    rows.append(pd.DataFrame({"ranking": "all", "measure": list(base),
                              "value": list(base.values())}))
    table = pd.concat(rows, ignore_index=True)
    table.insert(0, "evaluation_date", timeline.holdout_start)
    table.insert(1, "outcome_end", timeline.observation_end)
    return table


def evaluation_note(timeline: Timeline, customers: int) -> str:
    """The run's note on its targeting evaluation of ``customers`` customers."""
    return (f"Targeting evaluated out of time: the plan chosen at {timeline.holdout_start} "
            f"(value model refitted there, churn model fitted at "
            f"{timeline.validation_training}) against churn and revenue up to "
            f"{timeline.observation_end}, {customers:,} customers live then.")


def _survival_by_cell(customers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Kaplan-Meier curves by the matrix cell at the evaluation date (out of time: the cells
    were drawn before the churn they are compared with happened)."""
    frame = customers[["duration", "event", "cell"]].rename(columns={"cell": BY_CELL})
    return survival_by_cell(segment_rows(frame, BY_CELL), frame[BY_CELL].nunique() > 1)


def survival_by_cell(rows: pd.DataFrame, tested: bool) -> dict[str, pd.DataFrame]:
    """:attr:`EvaluationResult.survival_by_cell` from the customers' rows compressed per
    cell, duration and event (shared by the standard and chunked runs).

    Parameters
    ----------
    rows : pandas.DataFrame
        :func:`~clvtools.survival.kaplan_meier.segment_rows`' columns (``segment`` the cell,
        ``duration`` in time units, ``event``, ``rows``, ``weight``), sorted; from the
        customers' frame, or counted by an engine.
    tested : bool
        Whether the customers are in more than one cell (then the log-rank tests).

    Returns
    -------
    dict of pandas.DataFrame
        ``survival_curves``, ``median_time_to_churn`` and, when tested, ``logrank_tests``,
        each with ``by`` (:data:`BY_CELL`) first; empty without rows.
    """
    if rows.empty:
        return {}
    out = {"survival_curves": km_curves(None, rows=rows),
           "median_time_to_churn": median_survival(None, rows=rows)}
    if tested:
        out["logrank_tests"] = logrank_tests(None, None, rows=rows)
    return {name: frame.assign(by=BY_CELL)[["by", *frame.columns]]
            for name, frame in out.items()}


def survival_with_cells(tables: dict, by_cell: dict) -> dict[str, pd.DataFrame]:
    """survival_curves.csv, median_time_to_churn.csv and logrank_tests.csv: the curves
    overall and by categorical attribute (``tables``, the risk step's or an engine's) with
    the curves by matrix cell (``by_cell``, :attr:`EvaluationResult.survival_by_cell`)
    stacked under them (same columns, ``by`` says which); a name neither has is left out."""
    out = {}
    for name in ("survival_curves", "median_time_to_churn", "logrank_tests"):
        parts = [f for f in (tables.get(name), by_cell.get(name))
                 if f is not None and not f.empty]
        if parts:
            out[name] = pd.concat(parts, ignore_index=True)
    return out


def _taken(pushed: np.ndarray, pulled: np.ndarray, benefit: dict[str, np.ndarray]) -> float:
    """Sum of each customer's benefit of the action they get (0 for none); ``pushed`` and
    ``pulled`` are the customers' masks, shape (n,) bool."""
    return float(benefit["push"][pushed].sum() + benefit["pull"][pulled].sum())

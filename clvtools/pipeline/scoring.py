"""Scoring a chunk of customers from fitted models: the per-customer half of the value, risk
and decision steps, as one function of a pandas chunk.

The single-machine pipeline scores all its customers at once through the same functions
(:func:`~clvtools.pipeline.value_models.score_customers_by_month`,
:func:`~clvtools.pipeline.risk.churn_scores`, :func:`customer_scores`), and a Spark job maps
:func:`score_chunk` and :func:`decide_chunk` over its partitions
(:mod:`clvtools.scale.spark`). Every figure here depends on the customer's own row, the
fitted models and a few global numbers (the matrix's cut points), never on the other
customers of the chunk: scored in chunks, the base gets the figures it gets scored whole.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..btyd.bgnbd import BetaGeoFitter
from ..btyd.covariates import CovariateBTYDFitter
from ..survival.churn_model import ChurnModel
from ..targeting.allocation import Action, action_economics, push_gain
from ..targeting.matrix import value_risk_matrix
from ..targeting.revenue_at_risk import revenue_at_risk
from .risk import churn_scores, known_levels
from .structural import STRUCTURAL_COLUMN, add_recency_band, cloglog, structural_from_rfm
from .value_intervals import INTERVAL_COLUMNS
from .value_models import BoundCovariates, ValueModels, score_customers

__all__ = ["SCORE_COLUMNS", "DECISION_COLUMNS", "Scorers", "customer_scores", "score_chunk",
           "churn_inputs", "decide_chunk", "bound_models"]

#: The columns :func:`score_chunk` adds to a chunk's RFM columns, in customers.csv's order.
SCORE_COLUMNS = ("p_alive", "expected_purchases", "expected_average_spend", "churn_probability",
                 "churn_model", "revenue_if_retained", "expected_revenue", "revenue_at_risk",
                 "lapsed_revenue", "preventable_revenue")
#: The columns :func:`decide_chunk` gives.
DECISION_COLUMNS = ("cell", "net_benefit_push", "net_benefit_pull", "saved_revenue_push",
                    "saved_revenue_pull", "cost_push", "cost_pull", "push_open", "pull_open",
                    "push_gain")


@dataclass(frozen=True)
class Scorers:
    """What scoring a customer needs: the fitted models and the run's constants (small and
    picklable: a Spark job ships it to its executors).

    Attributes
    ----------
    value : ValueModels
        The purchase and spend models (without covariates).
    churn : ChurnModel or None
        The Cox churn model; None: churn probabilities from the structural term.
    structural : BetaGeoFitter or None
        The plain BG/NBD of the structural term at the scoring date; None when it could not
        be fitted (the churn model then has no structural column).
    horizon, churn_after : float
        Time units.
    time_unit_days : float
        Days per time unit.
    discount_rate : float
        Annual.
    seed : int
    period_ends : tuple of float, optional
        The horizon's month ends in time units after the scoring date (the forecast's
        calendar months, :meth:`~clvtools.pipeline.timeline.Timeline.forecast_month_ends`),
        over which the value is discounted month by month; default calendar-average months.
    """

    value: ValueModels
    churn: ChurnModel | None
    structural: BetaGeoFitter | None
    horizon: float
    churn_after: float
    time_unit_days: float
    discount_rate: float
    seed: int = 0
    period_ends: tuple[float, ...] | None = None


def customer_scores(rfm: pd.DataFrame, value_scores: pd.DataFrame,
                    risk_scores: pd.DataFrame) -> pd.DataFrame:
    """The RFM columns, the value and churn scores and revenue at risk, side by side.

    Parameters
    ----------
    rfm : pandas.DataFrame, shape (n, 3 or 4)
        Indexed by ``customer_id``.
    value_scores : pandas.DataFrame, shape (n, k)
        :func:`~clvtools.pipeline.value_models.score_customers`'s columns (and the value
        intervals where computed), indexed like ``rfm``.
    risk_scores : pandas.DataFrame, shape (n, 2)
        ``churn_probability`` and ``churn_model``, indexed like ``rfm``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``rfm``: its columns, then :data:`SCORE_COLUMNS` (the intervals after
        ``expected_revenue``), money in currency.
    """
    at_risk = revenue_at_risk(value_scores["p_alive"], value_scores["revenue_if_retained"],
                              value_scores["expected_revenue"])
    intervals = [c for c in INTERVAL_COLUMNS if c in value_scores]
    parts = [rfm, value_scores[["p_alive", "expected_purchases", "expected_average_spend"]],
             risk_scores, value_scores[["revenue_if_retained", "expected_revenue", *intervals]],
             at_risk]
    names = [c for part in parts for c in part.columns]
    if len(set(names)) == len(names) and all(p.index.equals(rfm.index) for p in parts[1:]):
        # the same rows in the same order (the pipeline's case): the columns side by side in
        # one copy, where each join would copy every column joined so far again
        return pd.DataFrame({c: part[c] for part in parts for c in part.columns},
                            index=rfm.index)
    return (rfm.join(parts[1]).join(risk_scores).join(parts[3]).join(at_risk))


def score_chunk(rfm: pd.DataFrame, scoring: pd.DataFrame, scorers: Scorers,
                covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Value, churn probability and revenue at risk of a chunk of customers.

    Parameters
    ----------
    rfm : pandas.DataFrame, shape (n, 3 or 4)
        The chunk's RFM rows at the scoring date, indexed by ``customer_id``.
    scoring : pandas.DataFrame, shape (m, k)
        The scoring table's rows of the chunk's live customers (``customer_id`` column,
        covariates at the scoring date, :func:`~clvtools.data.survival_tables.scoring_table`),
        m <= n; the customers of ``rfm`` absent from it are already declared churned.
    scorers : Scorers
    covariates : pandas.DataFrame, optional
        The chunk's attributes at the scoring date, indexed like ``rfm``: a purchase model
        fitted with covariates (``scorers.value.purchases`` a covariate fitter, as a Spark
        run ships it) is bound to them.

    Returns
    -------
    pandas.DataFrame
        :func:`customer_scores` of the chunk.
    """
    value = score_customers(bound_models(scorers.value, rfm, covariates), rfm,
                            horizon=scorers.horizon,
                            time_unit_days=scorers.time_unit_days,
                            discount_rate=scorers.discount_rate,
                            period_ends=None if scorers.period_ends is None
                            else np.asarray(scorers.period_ends, dtype=float))
    scoring = churn_inputs(scoring, rfm, scorers)
    risk = churn_scores(scorers.churn, scoring, scorers.horizon, customer_ids=rfm.index,
                        p_alive=value["p_alive"])
    return customer_scores(rfm, value, risk)


def bound_models(models: ValueModels, rfm: pd.DataFrame,
           covariates: pd.DataFrame | None) -> ValueModels:
    """The value models with a covariate purchase model bound to the chunk's customers."""
    if not isinstance(models.purchases, CovariateBTYDFitter):
        return models
    if covariates is None:
        raise ValueError("A purchase model with covariates scores a chunk with its attributes.")
    return replace(models, purchases=BoundCovariates(models.purchases,
                                                     covariates.loc[rfm.index]))


def churn_inputs(scoring: pd.DataFrame, rfm: pd.DataFrame, scorers: Scorers) -> pd.DataFrame:
    """The scoring rows with the columns the churn model was fitted with (as
    :func:`~clvtools.pipeline.structural.churn_model_inputs` adds them): the structural term
    at the scoring date, from the chunk's own RFM rows (without a Cox model, the churn
    probability itself), and the recency band, at levels the model knows."""
    scoring = scoring.copy()
    if scorers.structural is not None:
        p = structural_from_rfm(scorers.structural, rfm, horizon=scorers.horizon,
                                churn_after=scorers.churn_after, seed=scorers.seed)
        found = p.reindex(scoring["customer_id"].astype(str).to_numpy()).to_numpy()
        scoring[STRUCTURAL_COLUMN] = cloglog(found)
    if scorers.churn is None:
        return scoring
    scoring = add_recency_band(scoring, scorers.churn_after)
    return known_levels(scorers.churn, scoring)[0]


def decide_chunk(customers: pd.DataFrame, *, cut_points: Mapping[str, float], value_axis: str,
                 push: Action, pull: Action, margin: float, offer: str,
                 contactable: np.ndarray | None = None) -> pd.DataFrame:
    """Each customer's matrix cell and the economics of push and pull, given the cut points.

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k)
        :func:`score_chunk`'s output.
    cut_points : mapping
        ``value`` and ``risk``: the matrix's cut points over the whole base (a customer is
        high when strictly above), as :func:`~clvtools.targeting.matrix.value_risk_matrix`
        found them.
    value_axis : {"revenue_if_retained", "expected_revenue"}
    push, pull : Action
        Constant or per-cell uplifts (a per-customer Series does not travel to a chunk).
    margin : float
    offer : {"conditional", "unconditional"}
    contactable : numpy.ndarray of bool, shape (n,), optional
        Who may be contacted (default everyone), as
        :func:`~clvtools.targeting.allocation.allocate` takes it.

    Returns
    -------
    pandas.DataFrame, shape (n, 10)
        Indexed like ``customers``: :data:`DECISION_COLUMNS`: ``cell``, each action's net
        benefit, saved revenue and expected cost (currency), whether it is open (it pays
        and the customer is contactable) and ``push_gain``, the gain of push over the
        best alternative (-inf where push is closed), which the allocation under a capacity
        ranks over the whole base.
    """
    cells = value_risk_matrix(customers[value_axis], customers["churn_probability"],
                              value_cut=cut_points["value"], risk_cut=cut_points["risk"])
    frame = customers.assign(cell=cells["cell"].to_numpy())
    eco = {a.name: action_economics(frame, a, margin=margin, offer=offer) for a in (push, pull)}
    nb_push = eco[push.name]["net_benefit"].to_numpy()
    nb_pull = eco[pull.name]["net_benefit"].to_numpy()
    ok = (np.ones(len(frame), dtype=bool) if contactable is None
          else np.asarray(contactable, dtype=bool))
    v_push, v_pull, gain = push_gain(nb_push, nb_pull, ok)
    return pd.DataFrame({
        "cell": frame["cell"].to_numpy(), "net_benefit_push": nb_push, "net_benefit_pull": nb_pull,
        "saved_revenue_push": eco[push.name]["saved_revenue"].to_numpy(),
        "saved_revenue_pull": eco[pull.name]["saved_revenue"].to_numpy(),
        "cost_push": eco[push.name]["expected_cost"].to_numpy(),
        "cost_pull": eco[pull.name]["expected_cost"].to_numpy(),
        "push_open": np.isfinite(v_push), "pull_open": np.isfinite(v_pull), "push_gain": gain,
    }, index=customers.index)

"""Who needs attention now: the early-warning list (live customers whose churn probability rose
most since the previous KPI period) and the win-back list (customers already declared churned,
by the net benefit of a reactivation offer).

Glue: the churn model scored again through the log as it stood one period earlier; the lists
themselves are :mod:`clvtools.targeting.early_warning` and :mod:`clvtools.targeting.win_back`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..config import Settings
from ..data.survival_tables import scoring_table
from ..errors import ClvInputError, ConvergenceError
from ..targeting.early_warning import early_warning_list
from ..targeting.reasons import top_drivers
from ..targeting.win_back import win_back_list
from .drivers import driver_labels, risk_drivers
from .inputs import Inputs
from .risk import RiskResult, known_levels
from .structural import STRUCTURAL_COLUMN, add_recency_band, cloglog, structural_from_rfm
from .timeline import Timeline

__all__ = ["Attention", "attention_lists", "moved_drivers", "score_at"]

@dataclass
class Attention:
    """The early-warning and win-back lists, with their counts and notes."""

    early_warning: pd.DataFrame | None = None
    win_back: pd.DataFrame | None = None
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def score_at(risk: RiskResult, inputs: Inputs, date, settings: Settings) -> pd.DataFrame:
    """The scoring table at an earlier ``date`` (through ``log.until(date)``), prepared as the
    main scoring table was (structural term, recency band, known levels), indexed by id.

    The structural term comes from the same BG/NBD as at the observation end
    (``risk.structural_model``), scored on each customer's purchases up to ``date``: the
    same models at both dates, so that a rise is the customer's own history moving, not a
    refit a period earlier (and no second RFM summary and fit of the whole base).
    """
    s = settings
    table = scoring_table(inputs.log.until(date), attributes=inputs.attributes,
                          churn_after=s.churn_after, time_unit=s.time_unit)
    if STRUCTURAL_COLUMN in risk.scoring.columns:
        if risk.structural_model is None:
            raise ClvInputError("The churn model has a structural term but no BG/NBD "
                                "to compute it at the earlier date.")
        table = _structural_term_at(table, risk.structural_model, s)
    table = add_recency_band(table, s.churn_after)
    table, _ = known_levels(risk.model, table)
    return table.set_index("customer_id")


def _structural_term_at(table: pd.DataFrame, model, s: Settings) -> pd.DataFrame:
    """``table`` (a scoring table) with :data:`STRUCTURAL_COLUMN` from the fitted BG/NBD
    ``model``, each customer's (frequency, recency, T) read off the table's own columns
    (occasions, tenure and time since the last purchase at its date, time units)."""
    tenure = table["tenure"].to_numpy(dtype=float)
    rfm = pd.DataFrame({"frequency": table["frequency"].to_numpy(dtype=float),
                        "recency": tenure - table["time_since_last_purchase"].to_numpy(float),
                        "T": tenure}, index=table["customer_id"].astype(str).to_numpy())
    p = structural_from_rfm(model, rfm, horizon=s.horizon, churn_after=s.churn_after,
                            seed=s.seed).reindex(rfm.index)
    if p.isna().any():
        raise ClvInputError(f"{int(p.isna().sum())} customers of the scoring table at "
                            f"{table['landmark'].iloc[0]} have no structural churn probability.")
    return table.assign(**{STRUCTURAL_COLUMN: cloglog(p.to_numpy())})


def moved_drivers(model, now: pd.DataFrame, before: pd.DataFrame, *, horizon: float,
                  centre: float, time_unit: str) -> pd.DataFrame:
    """The two drivers that raised each customer's risk most since the earlier date, as text.

    Parameters
    ----------
    model : ChurnModel
    now, before : pandas.DataFrame
        The customers' scoring rows at the observation end and at the earlier date, as the
        model scores them, indexed alike by ``customer_id``.
    horizon, centre : float
        As :func:`~clvtools.pipeline.drivers.risk_drivers` takes them.
    time_unit : str

    Returns
    -------
    pandas.DataFrame of str
        ``driver_1``, ``driver_2``, indexed like ``now`` (per row: a Spark job maps it).
    """
    # what moved the risk of the listed customers: each driver's change of the log cumulative
    # hazard (the recency band's baseline inside time since the last purchase), which add up
    # to the whole change
    terms = dict(horizon=horizon, centre=centre)
    moved = risk_drivers(model, now, **terms) - risk_drivers(model, before, **terms)
    labels = driver_labels(now, list(moved.columns), time_unit=time_unit)
    was = before["time_since_last_purchase"].astype(float).round(1)
    labels["time_since_last_purchase"] += (" (was " + was.map(lambda v: f"{v:,g}")
                                           + f" {time_unit}s)")
    return top_drivers(moved, labels, k=2)


def _early_warning(customers: pd.DataFrame, risk: RiskResult, inputs: Inputs,
                   timeline: Timeline, s: Settings,
                   centre: float) -> tuple[pd.DataFrame | None, dict, str]:
    """The early-warning list, its counts and a note; ``centre`` is the drivers' reference
    (:func:`~clvtools.pipeline.drivers.baseline_centre`)."""
    previous = timeline.previous_scoring
    if risk.model is None or risk.scoring is None or previous is None:
        return None, {}, ("No early-warning list: it needs the Cox churn model and a history "
                          "of one KPI period before the observation end.")
    try:
        before_table = score_at(risk, inputs, previous, s)
    except (ClvInputError, ConvergenceError) as exc:
        return None, {}, f"No early-warning list: {str(exc).splitlines()[0]}"
    before = risk.model.churn_probability(before_table, s.horizon, source="scoring table")
    indexed = customers.set_index("customer_id")
    now = indexed["churn_probability"]
    rise = (now - before.reindex(now.index)).dropna()
    listed = rise.index[rise.to_numpy() > 0]
    drivers = moved_drivers(risk.model, risk.scoring.loc[listed], before_table.loc[listed],
                            horizon=s.horizon, centre=centre, time_unit=s.time_unit)
    early, counts = early_warning_list(now, before, indexed[s.value_axis], drivers,
                                       min_rise=0.0)
    note = (f"Early warning: {counts['listed']:,} live customers' churn probability rose since "
            f"{previous} (the same model scored through the log as it stood then; attributes "
            f"as the customers file has them now); {counts['not_scored_before']:,} live "
            "customers had no score then (acquired since, or back after a declared churn).")
    return early, counts, note


def attention_lists(customers: pd.DataFrame, risk: RiskResult, inputs: Inputs,
                    timeline: Timeline | None, settings: Settings,
                    attribute_columns=(), *, centre: float = 0.0) -> Attention:
    """Both lists from the plan's customers table (``customers.csv``'s columns); ``centre``
    is the drivers' reference (:func:`~clvtools.pipeline.drivers.baseline_centre`)."""
    s = settings
    notes: list[str] = []
    early, counts = None, {}
    if timeline is not None:
        early, counts, note = _early_warning(customers, risk, inputs, timeline, s, centre)
        notes.append(note)
    lifecycle = risk.lifecycle.set_index("customer_id")
    extra = customers.assign(
        declared_at=customers["customer_id"].map(lifecycle["declared_at"]),
        purchases=customers["customer_id"].map(lifecycle["purchases"]),
        lifetime_spend=customers["customer_id"].map(lifecycle["lifetime_spend"]))
    win_back, left_off = win_back_list(
        extra, extra_columns=["declared_at", "purchases", "lifetime_spend", *attribute_columns])
    counts = {**{f"early_warning_{k}": v for k, v in counts.items()},
              "win_back_listed": len(win_back), "win_back_no_value": left_off}
    notes.append(f"Win-back: {len(win_back):,} customers already declared churned, ranked by the "
                 f"net benefit of a reactivation offer; {left_off:,} more are lapsed so long "
                 "that the value model gives them no value, and are left off.")
    return Attention(early, win_back, counts, notes)

"""Who needs attention now: the early-warning list (live customers whose churn probability rose
most since the previous KPI period) and the win-back list (customers already declared churned,
by the net benefit of a reactivation offer).

Glue: the churn model scored again through the log as it stood one period earlier; the lists
themselves are :mod:`clvtools.targeting.early_warning` and :mod:`clvtools.targeting.win_back`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.survival_tables import scoring_table
from ..errors import ClvInputError, ConvergenceError
from ..targeting.early_warning import early_warning_list
from ..targeting.reasons import format_distinct, top_drivers
from ..targeting.win_back import win_back_list
from .drivers import driver_labels, risk_drivers
from .inputs import Inputs
from .risk import RiskResult, known_levels
from .structural import STRUCTURAL_COLUMN, add_recency_band, cloglog, structural_from_rfm
from .timeline import Timeline

__all__ = ["Attention", "EarlierScores", "EarlyWarning", "attention_lists", "early_warning",
           "earlier_scores", "lifecycle_columns", "moved_drivers", "rows_for",
           "score_at"]

@dataclass
class Attention:
    """The early-warning and win-back lists, with their counts and notes."""

    early_warning: pd.DataFrame | None = None
    win_back: pd.DataFrame | None = None
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def lifecycle_columns(customers: pd.DataFrame, lifecycle: pd.DataFrame,
                      columns: list[str]) -> dict[str, np.ndarray]:
    """``columns`` of the lifecycle table (indexed by ``customer_id``, or with a
    ``customer_id`` column) for the rows of ``customers`` (its ``customer_id`` column),
    missing where a customer has no row.

    Returns
    -------
    dict of numpy.ndarray, each shape (n_customers,)
    """
    ids = customers["customer_id"]
    by_column = "customer_id" in lifecycle.columns
    keys = pd.Index(lifecycle["customer_id"]) if by_column else lifecycle.index
    if keys.equals(pd.Index(ids)):
        # the same customers in the same order (the pipeline's case): no look-up by text id,
        # and no copy of the table indexed by id
        return {c: lifecycle[c].to_numpy() for c in columns}
    indexed = lifecycle.set_index("customer_id") if by_column else lifecycle
    return {c: ids.map(indexed[c]).to_numpy() for c in columns}


@dataclass
class EarlierScores:
    """The churn model scored one KPI period before the observation end, for the early warning.

    Attributes
    ----------
    table : pandas.DataFrame or None
        The scoring table then (:func:`score_at`), indexed by ``customer_id``.
    probability : pandas.Series or None
        Each customer's churn probability then, indexed like ``table``.
    date : datetime.date or None
        The earlier date (``timeline.previous_scoring``).
    note : str or None
        Why there is no early-warning list (then ``table`` is None).
    """

    table: pd.DataFrame | None = None
    probability: pd.Series | None = None
    date: object = None
    note: str | None = None


def earlier_scores(risk: RiskResult, inputs: Inputs, timeline: Timeline,
                   settings: Settings) -> EarlierScores:
    """The churn model scored at ``timeline.previous_scoring`` (:func:`score_at`): SQL over
    the log and the structural term, independent of the plan, so that the targets step runs it
    on the second core while it builds the plan; an input that cannot be scored then gives a
    note, not an error (the run goes on without the list)."""
    previous = timeline.previous_scoring
    if risk.model is None or risk.scoring is None or previous is None:
        return EarlierScores(note="No early-warning list: it needs the Cox churn model and a "
                                  "history of one KPI period before the observation end.")
    s = settings
    try:
        table = score_at(risk, inputs, previous, s)
    except (ClvInputError, ConvergenceError) as exc:
        return EarlierScores(note=f"No early-warning list: {str(exc).splitlines()[0]}")
    return EarlierScores(table, risk.model.churn_probability(table, s.horizon,
                                                             source="scoring table"), previous)


def score_at(risk: RiskResult, inputs: Inputs, date, settings: Settings) -> pd.DataFrame:
    """The scoring table at an earlier ``date`` (through ``log.until(date)``), prepared as the
    main scoring table was (structural term, recency band, known levels), indexed by id.

    The structural term comes from the same BG/NBD as at the observation end
    (``risk.structural_model``), scored on each customer's purchases up to ``date``: the
    same models at both dates, so that a rise is the customer's own history moving, not a
    refit a period earlier (and no second RFM summary and fit of the whole base).
    """
    s = settings
    # built by the risk step from its sorted occasions where it could; needed once, so not
    # held by the run's result past here
    table = risk.earlier_scoring.pop(date, None)
    if table is None:
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
    was = before["time_since_last_purchase"].to_numpy(dtype=float).round(1)
    was_text = format_distinct(was, "{:,g}")     # a few hundred values among the listed
    labels["time_since_last_purchase"] = [
        f"{label} (was {w} {time_unit}s)"
        for label, w in zip(labels["time_since_last_purchase"].to_numpy(), was_text,
                            strict=True)]
    return top_drivers(moved, labels, k=2)


def rows_for(ids: pd.Index, table_ids: pd.Index) -> np.ndarray:
    """The position in ``table_ids`` of each of ``ids`` (-1: absent), shape (len(ids),):
    ``table_ids.get_indexer(ids)`` (``table_ids`` unique), found through ``ids``' hash table.

    Why: ``ids`` is the run's customers (a million text ids), whose hash table the risk step
    built once (:func:`~clvtools.pipeline.risk.churn_scores`) and pandas keeps with the
    index; a look-up from the other side builds one of ``table_ids`` and hashes a million
    ids again (about 0.3 s of CPU at a million customers, each time).
    """
    if not ids.is_unique:
        return table_ids.get_indexer(ids)
    found = ids.get_indexer(table_ids)
    rows = np.full(len(ids), -1, dtype=np.intp)
    known = np.flatnonzero(found >= 0)
    rows[found[known]] = known
    if (rows[found[known]] != known).any():
        # a label twice in ``table_ids``: the look-up it is (pandas refuses it alike)
        return table_ids.get_indexer(ids)
    return rows


@dataclass
class EarlyWarning:
    """The early-warning list (None when there is none), its counts and a note."""

    table: pd.DataFrame | None
    counts: dict
    note: str


def early_warning(risk: RiskResult, inputs: Inputs, timeline: Timeline, settings: Settings,
                  now: pd.Series, value_at_stake: pd.Series, centre: float,
                  scoring_rows: np.ndarray | None = None) -> EarlyWarning:
    """The early-warning list: the churn model scored one KPI period back
    (:func:`earlier_scores`) against ``now``.

    It reads the scores, not the plan, so that the targets step computes it on the second core
    while it builds the plan.

    Parameters
    ----------
    risk : RiskResult
    inputs : Inputs
    timeline : Timeline
    settings : Settings
    now : pandas.Series
        Churn probability at the observation end per customer (NaN: declared churned),
        indexed by ``customer_id`` in the order of ``customers.csv``.
    value_at_stake : pandas.Series
        The value axis per customer (currency), indexed like ``now``.
    centre : float
        The drivers' reference (:func:`~clvtools.pipeline.drivers.baseline_centre`).
    scoring_rows : numpy.ndarray of int, shape (len(now),), optional
        Each customer's row in ``risk.scoring`` (-1: none), :func:`rows_for` of
        ``now.index``; found here when not given.
    """
    s = settings
    earlier = earlier_scores(risk, inputs, timeline, s)
    if earlier.table is None:
        return EarlyWarning(None, {}, earlier.note)
    before_table, before = earlier.table, earlier.probability
    same_rows = before_table.index.equals(before.index)
    # the earlier scores in the order of ``now``, looked up by id once (-1: not scored then)
    # and shared: the list, the rise and the earlier rows of the listed customers
    at = rows_for(now.index, before.index)
    before = pd.Series(pd.api.extensions.take(before.to_numpy(dtype=float), at,
                                              allow_fill=True),
                       index=now.index, name=before.name)
    rise = (now - before).to_numpy(dtype=float)
    rose = rise > 0         # NaN (declared churned now, or not scored then) is not a rise
    listed = now.index[rose]
    # the listed customers' scoring rows now: every one is live, so scored (a rise needs a
    # probability now)
    now_rows = (rows_for(now.index, risk.scoring.index) if scoring_rows is None
                else scoring_rows)[rose]
    if (now_rows < 0).any():
        raise KeyError(f"{int((now_rows < 0).sum())} customers with a churn probability are "
                       "not in the scoring table.")
    drivers = moved_drivers(risk.model, risk.scoring.take(now_rows),
                            before_table.take(at[rose]) if same_rows
                            else before_table.loc[listed],
                            horizon=s.horizon, centre=centre, time_unit=s.time_unit)
    early, counts = early_warning_list(now, before, value_at_stake, drivers, min_rise=0.0)
    note = (f"Early warning: {counts['listed']:,} live customers' churn probability rose since "
            f"{earlier.date} (the same model scored through the log as it stood then; "
            "attributes as the customers file has them now); "
            f"{counts['not_scored_before']:,} live customers had no score then (acquired "
            "since, or back after a declared churn).")
    return EarlyWarning(early, counts, note)


def attention_lists(customers: pd.DataFrame, risk: RiskResult, early: EarlyWarning | None,
                    attribute_columns=(), lifecycle: pd.DataFrame | None = None) -> Attention:
    """Both lists: the early warning as computed (:func:`early_warning`; None: no list) and
    the win-back list from the plan's customers table (``customers.csv``'s columns).
    ``lifecycle``: the lifecycle table as :func:`lifecycle_columns` takes it (default
    ``risk.lifecycle``)."""
    notes: list[str] = []
    table, counts = None, {}
    if early is not None:
        table, counts = early.table, early.counts
        notes.append(early.note)
    # the columns the list reads, not a copy of the whole customers table
    read = ["customer_id", "churn_probability", "lapsed_revenue", "net_benefit_push",
            "net_benefit_pull", "action", "last_purchase", *attribute_columns]
    # a mapping of columns: a frame of them, even built with copy=False, would stack (copy)
    # the columns of one type into one block
    extra = {**{c: customers[c] for c in read}, **lifecycle_columns(
        customers, risk.lifecycle if lifecycle is None else lifecycle,
        ["declared_at", "purchases", "lifetime_spend"])}
    win_back, left_off = win_back_list(
        extra, extra_columns=["declared_at", "purchases", "lifetime_spend", *attribute_columns])
    counts = {**{f"early_warning_{k}": v for k, v in counts.items()},
              "win_back_listed": len(win_back), "win_back_no_value": left_off}
    notes.append(f"Win-back: {len(win_back):,} customers already declared churned, ranked by the "
                 f"net benefit of a reactivation offer; {left_off:,} more are lapsed so long "
                 "that the value model gives them no value, and are left off.")
    return Attention(table, win_back, counts, notes)

"""Step 4, the risk axis: who has churned (lifecycle), the Cox churn model fitted on the
landmark table, every live customer's churn probability at the observation end, the model's
out-of-time validation, survival curves by segment and, with contracts, competing end reasons.

Orchestration only; the model is :class:`~clvtools.survival.churn_model.ChurnModel`, fitted
by :mod:`.churn_fit` and validated by :mod:`.churn_validation`; scoring is a pure function of
a fitted model and a scoring table (:func:`churn_scores`), so that it runs at any date and
inside a Spark partition alike.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.contracts import contract_table
from ..data.kpi_segments import tier_spend_from_sorted
from ..data.landmark_arrays import sorted_occasions
from ..data.lifecycle import churn_days, lifecycle_status, spell_bounds
from ..data.survival_tables import landmark_table, scoring_table
from ..errors import ClvInputError
from ..survival.churn_model import ChurnModel
from ..survival.competing_risks import cumulative_incidence
from ..survival.kaplan_meier import (
    km_curves,
    logrank_tests,
    median_survival,
    segment_rows,
    segment_rows_from_counts,
)
from ._threads import alongside_thread
from .churn_fit import PENALIZER, fit_churn_model, known_levels
from .churn_validation import censored_at, validate_churn_model, validation_landmarks
from .inputs import Inputs
from .structural import (
    STRUCTURAL_COLUMN,
    churn_model_inputs,
    seed_structural_cache,
    structural_work,
)
from .timeline import Timeline
from .value import ValueResult

# the fit (churn_fit.py) and the validation (churn_validation.py) are named here too, where
# the risk step's users have always found them
__all__ = ["COX", "DECLARED", "STRUCTURAL", "BTYD", "FALLBACKS", "PENALIZER", "RiskResult",
           "risk_step", "fit_churn_model", "known_levels", "churn_scores",
           "validate_churn_model", "validation_landmarks", "censored_at", "churn_agreement",
           "segment_survival", "survival_from_counts", "survival_from_rows"]

#: Where a churn probability came from (the ``churn_model`` column of customers.csv): the Cox
#: model; none (already declared churned); without a Cox model, the value model's probability
#: of a declaration within the horizon (the structural term), or 1 - P(alive) where even
#: that could not be computed.
COX, DECLARED = "cox", "declared_churned"
STRUCTURAL, BTYD = "btyd_declared_churn", "btyd_1_minus_p_alive"
#: The churn_model values of a fallback (no Cox model).
FALLBACKS = (STRUCTURAL, BTYD)


@dataclass
class RiskResult:
    """What the risk step computed.

    Attributes
    ----------
    lifecycle : pandas.DataFrame
        Lifecycle status of every customer at the observation end.
    survival_table : pandas.DataFrame
        The stacked landmark survival table the churn model is fitted on.
    model : ChurnModel or None
        The fitted Cox model; None when none could be fitted (``notes`` say why).
    scores : pandas.DataFrame
        Indexed by customer_id: ``churn_probability`` and ``churn_model``.
    tables : dict of pandas.DataFrame
        The risk step's output tables by name: ``churn_drivers``, ``churn_agreement``,
        ``churn_validation``, ``churn_calibration``, ``survival_curves``,
        ``median_time_to_churn``, ``logrank_tests``, and with contracts
        ``contracts_survival`` and ``contract_cumulative_incidence`` (each only when it
        could be computed).
    notes : list of str
    scoring : pandas.DataFrame or None
        The scoring table as the model scored it (covariates of the live customers at the
        observation end, indexed by customer_id), for the reason codes; None without a model.
    structural_model : BetaGeoFitter or None
        The plain BG/NBD behind the scoring table's structural term (fitted at the
        observation end), for scoring the same model at an earlier date; None without one.
    earlier_scoring : dict
        Scoring tables at earlier dates as :func:`~clvtools.data.survival_tables.scoring_table`
        returns them (no structural term), by date: the early warning's
        (``timeline.previous_scoring``), computed from the landmark step's sorted occasions
        (:func:`~clvtools.pipeline.attention.score_at` takes it from here).
    """

    lifecycle: pd.DataFrame
    survival_table: pd.DataFrame
    model: ChurnModel | None
    scores: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scoring: pd.DataFrame | None = None
    structural_model: object | None = None
    earlier_scoring: dict = field(default_factory=dict)


def risk_step(inputs: Inputs, timeline: Timeline, value: ValueResult, settings: Settings,
              step=lambda _msg: None, tables_built: Callable[[], None] | None = None
              ) -> RiskResult:
    """Lifecycle, the churn model, churn probabilities, validation and survival curves.

    ``tables_built``, if given, is called once the landmark tables (and the KPIs' spell
    bounds and value-tier spend, from the same sorted occasions) are built, before the
    churn model is fitted: the run starts the KPIs there, beside the Cox fit and its
    out-of-time validation, which keep one core busy and leave the other mostly idle.
    """
    s, log, attributes = settings, inputs.log, inputs.attributes
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    tables: dict[str, pd.DataFrame] = {}
    if inputs.contracts is not None:
        durations = contract_table(log, inputs.contracts, time_unit=s.time_unit)
        tables["contracts_survival"] = durations
        # competing end reasons (voluntary, non-payment, ...): Aalen-Johansen incidence
        tables["contract_cumulative_incidence"] = cumulative_incidence(durations)

    step("Building the landmark survival table")
    cache = seed_structural_cache(log, value.rfm, value.models.purchases, s.time_unit)
    # every date's RFM summary, structural BG/NBD fit and term (a second thread, on a cursor
    # of its own) beside the landmark tables: the main fit's and the validation's dates
    validation_marks = validation_landmarks(timeline, timeline.holdout_start)
    work = structural_work(log, [*timeline.landmarks, log.observation_end,
                                 *validation_marks[:2]], horizon=s.horizon, seed=s.seed,
                           cache=cache, **rule)
    with alongside_thread(work) as terms:
        # the occasions sorted by customer, fetched once: every landmark's rows and the
        # scoring rows and the lifecycle are computed from them in numpy (data.landmark_arrays)
        occasions = sorted_occasions(log, churn_days(s.churn_after, s.time_unit))
        lifecycle = lifecycle_status(log, at_risk_after=s.at_risk_after, sorted_rows=occasions,
                                     **rule)
        # the validation's own landmarks (its scoring date is the main fit's landmark)
        validation_rows = None if not validation_marks else landmark_table(
            log, landmarks=validation_marks[:2], attributes=attributes, sorted_rows=occasions,
            **rule)
        survival = landmark_table(log, landmarks=list(timeline.landmarks),
                                  attributes=attributes, sorted_rows=occasions, **rule)
        tables.update(segment_survival(survival, inputs.categorical_attributes))
        scoring = scoring_table(log, attributes=attributes, sorted_rows=occasions, **rule)
        earlier = _earlier_scoring(log, timeline.previous_scoring, attributes, occasions, rule)
        if occasions is not None:   # the KPIs' spell bounds and spend from the same rows
            spell_bounds(log, occasions.churn_days, sorted_rows=occasions)
            tier_spend_from_sorted(log, occasions, s.kpi_period)
        del occasions       # about 0.4 GB at a million customers: not held past the tables
    terms.result()
    if tables_built is not None:
        tables_built()
    step("Computing the structural churn term (BG/NBD at each landmark)")
    survival, scoring, notes = churn_model_inputs(survival, scoring, log, horizon=s.horizon,
                                                  seed=s.seed, cache=cache, **rule)
    step("Fitting the churn model (Cox)")
    model, fit_notes = fit_churn_model(survival, time_unit=s.time_unit, seed=s.seed,
                                       sample_rows=s.churn_sample_rows)
    notes += fit_notes
    if model is not None:
        scoring, replaced = known_levels(model, scoring)
        if replaced:
            notes.append(f"{replaced:,} values of live customers hold a level the churn model was "
                         "not fitted with (an attribute's level held only by customers acquired "
                         "since its landmark, or a recency band without training rows); they are "
                         "scored at the attribute's reference level or the nearest band.")
    scores = churn_scores(model, scoring, s.horizon, customer_ids=value.rfm.index,
                          p_alive=value.scores["p_alive"])
    if model is not None:
        tables["churn_drivers"] = model.summary.reset_index()
        scored = scores["churn_model"] == COX
        tables["churn_agreement"] = churn_agreement(
            scores.loc[scored, "churn_probability"], value.scores.loc[scored, "p_alive"])
        step("Validating the churn model out of time")
        validation, note = validate_churn_model(inputs, timeline, settings,
                                                score_at=timeline.holdout_start, cache=cache,
                                                landmark_rows=validation_rows,
                                                model_rows=survival)
        notes.append(note)
        tables.update(validation)
    del validation_rows     # not held through the rest of the run
    as_scored = scoring.set_index("customer_id") if model is not None else None
    fitted = cache.get(("fit", log.observation_end, s.time_unit))
    return RiskResult(lifecycle, survival, model, scores, tables, notes, as_scored,
                      None if fitted is None else fitted[1],
                      # without a Cox model there is no early warning to read it
                      earlier if model is not None else {})


def _earlier_scoring(log, date, attributes, occasions, rule: dict) -> dict:
    """The scoring table at ``date`` (the early warning's earlier date; None: none), by
    date, from the whole log's sorted ``occasions``: its covariates read only the occasions up
    to the date, so the rows are those of ``log.until(date)``, without a second fetch and
    sort of the log (about 5 s of CPU at a million customers). Empty where the table cannot
    be built here (the early warning builds it again and says why)."""
    if date is None or occasions is None:
        return {}
    try:
        return {date: scoring_table(log.until(date), attributes=attributes,
                                    sorted_rows=occasions, **rule)}
    except ClvInputError:
        return {}


def churn_scores(model: ChurnModel | None, scoring: pd.DataFrame, horizon: float, *,
                 customer_ids: pd.Index, p_alive: pd.Series) -> pd.DataFrame:
    """``churn_probability`` and ``churn_model`` for every customer: a pure function of the
    fitted model and the scoring table (covariates at the scoring date).

    Levels the model was not fitted with are an error here (see :func:`known_levels`).
    Customers absent from the scoring table are already declared churned: they have no churn
    probability (NaN: it is defined given not declared by now; they are the win-back
    population) and ``churn_model`` says ``declared_churned``. The others, the live customers,
    get the Cox model's P(churn declared within the horizon | not declared by now). Without a
    Cox model they get the value model's probability of a declaration within the horizon (the
    structural term of the scoring table, :mod:`.structural`), which follows the churn rule;
    1 - P(alive) only where the scoring table has no structural term (BG/NBD failed too).
    """
    scoring = scoring.set_index("customer_id")
    # each live customer's row in ``customer_ids``, found once (label-based assignment into
    # a million rows cost about 0.7 s)
    at = customer_ids.get_indexer(scoring.index)
    if (at < 0).any():
        raise KeyError(f"{int((at < 0).sum())} customers of the scoring table are not among "
                       "the customers to score.")
    probability = np.full(len(customer_ids), np.nan)
    source = np.full(len(customer_ids), DECLARED, dtype=object)
    if model is not None:
        probability[at] = model.churn_probability(scoring, horizon,
                                                  source="scoring table").to_numpy(float)
        source[at] = COX
    elif STRUCTURAL_COLUMN in scoring:
        # the term is log(-log(1 - P)): back to P
        term = scoring[STRUCTURAL_COLUMN].to_numpy(dtype=float)
        probability[at] = -np.expm1(-np.exp(term))
        source[at] = STRUCTURAL
    else:
        probability[at] = 1.0 - p_alive.loc[scoring.index].to_numpy(dtype=float)
        source[at] = BTYD
    return pd.DataFrame({"churn_probability": probability, "churn_model": source},
                        index=customer_ids)


def churn_agreement(churn_probability: pd.Series, p_alive: pd.Series) -> pd.DataFrame:
    """How the Cox churn probability agrees with the BTYD view (1 - P(alive)), for the report."""
    both = pd.DataFrame({"churn_probability": churn_probability, "one_minus_p_alive": 1 - p_alive})
    return pd.DataFrame([{
        "customers": len(both),
        "mean_churn_probability": float(both["churn_probability"].mean()),
        "mean_one_minus_p_alive": float(both["one_minus_p_alive"].mean()),
        "spearman": float(both.corr(method="spearman").iloc[0, 1]) if len(both) > 2 else np.nan,
    }])


def segment_survival(survival_table: pd.DataFrame, segments: list[str]) -> dict[str, pd.DataFrame]:
    """Kaplan-Meier curves, median time to declared churn and log-rank tests, overall and by
    each segment column (the categorical attributes), stacked with a ``by`` column, for the
    report to draw."""
    if survival_table.empty:
        return {}
    return survival_from_rows(
        {by or "all": (segment_rows(survival_table, by),     # compressed once for all three
                       by is not None and survival_table[by].nunique() > 1)
         for by in [None, *segments]})


def survival_from_counts(count, segments: list[str]) -> dict[str, pd.DataFrame]:
    """:func:`segment_survival` of a table an engine keeps (DuckDB, Spark), from its rows
    counted per segment value, duration and event: the same tables.

    Parameters
    ----------
    count : callable
        ``count(by)``: the counts of :func:`~clvtools.data.survival_counts.segment_counts`
        (``by`` a segment column, or None for the whole table).
    segments : list of str
        The segment columns (the categorical attributes).
    """
    rows_by = {}
    for by in [None, *segments]:
        counts = count(by)
        if by is None and not len(counts):
            return {}     # an empty table, as segment_survival
        rows_by[by or "all"] = (segment_rows_from_counts(counts, by),
                                by is not None and counts[by].nunique() > 1)
    return survival_from_rows(rows_by)


def survival_from_rows(rows_by: dict[str, tuple[pd.DataFrame, bool]]) -> dict[str, pd.DataFrame]:
    """:func:`segment_survival`'s tables from each grouping's compressed rows.

    Parameters
    ----------
    rows_by : dict
        Per ``by`` label (``"all"`` first, then each segment column), the table's rows
        compressed by :func:`~clvtools.survival.kaplan_meier.segment_rows` (or counted by an
        engine, :func:`~clvtools.survival.kaplan_meier.segment_rows_from_counts`) and whether
        the column holds more than one value (then its log-rank tests are computed).

    Returns
    -------
    dict of pandas.DataFrame
        ``survival_curves``, ``median_time_to_churn`` and, with a tested column,
        ``logrank_tests``, each with ``by`` first.
    """
    curves, medians, tests = [], [], []
    for label, (rows, tested) in rows_by.items():
        curves.append(km_curves(None, rows=rows).assign(by=label))
        medians.append(median_survival(None, rows=rows).assign(by=label))
        if tested:
            tests.append(logrank_tests(None, None, rows=rows).assign(by=label))
    out = {"survival_curves": pd.concat(curves, ignore_index=True),
           "median_time_to_churn": pd.concat(medians, ignore_index=True)}
    if tests:
        out["logrank_tests"] = pd.concat(tests, ignore_index=True)
    return {
        name: frame[["by", *[c for c in frame.columns if c != "by"]]]
        for name, frame in out.items()
    }

"""Step 4, the risk axis: who has churned (lifecycle), the Cox churn model fitted on the
landmark table, every live customer's churn probability at the observation end, the model's
out-of-time validation, survival curves by segment and, with contracts, competing end reasons.

Orchestration only; the model is :class:`~clvtools.survival.churn_model.ChurnModel`, and
scoring is a pure function of a fitted model and a scoring table (:func:`churn_scores`),
so that it runs at any date and inside a Spark partition alike.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.contracts import contract_table
from ..data.lifecycle import lifecycle_status
from ..data.survival_tables import landmark_table, scoring_table
from ..errors import ClvInputError, ConvergenceError
from ..survival.churn_model import ChurnModel
from ..survival.competing_risks import cumulative_incidence
from ..survival.features import is_behaviour_column
from ..survival.kaplan_meier import km_curves, logrank_tests, median_survival, segment_rows
from ..survival.metrics import validate_out_of_time
from ..survival.sampling import SAMPLE_WEIGHT, stratified_sample
from ..units import unit_days
from ._threads import alongside_thread
from .inputs import Inputs
from .structural import (
    RECENCY_BAND,
    STRUCTURAL_COLUMN,
    churn_model_inputs,
    seed_structural_cache,
    structural_work,
)
from .timeline import EVALUATION_LAG, TRAINING_LAG, Timeline
from .value import ValueResult

__all__ = ["COX", "DECLARED", "STRUCTURAL", "BTYD", "FALLBACKS", "RiskResult", "risk_step",
           "fit_churn_model", "churn_scores", "validate_churn_model", "validation_landmarks",
           "censored_at",
           "churn_agreement", "segment_survival"]

#: lifelines' penalizer (on the mean log partial likelihood) of the main job's churn model.
PENALIZER = 1e-3

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
    """

    lifecycle: pd.DataFrame
    survival_table: pd.DataFrame
    model: ChurnModel | None
    scores: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scoring: pd.DataFrame | None = None
    structural_model: object | None = None


def risk_step(inputs: Inputs, timeline: Timeline, value: ValueResult, settings: Settings,
              step=lambda _msg: None) -> RiskResult:
    """Lifecycle, the churn model, churn probabilities, validation and survival curves."""
    s, log, attributes = settings, inputs.log, inputs.attributes
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    lifecycle = lifecycle_status(log, at_risk_after=s.at_risk_after, **rule)
    tables: dict[str, pd.DataFrame] = {}
    if inputs.contracts is not None:
        durations = contract_table(log, inputs.contracts, time_unit=s.time_unit)
        tables["contracts_survival"] = durations
        # competing end reasons (voluntary, non-payment, ...): Aalen-Johansen incidence
        tables["contract_cumulative_incidence"] = cumulative_incidence(durations)

    step("Building the landmark survival table")
    cache = seed_structural_cache(log, value.rfm, value.models.purchases, s.time_unit)
    # every date's structural BG/NBD fit and term (numpy, a second thread) beside the
    # landmark queries (DuckDB): the main fit's and the out-of-time validation's dates;
    # the RFM summaries they need are queried first, on this thread
    validation_marks = validation_landmarks(timeline, timeline.holdout_start)
    work = structural_work(log, [*timeline.landmarks, log.observation_end,
                                 *validation_marks[:2]], horizon=s.horizon, seed=s.seed,
                           cache=cache, **rule)
    with alongside_thread(work) as terms:
        survival = landmark_table(log, landmarks=list(timeline.landmarks),
                                  attributes=attributes, **rule)
        tables.update(segment_survival(survival, inputs.categorical_attributes))
        scoring = scoring_table(log, attributes=attributes, **rule)
        # the validation's own landmarks (its scoring date is the main fit's landmark)
        validation_rows = None if not validation_marks else landmark_table(
            log, landmarks=validation_marks[:2], attributes=attributes, **rule)
    terms.result()
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
                      None if fitted is None else fitted[1])


def fit_churn_model(survival_table: pd.DataFrame, *, time_unit: str, seed: int = 0,
                    sample_rows: int | None = None) -> tuple[ChurnModel | None, list[str]]:
    """Fit the Cox churn model, or explain why it cannot be fitted.

    The constant-hazard tail is used so that a horizon equal to the follow-up (the landmark
    sits ``horizon`` before the observation end) is never silently capped. When the table
    has the recency band (:func:`~clvtools.pipeline.structural.churn_model_inputs`), the
    baseline is stratified by it: the declaration hazard's shape in time depends on how far
    off the current declaration date is, which no proportional term carries (out of time,
    a single baseline was up to 0.18 off in a decile; see
    benchmarks/bench_churn_calibration.py).

    A table of more than ``sample_rows`` rows is fitted on a stratified sample of that many
    (:func:`~clvtools.survival.sampling.stratified_sample`: event x landmark x recency band,
    seeded with ``seed``), weighted by the inverse sampling fraction, with robust errors; the
    model's ``sample_`` and a note say so.

    Returns
    -------
    (ChurnModel or None, list of str)
        The model (None when it cannot be fitted) and the notes for data_quality.json.
    """
    if survival_table.empty or survival_table["event"].sum() < 10:
        return None, [
            "No Cox churn model: "
            f"{int(survival_table['event'].sum()) if len(survival_table) else 0} "
            "churn events in the survival table (at least 10 are needed); churn probabilities "
            "come from the value model (its probability of a declaration within the horizon)."]
    notes = []
    # lifelines' time and memory grow with the rows: past sample_rows, a weighted sample
    sample = None
    if sample_rows is not None and len(survival_table) > sample_rows:
        by = [c for c in ("landmark", RECENCY_BAND) if c in survival_table.columns]
        sample = stratified_sample(survival_table, sample_rows, by=by, seed=seed)
        survival_table = sample.table
        notes.append(sample.describe())
    # A small ridge penalty keeps the fit finite under the separation that declared churn
    # creates by construction: whoever is declared churned within the horizon had been idle
    # for at least churn_after - horizon, so a short purchase window is exactly 0 for every
    # event. It shrinks ordinary coefficients by well under 1 %.
    # The model derives its covariates from the raw table (features="landmark", saved in its
    # file): recency, tenure, log1p counts in the middle window (about 3 months), trend, log1p
    # mean spend, attributes; without the landmark table's collinear columns.
    strata = [RECENCY_BAND] if RECENCY_BAND in survival_table.columns else None
    # covariates are scored within their training range (clip_to_training): a base scored
    # later than its landmarks (older customers, a longer history) gets no extrapolated hazard
    model = ChurnModel(time_unit=time_unit, tail="constant_hazard", seed=seed, penalizer=PENALIZER,
                       features="landmark", strata=strata, clip_to_training=True,
                       # sample weights are no frequencies: only the sandwich variance holds
                       **({} if sample is None else {"weights_col": SAMPLE_WEIGHT,
                                                     "robust": True}))
    # attributes are typed on the whole customers file; among the customers at risk at the
    # landmarks an attribute may hold one value (a plan launched since), which no hazard
    # ratio can be estimated for: left out of this fit, and said so
    outcome = {"customer_id", "landmark", "duration", "event", RECENCY_BAND, SAMPLE_WEIGHT}
    constant = [c for c in survival_table.columns if c not in outcome
                and not is_behaviour_column(c) and survival_table[c].nunique(dropna=False) < 2]
    if constant:
        notes.append("Attributes with a single value in the survival table, left out of the "
                     f"churn model: {', '.join(constant)}.")
        survival_table = survival_table.drop(columns=constant)
    # lifelines' warnings (near-separation, ill-conditioning) go into the run's notes, where
    # the reader of data_quality.json and the report sees them, instead of the console
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(survival_table, source="landmark survival table")
        except (ClvInputError, ConvergenceError) as exc:
            return None, [f"No Cox churn model ({str(exc).splitlines()[0]}); churn "
                          "probabilities come from the value model (its probability of a "
                          "declaration within the horizon)."]
    notes += sorted({f"Cox fit: {w.category.__name__}: {' '.join(str(w.message).split())[:300]}"
                     for w in caught})
    if sample is not None:
        model.sample_ = sample.as_dict()
    return model, notes


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
    out = pd.DataFrame({"churn_probability": np.nan, "churn_model": DECLARED},
                       index=customer_ids)
    scoring = scoring.set_index("customer_id")
    if model is not None:
        probability = model.churn_probability(scoring, horizon, source="scoring table")
        out.loc[scoring.index, "churn_probability"] = probability.to_numpy()
        out.loc[scoring.index, "churn_model"] = COX
    elif STRUCTURAL_COLUMN in scoring:
        # the term is log(-log(1 - P)): back to P
        term = scoring[STRUCTURAL_COLUMN].to_numpy(dtype=float)
        out.loc[scoring.index, "churn_probability"] = -np.expm1(-np.exp(term))
        out.loc[scoring.index, "churn_model"] = STRUCTURAL
    else:
        out.loc[scoring.index, "churn_probability"] = 1.0 - p_alive.loc[scoring.index].to_numpy()
        out.loc[scoring.index, "churn_model"] = BTYD
    return out


def known_levels(model: ChurnModel, table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``table`` with every level of a categorical attribute that the model was not fitted
    with replaced by the attribute's reference level (and every recency band without a
    baseline by the nearest band with one), and how many values were replaced.

    Attributes are typed on the whole customers file, but a model fitted at an earlier
    landmark sees only the customers acquired by then: a level held only by newer customers
    (a new plan, a new store) would otherwise stop the run at scoring.
    """
    replaced, table = 0, table.copy(deep=False)    # columns are replaced, never written into
    for column, levels in model.encoder_.levels_.items():
        if column not in table:
            continue
        # each distinct value checked once, not its text made for every row
        codes, values = pd.factorize(table[column], use_na_sentinel=False)
        unseen = ~np.asarray(pd.Index(values).astype(str).isin(levels))[codes]
        if unseen.any():
            replaced += int(unseen.sum())
            table[column] = table[column].astype(object).where(~unseen, levels[0])
    if model.strata == [RECENCY_BAND] and RECENCY_BAND in table:
        # a band of time since the last purchase that no training row fell in (small data)
        # takes the baseline of the nearest band that has one
        seen = np.array(sorted(int(band) for band in model.baselines_))
        # the band labels, read once per distinct label (a million rows share 26)
        codes, labels = pd.factorize(table[RECENCY_BAND])
        bands = np.array([int(label) for label in labels], dtype=np.int64)[codes]
        nearest = seen[np.abs(bands[:, None] - seen[None, :]).argmin(axis=1)]
        moved = nearest != bands
        if moved.any():
            replaced += int(moved.sum())
            relabelled = table[RECENCY_BAND].to_numpy(dtype=object, copy=True)
            relabelled[moved] = [f"{band:02d}" for band in nearest[moved]]
            table[RECENCY_BAND] = relabelled
    return table, replaced


def validation_landmarks(timeline: Timeline, score_at=None) -> list:
    """The landmarks of the out-of-time validation (:func:`validate_churn_model`): its
    training and evaluation landmarks and, when later than the evaluation one, ``score_at``;
    empty when the history is too short for a validation."""
    train_at, eval_at = timeline.validation_training, timeline.validation_evaluation
    if train_at is None:
        return []
    return [train_at, eval_at] + ([score_at] if score_at is not None and score_at > eval_at
                                  else [])


def _at_landmarks(table: pd.DataFrame, marks) -> pd.DataFrame:
    """The rows of a stacked landmark table at the landmarks ``marks``, renumbered."""
    dates = pd.to_datetime(pd.Series(list(marks), dtype=object)).to_numpy(dtype=table[
        "landmark"].dtype)
    return table[table["landmark"].isin(dates).to_numpy()].reset_index(drop=True)


def censored_at(table: pd.DataFrame, end, time_unit: str) -> pd.DataFrame:
    """A landmark table built from the full log, with every outcome censored at the earlier
    date ``end``: the table :func:`~clvtools.data.survival_tables.landmark_table` builds from
    ``log.until(end)``, without a second pass over the log.

    The covariates at a landmark before ``end`` see nothing later either way; a declaration on
    or before ``end`` is the same in both logs (a purchase after ``end`` that ends a spell in
    the cut log is followed by no declaration before ``end`` in either), so censoring the
    full log's outcome at ``end`` gives the cut log's.

    Parameters
    ----------
    table : pandas.DataFrame
        Landmark rows (``landmark`` before ``end``), ``duration`` in ``time_unit`` (whole
        days), ``event``.
    end : datetime.date
    time_unit : {"day", "week", "month"}

    Returns
    -------
    pandas.DataFrame
        A copy with ``duration`` and ``event`` censored at ``end``.
    """
    days_per_unit = unit_days(time_unit)
    landmark = pd.to_datetime(table["landmark"]).to_numpy(dtype="datetime64[D]")
    follow_up = (np.datetime64(end, "D") - landmark).astype(np.int64)   # days, per row
    days = np.rint(table["duration"].to_numpy(dtype=float) * days_per_unit).astype(np.int64)
    late = days > follow_up
    out = table.copy()
    # the SQL's (least(declared, end) - landmark) / unit days, in the same arithmetic
    out["duration"] = np.minimum(days, follow_up) / days_per_unit
    out["event"] = np.where(late, 0, table["event"].to_numpy())
    return out


def validate_churn_model(inputs: Inputs, timeline: Timeline, settings: Settings, *,
                         score_at=None, cache: dict | None = None,
                         landmark_rows: pd.DataFrame | None = None,
                         model_rows: pd.DataFrame | None = None,
                         ) -> tuple[dict[str, pd.DataFrame], str]:
    """Out-of-time validation: fit at the timeline's training landmark with outcomes censored
    at its evaluation landmark, evaluate there with outcomes up to the end, so that no
    evaluated outcome was seen in fitting.

    Parameters
    ----------
    score_at : datetime.date, optional
        A later date (on or after the evaluation landmark; the value model's holdout start)
        at which the same validation model also scores the customers live then, for the
        targeting evaluation: that model saw nothing after its evaluation landmark.
    cache : dict, optional
        The main fit's structural terms and BG/NBD fits by date
        (:func:`~clvtools.pipeline.structural.structural_probability`): ``score_at`` is one
        of its landmarks.
    landmark_rows : pandas.DataFrame, optional
        A landmark table of the full log holding every landmark of
        :func:`validation_landmarks` (the first two are enough with ``model_rows``); built
        here (one query) when omitted or short of one. (Stacking them
        onto the main fit's query raised the step's peak memory by about 0.4 GB at a
        million customers, for no clear saving of time.)
    model_rows : pandas.DataFrame, optional
        The main fit's survival table as :func:`~clvtools.pipeline.structural.churn_model_inputs`
        made it (structural term and recency band added, from the same log and
        attributes): when ``score_at`` is one of its landmarks, its rows there are the rows
        to score, neither queried nor given their structural term again.

    Returns
    -------
    (dict of pandas.DataFrame, str)
        ``churn_validation`` (metrics) and ``churn_calibration`` (per decile), or an empty
        dict when the history is too short or a metric cannot be computed; with
        ``score_at``, also ``churn_scores_at_holdout`` (not a file): indexed by
        ``customer_id``, ``churn_probability`` at ``score_at``, ``churned`` (1 when churn
        was declared within the horizon after it, else 0), ``duration`` and ``event`` (the
        landmark table's time to declared churn or censoring after it); and the note.
    """
    train_at, eval_at = timeline.validation_training, timeline.validation_evaluation
    if train_at is None:
        return {}, ("No out-of-time validation of the churn model: it needs a history of "
                    f"{EVALUATION_LAG + TRAINING_LAG:g} horizons before the observation end.")
    s, log = settings, inputs.log
    marks = validation_landmarks(timeline, score_at)
    score_at = marks[2] if len(marks) > 2 else None
    # the main fit's rows at score_at are the rows to score there: the same log, landmark
    # and attributes give the same rows (and the same cached structural term)
    reuse = (score_at is not None and model_rows is not None
             and STRUCTURAL_COLUMN in model_rows
             and (model_rows["landmark"] == pd.Timestamp(score_at)).any())
    queried = marks[:2] if reuse else marks
    if landmark_rows is None or not set(pd.to_datetime(queried)) <= set(
            pd.to_datetime(landmark_rows["landmark"].unique())):
        landmark_rows = landmark_table(log, landmarks=queried, attributes=inputs.attributes,
                                       churn_after=s.churn_after, time_unit=s.time_unit)
    # the training table must not see past the evaluation landmark, outcomes included
    train = censored_at(_at_landmarks(landmark_rows, [train_at]), eval_at, s.time_unit)
    evaluation = _at_landmarks(landmark_rows, queried[1:])
    del landmark_rows       # its rows live on in the two tables: not held twice from here
    # the same model as the main job's: structural term (each from the log up to its
    # landmark) and recency strata
    train, evaluation, _ = churn_model_inputs(
        train, evaluation, log.until(eval_at), horizon=s.horizon, churn_after=s.churn_after,
        time_unit=s.time_unit, seed=s.seed, scoring_log=log, cache=cache)
    if reuse:
        scoring = _at_landmarks(model_rows, [score_at])
        if STRUCTURAL_COLUMN not in evaluation:   # no BG/NBD at the validation's dates
            scoring = scoring.drop(columns=STRUCTURAL_COLUMN)
    else:
        later = (pd.to_datetime(evaluation["landmark"]).dt.date != eval_at).to_numpy()
        evaluation, scoring = evaluation[~later], evaluation[later]
    fitted, _ = fit_churn_model(train, time_unit=s.time_unit, seed=s.seed,
                                sample_rows=s.churn_sample_rows)
    if fitted is None or evaluation["event"].sum() == 0:
        return {}, "No out-of-time validation of the churn model: too few churn events."
    try:
        evaluation, _ = known_levels(fitted, evaluation)
        result = validate_out_of_time(fitted, train, evaluation, s.horizon, seed=s.seed)
    except (ClvInputError, ValueError) as exc:  # scikit-survival's checks raise ValueError
        return {}, f"No out-of-time validation of the churn model: {str(exc).splitlines()[0]}"
    metrics = result["metrics"]
    metrics.insert(0, "train_landmark", train_at)
    metrics.insert(1, "evaluation_landmark", eval_at)
    tables = {"churn_validation": metrics, "churn_calibration": result["calibration"]}
    if score_at is not None and len(scoring):
        scoring, _ = known_levels(fitted, scoring)
        probability = fitted.churn_probability(scoring, s.horizon, source="scoring table")
        tables["churn_scores_at_holdout"] = pd.DataFrame({
            "churn_probability": probability.to_numpy(dtype=float),
            # declared within the horizon that followed (the landmark table's outcome)
            "churned": ((scoring["event"] == 1) & (scoring["duration"] <= s.horizon))
            .astype(int).to_numpy(),
            # time to the declaration (or censoring) after the landmark, for curves by cell
            "duration": scoring["duration"].to_numpy(dtype=float),
            "event": scoring["event"].to_numpy(dtype=int),
        }, index=pd.Index(scoring["customer_id"].astype(str).to_numpy(), name="customer_id"))
    return tables, (
        f"Churn model validated out of time: fitted at {train_at}, evaluated at {eval_at}.")


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
    curves, medians, tests = [], [], []
    for by in [None, *segments]:
        label = by or "all"
        rows = segment_rows(survival_table, by)      # compressed once for all three
        curves.append(km_curves(None, rows=rows).assign(by=label))
        medians.append(median_survival(None, rows=rows).assign(by=label))
        if by is not None and survival_table[by].nunique() > 1:
            tests.append(logrank_tests(None, None, rows=rows).assign(by=label))
    out = {"survival_curves": pd.concat(curves, ignore_index=True),
           "median_time_to_churn": pd.concat(medians, ignore_index=True)}
    if tests:
        out["logrank_tests"] = pd.concat(tests, ignore_index=True)
    return {
        name: frame[["by", *[c for c in frame.columns if c != "by"]]]
        for name, frame in out.items()
    }

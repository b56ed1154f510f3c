"""The churn model's out-of-time validation: the main job's model fitted at an earlier
landmark with outcomes censored at a later one, evaluated there (concordance, AUC, Brier
score, calibration), and the same model's scores at the value model's holdout start for the
targeting evaluation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.survival_tables import landmark_table
from ..errors import ClvInputError
from ..survival.churn_model import ChurnModel
from ..survival.metrics import validate_out_of_time
from ..survival.sampling import SurvivalSample
from ..units import unit_days
from .churn_fit import fit_churn_model, known_levels
from .inputs import Inputs
from .structural import STRUCTURAL_COLUMN, churn_model_inputs
from .timeline import EVALUATION_LAG, TRAINING_LAG, Timeline

__all__ = ["SHORT_HISTORY_NOTE", "validation_landmarks", "censored_at", "validate_churn_model",
           "validate_on_rows", "calibration_warning"]

#: The note of a validation that the history is too short for (every engine's).
SHORT_HISTORY_NOTE = ("No out-of-time validation of the churn model: it needs a history of "
                      f"{EVALUATION_LAG + TRAINING_LAG:g} horizons before the observation end.")


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
    """The rows of a stacked landmark table at the landmarks ``marks``, renumbered: new
    arrays when some rows are left out, else the table's own (a shallow copy: its columns
    are never written into). Boolean selection and ``reset_index`` each copied and
    consolidated every column (0.5 s of a run at a million customers)."""
    dates = pd.to_datetime(pd.Series(list(marks), dtype=object)).to_numpy(dtype=table[
        "landmark"].dtype)
    kept = table["landmark"].isin(dates).to_numpy()
    out = table.copy(deep=False) if kept.all() else table.take(np.flatnonzero(kept))
    out.index = pd.RangeIndex(len(out))
    return out


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
    out = table.copy(deep=False)    # both columns replaced below, none written into
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
        return {}, SHORT_HISTORY_NOTE
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
    tables, note, fitted = validate_on_rows(train, evaluation, s, train_at=train_at,
                                            eval_at=eval_at)
    if fitted is not None and score_at is not None and len(scoring):
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
    return tables, note


def validate_on_rows(train: pd.DataFrame, evaluation: pd.DataFrame, settings: Settings, *,
                     train_at, eval_at, drawn: SurvivalSample | None = None,
                     censoring: pd.DataFrame | None = None, sampled: int | None = None
                     ) -> tuple[dict[str, pd.DataFrame], str, ChurnModel | None]:
    """The out-of-time validation's finish, the same for every engine once it has the rows
    of both sides its own way: fit the model on the training rows as the main job fits it
    (past ``churn_sample_rows`` on its stratified weighted sample), evaluate it on the
    evaluation rows (:func:`~clvtools.survival.metrics.validate_out_of_time`) and say how.

    Parameters
    ----------
    train : pandas.DataFrame
        The landmark rows at ``train_at``, outcomes censored at ``eval_at``
        (:func:`censored_at`), with the structural term (or without it on both sides) and
        the recency band, as :func:`~clvtools.pipeline.structural.churn_model_inputs` makes
        them; or, with ``drawn``, that table's stratified sample with its weight column.
    evaluation : pandas.DataFrame
        The landmark rows at ``eval_at``, outcomes to the end, with the same columns: all
        of them, or with ``sampled`` a uniform sample.
    settings : Settings
        ``horizon``, ``time_unit``, ``seed`` and ``churn_sample_rows``.
    train_at, eval_at : datetime.date
        The training and evaluation landmarks (the metrics' first two columns).
    drawn : SurvivalSample, optional
        ``train`` is this stratified sample of the training landmark's rows (its ``table``
        is ``train``), drawn by the engine from the same strata as the main fit's.
    censoring : pandas.DataFrame, optional
        Every training row's ``landmark``, ``duration`` and ``event`` (other columns are
        not read), from which the metrics estimate the censoring distribution when
        ``train`` is a sample; ``train`` when omitted.
    sampled : int, optional
        The rows at ``eval_at`` that ``evaluation`` is a uniform sample of (None when it is
        all of them): the metrics' note column and the note say so, with the sampling
        error's order (``1 / sqrt(len(evaluation))``).

    Returns
    -------
    (dict of pandas.DataFrame, str, ChurnModel or None)
        ``churn_validation`` (metrics, shape (6, 5)) and ``churn_calibration`` (per decile),
        or an empty dict when the model cannot be fitted or a metric cannot be computed;
        the note for data_quality.json; the fitted model (None with an empty dict).
    """
    s = settings
    # only evaluated: its proportional-hazards test (about a second at 300k rows) is read
    # nowhere, and the test does not touch the fitted coefficients
    fitted, _ = fit_churn_model(train, time_unit=s.time_unit, seed=s.seed,
                                sample_rows=s.churn_sample_rows, drawn=drawn, check_ph=False)
    if fitted is None or evaluation["event"].sum() == 0:
        return {}, "No out-of-time validation of the churn model: too few churn events.", None
    try:
        evaluation, _ = known_levels(fitted, evaluation)
        result = validate_out_of_time(fitted, train if censoring is None else censoring,
                                      evaluation, s.horizon, seed=s.seed)
    except (ClvInputError, ValueError) as exc:  # scikit-survival's checks raise ValueError
        return ({}, f"No out-of-time validation of the churn model: {str(exc).splitlines()[0]}",
                None)
    metrics = result["metrics"]
    metrics.insert(0, "train_landmark", train_at)
    metrics.insert(1, "evaluation_landmark", eval_at)
    note = f"Churn model validated out of time: fitted at {train_at}, evaluated at {eval_at}."
    if sampled is not None:
        how = (f"on a uniform sample of {len(evaluation):,} of the {sampled:,} rows at the "
               "evaluation landmark")
        metrics["note"] = metrics["note"] + f"; {how}"
        note = note[:-1] + f" {how} (sampling error about 1/sqrt(rows))."
    return ({"churn_validation": metrics, "churn_calibration": result["calibration"]}, note,
            fitted)


def calibration_warning(calibration: pd.DataFrame | None, limit: float) -> str | None:
    """The warning a user must hear when the out-of-time calibration (churn_calibration's
    ``difference`` per decile, probabilities) is off by more than ``limit`` in a decile;
    None otherwise or without a calibration."""
    if calibration is None or not len(calibration):
        return None
    gap = float(calibration["difference"].abs().max())
    if gap <= limit:
        return None
    return (f"Out of time, predicted and observed churn differ by up to {gap:.2f} in a decile "
            f"(more than {limit}): read churn probabilities as a ranking; see "
            "churn_calibration.csv.")

"""The chunked run's out-of-time validation of the churn model: the standard engine's
(:func:`~clvtools.pipeline.churn_validation.validate_churn_model`) with the landmark table of
its two dates kept in DuckDB and only the rows each side needs fetched; the fit and the
metrics are the standard engine's own
(:func:`~clvtools.pipeline.churn_validation.validate_on_rows`).

- Training (the timeline's validation training landmark, outcomes censored at its evaluation
  landmark): the same rows as the standard engine's, or past ``churn_sample_rows`` the same
  stratified weighted sample (:func:`~clvtools.survival.sampling.stratified_sample` on the
  censored event, landmark and recency band, drawn from four narrow columns as the main fit's
  is, :mod:`.chunked_churn`), so the fitted model is the standard one. The metrics' censoring
  distribution reads the whole training landmark's (duration, event), a few bytes a row.
- Evaluation (the evaluation landmark, outcomes to the end): every row up to
  ``churn_sample_rows`` (then the files equal the standard engine's), else a uniform seeded
  sample of that many rows, unweighted: each metric (concordance, AUC, Brier score, calibration
  by decile) is then an estimate whose sampling error is of the order of ``1 / sqrt(n)`` for
  ``n`` sampled rows (below 0.001 at the default two million); the metrics' note column and
  the run's note say so.

The model is returned too: the targeting evaluation (:mod:`.chunked_evaluation`) scores the
holdout start with it, as the standard engine's validation does.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.chunked_tables import fetch_rows
from ..data.engine import quote_ident
from ..data.survival_tables import landmark_table
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.churn_validation import SHORT_HISTORY_NOTE, censored_at, validate_on_rows
from ..pipeline.structural import RECENCY_BAND, STRUCTURAL_COLUMN, add_recency_band
from ..pipeline.timeline import Timeline
from ..survival.sampling import SAMPLE_WEIGHT, stratified_sample
from .chunked_churn import with_structural_term

__all__ = ["VALIDATION_TABLE", "chunked_churn_validation"]

#: The DuckDB table of the validation's landmark rows (dropped once read).
VALIDATION_TABLE = "chunked_validation_landmarks"


def chunked_churn_validation(log: TransactionLog, timeline: Timeline, settings: Settings, *,
                             attributes=None, python_limit: str | None = None
                             ) -> tuple[dict[str, pd.DataFrame], str, object]:
    """churn_validation.csv and churn_calibration.csv of a chunked run.

    Parameters
    ----------
    log : TransactionLog
    timeline : Timeline
        Its ``validation_training`` and ``validation_evaluation`` landmarks.
    settings : Settings
        ``horizon``, ``churn_after``, ``time_unit``, ``seed`` and ``churn_sample_rows`` (the
        largest table fitted, or evaluated, whole).
    attributes : CustomerAttributes, optional
        Joined to the landmark rows as the main fit joins them.
    python_limit : str, optional
        DuckDB's ``memory_limit`` once the rows are fetched (the run's share while Python
        fits and scores): the tables of both sides are then held in pandas, and DuckDB's
        larger share for the landmark table would otherwise stay beside them (at 10.6M
        customers under a 6 GB limit the step peaked at 6.5 GB).

    Returns
    -------
    (dict of pandas.DataFrame, str, ChurnModel or None)
        ``churn_validation`` (metrics, shape (6, 5)) and ``churn_calibration`` (per decile),
        as :func:`~clvtools.pipeline.churn_validation.validate_churn_model` returns them (an
        empty dict when the history is too short or a metric cannot be computed), the
        note for data_quality.json, and the validation's model (None without one), which
        the targeting evaluation scores the holdout start with (:mod:`.chunked_evaluation`).
    """
    s = settings
    train_at, eval_at = timeline.validation_training, timeline.validation_evaluation
    if train_at is None:
        return {}, SHORT_HISTORY_NOTE, None
    con, name = log.con, quote_ident(VALIDATION_TABLE)
    landmark_table(log, landmarks=[train_at, eval_at], attributes=attributes,
                   churn_after=s.churn_after, time_unit=s.time_unit, into=VALIDATION_TABLE)
    try:
        # the training landmark's outcomes, censored at the evaluation landmark
        outcomes = censored_at(con.execute(
            f"SELECT rowid AS row, landmark, duration, event, time_since_last_purchase "
            f"FROM {name} WHERE CAST(landmark AS DATE) = ? ORDER BY rowid", [train_at]).df(),
            eval_at, s.time_unit)
        train, drawn = _training_rows(con, outcomes, eval_at, s)
        evaluation, sampled = _evaluation_rows(con, eval_at, s)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")
        if python_limit is not None:
            con.execute("SET memory_limit = ?", [python_limit])
    term = dict(horizon=s.horizon, churn_after=s.churn_after, time_unit=s.time_unit,
                seed=s.seed)
    try:    # both tables or neither, as the standard engine's churn_model_inputs
        train, evaluation = (with_structural_term(train, log, **term),
                             with_structural_term(evaluation, log, **term))
    except (ConvergenceError, ClvInputError):
        train = train.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
        evaluation = evaluation.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
    train = add_recency_band(train, s.churn_after)
    evaluation = add_recency_band(evaluation, s.churn_after)
    if drawn is not None:
        drawn = replace(drawn, table=train)
    # the metrics' censoring distribution: the whole training landmark's, not the sample's
    return validate_on_rows(train, evaluation, s, train_at=train_at, eval_at=eval_at,
                            drawn=drawn, censoring=outcomes, sampled=sampled)


def _training_rows(con, outcomes: pd.DataFrame, eval_at, s: Settings):
    """The training rows, censored at ``eval_at``: all of them, or past
    ``churn_sample_rows`` the standard engine's stratified sample (with its weights), and the
    sample (None when whole)."""
    drawn = None
    if len(outcomes) > s.churn_sample_rows:
        strata = add_recency_band(outcomes, s.churn_after)
        drawn = stratified_sample(strata, s.churn_sample_rows, by=["landmark", RECENCY_BAND],
                                  seed=s.seed)
        rows = drawn.table["row"].to_numpy()
        weights = drawn.table[SAMPLE_WEIGHT].to_numpy()
    else:
        rows, weights = outcomes["row"].to_numpy(), None
    table = censored_at(fetch_rows(con, VALIDATION_TABLE, rows), eval_at, s.time_unit)
    if weights is not None:
        table[SAMPLE_WEIGHT] = weights
    return table, drawn


def _evaluation_rows(con, eval_at, s: Settings) -> tuple[pd.DataFrame, int | None]:
    """The rows at ``eval_at``: all, or past ``churn_sample_rows`` a uniform seeded sample of
    that many (in table order); and the number of rows sampled from (None when whole)."""
    rows = con.execute(f"SELECT rowid AS row FROM {quote_ident(VALIDATION_TABLE)} "
                       "WHERE CAST(landmark AS DATE) = ? ORDER BY rowid", [eval_at]
                       ).fetchnumpy()["row"]
    if len(rows) <= s.churn_sample_rows:
        return fetch_rows(con, VALIDATION_TABLE, rows), None
    picked = np.sort(np.random.default_rng(s.seed).choice(rows, s.churn_sample_rows,
                                                          replace=False))
    return fetch_rows(con, VALIDATION_TABLE, picked), len(rows)

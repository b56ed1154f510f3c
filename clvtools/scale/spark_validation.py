"""A Spark run's out-of-time validation of the churn model: the standard engine's
(:func:`~clvtools.pipeline.churn_validation.validate_churn_model`) with the landmark table of
its two dates built in Spark SQL (:func:`~clvtools.data.spark_summaries.spark_landmark_table`)
and only the rows each side needs collected; the fit and the metrics are the standard
engine's own (:func:`~clvtools.pipeline.churn_validation.validate_on_rows`).

- Training (the timeline's validation training landmark, outcomes censored at its evaluation
  landmark on the executors): collected whole up to ``churn_sample_rows``, past it the
  standard engine's stratified weighted sample drawn on the executors, as the main fit's
  (:mod:`.spark_survival_sample`), beside every row's outcome for the metrics' censoring
  distribution; fitted as the standard engine fits it, so the fitted model is the standard
  one.
- Evaluation (the evaluation landmark, outcomes to the end): every row up to
  ``churn_sample_rows`` (then the files equal the standard engine's), else a uniform seeded
  sample of that many rows drawn by position in customer id order on the executors
  (:func:`.spark_rows.rows_at_positions`), unweighted: each metric is then an estimate whose
  sampling error is of the order of ``1 / sqrt(n)`` (below 0.001 at the default two
  million), as in the chunked run (:mod:`.chunked_validation`); the metrics' note column and
  the run's note say so.

The structural term of each side is the main fit's (the BG/NBD fitted on the log up to the
landmark, :func:`.spark_fit.structural_at`). The model's scores at the holdout start (the
targeting evaluation's) are not computed here.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.spark_engine import SparkLog
from ..data.spark_summaries import spark_landmark_table
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.churn_validation import SHORT_HISTORY_NOTE, censored_at, validate_on_rows
from ..pipeline.structural import STRUCTURAL_COLUMN, add_recency_band
from ..pipeline.timeline import Timeline
from .spark_fit import customers_of, structural_at
from .spark_rows import rows_at_positions
from .spark_survival_sample import spark_survival_sample

__all__ = ["spark_churn_validation"]


def spark_churn_validation(log: SparkLog, timeline: Timeline, settings: Settings, *,
                           attributes=None) -> tuple[dict[str, pd.DataFrame], str]:
    """churn_validation.csv and churn_calibration.csv of a Spark run.

    Parameters
    ----------
    log : SparkLog
    timeline : Timeline
        Its ``validation_training`` and ``validation_evaluation`` landmarks.
    settings : Settings
        ``horizon``, ``churn_after``, ``time_unit``, ``seed`` and ``churn_sample_rows``.
    attributes : SparkAttributes, optional
        Joined to the landmark rows as the main fit joins them.

    Returns
    -------
    (dict of pandas.DataFrame, str)
        ``churn_validation`` (metrics) and ``churn_calibration`` (per decile), as
        :func:`~clvtools.pipeline.churn_validation.validate_churn_model` returns them (an
        empty dict when the history is too short or a metric cannot be computed), and the
        note for data_quality.json.
    """
    from pyspark.sql import functions as F

    s = settings
    train_at, eval_at = timeline.validation_training, timeline.validation_evaluation
    if train_at is None:
        return {}, SHORT_HISTORY_NOTE
    table = spark_landmark_table(log, landmarks=[train_at, eval_at], attributes=attributes,
                                 churn_after=s.churn_after, time_unit=s.time_unit).persist()
    censored = None
    try:
        at_train = table.where(F.col("landmark") == F.lit(train_at))
        # the training landmark's rows, outcomes censored at the evaluation landmark on the
        # executors (the pipeline's own function); past churn_sample_rows only the standard
        # engine's stratified sample of them reaches the driver, with every row's outcome
        # (three columns) for the metrics' censoring distribution
        censored = at_train.mapInPandas(_censoring(eval_at, s.time_unit),
                                        schema=at_train.schema).persist()
        train, drawn = spark_survival_sample(censored, s.churn_sample_rows,
                                             churn_after=s.churn_after, seed=s.seed)
        # landmark, duration and event are all the metrics read (no ids, no sort)
        censoring = (None if drawn is None else
                     censored.select("landmark", "duration", "event").toPandas()
                     .assign(landmark=lambda t: pd.to_datetime(t["landmark"])))
        train = _dated(train)
        at_eval = table.where(F.col("landmark") == F.lit(eval_at))
        rng = np.random.default_rng(s.seed)
        size, evaluation = rows_at_positions(at_eval, "customer_id", lambda n: (
            np.arange(n) if n <= s.churn_sample_rows
            else np.sort(rng.choice(n, s.churn_sample_rows, replace=False))))
        evaluation = _dated(evaluation)
        sampled = size if len(evaluation) < size else None
        term = dict(time_unit=s.time_unit, horizon=s.horizon, churn_after=s.churn_after,
                    seed=s.seed)
        try:    # both tables or neither, as the standard engine's churn_model_inputs
            ids = train["customer_id"].astype(str).to_numpy()
            train[STRUCTURAL_COLUMN] = structural_at(
                log, train_at, customers_of(log, at_train, ids, whole=drawn is None), ids,
                **term)
            ids = evaluation["customer_id"].astype(str).to_numpy()
            evaluation[STRUCTURAL_COLUMN] = structural_at(
                log, eval_at, customers_of(log, at_eval, ids, whole=sampled is None), ids,
                **term)
        except (ConvergenceError, ClvInputError):
            train = train.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
            evaluation = evaluation.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
    finally:
        if censored is not None:
            censored.unpersist()
        table.unpersist()
    train = add_recency_band(train, s.churn_after)
    evaluation = add_recency_band(evaluation, s.churn_after)
    tables, note, _ = validate_on_rows(
        train, evaluation, s, train_at=train_at, eval_at=eval_at,
        drawn=None if drawn is None else replace(drawn, table=train), censoring=censoring,
        sampled=sampled)
    return tables, note


def _censoring(end, time_unit: str):
    """The function ``mapInPandas`` runs on the training rows: :func:`censored_at` of each
    batch, in the table's columns and types."""
    def censor(batches):
        for batch in batches:
            out = censored_at(batch, end, time_unit)
            yield out.astype({"event": batch["event"].dtype})
    return censor


def _dated(rows: pd.DataFrame) -> pd.DataFrame:
    """Collected landmark rows as the main fit holds them: in customer id order, the
    landmark as datetime64."""
    rows = rows.sort_values("customer_id", ignore_index=True)
    rows["landmark"] = pd.to_datetime(rows["landmark"])
    return rows

"""The value model's holdout checks of a Spark run (holdout_summary.csv,
holdout_by_frequency.csv, holdout_by_month.csv, holdout_by_segment.csv and the report's
holdout table and charts), as the standard engine's
:func:`~clvtools.pipeline.holdout.evaluate_candidate` computes them for the model used.

The calibration window is built in Spark (:mod:`clvtools.data.spark_holdout`); the purchase
model used is refitted on the driver from its compressed rows (as the backtest refits at its
first origin, the same date); each partition's customers are scored with ``mapInPandas`` by
the pipeline's own functions and only their sums leave the executors
(:class:`~.holdout_sums.HoldoutSums`, one small object per partition), beside each
customer's P(alive) and purchase in the holdout, which a Spark ``groupBy`` counts per
distinct P(alive) for the AUC. The candidates are not compared on the holdout here (a
Spark run chooses by BIC under ``value_model = "auto"``): the summary has the one row of the
model used.
"""
from __future__ import annotations

import pickle

import pandas as pd

from ..data.holdout_window import holdout_duration
from ..data.spark_holdout import spark_holdout_months, spark_holdout_window
from ..pipeline.scoring import bound_models
from .holdout_sums import NO_HOLDOUT, HoldoutSums, auc_from_counts, holdout_files
from .spark_fit import fit_value_from_spark

__all__ = ["spark_holdout"]

_ATTRIBUTE = "attribute__"
_RFM = ("frequency", "recency", "T", "monetary_value")


def spark_holdout(log, timeline, *, value_model: str, horizon: float, covariates=None,
                  attributes=None, segment_columns=()) -> tuple[dict, list[str]]:
    """The holdout tables of the value model used, refitted on the calibration window.

    Parameters
    ----------
    log : SparkLog
    timeline : Timeline
        Its ``holdout_start`` is the calibration end (None: no holdout).
    value_model : str
        The purchase model the run used.
    horizon : float
        Time units.
    covariates : pyspark.sql.DataFrame, optional
        ``customer_id`` and the attributes the purchase model takes (the run's).
    attributes : pyspark.sql.DataFrame, optional
        ``customer_id`` and the customer attributes at the observation end, holding
        ``segment_columns`` (the categorical attributes: the holdout's segments) and the
        columns of ``covariates``.

    Returns
    -------
    (dict of pandas.DataFrame, list of str)
        The standard ``holdout_*`` tables; the notes.
    """
    from pyspark.sql import functions as F

    start = timeline.holdout_start
    if start is None:
        return {}, [NO_HOLDOUT]
    window = spark_holdout_window(log, start, time_unit=timeline.time_unit).persist()
    rfm = [c for c in _RFM if c in window.columns]
    models, _, fit_notes = fit_value_from_spark(window.select("customer_id", *rfm),
                                                value_model, covariates)
    duration = holdout_duration(start, log.observation_end, timeline.time_unit)
    named = [] if attributes is None else [c for c in attributes.columns if c != "customer_id"]
    taken = [] if covariates is None else [c for c in covariates.columns if c != "customer_id"]
    labels = [c for c in segment_columns if c in named]
    joined = window if not named else window.join(attributes.select(
        "customer_id", *[F.col(c).alias(_ATTRIBUTE + c) for c in named]),
        on="customer_id", how="left")
    unit_days = timeline.unit_days

    def partition(chunks):
        sums = HoldoutSums()
        for chunk in chunks:
            frame = chunk.set_index("customer_id")
            attrs = frame[[_ATTRIBUTE + c for c in named]].rename(
                columns=lambda c: c[len(_ATTRIBUTE):])
            alive = sums.add_chunk(
                bound_models(models, frame, attrs[taken] if taken else None), frame,
                attrs[labels] if labels else None, horizon=horizon, unit_days=unit_days,
                duration=duration)
            yield pd.DataFrame({**alive, "sums": None})
        yield pd.DataFrame({"p_alive": [None], "bought": [None],
                            "sums": [pickle.dumps(sums)]})

    scored = joined.mapInPandas(partition, "p_alive double, bought boolean, sums binary"
                                ).persist()
    try:
        sums = HoldoutSums()
        for row in scored.where(F.col("sums").isNotNull()).select("sums").collect():
            sums.merge(pickle.loads(row["sums"]))
        counts = (scored.where(F.col("sums").isNull()).groupBy("p_alive")
                  .agg(F.count("*").alias("n"), F.count_if(F.col("bought")).alias("positive"))
                  .orderBy("p_alive").toPandas())
    finally:
        scored.unpersist()
        window.unpersist()
    starts, ends = (list(d) for d in zip(*timeline.holdout_months, strict=True))
    by_period = spark_holdout_months(log, starts, ends, customers_acquired_by=start)
    area = auc_from_counts(counts["p_alive"].to_numpy(float), counts["n"].to_numpy(),
                           counts["positive"].to_numpy())
    return (holdout_files(sums, area, by_period, timeline=timeline,
                          observation_end=log.observation_end, value_model=value_model,
                          models=models),
            [f"Holdout fit: {note}" for note in fit_notes])

"""The early-warning list on Spark: the live customers whose churn probability rose most
since one KPI period earlier, as the single-machine pipeline lists them
(:mod:`clvtools.pipeline.attention`).

The earlier scores are the same fitted Cox model scored through the log as it stood then: a
second scoring table in Spark (covariates and attributes at that date), the structural term
from the observation end's BG/NBD on each customer's RFM at that date (as the single machine
does: a rise is the customer's own history moving, not a refit), and each chunk's rows
prepared and scored by the pipeline's own functions
(:func:`~clvtools.pipeline.scoring.churn_inputs`,
:func:`~clvtools.pipeline.attention.moved_drivers`,
:func:`~clvtools.targeting.early_warning.early_warning_list`). The rank is a global ranking
in Spark (rise, largest first, ties by customer id: the single machine's order).
"""
from __future__ import annotations

import datetime as dt

from ..data.spark_engine import SparkLog
from ..data.spark_summaries import spark_rfm, spark_scoring_table
from ..pipeline.scoring import Scorers, churn_inputs
from .list_chunks import EARLY_WARNING_COLUMNS as COLUMNS
from .list_chunks import early_warning_chunk
from .spark import global_row_number

__all__ = ["spark_early_warning"]

_NOW, _BEFORE, _RFM_NOW, _RFM_BEFORE = "now__", "before__", "rfm_now__", "rfm_before__"


def spark_early_warning(plan, rfm, scoring, log: SparkLog, previous: dt.date,
                        scorers: Scorers, *, value_axis: str, time_unit: str, centre: float,
                        attributes=None):
    """The early-warning list of a Spark run and its counts.

    Parameters
    ----------
    plan : pyspark.sql.DataFrame
        ``customer_id``, ``churn_probability`` (NULL for the declared churned) and
        ``value_axis``, one row per customer.
    rfm, scoring : pyspark.sql.DataFrame
        The RFM summary and the scoring table at the observation end.
    log : SparkLog
    previous : datetime.date
        The earlier date (``Timeline.previous_scoring``).
    scorers : Scorers
        With the Cox model (``scorers.churn`` not None).
    value_axis, time_unit : str
    centre : float
        The drivers' reference (:func:`~clvtools.scale.spark_reasons.reason_centre`).
    attributes : SparkAttributes, optional
        Joined to the earlier scoring table, as at the observation end.

    Returns
    -------
    (pyspark.sql.DataFrame, dict)
        The list (:data:`COLUMNS`, sorted by rank) and the counts of
        :func:`~clvtools.targeting.early_warning.early_warning_list` (``live``,
        ``scored_before``, ``not_scored_before``, ``listed``).
    """
    from pyspark.sql import functions as F

    earlier = log.until(previous)
    rfm_before = spark_rfm(earlier, time_unit=time_unit)
    scoring_before = spark_scoring_table(earlier, churn_after=scorers.churn_after,
                                         time_unit=time_unit, attributes=attributes)

    def prefixed(frame, prefix):
        return frame.select("customer_id", *[F.col(c).alias(prefix + c) for c in frame.columns
                                             if c != "customer_id"])

    live = plan.where(F.col("churn_probability").isNotNull()).select(
        "customer_id", "churn_probability", F.col(value_axis).alias("value_at_stake"))
    joined = (live.join(prefixed(rfm, _RFM_NOW), on="customer_id")
              .join(prefixed(scoring, _NOW), on="customer_id")
              .join(prefixed(rfm_before, _RFM_BEFORE), on="customer_id", how="left")
              .join(prefixed(scoring_before, _BEFORE), on="customer_id", how="left"))
    now_columns = [c for c in scoring.columns if c != "customer_id"]
    before_columns = [c for c in scoring_before.columns if c != "customer_id"]
    rfm_columns = [c for c in rfm.columns if c != "customer_id"]
    def part(frame, prefix, columns):
        return frame[[prefix + c for c in columns]].rename(columns=lambda c: c[len(prefix):])

    def listed(chunks):
        for chunk in chunks:
            frame = chunk.set_index("customer_id")
            now_rows = churn_inputs(part(frame, _NOW, now_columns).reset_index(),
                                    part(frame, _RFM_NOW, rfm_columns), scorers
                                    ).set_index("customer_id")
            scored = frame[_BEFORE + "landmark"].notna().to_numpy()
            before_rows = None
            if scored.any():
                seen = frame[scored]
                before_rows = churn_inputs(part(seen, _BEFORE, before_columns).reset_index(),
                                           part(seen, _RFM_BEFORE, rfm_columns), scorers
                                           ).set_index("customer_id")
            found, _ = early_warning_chunk(frame["churn_probability"], frame["value_at_stake"],
                                           now_rows, before_rows, scorers, centre=centre,
                                           time_unit=time_unit)
            yield found

    schema = ("customer_id string, churn_probability double, churn_probability_before double, "
              "rise double, value_at_stake double, driver_1 string, driver_2 string")
    entries = joined.mapInPandas(listed, schema=schema)
    ranked = global_row_number(entries, [F.desc("rise"), F.asc("customer_id")],
                               "early_warning_rank")
    early = ranked.select(*COLUMNS).orderBy("early_warning_rank")
    counts = live.join(scoring_before.select("customer_id"), on="customer_id", how="left_semi")
    n_live, n_before = live.count(), counts.count()
    return early, {"live": n_live, "scored_before": n_before,
                   "not_scored_before": n_live - n_before, "listed": early.count()}

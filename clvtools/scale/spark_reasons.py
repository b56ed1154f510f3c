"""The contact list's reasons on Spark: targets.csv's reason columns, computed per partition
by the single-machine pipeline's own function
(:func:`clvtools.pipeline.drivers.contact_reasons`).

A contacted customer's reasons depend on their own row, the churn model and two numbers over
the whole base: the share of live customers whose value is at least theirs (a global
ranking of the live customers' values in Spark: for each value, the row number of its last
occurrence in descending order counts the customers at or above it) and the average
customer's log baseline (:func:`clvtools.pipeline.drivers.baseline_centre`, from the live
customers' counts per recency band). The drivers come from the scoring rows as the churn
model scored them (:func:`clvtools.pipeline.scoring.churn_inputs`, rebuilt per chunk).
"""
from __future__ import annotations

import pandas as pd

from ..pipeline.drivers import contact_reasons
from ..pipeline.scoring import Scorers, churn_inputs
from ..pipeline.structural import RECENCY_BAND
from ..targeting.reasons import REASON_COLUMNS
from .list_chunks import band_counts, centre_of_bands
from .spark import global_row_number

__all__ = ["reason_centre", "value_shares", "contact_list_reasons"]

#: Prefix of the scoring table's columns inside a chunk (as in :mod:`clvtools.scale.spark`).
_COVARIATE = "covariate__"


def reason_centre(scoring, scorers: Scorers) -> float:
    """:func:`~clvtools.pipeline.drivers.baseline_centre` over the live customers, from
    their counts per recency band (the band as the model scores it, :func:`known_levels`),
    counted per partition.

    Parameters
    ----------
    scoring : pyspark.sql.DataFrame
        The scoring table (``time_since_last_purchase``), one row per live customer.
    scorers : Scorers

    Returns
    -------
    float
        0 without a Cox model stratified by recency band.
    """
    model = scorers.churn
    if model is None or model.strata != [RECENCY_BAND]:
        return 0.0

    def bands(chunks):
        for chunk in chunks:
            counts = band_counts(chunk, scorers)
            yield pd.DataFrame({"band": counts.index, "customers": counts.to_numpy()})

    counts = (scoring.select("time_since_last_purchase")
              .mapInPandas(bands, schema="band string, customers long")
              .groupBy("band").sum("customers").toPandas())
    return centre_of_bands(pd.Series(counts["sum(customers)"].to_numpy(),
                                     index=counts["band"].to_numpy()), scorers)


def value_shares(plan, value_axis: str):
    """Each live customer's share of live customers with a value at least theirs (the
    single-machine ``value_share`` of the reasons), by a global ranking in Spark.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, ``value_share`` (double), one row per live customer.
    """
    from pyspark.sql import functions as F

    live = plan.where(F.col("churn_probability").isNotNull()).select(
        "customer_id", F.col(value_axis).alias("value"))
    ranked = global_row_number(live, [F.desc("value"), F.asc("customer_id")], "rank")
    at_least = ranked.groupBy("value").agg(F.max("rank").alias("at_least"))
    total = live.count()
    return (live.join(at_least, on="value")
            .select("customer_id", (F.col("at_least").cast("double")
                                    / F.lit(float(max(total, 1)))).alias("value_share")))


def contact_list_reasons(contacted, scoring, occasions, scorers: Scorers, *, value_axis: str,
                         time_unit: str, centre: float):
    """:data:`~clvtools.targeting.reasons.REASON_COLUMNS` of the contacted customers, per
    partition.

    Parameters
    ----------
    contacted : pyspark.sql.DataFrame
        The plan's rows of the contacted customers: the RFM columns, ``value_axis``,
        ``churn_probability``, ``lapsed_revenue`` and ``value_share`` (NULL for the declared
        churned, whose first reason names their last purchase instead).
    scoring : pyspark.sql.DataFrame
        The scoring table (covariates and attributes at the scoring date).
    occasions : pyspark.sql.DataFrame
        ``customer_id``, ``date``: the purchase occasions (each customer's last purchase).
    scorers : Scorers
    value_axis, time_unit : str
    centre : float
        :func:`reason_centre`.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id`` and the reason columns (strings).
    """
    from pyspark.sql import functions as F

    rfm_columns = [c for c in ("frequency", "recency", "T", "monetary_value")
                   if c in contacted.columns]
    covariates = [c for c in scoring.columns if c != "customer_id"]
    last = occasions.groupBy("customer_id").agg(F.max("date").alias("last_purchase"))
    joined = (contacted.select("customer_id", *rfm_columns, *dict.fromkeys(
                  [value_axis, "churn_probability", "lapsed_revenue", "value_share"]))
              .join(last, on="customer_id", how="left")
              .join(scoring.select("customer_id", F.lit(True).alias("live"),
                                   *[F.col(c).alias(_COVARIATE + c) for c in covariates]),
                    on="customer_id", how="left"))

    def reasons(chunks):
        for chunk in chunks:
            frame = chunk.set_index("customer_id")
            live = frame["live"].notna().to_numpy()
            rows = None
            if scorers.churn is not None and live.any():
                table = (frame.loc[live, [_COVARIATE + c for c in covariates]]
                         .rename(columns=lambda c: c[len(_COVARIATE):]).reset_index())
                rows = churn_inputs(table, frame[rfm_columns], scorers).set_index("customer_id")
            frame["value_share"] = frame["value_share"].fillna(0.0)
            found = contact_reasons(frame, scorers.churn, rows, horizon=scorers.horizon,
                                    centre=centre, time_unit=time_unit, value_axis=value_axis)
            yield found.reset_index()

    schema = "customer_id string, " + ", ".join(f"{c} string" for c in REASON_COLUMNS)
    return joined.mapInPandas(reasons, schema=schema)

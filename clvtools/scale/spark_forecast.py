"""A Spark run's forecast (forecast.csv): the standard forecast step's sums, a partition of
customers at a time on the executors, added on the driver.

As in the chunked run (:mod:`.chunked_forecast`), every mean of the forecast and every
variance of the customers' own randomness is a sum over customers, and so are the Cox
coefficients' and the baseline hazard's gradients in the churners' delta method. Each
partition's parts come from the pipeline's own functions
(:func:`~clvtools.pipeline.forecasting.revenue_totals`,
:func:`~clvtools.pipeline.churner_forecast.churner_sums`) mapped with ``mapInPandas``; they
are small (per segment and month), so the executors hand them to the driver pickled, and
the driver adds them. The value and spend models' delta method runs on the standard
engine's stratified sample along expected revenue: the driver collects two numbers a
customer (the segment and the expected revenue, in customer id order, the standard
engine's order) to draw it, then fetches the few thousand sampled customers' rows and
scores them again. The seasonal index counts purchases per day in Spark.

As in the chunked run, the customers' revenue variances are summed over every customer (the
standard engine sums them over a sample of 5,000 per segment once a segment is larger).
"""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from ..config import Settings
from ..data.spark_engine import SparkLog
from ..data.spark_summaries import spark_purchases_by_period
from ..pipeline.churner_forecast import churner_notes, churner_sums, churner_variance
from ..pipeline.forecasting import (
    SAMPLE_PER_SEGMENT,
    SEGMENTS,
    ForecastResult,
    forecast_notes,
    forecast_table,
    revenue_totals,
    sample_parameter_variance,
    seasonal_index,
    seasonal_spread,
    seasonality_note,
    spend_notes,
)
from ..pipeline.scoring import Scorers, churn_inputs
from ..pipeline.timeline import Timeline
from ..pipeline.value import ValueResult
from ..targeting.control import TREATMENT
from ..units import unit_days
from .chunked_forecast import codes_and_share, scored_months
from .spark_rows import stratified_rows

__all__ = ["spark_forecast"]

#: Prefixes of the scoring table's and the attributes' columns in the joined rows (the
#: scoring table and the RFM summary both have a ``frequency``).
_SCORING, _ATTRIBUTE = "scoring__", "attribute__"
#: The plan's per-customer columns the forecast reads, and each one's saved revenue.
_PLAN_COLUMNS = ("cell", "revenue_at_risk", "churn_model", "churn_probability",
                 "expected_revenue", "saved")


def spark_forecast(log: SparkLog, rfm, scoring, plan, scorers: Scorers, settings: Settings,
                   timeline: Timeline, covariates=None) -> ForecastResult:
    """forecast.csv of a Spark run.

    Parameters
    ----------
    log : SparkLog
        Its occasions (the seasonal index's purchases per month, the time since each
        customer's last purchase without a Cox model).
    rfm : pyspark.sql.DataFrame
        The RFM summary at the observation end, one row per customer.
    scoring : pyspark.sql.DataFrame
        The scoring table of the live customers.
    plan : pyspark.sql.DataFrame
        The plan: each customer's cell, churn model and probability, revenue at risk,
        expected revenue, group and saved revenue.
    scorers : Scorers
    settings : Settings
    timeline : Timeline
    covariates : pyspark.sql.DataFrame, optional
        The attributes the purchase model was fitted with, one row per customer.

    Returns
    -------
    ForecastResult
    """
    ends = timeline.forecast_month_ends()
    months = timeline.forecast_months
    season = seasonal_index(None, timeline,
                            count=lambda starts, stops: spark_purchases_by_period(
                                log, starts, stops))
    # read three times (the sums, the sample's draw, its rows): joined once
    rows = _joined_rows(log, rfm, scoring, plan, scorers, settings, covariates).persist()
    parts = rows.mapInPandas(_partition_parts(rfm, scoring, covariates, scorers, settings,
                                              ends, months, season), schema="part binary")
    per_partition = [pickle.loads(row["part"]) for row in parts.collect()]
    money = {m: (sum(p[0][m][0] for p in per_partition), sum(p[0][m][1] for p in per_partition))
             for m in per_partition[0][0]}
    churners = per_partition[0][1]
    for part in per_partition[1:]:
        churners = churners + part[1]
    # the standard engine's stratified sample, drawn on the executors: only its candidates
    # (at most 10,000 a cell) reach the driver, not every customer's id and revenue
    sizes, drawn, weights = stratified_rows(rows, "expected_revenue", SAMPLE_PER_SEGMENT,
                                            stratum="cell", strata=SEGMENTS)
    notes = [*forecast_notes(int(sizes.sum())), seasonality_note(season),
             *spend_notes(scorers.value.spend)]
    param = _value_parameter_variance(rows, drawn, weights, rfm, covariates, scorers, ends,
                                      months, season, notes)
    rows.unpersist()
    totals = {m: (mean, var + param[m]) for m, (mean, var) in money.items()}
    notes.extend(churner_notes(scorers.churn, scorers.churn is not None))
    totals["expected_churners"] = (churners.mean, churners.variance
                                   + churner_variance(scorers.churn, churners))
    counts = np.append(sizes, sizes.sum())
    return ForecastResult(forecast_table(totals, counts, months, season), season, notes)


def _joined_rows(log: SparkLog, rfm, scoring, plan, scorers: Scorers, settings: Settings,
                 covariates):
    """One row per customer: the RFM columns, the plan's :data:`_PLAN_COLUMNS`, the scoring
    table's columns (prefixed; ``live`` NULL for a customer absent from it), the
    attributes (prefixed) and, without a Cox model, ``time_since_last_purchase``."""
    from pyspark.sql import functions as F

    saved = F.when(F.col("group") == TREATMENT, F.col("saved_revenue")).otherwise(F.lit(0.0))
    joined = rfm.join(plan.select("customer_id", *_PLAN_COLUMNS[:-1], saved.alias("saved")),
                      on="customer_id")
    joined = joined.join(scoring.select("customer_id", F.lit(True).alias("live"), *[
        F.col(c).alias(_SCORING + c) for c in scoring.columns if c != "customer_id"]),
        on="customer_id", how="left")
    if covariates is not None:
        joined = joined.join(covariates.select("customer_id", *[
            F.col(c).alias(_ATTRIBUTE + c) for c in covariates.columns if c != "customer_id"]),
            on="customer_id", how="left")
    if scorers.churn is None:
        # lifecycle_status's (end - last purchase) / unit days
        days = unit_days(settings.time_unit)
        ages = log.spark.sql(
            f"SELECT customer_id, datediff(DATE '{log.observation_end.isoformat()}', max(date))"
            f" / {float(days)!r}D AS time_since_last_purchase FROM {log.occasions} "
            "GROUP BY customer_id")
        joined = joined.join(ages, on="customer_id", how="left")
    return joined


def _unprefixed(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c.startswith(prefix)]].rename(
        columns=lambda c: c[len(prefix):])


def _chunk_inputs(chunk: pd.DataFrame, rfm_columns: list[str], with_covariates: bool):
    """A chunk of joined rows, indexed by customer id, as the pipeline's functions take it:
    its RFM rows, its attributes (or None) and its plan columns."""
    frame = chunk.set_index("customer_id")
    attributes = _unprefixed(frame, _ATTRIBUTE) if with_covariates else None
    return frame, frame[rfm_columns], attributes, frame[list(_PLAN_COLUMNS)]


def _partition_parts(rfm, scoring, covariates, scorers: Scorers, settings: Settings,
                     ends: np.ndarray, months: pd.DataFrame, season):
    """The function ``mapInPandas`` runs on each partition: its money sums and churner sums
    (:func:`~clvtools.pipeline.forecasting.revenue_totals` over every customer,
    :func:`~clvtools.pipeline.churner_forecast.churner_sums`), pickled in one row."""
    rfm_columns = [c for c in rfm.columns if c != "customer_id"]
    with_covariates = covariates is not None

    def parts(chunks):
        for chunk in chunks:
            if chunk.empty:
                continue
            frame, rows, attributes, customers = _chunk_inputs(chunk, rfm_columns,
                                                               with_covariates)
            codes, share = codes_and_share(customers)
            models, scores, by_month = scored_months(scorers, rows, attributes)
            value = ValueResult(rows, models, scores, {}, [], months=by_month)
            money = revenue_totals(value, ends, share,
                                   seasonal_spread(by_month, season, months), codes,
                                   sample_per_segment=None)
            live = ages = None
            if scorers.churn is not None:
                table = _unprefixed(frame.loc[frame["live"].notna().to_numpy()], _SCORING)
                live = churn_inputs(table.reset_index(), rows, scorers).set_index("customer_id")
            else:
                ages = frame[["time_since_last_purchase"]].reset_index()
            churners = churner_sums(scorers.churn, live, ages, customers, codes, ends,
                                    horizon=settings.horizon, churn_after=settings.churn_after,
                                    n_segments=len(SEGMENTS))
            yield pd.DataFrame({"part": [pickle.dumps((money, churners))]})

    return parts


def _value_parameter_variance(rows, drawn: pd.DataFrame, weights: np.ndarray, rfm, covariates,
                              scorers: Scorers, ends, months, season, notes: list[str]
                              ) -> dict[str, np.ndarray]:
    """The value and spend models' delta method on the standard engine's stratified sample
    (``drawn``: its customer ids and expected revenue, :func:`.spark_rows.stratified_rows`),
    its customers' rows fetched from Spark and scored again."""
    from pyspark.sql import functions as F

    wanted = drawn["customer_id"].to_numpy()
    fetched = rows.where(F.col("customer_id").isin(wanted.tolist())).toPandas()
    rfm_columns = [c for c in rfm.columns if c != "customer_id"]
    frame, sample, attributes, customers = _chunk_inputs(fetched, rfm_columns,
                                                         covariates is not None)
    order = frame.index.get_indexer(wanted)
    sample, customers = sample.iloc[order], customers.iloc[order]
    attributes = None if attributes is None else attributes.iloc[order]
    models, scores, by_month = scored_months(scorers, sample, attributes)
    if not np.allclose(scores["expected_revenue"].to_numpy(float),
                       drawn["expected_revenue"].to_numpy(float), rtol=1e-9, atol=0.0):
        raise RuntimeError("The forecast's sample fetched other customers than it drew.")
    sample_codes, share = codes_and_share(customers)
    return sample_parameter_variance(models, sample, weights, sample_codes, share,
                                     seasonal_spread(by_month, season, months), ends, notes)

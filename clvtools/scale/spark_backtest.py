"""A Spark run's forecast backtest (forecast_backtest.csv), as the standard engine's
(:mod:`clvtools.pipeline.backtest`) and the chunked run's (:mod:`.chunked_backtest`): at each
origin the RFM summary at that date is built in Spark, the value models are refitted on the
driver from its compressed rows (:func:`~clvtools.scale.spark_fit.fit_value_from_spark`),
the customers of that date are forecast a partition at a time with ``mapInPandas`` over the
pipeline's own functions, their sums added on the driver (the customers' variances over
every customer, as in :mod:`.spark_forecast`; the parameters' delta method on the standard
stratified sample), and set beside the revenue they brought, summed exactly in Spark.

The driver receives per origin the compressed rows, one pickled row of sums per partition,
one row per executor partition of the customers sorted by id (its count) and the id and
expected revenue of the standard sample's candidates (at most 10,000, found by their
position in customer id order on the executors): the same sample as the standard engine's,
without the ~1 GB of every customer's two numbers that a whole-base draw would need at ten
million customers.
"""
from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.spark_engine import SparkLog
from ..data.spark_summaries import spark_revenue_by_period, spark_rfm
from ..forecast import ALL_MONTHS, normal_bounds
from ..pipeline.backtest import NO_BACKTEST, BacktestResult, backtest_origins, origin_table
from ..pipeline.forecasting import SAMPLE_PER_SEGMENT, revenue_totals, sample_parameter_variance
from ..pipeline.scoring import Scorers
from ..pipeline.timeline import Timeline, calendar_months
from ..pipeline.value import ValueResult
from .chunked_forecast import scored_months
from .spark_fit import fit_value_from_spark
from .spark_rows import stratified_rows

__all__ = ["spark_backtest"]

#: Prefix of the attributes' columns in the joined rows (an attribute may share an RFM name).
_ATTRIBUTE = "attribute__"


def spark_backtest(log: SparkLog, timeline: Timeline, scorers: Scorers, *, value_model: str,
                   covariates=None) -> BacktestResult:
    """forecast_backtest.csv of a Spark run.

    Parameters
    ----------
    log : SparkLog
    timeline : Timeline
    scorers : Scorers
        The run's (its time unit's days; the models are refitted at each origin).
    value_model : str
        The purchase model the run fitted (refitted at each origin).
    covariates : pyspark.sql.DataFrame, optional
        The attributes the purchase model takes, one row per customer (those at the
        observation end, as the standard backtest reuses the whole history's).

    Returns
    -------
    BacktestResult
    """
    origins = backtest_origins(timeline)
    if not origins:
        return BacktestResult(None, [NO_BACKTEST])
    table = pd.concat([_one_origin(log, timeline, scorers, origin, value_model=value_model,
                                   covariates=covariates) for origin in origins],
                      ignore_index=True)
    months = table[table["month"] != ALL_MONTHS]
    return BacktestResult(table, [
        f"Forecast backtest at {len(origins)} origins ({', '.join(map(str, origins))}), "
        f"refitted on compressed statistics and forecast per Spark partition: the 95 % "
        f"interval covered {int(months['covered_95'].sum())} of {len(months)} months."])


def _one_origin(log: SparkLog, timeline: Timeline, scorers: Scorers, origin: dt.date, *,
                value_model: str, covariates) -> pd.DataFrame:
    """Fit at ``origin``, forecast one horizon of calendar months per partition, compare (as
    the standard engine's origin: no seasonal spread, no plan, undiscounted)."""
    from pyspark.sql import functions as F

    rfm = spark_rfm(log, time_unit=timeline.time_unit, observation_end=origin).persist()
    models, _, _ = fit_value_from_spark(rfm, value_model, covariates)
    months = calendar_months(origin, timeline.horizon_days)
    ends = np.cumsum(months["days"].to_numpy(float)) / timeline.unit_days
    at_origin = replace(scorers, value=models, horizon=float(ends[-1]), discount_rate=0.0,
                        period_ends=tuple(ends))
    rows = rfm
    if covariates is not None:
        rows = rows.join(covariates.select("customer_id", *[
            F.col(c).alias(_ATTRIBUTE + c) for c in covariates.columns if c != "customer_id"]),
            on="customer_id", how="left")
    rfm_columns = [c for c in rfm.columns if c != "customer_id"]
    scored = rows.mapInPandas(
        _partition_sums(rfm_columns, covariates is not None, at_origin, ends),
        schema="customer_id string, expected_revenue double, part binary").persist()
    per_partition = [pickle.loads(r["part"])
                     for r in scored.where(F.col("part").isNotNull()).select("part").collect()]
    mean = sum(p[0] for p in per_partition)
    var = sum(p[1] for p in per_partition)
    # the standard sample (one stratum) drawn on the executors: only its candidates reach
    # the driver
    sizes, drawn, weights = stratified_rows(
        scored.where(F.col("part").isNull()), "expected_revenue", SAMPLE_PER_SEGMENT)
    scored.unpersist()
    size = int(sizes[0])
    wanted = drawn["customer_id"].to_numpy()
    fetched = rows.where(F.col("customer_id").isin(wanted.tolist())).toPandas()
    rfm.unpersist()
    frame, sample, attributes = _split(fetched, rfm_columns, covariates is not None)
    order = frame.index.get_indexer(wanted)
    sample = sample.iloc[order]
    attributes = None if attributes is None else attributes.iloc[order]
    sampled, scores, _ = scored_months(at_origin, sample, attributes)
    if not np.allclose(scores["expected_revenue"].to_numpy(float),
                       drawn["expected_revenue"].to_numpy(float), rtol=1e-9, atol=0.0):
        raise RuntimeError("The backtest's sample fetched other customers than it drew.")
    one_stratum = np.zeros(len(wanted), dtype=np.intp)
    param = sample_parameter_variance(sampled, sample, weights, one_stratum,
                                      np.zeros(len(wanted)), None, ends, [])
    mean, var = mean[-1], (var + param["expected_revenue"])[-1]   # the total row
    starts = [d - dt.timedelta(days=1) for d in months["start"]]  # periods are (start, end]
    actual = np.asarray(spark_revenue_by_period(log, starts, list(months["end"]),
                                                customers_acquired_by=origin))
    return origin_table(origin, pd.DataFrame(index=pd.RangeIndex(size)), months,
                        np.append(actual, actual.sum()), mean, var, normal_bounds(mean, var))


def _split(chunk: pd.DataFrame, rfm_columns: list[str], with_covariates: bool):
    """Joined rows indexed by customer id, their RFM rows and their attributes (or None)."""
    frame = chunk.set_index("customer_id")
    attributes = None
    if with_covariates:
        attributes = frame[[c for c in frame.columns if c.startswith(_ATTRIBUTE)]].rename(
            columns=lambda c: c[len(_ATTRIBUTE):])
    return frame, frame[rfm_columns], attributes


def _partition_sums(rfm_columns: list[str], with_covariates: bool, scorers: Scorers,
                    ends: np.ndarray):
    """The function ``mapInPandas`` runs on each partition: each customer's expected revenue
    (``part`` NULL) and, in one more row, the partition's total expected revenue per month
    and its customers' variance (:func:`~clvtools.pipeline.forecasting.revenue_totals` over
    every customer), pickled."""

    def sums(chunks):
        for chunk in chunks:
            if chunk.empty:
                continue
            frame, rows, attributes = _split(chunk, rfm_columns, with_covariates)
            models, scores, by_month = scored_months(scorers, rows, attributes)
            value = ValueResult(rows, models, scores, {}, [], months=by_month)
            zeros = np.zeros(len(rows), dtype=np.intp)
            totals = revenue_totals(value, ends, np.zeros(len(rows)), None, zeros,
                                    sample_per_segment=None)["expected_revenue"]
            yield pd.DataFrame({"customer_id": frame.index.to_numpy(),
                                "expected_revenue": scores["expected_revenue"].to_numpy(float),
                                "part": None})
            yield pd.DataFrame({"customer_id": [None], "expected_revenue": [np.nan],
                                "part": [pickle.dumps(totals)]})

    return sums

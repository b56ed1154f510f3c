"""The models of a Spark run, fitted on the driver from statistics the executors compress.

BTYD and Gamma-Gamma likelihoods depend on a customer only through a few numbers
(frequency, recency, T; frequency and mean spend), so customers with identical rows collapse
into one weighted row: the driver receives the distinct rows and their counts (thousands
where the base has millions), in the order of their first customer id, which is the order
in which the single-machine fit meets them, so that both fits run on the same arrays. The Cox
model is fitted on the landmark table collected to the driver (one row per customer at risk
at each landmark) up to ``churn_sample_rows``, past it on the standard engine's stratified
weighted sample, drawn on the executors (see docs/cluster.rst).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.spark_attributes import SparkAttributes
from ..data.spark_engine import SparkLog
from ..data.spark_summaries import spark_landmark_table, spark_rfm
from ..data.survival_counts import spark_segment_counts
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.risk import fit_churn_model, survival_from_counts
from ..pipeline.structural import (
    STRUCTURAL_COLUMN,
    add_recency_band,
)
from ..pipeline.value_models import ValueModels
from .compressed_fit import fit_value_on_rows, structural_at_landmark, structural_on_rows
from .spark_survival_sample import spark_survival_sample

__all__ = ["compressed", "customers_of", "fit_value_from_spark", "fit_churn_from_spark",
           "structural_at",
           "structural_from_spark"]


def compressed(frame, columns: list[str]) -> pd.DataFrame:
    """The distinct rows of ``columns`` in a Spark DataFrame with the customers each stands
    for, collected to the driver.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per customer, with ``customer_id`` and ``columns``.
    columns : list of str

    Returns
    -------
    pandas.DataFrame
        ``columns`` and ``weights`` (customers per row, float), ordered by each row's smallest
        customer id: the order of first appearance in an RFM summary sorted by customer.
    """
    from pyspark.sql import functions as F

    rows = (frame.groupBy(*columns)
            .agg(F.count("*").alias("weights"), F.min("customer_id").alias("first_customer"))
            .orderBy("first_customer").toPandas())
    return rows.drop(columns="first_customer").astype({"weights": float})


def fit_value_from_spark(rfm, value_model: str, attributes=None
                         ) -> tuple[ValueModels, str, list[str]]:
    """The purchase model and Gamma-Gamma, fitted on the driver from a Spark RFM summary.

    Parameters
    ----------
    rfm : pyspark.sql.DataFrame
        :func:`~clvtools.data.spark_summaries.spark_rfm`'s rows.
    value_model : {"auto", "bgnbd", "mbgnbd", "pnbd"}
        ``auto``: the lowest BIC among the candidates, each fitted on the compressed rows (a
        Spark run has no holdout choice: that needs the models refitted on a calibration
        window).
    attributes : pyspark.sql.DataFrame, optional
        ``customer_id`` and the attributes at the observation end
        (:meth:`~clvtools.data.spark_attributes.SparkAttributes.frame_at`): the covariates of
        BG/NBD and Pareto/NBD on purchase and dropout, as the single-machine
        :func:`~clvtools.pipeline.value_models.fit_purchase_model` fits them; compressed per
        (frequency, recency, T, attributes). The purchase model is then the covariate fitter
        itself, which scoring binds to each chunk's attributes.

    Returns
    -------
    (ValueModels, str, list of str)
        The fitted models, the purchase model's name and the notes for data_quality.json.
    """
    columns = [] if attributes is None else [c for c in attributes.columns if c != "customer_id"]
    keyed = rfm if not columns else rfm.join(attributes, on="customer_id")
    purchase = compressed(keyed, ["frequency", "recency", "T", *columns])
    spend = (None if "monetary_value" not in rfm.columns
             else compressed(rfm, ["frequency", "monetary_value"]))
    return fit_value_on_rows(purchase, spend, value_model, columns)


def fit_churn_from_spark(log: SparkLog, landmarks, *, horizon: float, churn_after: float,
                         time_unit: str, sample_rows: int, seed: int = 0,
                         attributes: SparkAttributes | None = None, segments=()):
    """The landmark table, the structural term at each landmark and the Cox churn model.

    The table is built in Spark; each landmark's structural BG/NBD is fitted on the driver
    from the compressed RFM of the log up to that landmark (as the single-machine
    :func:`~clvtools.pipeline.structural.add_structural_term` fits it on ``log.until(L)``),
    and the table, with each row's RFM at its landmark, is collected to fit the Cox model:
    whole up to ``sample_rows`` (``churn_sample_rows``), past it the standard engine's
    stratified weighted sample, drawn on the executors (:mod:`.spark_survival_sample`).

    ``attributes`` (optional) are joined to the table, as the single-machine landmark
    table joins them: the Cox model encodes them from the collected table.

    ``segments`` (the categorical attributes) are the survival curves' segments, counted on
    the executors (:func:`~clvtools.data.survival_counts.spark_segment_counts`).

    Returns
    -------
    (ChurnModel or None, BetaGeoFitter or None, pandas.DataFrame, list of str, dict, int)
        The churn model, the structural BG/NBD at the observation end (for scoring; None
        when a landmark's or the end's could not be fitted), the survival table as fitted
        (sorted by landmark and customer, as DuckDB's; the sample, with its weights, past
        ``sample_rows``), the notes and the Kaplan-Meier
        tables overall and by segment (:func:`~clvtools.pipeline.risk.survival_from_counts`:
        the standard risk step's ``survival_curves``, ``median_time_to_churn``,
        ``logrank_tests``), and the landmark table's rows (all of them, sampled or not).
    """
    from pyspark.sql import functions as F

    table = spark_landmark_table(log, landmarks=landmarks, churn_after=churn_after,
                                 time_unit=time_unit, attributes=attributes).persist()
    survival, drawn = spark_survival_sample(table, sample_rows, churn_after=churn_after,
                                            seed=seed)
    survival["landmark"] = pd.to_datetime(survival["landmark"])
    notes: list[str] = []
    structural = None
    try:
        survival[STRUCTURAL_COLUMN] = np.nan
        for mark in sorted(set(landmarks)):
            rows = (survival["landmark"].dt.date == mark).to_numpy()
            if not rows.any():
                continue
            ids = survival.loc[rows, "customer_id"].astype(str).to_numpy()
            survival.loc[rows, STRUCTURAL_COLUMN] = structural_at(
                log, mark, customers_of(log, table.where(F.col("landmark") == F.lit(mark)),
                                        ids, whole=drawn is None),
                ids, time_unit=time_unit, horizon=horizon, churn_after=churn_after, seed=seed)
        structural = structural_from_spark(spark_rfm(log, time_unit=time_unit))
    except (ConvergenceError, ClvInputError) as exc:
        survival = survival.drop(columns=STRUCTURAL_COLUMN)
        structural = None
        notes.append(f"No structural churn term ({str(exc).splitlines()[0]}): the churn model "
                     "is stratified by time since the last purchase only.")
    curves = survival_from_counts(lambda by: spark_segment_counts(table, by), list(segments))
    table.unpersist()
    survival = add_recency_band(survival, churn_after)
    model, fit_notes = fit_churn_model(survival, time_unit=time_unit, seed=seed,
                                       drawn=None if drawn is None
                                       else replace(drawn, table=survival))
    rows_total = len(survival) if drawn is None else drawn.rows_total
    return model, structural, survival, notes + fit_notes, curves, rows_total


def customers_of(log: SparkLog, rows, ids: np.ndarray, *, whole: bool):
    """The ``customer_id`` DataFrame of the landmark ``rows`` whose structural term is
    wanted: all of them (``whole``), or only the sampled ``ids`` (sent from the driver), so
    that the RFM rows :func:`structural_at` collects are the sample's, not every customer's
    at risk."""
    if whole:
        return rows.select("customer_id")
    return log.spark.createDataFrame(pd.DataFrame({"customer_id": ids}))


def structural_at(log: SparkLog, mark, at_risk, ids: np.ndarray, *, time_unit: str,
                  horizon: float, churn_after: float, seed: int) -> np.ndarray:
    """The structural column of the landmark rows of customers ``ids`` at ``mark``: the
    structural BG/NBD fitted on the log up to ``mark``, applied to their RFM rows there
    (joined in Spark to ``at_risk``, a DataFrame of their ``customer_id``).

    Raises
    ------
    ConvergenceError, ClvInputError
        The BG/NBD cannot be fitted, or a customer has no probability.
    """
    at = spark_rfm(log.until(mark), time_unit=time_unit).persist()
    try:
        model = structural_from_spark(at)
        # in customer id order, as the standard engine's RFM rows (a posterior simulation,
        # past horizon > 2 churn_after, draws in row order)
        rfm_rows = (at.join(at_risk, on="customer_id").toPandas().set_index("customer_id")
                    .sort_index())
    finally:
        at.unpersist()
    return structural_at_landmark(model, rfm_rows, ids, mark, horizon=horizon,
                                  churn_after=churn_after, seed=seed)


def structural_from_spark(rfm):
    """The structural BG/NBD fitted on a Spark RFM summary's compressed rows."""
    return structural_on_rows(compressed(rfm, ["frequency", "recency", "T"]))

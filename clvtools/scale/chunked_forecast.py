"""The chunked run's forecast (forecast.csv): the standard forecast step's sums, a chunk of
customers at a time.

Every mean of the forecast, and every variance of the customers' own randomness, is a sum
over customers; so are the Cox coefficients' and the baseline hazard's gradients in the
churners' delta method. Each chunk's parts come from the pipeline's own functions
(:func:`~clvtools.pipeline.forecasting.revenue_totals`,
:func:`~clvtools.pipeline.churner_forecast.churner_sums`) and are added over the chunks. The
value and spend models' delta method runs, as in the standard engine, on its stratified
sample along expected revenue, drawn over the whole base from two numbers a customer (the
segment and the expected revenue), then fetched from DuckDB and scored again.

One difference of method: the standard engine sums the customers' revenue variances over a
sample of 5,000 per segment once a segment is larger than that; the chunked run sums them
over every customer (the sums the sample estimates). Below that size the two are the same.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ..config import Settings
from ..data.chunked_tables import chunk_frame, chunk_where, fetch_rows, rows_of_customers
from ..data.engine import quote_ident
from ..forecast import stratified_sample
from ..pipeline.churner_forecast import ChurnerSums, churner_notes, churner_sums, churner_variance
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
from ..pipeline.inputs import Inputs
from ..pipeline.scoring import Scorers, bound_models, churn_inputs
from ..pipeline.timeline import Timeline
from ..pipeline.value import ValueResult
from ..pipeline.value_models import score_customers_by_month

__all__ = ["chunked_forecast", "codes_and_share", "fetch_sample", "scored_months"]


def chunked_forecast(con: duckdb.DuckDBPyConnection, inputs: Inputs, timeline: Timeline,
                     scorers: Scorers, settings: Settings, bounds: list, *, rfm: str,
                     scoring: str, covariates: str | None, decided: str, plan: str,
                     lifecycle: str) -> ForecastResult:
    """forecast.csv of a chunked run, a chunk of customers at a time.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    inputs : Inputs
        Its log (the seasonal index's purchases per month).
    timeline : Timeline
    scorers : Scorers
    settings : Settings
    bounds : list
        The chunks' first customer ids (:func:`~clvtools.data.chunked_tables.chunk_bounds`).
    rfm, scoring : str
        The run's RFM and scoring tables (sorted by customer).
    covariates : str or None
        SQL of the attributes the purchase model was fitted with, one row per customer.
    decided : str
        SQL of the decided part files (cells, churn probabilities, revenue).
    plan, lifecycle : str
        The plan table (action, group, saved revenue) and the lifecycle table.

    Returns
    -------
    ForecastResult
    """
    ends = timeline.forecast_month_ends()
    months = timeline.forecast_months
    season = seasonal_index(inputs, timeline)
    per_chunk = []
    for k in range(len(bounds)):
        per_chunk.append(_chunk_parts(con, k, bounds, scorers, settings, ends, months, season,
                                      rfm=rfm, scoring=scoring, covariates=covariates,
                                      decided=decided, plan=plan, lifecycle=lifecycle))
    money = {m: (sum(p[0][m][0] for p in per_chunk), sum(p[0][m][1] for p in per_chunk))
             for m in per_chunk[0][0]}
    churners = per_chunk[0][1]
    for part in per_chunk[1:]:
        churners = churners + part[1]
    codes = np.concatenate([p[2] for p in per_chunk])
    order_by = np.concatenate([p[3] for p in per_chunk])
    del per_chunk
    notes = [*forecast_notes(len(codes)), seasonality_note(season),
             *spend_notes(scorers.value.spend)]
    param = _value_parameter_variance(con, codes, order_by, scorers, ends, months, season,
                                      notes, rfm=rfm, covariates=covariates, decided=decided,
                                      plan=plan)
    totals = {m: (mean, var + param[m]) for m, (mean, var) in money.items()}
    cox = scorers.churn is not None
    notes.extend(churner_notes(scorers.churn, cox))
    totals["expected_churners"] = (churners.mean, churners.variance
                                   + churner_variance(scorers.churn, churners))
    counts = np.append(np.bincount(codes, minlength=len(SEGMENTS)), len(codes))
    return ForecastResult(forecast_table(totals, counts, months, season), season, notes)


def _customers_sql(decided: str, plan: str, where: str) -> str:
    """The forecast's per-customer columns of the decided parts, with each customer's saved
    revenue under the plan (the treatment's; 0 otherwise), sorted by customer."""
    return (f"SELECT d.customer_id, d.cell, d.revenue_at_risk, d.churn_model, "
            f"d.churn_probability, d.expected_revenue, CASE WHEN p.\"group\" = 'treatment' "
            f"THEN p.saved_revenue ELSE 0.0 END AS saved FROM {decided} AS d "
            f"JOIN {quote_ident(plan)} AS p ON d.customer_id = p.customer_id "
            f"WHERE {where} ORDER BY d.customer_id")


def codes_and_share(customers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's segment code (in :data:`SEGMENTS`) and saved revenue as a share of
    the revenue at risk, as the standard forecast step takes them."""
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    at_risk = customers["revenue_at_risk"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(at_risk > 0, customers["saved"].to_numpy(float) / at_risk, 0.0)
    return codes, share


def scored_months(scorers: Scorers, rfm: pd.DataFrame, attributes: pd.DataFrame | None):
    """The value models bound to ``rfm``'s customers (``attributes``: theirs, for a covariate
    model), and their scores and months at the scorers' horizon, discount rate and month ends
    (:func:`~clvtools.pipeline.value_models.score_customers_by_month`)."""
    models = bound_models(scorers.value, rfm, attributes)
    scores, by_month = score_customers_by_month(
        models, rfm, horizon=scorers.horizon, time_unit_days=scorers.time_unit_days,
        discount_rate=scorers.discount_rate,
        period_ends=np.asarray(scorers.period_ends, dtype=float))
    return models, scores, by_month


def _chunk_parts(con, k, bounds, scorers, settings, ends, months, season, *, rfm, scoring,
                 covariates, decided, plan, lifecycle):
    """Chunk ``k``'s money sums, churner sums, segment codes and expected revenue."""
    rows = chunk_frame(con, rfm, bounds, k)
    attributes = None if covariates is None else chunk_frame(con, covariates, bounds, k)
    customers = con.execute(_customers_sql(decided, plan, chunk_where(bounds, k, "d.customer_id"))
                            ).df().set_index("customer_id")
    codes, share = codes_and_share(customers)
    models, scores, by_month = scored_months(scorers, rows, attributes)
    value = ValueResult(rows, models, scores, {}, [], months=by_month)
    money = revenue_totals(value, ends, share, seasonal_spread(by_month, season, months), codes,
                           sample_per_segment=None)
    live = None
    if scorers.churn is not None:
        live = churn_inputs(chunk_frame(con, scoring, bounds, k).reset_index(), rows,
                            scorers).set_index("customer_id")
    ages = (None if scorers.churn is not None else
            chunk_frame(con, f"(SELECT customer_id, time_since_last_purchase FROM "
                             f"{quote_ident(lifecycle)})", bounds, k).reset_index())
    churners: ChurnerSums = churner_sums(
        scorers.churn, live, ages, customers, codes, ends, horizon=settings.horizon,
        churn_after=settings.churn_after, n_segments=len(SEGMENTS))
    return money, churners, codes.astype(np.int8), customers["expected_revenue"].to_numpy(float)


def _value_parameter_variance(con, codes, order_by, scorers, ends, months, season, notes, *,
                              rfm, covariates, decided, plan):
    """The value and spend models' delta method on the standard engine's stratified sample
    (drawn over the whole base), its customers fetched by position and scored again."""
    positions, weights = stratified_sample(codes.astype(np.intp), order_by, SAMPLE_PER_SEGMENT)
    models, sample, by_month = fetch_sample(con, positions, order_by, scorers, rfm=rfm,
                                            covariates=covariates)
    customers = rows_of_customers(con, f"({_customers_sql(decided, plan, 'TRUE')})",
                                  sample.index.to_numpy())
    sample_codes, share = codes_and_share(customers)
    return sample_parameter_variance(models, sample, weights, sample_codes, share,
                                     seasonal_spread(by_month, season, months), ends, notes)


def fetch_sample(con: duckdb.DuckDBPyConnection, positions: np.ndarray, order_by: np.ndarray,
                 scorers: Scorers, *, rfm: str, covariates: str | None):
    """The customers at ``positions`` of the RFM table ``rfm`` (sorted by customer: the order
    the chunks were read in), in that order, scored again.

    Returns
    -------
    (ValueModels, pandas.DataFrame, RevenueByMonth)
        The value models bound to the sample, its RFM rows and its months
        (:func:`scored_months`).
    """
    ascending = np.sort(positions)
    fetched = fetch_rows(con, rfm, ascending).set_index("customer_id")
    sample = fetched.iloc[np.searchsorted(ascending, positions)]
    attributes = (None if covariates is None else
                  rows_of_customers(con, covariates, sample.index.to_numpy()))
    models, scores, by_month = scored_months(scorers, sample, attributes)
    if not np.allclose(scores["expected_revenue"].to_numpy(float), order_by[positions],
                       rtol=1e-9, atol=0.0):
        # a row's position in the table must be the customer's in the chunks' order
        raise RuntimeError("The forecast's sample fetched other customers than it drew.")
    return models, sample, by_month

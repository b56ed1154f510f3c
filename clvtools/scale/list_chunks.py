"""One chunk's share of the contacts' reasons and of the early-warning list, by the
single-machine pipeline's own functions: what a Spark partition (:mod:`.spark_reasons`,
:mod:`.spark_early_warning`) and a chunk of customers of the chunked run
(:mod:`.chunked_attention`) compute alike, before a global ranking over the whole base.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..pipeline.attention import moved_drivers
from ..pipeline.drivers import baseline_centre
from ..pipeline.risk import known_levels
from ..pipeline.scoring import Scorers
from ..pipeline.structural import RECENCY_BAND, add_recency_band
from ..targeting.early_warning import early_warning_list

__all__ = ["EARLY_WARNING_COLUMNS", "band_counts", "centre_of_bands", "early_warning_chunk"]

#: early_warning.csv's columns.
EARLY_WARNING_COLUMNS = ("customer_id", "early_warning_rank", "churn_probability",
                         "churn_probability_before", "rise", "value_at_stake", "driver_1",
                         "driver_2")


def band_counts(scoring: pd.DataFrame, scorers: Scorers, weights=None) -> pd.Series:
    """Live customers per recency band (the band as the Cox model scores it, at levels it
    knows) in one chunk of the scoring table (``time_since_last_purchase``).

    Parameters
    ----------
    scoring : pandas.DataFrame, shape (n, k)
    scorers : Scorers
    weights : array-like of int, shape (n,), optional
        Customers per row (distinct rows with their counts); default one each.

    Returns
    -------
    pandas.Series of int
        Customers per band (index: the band as text); empty without a Cox model stratified
        by recency band.
    """
    model = scorers.churn
    if model is None or model.strata != [RECENCY_BAND] or not len(scoring):
        return pd.Series(dtype="int64")
    table = known_levels(model, add_recency_band(scoring, scorers.churn_after))[0]
    counts = (pd.Series(np.ones(len(table), dtype="int64") if weights is None
                        else np.asarray(weights, dtype="int64"))
              .groupby(table[RECENCY_BAND].astype(str).to_numpy()).sum())
    return counts


def centre_of_bands(bands: pd.Series, scorers: Scorers) -> float:
    """:func:`~clvtools.pipeline.drivers.baseline_centre` of the live customers from their
    counts per recency band (:func:`band_counts` summed over the chunks); 0 without a Cox
    model stratified by recency band."""
    if scorers.churn is None or bands.empty:
        return 0.0
    return baseline_centre(scorers.churn, pd.DataFrame({RECENCY_BAND: bands.index}),
                           scorers.horizon, weights=bands.to_numpy())


def early_warning_chunk(now: pd.Series, value_at_stake: pd.Series, now_rows: pd.DataFrame,
                        before_rows: pd.DataFrame | None, scorers: Scorers, *,
                        centre: float, time_unit: str) -> tuple[pd.DataFrame, dict]:
    """One chunk's entries of the early-warning list, unranked.

    Parameters
    ----------
    now, value_at_stake : pandas.Series
        The chunk's live customers' churn probability at the observation end and value at
        stake (currency), indexed by ``customer_id``.
    now_rows, before_rows : pandas.DataFrame
        Their scoring rows at the observation end and one KPI period earlier as the Cox
        model scores them (:func:`~clvtools.pipeline.scoring.churn_inputs`), indexed by
        ``customer_id``; ``before_rows`` has the customers scored then only (None: none).
    scorers : Scorers
        With the Cox model.
    centre : float
        The drivers' reference (:func:`centre_of_bands`).
    time_unit : str

    Returns
    -------
    (pandas.DataFrame, dict)
        :data:`EARLY_WARNING_COLUMNS` but the rank, drivers ``""`` where none, largest rise
        first; and :func:`~clvtools.targeting.early_warning.early_warning_list`'s counts
        (sums over the chunks are the whole base's).
    """
    model = scorers.churn
    before = pd.Series(np.nan, index=now.index)
    if before_rows is not None and len(before_rows):
        before.loc[before_rows.index] = model.churn_probability(
            before_rows, scorers.horizon, source="scoring table").to_numpy()
    ids = now.index[((now - before) > 0).to_numpy()]
    drivers = None if not len(ids) else moved_drivers(
        model, now_rows.loc[ids], before_rows.loc[ids], horizon=scorers.horizon,
        centre=centre, time_unit=time_unit)
    found, counts = early_warning_list(now, before, value_at_stake, drivers, min_rise=0.0)
    out = found.reindex(columns=[c for c in EARLY_WARNING_COLUMNS if c != "early_warning_rank"])
    return out.fillna({"driver_1": "", "driver_2": ""}), counts

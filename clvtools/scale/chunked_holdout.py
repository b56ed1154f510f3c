"""The value model's holdout checks of a chunked run (holdout_summary.csv,
holdout_by_frequency.csv, holdout_by_month.csv, holdout_by_segment.csv and the report's
holdout table and charts), as the standard engine's
:func:`~clvtools.pipeline.holdout.evaluate_candidate` computes them for the model used.

The calibration window stays a DuckDB table (:mod:`clvtools.data.holdout_window`); the
purchase model used is refitted on its compressed rows (as the backtest refits at its first
origin, the same date); its customers are scored a chunk at a time and only sums kept
(:mod:`.holdout_sums`); P(alive)'s AUC counts each distinct P(alive) among buyers and
non-buyers in DuckDB over part files. The candidates are not compared on the holdout here (a
chunked run chooses by BIC under ``value_model = "auto"``): the summary has the one row of
the model used.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..data.chunked_plan import parts
from ..data.chunked_tables import chunk_bounds, chunk_frame
from ..data.holdout_window import holdout_duration, store_holdout_window
from ..data.rfm import purchases_by_period
from ..pipeline.scoring import bound_models
from .compressed_fit import fit_value_on_table
from .holdout_sums import NO_HOLDOUT, HoldoutSums, auc_from_counts, holdout_files

__all__ = ["chunked_holdout"]

#: The DuckDB table of the calibration window.
_WINDOW = "chunked_holdout_window"


def chunked_holdout(con, log, timeline, *, value_model: str, horizon: float,
                    covariates: str | None, segments: str | None, segment_columns,
                    chunk_rows: int, temp_directory=None) -> tuple[dict, list[str]]:
    """The holdout tables of the value model used, refitted on the calibration window.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The run's connection (``log.con``).
    log : TransactionLog
    timeline : Timeline
        Its ``holdout_start`` is the calibration end (None: no holdout).
    value_model : str
        The purchase model the run used.
    horizon : float
        Time units (the holdout's length, as the standard engine's).
    covariates : str or None
        SQL of the attributes the purchase model takes, one row per customer.
    segments : str or None
        SQL of the customer attributes (one row per customer), holding ``segment_columns``,
        the categorical attributes: the holdout's segments.
    chunk_rows : int
        Customers scored at a time.
    temp_directory : path, optional
        Where the P(alive) part files go (default the system's).

    Returns
    -------
    (dict of pandas.DataFrame, list of str)
        ``holdout_summary``, ``holdout_by_frequency``, ``holdout_by_month`` and, with
        categorical attributes, ``holdout_by_segment`` (the standard's columns); the notes.
    """
    start = timeline.holdout_start
    if start is None:
        return {}, [NO_HOLDOUT]
    customers = store_holdout_window(log, start, time_unit=timeline.time_unit, into=_WINDOW)
    models, _, fit_notes = fit_value_on_table(con, _WINDOW, covariates, value_model,
                                              log.has_amounts)
    duration = holdout_duration(start, log.observation_end, timeline.time_unit)
    columns = list(segment_columns) if segments is not None else []
    bounds = chunk_bounds(con, _WINDOW, chunk_rows)
    work = Path(tempfile.mkdtemp(prefix="clvtools-holdout-", dir=temp_directory))
    try:
        sums = HoldoutSums()
        for k in range(len(bounds)):
            rows = chunk_frame(con, _WINDOW, bounds, k)
            attributes = None if covariates is None else chunk_frame(con, covariates, bounds, k)
            labels = None if not columns else chunk_frame(con, segments, bounds, k).loc[
                rows.index, columns]
            alive = sums.add_chunk(bound_models(models, rows, attributes), rows, labels,
                                   horizon=horizon, unit_days=timeline.unit_days,
                                   duration=duration)
            pq.write_table(pa.table(alive), work / f"part-{k:06d}.parquet")
        counts = con.execute(
            f"SELECT p_alive, count(*) AS n, count(*) FILTER (WHERE bought) AS positive "
            f"FROM {parts(work)} GROUP BY p_alive ORDER BY p_alive").fetchnumpy()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        con.execute(f"DROP TABLE IF EXISTS {_WINDOW}")
    if sums.customers != customers:     # every window customer scored once, or a defect
        raise RuntimeError(f"The holdout check summed {sums.customers:,} customers of the "
                           f"calibration window's {customers:,}.")
    starts, ends = (list(d) for d in zip(*timeline.holdout_months, strict=True))
    by_period = purchases_by_period(log, starts, ends, customers_acquired_by=start)
    area = auc_from_counts(counts["p_alive"], counts["n"], counts["positive"])
    return (holdout_files(sums, area, by_period, timeline=timeline,
                          observation_end=log.observation_end, value_model=value_model,
                          models=models),
            [f"Holdout fit: {note}" for note in fit_notes])

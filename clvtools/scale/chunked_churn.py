"""The chunked run's churn model: the landmark table kept in DuckDB, the rows the Cox model is
fitted on (the whole table, or its stratified weighted sample) fetched alone, the structural
term computed for those rows only, and the Cox fit of the single-machine pipeline.

The sample is :func:`clvtools.survival.sampling.stratified_sample` itself, run on the four
columns that decide it (row, event, landmark, time since the last purchase, whence the recency
band), fetched from DuckDB in the table's order: the same strata, the same seeded draw and the
same weights as the standard engine's, row for row. Only the drawn rows are then fetched whole.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.chunked_tables import (
    compressed_rows,
    fetch_rows,
    landmark_strata,
    rfm_at_sql,
    rfm_of_customers,
)
from ..data.engine import quote_ident
from ..data.survival_tables import landmark_table
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.risk import fit_churn_model
from ..pipeline.structural import (
    RECENCY_BAND,
    STRUCTURAL_COLUMN,
    add_recency_band,
    cloglog,
    structural_from_rfm,
)
from ..survival.sampling import SAMPLE_WEIGHT, stratified_sample
from .compressed_fit import structural_on_rows

__all__ = ["LANDMARK_TABLE", "fit_churn_chunked"]

#: The DuckDB table of the stacked landmark rows.
LANDMARK_TABLE = "chunked_landmarks"


def fit_churn_chunked(log: TransactionLog, landmarks, *, rfm_table: str, horizon: float,
                      churn_after: float, time_unit: str, seed: int, sample_rows: int,
                      attributes=None):
    """The Cox churn model and the structural BG/NBD at the observation end, from tables
    kept in DuckDB.

    Parameters
    ----------
    log : TransactionLog
    landmarks : sequence of datetime.date
    rfm_table : str
        The DuckDB table of the RFM summary at the observation end (its compressed rows fit
        the structural BG/NBD that scoring uses).
    horizon, churn_after : float
        Time units.
    time_unit : str
    seed : int
    sample_rows : int
        ``churn_sample_rows``: a larger table is fitted on a stratified sample of this many.
    attributes : CustomerAttributes, optional
        Joined to the landmark table as the standard engine joins them.

    Returns
    -------
    (ChurnModel or None, BetaGeoFitter or None, int, list of str)
        The churn model, the structural BG/NBD at the observation end (None when a
        landmark's or the end's could not be fitted), the landmark table's rows and the notes.
    """
    con = log.con
    landmark_table(log, landmarks=list(landmarks), churn_after=churn_after, time_unit=time_unit,
                   attributes=attributes, into=LANDMARK_TABLE)
    rows_total = int(con.execute(f"SELECT count(*) FROM {quote_ident(LANDMARK_TABLE)}")
                     .fetchone()[0])
    drawn = None
    if rows_total > sample_rows:
        strata = add_recency_band(landmark_strata(con, LANDMARK_TABLE), churn_after)
        sample = stratified_sample(strata, sample_rows, by=["landmark", RECENCY_BAND], seed=seed)
        del strata
        table = fetch_rows(con, LANDMARK_TABLE, sample.table["row"].to_numpy())
        table[SAMPLE_WEIGHT] = sample.table[SAMPLE_WEIGHT].to_numpy()
        drawn = sample = replace(sample, table=table)
    else:
        table = con.execute(f"SELECT * FROM {quote_ident(LANDMARK_TABLE)} ORDER BY rowid").df()
    con.execute(f"DROP TABLE {quote_ident(LANDMARK_TABLE)}")
    notes: list[str] = []
    structural = None
    try:
        table = _with_structural_term(table, log, horizon=horizon, churn_after=churn_after,
                                      time_unit=time_unit, seed=seed)
        structural = structural_on_rows(compressed_rows(con, quote_ident(rfm_table),
                                                        ["frequency", "recency", "T"]))
    except (ConvergenceError, ClvInputError) as exc:
        table = table.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
        notes.append(f"No structural churn term ({str(exc).splitlines()[0]}): the churn model "
                     "is stratified by time since the last purchase only.")
    table = add_recency_band(table, churn_after)
    if drawn is not None:
        drawn = replace(drawn, table=table)
    model, fit_notes = fit_churn_model(table, time_unit=time_unit, seed=seed,
                                       sample_rows=sample_rows, drawn=drawn)
    return model, structural, rows_total, notes + fit_notes


def _with_structural_term(table: pd.DataFrame, log: TransactionLog, *, horizon: float,
                          churn_after: float, time_unit: str, seed: int) -> pd.DataFrame:
    """``table`` with :data:`STRUCTURAL_COLUMN` at each row's landmark: BG/NBD fitted on the
    compressed RFM of the log up to the landmark, applied to the RFM rows of the table's
    customers there (as :func:`~clvtools.pipeline.structural.add_structural_term` applies it
    to every customer's)."""
    table = table.copy()
    table[STRUCTURAL_COLUMN] = np.nan
    marks = pd.to_datetime(table["landmark"]).dt.date
    for mark in sorted(marks.unique()):
        at = log.until(mark)
        model = structural_on_rows(compressed_rows(
            log.con, f"({rfm_at_sql(at, time_unit=time_unit)})", ["frequency", "recency", "T"]))
        rows = (marks == mark).to_numpy()
        ids = table.loc[rows, "customer_id"].astype(str).to_numpy()
        rfm = rfm_of_customers(at, ids, time_unit=time_unit)
        p = structural_from_rfm(model, rfm, horizon=horizon, churn_after=churn_after,
                                seed=seed).reindex(ids)
        if p.isna().any():
            raise ClvInputError(f"{int(p.isna().sum())} customers of the table at {mark} "
                                "have no structural churn probability.")
        table.loc[rows, STRUCTURAL_COLUMN] = cloglog(p.to_numpy())
    return table

"""The chunked run's churn model: the landmark table kept in DuckDB, the rows the Cox model is
fitted on (the whole table, or its stratified weighted sample) fetched alone, the structural
term computed for those rows only, and the Cox fit of the single-machine pipeline.

The sample is :func:`clvtools.survival.sampling.stratified_sample` itself, run on the four
columns that decide it (row, event, landmark, time since the last purchase, whence the recency
band), fetched from DuckDB in the table's order: the same strata, the same seeded draw and the
same weights as the standard engine's, row for row. Only the drawn rows are then fetched whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..btyd.bgnbd import BetaGeoFitter
from ..data.chunked_tables import (
    compressed_rows,
    fetch_rows,
    landmark_strata,
    rfm_at_sql,
    rfm_of_customers,
)
from ..data.engine import quote_ident
from ..data.survival_counts import segment_counts
from ..data.survival_tables import landmark_table
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.risk import fit_churn_model, survival_from_counts
from ..pipeline.structural import (
    RECENCY_BAND,
    STRUCTURAL_COLUMN,
    add_recency_band,
)
from ..survival.sampling import SAMPLE_WEIGHT, SurvivalSample, stratified_sample
from .compressed_fit import structural_at_landmark, structural_on_rows

__all__ = ["LANDMARK_TABLE", "ChurnTraining", "churn_training", "with_structural_term"]

#: The DuckDB table of the stacked landmark rows.
LANDMARK_TABLE = "chunked_landmarks"


@dataclass
class ChurnTraining:
    """The rows the Cox churn model is fitted on, and what scoring needs beside it.

    Attributes
    ----------
    table : pandas.DataFrame
        The landmark table, or its sample (with the weight column), with the structural term
        (unless it could not be fitted) and the recency band: what
        :func:`~clvtools.pipeline.risk.fit_churn_model` takes.
    drawn : SurvivalSample or None
        The sample ``table`` is, past ``churn_sample_rows``.
    rows_total : int
        Rows of the whole landmark table.
    structural : BetaGeoFitter or None
        The structural BG/NBD at the observation end (None when a landmark's or the end's
        could not be fitted).
    notes : list of str
    survival : dict of pandas.DataFrame
        Kaplan-Meier curves, medians and log-rank tests overall and by segment of the whole
        landmark table (:func:`~clvtools.pipeline.risk.survival_from_counts`; the standard
        risk step's ``survival_curves``, ``median_time_to_churn``, ``logrank_tests``).
    """

    table: pd.DataFrame
    drawn: SurvivalSample | None
    rows_total: int
    structural: object
    notes: list[str]
    survival: dict = field(default_factory=dict)

    def fit(self, *, time_unit: str, seed: int):
        """The Cox churn model on these rows: (ChurnModel or None, notes)."""
        model, notes = fit_churn_model(self.table, time_unit=time_unit, seed=seed,
                                       drawn=self.drawn)
        return model, self.notes + notes


def churn_training(log: TransactionLog, landmarks, *, rfm_table: str, horizon: float,
                   churn_after: float, time_unit: str, seed: int, sample_rows: int,
                   attributes=None, value_purchases=None, keep_at=None,
                   keep_into: str | None = None, segments=(),
                   python_limit: str | None = None) -> ChurnTraining:
    """The Cox model's training rows from a landmark table kept in DuckDB.

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
    value_purchases : fitted purchase model, optional
        The value step's; when it is the plain BG/NBD on the same RFM summary, it is the
        structural model at the observation end (as the standard engine's cache takes it).
    keep_at : datetime.date, optional
        One of ``landmarks`` whose rows are kept as the DuckDB table ``keep_into`` (the
        targeting evaluation scores the holdout start's rows, as the standard engine reuses
        the main fit's rows there) rather than queried again.
    segments : sequence of str
        The categorical attributes: the survival curves' segments.
    python_limit : str, optional
        DuckDB's ``memory_limit`` once the landmark table is built (the run's share while
        Python fits and scores): the rows fetched and their structural term are then held in
        pandas beside DuckDB (at 10.6M customers under a 6 GB limit the step peaked at 5.6 GB
        with DuckDB's larger share, in the structural term of the two-million-row sample).

    Returns
    -------
    ChurnTraining
    """
    con = log.con
    landmark_table(log, landmarks=list(landmarks), churn_after=churn_after, time_unit=time_unit,
                   attributes=attributes, into=LANDMARK_TABLE)
    rows_total = int(con.execute(f"SELECT count(*) FROM {quote_ident(LANDMARK_TABLE)}")
                     .fetchone()[0])
    if python_limit is not None:
        con.execute("SET memory_limit = ?", [python_limit])
    drawn = None
    if rows_total > sample_rows:
        strata = add_recency_band(landmark_strata(con, LANDMARK_TABLE), churn_after)
        sample = stratified_sample(strata, sample_rows, by=["landmark", RECENCY_BAND], seed=seed)
        del strata
        table = fetch_rows(con, LANDMARK_TABLE, sample.table["row"].to_numpy())
        table[SAMPLE_WEIGHT] = sample.table[SAMPLE_WEIGHT].to_numpy()
        drawn = replace(sample, table=table)
    else:
        table = con.execute(f"SELECT * FROM {quote_ident(LANDMARK_TABLE)} ORDER BY rowid").df()
    if keep_at is not None and keep_at in landmarks:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(keep_into)} AS SELECT * FROM "
                    f"{quote_ident(LANDMARK_TABLE)} WHERE CAST(landmark AS DATE) = ?",
                    [keep_at])
    # the curves by segment from the whole table's counts, before it goes
    survival = survival_from_counts(lambda by: segment_counts(con, LANDMARK_TABLE, by),
                                    list(segments))
    con.execute(f"DROP TABLE {quote_ident(LANDMARK_TABLE)}")
    notes: list[str] = []
    structural = None
    try:
        table = with_structural_term(table, log, horizon=horizon, churn_after=churn_after,
                                      time_unit=time_unit, seed=seed)
        structural = (value_purchases if type(value_purchases) is BetaGeoFitter
                      else structural_on_rows(compressed_rows(
                          con, quote_ident(rfm_table), ["frequency", "recency", "T"])))
    except (ConvergenceError, ClvInputError) as exc:
        table = table.drop(columns=STRUCTURAL_COLUMN, errors="ignore")
        notes.append(f"No structural churn term ({str(exc).splitlines()[0]}): the churn model "
                     "is stratified by time since the last purchase only.")
    table = add_recency_band(table, churn_after)
    if drawn is not None:
        drawn = replace(drawn, table=table)
    return ChurnTraining(table, drawn, rows_total, structural, notes, survival)


def with_structural_term(table: pd.DataFrame, log: TransactionLog, *, horizon: float,
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
        table.loc[rows, STRUCTURAL_COLUMN] = structural_at_landmark(
            model, rfm_of_customers(at, ids, time_unit=time_unit), ids, mark, horizon=horizon,
            churn_after=churn_after, seed=seed)
    return table

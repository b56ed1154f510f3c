"""A stratified, weighted sample of a large survival table, for a Cox fit whose cost and
memory do not grow with the base.

lifelines holds several float64 copies of the design matrix during a fit, and its time grows
with the rows: ten million landmark rows take minutes and gigabytes, where a sample of two
million gives hazard ratios whose robust intervals cover the full-data ones (see
benchmarks/bench_churn_sample.py). The sample is drawn without replacement within strata (the
event indicator crossed with the landmark and, when given, further columns such as the
recency band); every event is kept while events fill at most half the sample (else half the
sample is events), and the censored rows are thinned. Each row carries the inverse of its
stratum's sampling fraction as a weight, so that weighted sums over the sample estimate sums
over the table: the weighted Cox partial likelihood then estimates the full one, and its
baseline hazard the full baseline. The weights are not frequencies: the variance must be the
sandwich (``ChurnModel(robust=True)``), the model-based one would be that of the full table.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ClvInputError

__all__ = ["SAMPLE_WEIGHT", "SurvivalSample", "rows_to_draw", "sample_keys", "stratified_sample"]

#: Column of the sample holding each row's weight (rows of the table it stands for).
SAMPLE_WEIGHT = "sample_weight"


@dataclass(frozen=True)
class SurvivalSample:
    """A stratified sample of a survival table and how it was drawn.

    Attributes
    ----------
    table : pandas.DataFrame, shape (rows, n_columns + 1)
        The sampled rows in the table's order, with :data:`SAMPLE_WEIGHT` (rows of the table
        each stands for: the stratum's size over its sampled rows, >= 1).
    rows_total : int
        Rows of the full table.
    strata : list of str
        Columns whose combinations are the strata (the event column first).
    event_fraction, censored_fraction : float
        Target sampling fractions of the event and the censored rows (each stratum's own is
        its rounded count over its size).
    seed : int
    """

    table: pd.DataFrame
    rows_total: int
    strata: list[str]
    event_fraction: float
    censored_fraction: float
    seed: int

    @property
    def rows(self) -> int:
        """Rows sampled."""
        return len(self.table)

    def as_dict(self) -> dict:
        """What the model file and data_quality.json record of the sample (JSON-ready)."""
        return {"rows": self.rows, "rows_total": self.rows_total, "strata": list(self.strata),
                "event_fraction": self.event_fraction,
                "censored_fraction": self.censored_fraction,
                "weights_col": SAMPLE_WEIGHT, "seed": self.seed}

    def describe(self) -> str:
        """One sentence for the run's notes."""
        return (f"The Cox churn model was fitted on a stratified sample of {self.rows:,} of the "
                f"survival table's {self.rows_total:,} rows (strata: {' x '.join(self.strata)}; "
                f"events kept at {self.event_fraction:.3g}, censored rows at "
                f"{self.censored_fraction:.3g}), weighted by the inverse sampling fraction, "
                "with robust (sandwich) standard errors.")


def stratified_sample(table: pd.DataFrame, rows: int, *, event_col: str = "event",
                      by: Sequence[str] = (), seed: int = 0) -> SurvivalSample:
    """Draw about ``rows`` rows of ``table``, stratified by the event and ``by``, weighted.

    Parameters
    ----------
    table : pandas.DataFrame, shape (n, ...)
        A survival table with a 0/1 ``event_col``.
    rows : int
        Rows to draw (>= 2; fewer than ``n``). Events are kept whole while they are at most
        half of ``rows``; otherwise events and censored rows get half each (or the events
        what the censored rows leave).
    event_col : str
    by : sequence of str
        Further stratum columns (the landmark, the recency band); each combination with the
        event indicator is sampled at its group's fraction and weighted on its own size.
    seed : int
        Seed of the draw (numpy's ``default_rng``).

    Returns
    -------
    SurvivalSample
    """
    if not (isinstance(rows, (int, np.integer)) and rows >= 2):
        raise ClvInputError(f"The 'rows' parameter of stratified_sample must be a whole number "
                            f"of at least 2. Got {rows!r} instead.")
    if rows >= len(table):
        raise ClvInputError(f"The survival table has {len(table):,} rows, not more than the "
                            f"{rows:,} to sample: fit it whole.")
    strata = [event_col, *by]
    missing = [c for c in strata if c not in table.columns]
    if missing:
        raise ClvInputError(f"The survival table has no column {missing} to stratify on.")
    event = table[event_col].to_numpy() == 1
    codes = table.groupby(strata, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    sizes = np.bincount(codes)
    stratum_event = np.zeros(len(sizes), dtype=bool)
    stratum_event[codes[event]] = True
    drawn, event_fraction, censored_fraction = rows_to_draw(sizes, stratum_event, rows)
    # a uniform key per row; a stratum keeps its `drawn` smallest: a simple random sample
    # without replacement in every stratum at once, in O(n log n)
    key = sample_keys(seed, 0, len(table))
    order = np.lexsort((key, codes))
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    rank = np.empty(len(table), dtype=np.int64)
    rank[order] = np.arange(len(table)) - np.repeat(starts, sizes)
    keep = rank < drawn[codes]
    sample = table.loc[keep].copy()
    sample[SAMPLE_WEIGHT] = (sizes / drawn)[codes[keep]]
    return SurvivalSample(sample, len(table), strata, event_fraction, censored_fraction,
                          int(seed))


def rows_to_draw(sizes: np.ndarray, stratum_event: np.ndarray, rows: int
                 ) -> tuple[np.ndarray, float, float]:
    """How many rows :func:`stratified_sample` draws from each stratum.

    Parameters
    ----------
    sizes : numpy.ndarray of int, shape (strata,)
        Rows of each stratum (all > 0).
    stratum_event : numpy.ndarray of bool, shape (strata,)
        Whether the stratum holds events.
    rows : int
        The sample's size.

    Returns
    -------
    (numpy.ndarray of int, float, float)
        Rows drawn per stratum (at least one, at most its size), and the target fractions of
        the events and the censored rows.
    """
    n_events = int(sizes[stratum_event].sum())
    n_censored = int(sizes.sum()) - n_events
    # events get half the sample, or more where the censored rows cannot fill their half
    take_events = min(n_events, max(rows // 2, rows - n_censored))
    event_fraction = take_events / n_events if n_events else 1.0
    censored_fraction = min(1.0, (rows - take_events) / n_censored) if n_censored else 1.0
    # each stratum draws its own rounded share (at least one row from a non-empty stratum),
    # so that every weight is its stratum's size over the rows actually drawn from it
    fraction = np.where(stratum_event, event_fraction, censored_fraction)
    drawn = np.clip(np.rint(sizes * fraction).astype(np.int64), 1, sizes)
    return drawn, float(event_fraction), float(censored_fraction)


def sample_keys(seed: int, start: int, count: int) -> np.ndarray:
    """The uniform keys of :func:`stratified_sample`'s draw for the rows at positions
    ``start`` .. ``start + count - 1`` of the table (shape (count,)): numpy's PCG64 stream
    advanced to ``start``, so that an engine holding the table in pieces (Spark's partitions)
    draws each piece's keys where it is and the same sample as the whole table's."""
    rng = np.random.default_rng(seed)
    rng.bit_generator.advance(start)     # one 64-bit draw per double
    return rng.random(count)

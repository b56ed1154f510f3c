"""The landmark rows a Spark run's Cox fit is given: the whole table up to
``churn_sample_rows``, past it the standard engine's stratified weighted sample
(:func:`clvtools.survival.sampling.stratified_sample`), drawn on the executors.

The standard draw gives each row of the table, in its order (landmark, customer id), a
uniform key from one seeded stream, and keeps in each stratum (event x landmark x recency
band) the rows with the smallest keys. Here each row's key is drawn where the row is, from
the same stream advanced to its position (:func:`~clvtools.survival.sampling.sample_keys`),
its recency band by the pipeline's own function; only the strata's sizes, one threshold
row per stratum and the sample itself reach the driver. The sample is the standard one, row
for row, with the same weights; the driver never holds the table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..pipeline.structural import RECENCY_BAND, add_recency_band
from ..survival.sampling import SAMPLE_WEIGHT, SurvivalSample, rows_to_draw, sample_keys
from .spark_rows import numbered_rows, rows_at_positions, with_positions

__all__ = ["TABLE_ORDER", "spark_survival_sample"]

#: The landmark table's order on the driver, as DuckDB's.
TABLE_ORDER = ["landmark", "customer_id"]
#: Each row's position in the table's order, its key and its stratum's number.
_ROW, _KEY, _CODE = "_row", "_key", "_code"


def spark_survival_sample(table, sample_rows: int, *, churn_after: float, seed: int
                          ) -> tuple[pd.DataFrame, SurvivalSample | None]:
    """The rows of the Spark landmark table ``table`` that the Cox model is fitted on.

    Parameters
    ----------
    table : pyspark.sql.DataFrame
        One row per (customer, landmark) at risk, with ``customer_id``, ``landmark``,
        ``event`` (0/1) and ``time_since_last_purchase`` (time units).
    sample_rows : int
        ``churn_sample_rows``: a larger table is sampled.
    churn_after : float
        The churn delay (time units), for the recency band.
    seed : int
        The draw's seed (the standard engine's ``seed``).

    Returns
    -------
    (pandas.DataFrame, SurvivalSample or None)
        ``table``'s rows in :data:`TABLE_ORDER` (all of them; or the sample, with
        :data:`~clvtools.survival.sampling.SAMPLE_WEIGHT`), and the sample's description
        (its ``table`` is the returned frame; None when the table is whole).
    """
    from pyspark.sql import functions as F

    rows_total = table.count()
    if rows_total <= sample_rows:
        return table.toPandas().sort_values(TABLE_ORDER, ignore_index=True), None
    numbered, parts = numbered_rows(table, TABLE_ORDER)
    keyed = with_positions(numbered, parts, _ROW).select(
        "*", _band_udf(churn_after)("time_since_last_purchase").alias(RECENCY_BAND),
        _key_udf(seed)(_ROW).alias(_KEY)).persist()
    keyed.count()           # cached before the numbering it was read from goes
    numbered.unpersist()
    try:
        strata = ["event", "landmark", RECENCY_BAND]
        # the strata as the standard draw numbers them: its groups' sorted order
        sizes = (keyed.groupBy(*strata).count().toPandas()
                 .sort_values(strata, ignore_index=True))
        sizes[_CODE] = np.arange(len(sizes))
        counts = sizes["count"].to_numpy(np.int64)
        drawn, event_fraction, censored_fraction = rows_to_draw(
            counts, sizes["event"].to_numpy() == 1, sample_rows)
        coded = keyed.join(F.broadcast(keyed.sparkSession.createDataFrame(
            sizes[[*strata, _CODE]])), strata)
        # each stratum keeps its rows up to its drawn-th smallest (key, position), as the
        # standard draw's stable sort by key ranks them
        starts = np.cumsum(counts) - counts
        _, last = rows_at_positions(coded.select(_CODE, _KEY, _ROW), [_CODE, _KEY, _ROW],
                                    lambda _n: starts + drawn - 1)
        last = keyed.sparkSession.createDataFrame(
            last.rename(columns={_KEY: "_last_key", _ROW: "_last_row"}))
        kept = coded.join(F.broadcast(last), _CODE).where(
            (F.col(_KEY) < F.col("_last_key"))
            | ((F.col(_KEY) == F.col("_last_key")) & (F.col(_ROW) <= F.col("_last_row"))))
        sample = (kept.select(*table.columns, _ROW, _CODE).toPandas()
                  .sort_values(_ROW, ignore_index=True))
    finally:
        keyed.unpersist()
    if len(sample) != drawn.sum():
        raise RuntimeError(f"The churn model's sample holds {len(sample):,} rows where "
                           f"{int(drawn.sum()):,} were drawn.")
    sample[SAMPLE_WEIGHT] = (counts / drawn)[sample[_CODE].to_numpy()]
    sample = sample.drop(columns=[_ROW, _CODE])
    return sample, SurvivalSample(sample, rows_total, strata, event_fraction,
                                  censored_fraction, int(seed))


def _band_udf(churn_after: float):
    """The recency band of each time since the last purchase, by the pipeline's own
    :func:`~clvtools.pipeline.structural.add_recency_band`."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def band(time_since: pd.Series) -> pd.Series:
        frame = pd.DataFrame({"time_since_last_purchase": time_since})
        return add_recency_band(frame, churn_after)[RECENCY_BAND].astype(str)

    return band


def _key_udf(seed: int):
    """Each row's uniform key at its position of the table's order: the standard draw's
    stream advanced to the batch's first position (:func:`sample_keys`)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def key(position: pd.Series) -> pd.Series:
        at = position.to_numpy(np.int64)
        if not len(at):
            return pd.Series(np.zeros(0))
        first = int(at.min())
        return pd.Series(sample_keys(seed, first, int(at.max()) - first + 1)[at - first])

    return key

"""Rows of a Spark DataFrame at given positions of its order, found on the executors: a
draw that the single-machine engine makes over a whole table's positions (in customer id
order) reaches the driver as the drawn rows only, and its count."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..forecast import presampled_positions, systematic_pick

__all__ = ["POSITION", "numbered_rows", "rows_at_positions", "stratified_rows",
           "with_positions"]

#: The column of each row's 0-based position in the order (:func:`with_positions`).
POSITION = "_pos"


def numbered_rows(frame, order_by: str | list[str]) -> tuple[object, pd.DataFrame]:
    """``frame`` sorted by ``order_by`` and numbered, cached (unpersist it when done), and
    its partitions' sizes.

    Each row's position is its sorted partition's offset plus its place in the partition;
    the partition id sits in ``monotonically_increasing_id``'s upper bits. Cached, so that
    every read sees the same numbering.

    Returns
    -------
    (pyspark.sql.DataFrame, pandas.DataFrame)
        ``frame`` with ``_part`` and ``_id``; per partition ``_part``, ``n`` (rows), ``first``
        (its smallest ``_id``) and ``offset`` (rows before it), in order.
    """
    from pyspark.sql import functions as F

    numbered = (frame.orderBy(*np.atleast_1d(order_by).tolist())
                .select("*", F.spark_partition_id().alias("_part"),
                        F.monotonically_increasing_id().alias("_id"))).persist()
    parts = (numbered.groupBy("_part").agg(F.count("*").alias("n"), F.min("_id").alias("first"))
             .toPandas().sort_values("_part", ignore_index=True))
    parts["offset"] = parts["n"].cumsum() - parts["n"]
    return numbered, parts


def with_positions(numbered, parts: pd.DataFrame, name: str = POSITION):
    """:func:`numbered_rows`' frame with each row's position (int64) in the column ``name``,
    without its numbering."""
    from pyspark.sql import functions as F

    starts = numbered.sparkSession.createDataFrame(
        parts[["_part", "first", "offset"]].astype("int64"))
    return (numbered.join(F.broadcast(starts), "_part")
            .select("*", (F.col("offset") + F.col("_id") - F.col("first")).alias(name))
            .drop("_part", "_id", "first", "offset"))


def rows_at_positions(frame, order_by: str | list[str], positions: Callable[[int], np.ndarray]
                      ) -> tuple[int, pd.DataFrame]:
    """The rows of ``frame`` at ``positions(count)`` of its order by ``order_by``.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
    order_by : str or list of str
        A column whose values are unique (the customer id), or columns whose values are
        unique together.
    positions : callable
        Given the number of rows, the increasing 0-based positions wanted (a draw that
        depends only on the count, as :func:`clvtools.forecast.presampled_positions`).

    Returns
    -------
    (int, pandas.DataFrame)
        The number of rows, and the wanted rows in order (``frame``'s columns).

    Raises
    ------
    RuntimeError
        A position was not found (``order_by`` not unique, or the frame changed between
        its two reads).
    """
    numbered, parts = numbered_rows(frame, order_by)
    try:
        size = int(parts["n"].sum())
        wanted = np.asarray(positions(size), dtype=np.int64)
        rows = numbered
        if len(wanted) < size:
            # joined, not an IN list: a sample may hold millions of positions
            drawn = numbered.sparkSession.createDataFrame(pd.DataFrame({POSITION: wanted}))
            rows = with_positions(numbered, parts).join(drawn, POSITION)
        out = (rows.select(*frame.columns).toPandas()
               .sort_values(order_by, ignore_index=True))
    finally:
        numbered.unpersist()
    if len(out) != len(wanted):
        raise RuntimeError(f"{len(wanted) - len(out)} of the {len(wanted)} positions drawn "
                           f"were not found in the {size} rows.")
    return size, out


def stratified_rows(frame, value: str, per_stratum: int, *, stratum: str | None = None,
                    strata: Sequence[str] = (), order_by: str = "customer_id"
                    ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """:func:`clvtools.forecast.stratified_sample` of ``frame``'s rows, drawn on the executors.

    The single-machine engine draws it over every customer's row held in memory; here only
    the candidates of its first half (:func:`~clvtools.forecast.presampled_positions`, at
    most 20 x ``per_stratum`` a stratum) reach the driver, and the same rows are drawn.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per ``order_by`` value.
    value : str
        The column the sample is spread along (expected revenue).
    per_stratum : int
        Rows drawn per stratum at most.
    stratum : str, optional
        The column of each row's stratum, whose values are ``strata`` (their order is the
        strata's, as pandas' categorical codes); None: one stratum.
    strata : sequence of str
    order_by : str
        The unique column whose order the positions count in (the customer id).

    Returns
    -------
    (numpy.ndarray of int, pandas.DataFrame, numpy.ndarray of float)
        Each stratum's size (shape (len(strata),), or (1,) without ``stratum``); the sample's
        rows (columns ``order_by`` and ``value``), strata in order; each one's weight
        (stratum size / its sample size).

    Raises
    ------
    ValueError
        A row's stratum is not one of ``strata``.
    """
    from pyspark.sql import functions as F

    code = (F.lit(0) if stratum is None else
            F.array_position(F.array(*[F.lit(s) for s in strata]), F.col(stratum)) - 1)
    coded = frame.select(order_by, value, code.alias("_code"))
    counts = coded.groupBy("_code").count().toPandas()
    if counts["_code"].isna().any() or (counts["_code"] < 0).any():
        raise ValueError(f"The column {stratum!r} holds values other than {list(strata)}.")
    sizes = np.zeros(max(len(strata), 1), dtype=np.int64)
    sizes[counts["_code"].to_numpy(int)] = counts["count"].to_numpy(int)
    present = sizes[sizes > 0]
    within = presampled_positions(present, per_stratum)
    # positions in the order by (stratum, id): each stratum's own shifted past those before
    offsets = np.cumsum(present) - present
    wanted = np.concatenate([offset + positions for offset, positions
                             in zip(offsets, within, strict=True)]) if len(present) else []
    _, candidates = rows_at_positions(coded, ["_code", order_by], lambda _n: wanted)
    picks, weights, start = [], [], 0
    for size, positions in zip(present, within, strict=True):
        members = candidates.iloc[start:start + len(positions)]
        pick = members.iloc[systematic_pick(members[value].to_numpy(float), per_stratum)]
        picks.append(pick[[order_by, value]])
        weights.append(np.full(len(pick), size / len(pick)))
        start += len(positions)
    sample = (pd.concat(picks, ignore_index=True) if picks
              else candidates[[order_by, value]])
    return sizes, sample, np.concatenate(weights) if weights else np.zeros(0)

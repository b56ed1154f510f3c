"""Rows of a Spark DataFrame at given positions of its order, found on the executors: a
draw that the single-machine engine makes over a whole table's positions (in customer id
order) reaches the driver as the drawn rows only, and its count."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["rows_at_positions"]


def rows_at_positions(frame, order_by: str, positions: Callable[[int], np.ndarray]
                      ) -> tuple[int, pd.DataFrame]:
    """The rows of ``frame`` at ``positions(count)`` of its order by ``order_by``.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
    order_by : str
        A column whose values are unique (the customer id).
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
    from pyspark.sql import functions as F

    # each row's position: its sorted partition's offset + its place in the partition (the
    # partition id sits in monotonically_increasing_id's upper bits); cached, so that both
    # reads see the same numbering
    numbered = (frame.orderBy(order_by)
                .select("*", F.spark_partition_id().alias("_part"),
                        F.monotonically_increasing_id().alias("_id"))).persist()
    try:
        parts = (numbered.groupBy("_part").agg(F.count("*").alias("n"),
                                                F.min("_id").alias("first"))
                 .toPandas().sort_values("_part", ignore_index=True))
        parts["offset"] = parts["n"].cumsum() - parts["n"]
        size = int(parts["n"].sum())
        wanted = np.asarray(positions(size), dtype=np.int64)
        rows = numbered
        if len(wanted) < size:
            session = numbered.sparkSession
            starts = session.createDataFrame(parts[["_part", "first", "offset"]].astype("int64"))
            # joined, not an IN list: a sample may hold millions of positions
            drawn = session.createDataFrame(pd.DataFrame({"_pos": wanted}))
            rows = (numbered.join(F.broadcast(starts), "_part")
                    .select("*", (F.col("offset") + F.col("_id") - F.col("first")).alias("_pos"))
                    .join(drawn, "_pos"))
        out = (rows.select(*frame.columns).toPandas().sort_values(order_by, ignore_index=True))
    finally:
        numbered.unpersist()
    if len(out) != len(wanted):
        raise RuntimeError(f"{len(wanted) - len(out)} of the {len(wanted)} positions drawn "
                           f"were not found in the {size} rows.")
    return size, out

"""How customers spread over the matrix section of a chunked run's report, from DuckDB
aggregates over the decided part files: the P(alive) map's bins, the Lorenz curve and the
80/20 table (``concentration.csv``). The standard report's own functions
(:mod:`clvtools.report.sections.matrix`, :func:`clvtools.targeting.matrix.concentration`)
draw and finish them; only their sums are computed here, so no per-customer table is ever
whole in pandas.

The bins are the standard edges compared in SQL (each value counted in the bin whose edges
surround it, as :func:`numpy.histogram2d` does); the sums of the most valuable customers
are the values ranked in DuckDB and summed between the ranks asked (an ASOF join of each
rank to the next rank asked). Figures equal the
standard ones up to the order of addition (about 1e-15 relative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..report.sections.matrix import AliveGrid, alive_edges, lorenz_ranks
from ..targeting.matrix import concentration_ranks, concentration_table

__all__ = ["alive_grid_of", "lorenz_curve_of", "concentration_of", "linear_quantile"]

#: The customers the P(alive) map counts: all three figures finite (NULL is left out too).
_FINITE = "isfinite(frequency) AND isfinite(recency) AND isfinite(p_alive)"


def _bin_sql(column: str, edges: np.ndarray) -> tuple[str, list[float]]:
    """SQL of the bin of ``column`` among ``edges`` (as :func:`numpy.histogram2d`: the
    edges at or below the value, less one; a value on the last edge in the last bin; outside:
    -1 or len(edges) - 1), and its parameters."""
    above = " + ".join(f"({column} >= ?)::INTEGER" for _ in edges)
    return (f"({above} - 1 - ({column} = ?)::INTEGER)",
            [*map(float, edges), float(edges[-1])])


def linear_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """:func:`numpy.quantile`'s default (linear) quantile of ``values`` repeated ``counts``
    times (values ascending), with numpy's own rounding."""
    n = int(counts.sum())
    virtual = (n - 1) * q
    last = np.cumsum(counts) - 1                       # the last position of each value

    def at(position: int) -> float:
        return float(values[np.searchsorted(last, position)])

    if virtual >= n - 1:
        return float(values[-1])
    previous = int(np.floor(virtual))
    a, b, gamma = at(previous), at(previous + 1), virtual - previous
    # numpy's _lerp: from the nearer end
    return b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma


def alive_grid_of(con, decided: str) -> AliveGrid | None:
    """The P(alive) map's bins over the decided part files.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    decided : str
        SQL of the decided part files (``frequency``, ``recency``, ``p_alive``).

    Returns
    -------
    AliveGrid or None
        None: no customer has the three figures.
    """
    # repeat purchases are whole numbers: few distinct values, so the exact quantile comes
    # from their counts rather than from a sort of the base
    counts = con.execute(f"SELECT frequency, count(*) AS n FROM {decided} WHERE {_FINITE} "
                         "GROUP BY frequency ORDER BY frequency").fetchnumpy()
    if not len(counts["n"]):
        return None
    recency_max = con.execute(f"SELECT max(recency) FROM {decided} WHERE {_FINITE}"
                              ).fetchall()[0][0]
    top, x_edges, y_edges = alive_edges(
        linear_quantile(counts["frequency"], counts["n"].astype(np.int64), 0.99), recency_max)
    x_sql, x_params = _bin_sql("least(frequency, ?)", x_edges)
    y_sql, y_params = _bin_sql("recency", y_edges)
    # the clipped frequency's own parameter precedes each of its edges
    x_params = [v for edge in x_params for v in (float(top), edge)]
    rows = con.execute(
        f"SELECT {x_sql} AS i, {y_sql} AS j, count(*) AS n, sum(p_alive) AS alive "
        f"FROM {decided} WHERE {_FINITE} GROUP BY ALL", x_params + y_params).fetchnumpy()
    shape = (len(x_edges) - 1, len(y_edges) - 1)
    i, j = rows["i"].astype(int), rows["j"].astype(int)
    inside = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1])
    customers, alive = np.zeros(shape), np.zeros(shape)
    np.add.at(customers, (i[inside], j[inside]), rows["n"][inside].astype(float))
    np.add.at(alive, (i[inside], j[inside]), rows["alive"][inside].astype(float))
    return AliveGrid(x_edges, y_edges, customers, alive, top)


def _top_sums(con, values: str, ranks: np.ndarray) -> tuple[int, float, np.ndarray, float]:
    """The values ranked in DuckDB, most first: their count, their total, the sum of the top
    ``ranks`` of them, and sum(i x_i) over them in ascending order (i = 1..n).

    ``values``: SQL of one column ``x``.
    """
    wanted = np.unique(ranks)
    cuts = pd.DataFrame({"k": wanted[wanted > 0].astype(np.int64)})
    con.register("_spread_cuts", cuts)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _spread_ranked AS SELECT x, "
                    f"row_number() OVER (ORDER BY x DESC) AS r FROM ({values})")
        n, total = con.execute("SELECT count(*), coalesce(sum(x), 0) FROM _spread_ranked"
                               ).fetchall()[0]
        weighted = con.execute("SELECT coalesce(sum((? + 1 - r) * x), 0) FROM _spread_ranked",
                               [int(n)]).fetchall()[0][0]
        # each rank to the first cut at or above it (an ASOF join: a range join over the
        # Lorenz curve's 400 cuts cost 8 times the CPU)
        between = con.execute("""
            SELECT c.k, sum(x) AS held FROM _spread_ranked AS v ASOF JOIN _spread_cuts AS c
            ON v.r <= c.k GROUP BY c.k ORDER BY c.k""").fetchnumpy()
    finally:
        con.execute("DROP TABLE IF EXISTS _spread_ranked")
        con.unregister("_spread_cuts")
    held = dict(zip(between["k"].tolist(), np.cumsum(between["held"].astype(float)),
                    strict=True))
    return int(n), float(total), np.array([held.get(int(k), 0.0) for k in ranks]), float(
        weighted)


def lorenz_curve_of(con, decided: str) -> np.ndarray:
    """:func:`~clvtools.report.sections.matrix.lorenz_curve` over the decided part files
    (``expected_revenue``): the share of expected revenue the top customers hold at each of
    its ranks, negative values counted as 0 and non-finite ones left out."""
    values = (f"SELECT greatest(expected_revenue, 0) AS x FROM {decided} "
              "WHERE isfinite(expected_revenue)")
    n = con.execute(f"SELECT count(*) FROM ({values})").fetchall()[0][0]
    _, total, held, _ = _top_sums(con, values, lorenz_ranks(int(n)))
    return held / (total if total > 0 else 1.0)


def concentration_of(con, decided: str) -> pd.DataFrame:
    """concentration.csv (:func:`~clvtools.targeting.matrix.concentration`) over the decided
    part files' ``expected_revenue``."""
    values = f"SELECT expected_revenue AS x FROM {decided}"
    n = con.execute(f"SELECT count(*) FROM ({values})").fetchall()[0][0]
    n, total, held, weighted = _top_sums(con, values, concentration_ranks(int(n)))
    return concentration_table(n, total, held, weighted)

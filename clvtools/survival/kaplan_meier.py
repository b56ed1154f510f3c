"""Kaplan-Meier curves, median survival and log-rank tests by segment, as tidy DataFrames that
the report draws (models never plot). lifelines does the estimation and the tests.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times

from ._params import check_columns, check_number

__all__ = ["km_curves", "median_survival", "logrank_tests", "segment_labels", "segment_rows",
           "segment_rows_from_counts"]


def segment_labels(table: pd.DataFrame, by: str | Sequence[str] | None) -> pd.Series:
    """One string label per row: the value of ``by`` (columns joined with ``" | "``), or
    ``"all"`` when ``by`` is None."""
    if by is None:
        return pd.Series("all", index=table.index, name="segment")
    cols = [by] if isinstance(by, str) else list(by)
    check_columns(table, cols, "DataFrame", "segment column")
    parts = [table[c].astype("string").fillna("<missing>") for c in cols]
    lab = parts[0]
    for p in parts[1:]:
        lab = lab + " | " + p
    return lab.rename("segment")


def _compressed(table, seg, duration_col, event_col, weights_col) -> pd.DataFrame:
    """One row per segment, duration and event: ``rows`` (how many rows it stands for) and
    ``weight`` (their count, or the sum of their weights). lifelines' estimates and tests are
    sums over such rows, so the curves and statistics are those of the rows themselves, on a
    few hundred rows per segment instead of the landmark table's hundreds of thousands."""
    frame = pd.DataFrame({"segment": seg.to_numpy(),
                          "duration": table[duration_col].to_numpy(dtype=float),
                          "event": table[event_col].to_numpy(dtype=float),
                          "weight": 1 if weights_col is None
                          else table[weights_col].to_numpy(dtype=float)})
    return (frame.groupby(["segment", "duration", "event"], sort=True)
            .agg(rows=("weight", "size"), weight=("weight", "sum")).reset_index())


def segment_rows(table: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                 duration_col: str = "duration", event_col: str = "event",
                 weights_col: str | None = None) -> pd.DataFrame:
    """``table`` compressed for :func:`km_curves`, :func:`median_survival` and
    :func:`logrank_tests`: compress once, hand the rows to all three.

    Returns
    -------
    pandas.DataFrame
        One row per segment (a label of :func:`segment_labels`), duration and event, sorted:
        ``segment``, ``duration``, ``event`` (float 0/1), ``rows`` (rows of ``table``) and
        ``weight`` (their count, or the sum of their weights).
    """
    check_columns(table, [duration_col, event_col, weights_col], "DataFrame")
    return _compressed(table, segment_labels(table, by), duration_col, event_col, weights_col)


def segment_rows_from_counts(counts: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                             duration_col: str = "duration", event_col: str = "event",
                             count_col: str = "rows") -> pd.DataFrame:
    """:func:`segment_rows`' output from a table's rows already counted per distinct segment
    value, duration and event (a GROUP BY in DuckDB or Spark), so that a table too large for
    pandas gives the same compressed rows, hence the same curves and tests.

    Parameters
    ----------
    counts : pandas.DataFrame
        The ``by`` column(s) as the table holds them (labelled here by
        :func:`segment_labels`, as for the whole table), ``duration_col``, ``event_col`` and
        ``count_col`` (rows of the table with those values, unweighted).

    Returns
    -------
    pandas.DataFrame
        As :func:`segment_rows` of the table itself: ``segment``, ``duration``, ``event``
        (float 0/1), ``rows`` and ``weight`` (both the count, int64), sorted.
    """
    check_columns(counts, [duration_col, event_col, count_col], "DataFrame")
    n = counts[count_col].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({"segment": segment_labels(counts, by).to_numpy(),
                          "duration": counts[duration_col].to_numpy(dtype=float),
                          "event": counts[event_col].to_numpy(dtype=float),
                          "rows": n, "weight": n})
    # values that share a label (a missing value and "<missing>") are one segment, as there
    return (frame.groupby(["segment", "duration", "event"], sort=True)
            .agg(rows=("rows", "sum"), weight=("weight", "sum")).reset_index())


def _rows_of(table, by, duration_col, event_col, weights_col, rows):
    """``rows`` when given (the output of :func:`segment_rows`), else ``table`` compressed."""
    if rows is not None:
        return rows
    return segment_rows(table, by, duration_col=duration_col, event_col=event_col,
                        weights_col=weights_col)


def _groups(rows):
    """Per segment of compressed ``rows`` (sorted): its name, the rows' durations, events and
    weights, the number of rows and of rows with the event."""
    for name, sub in rows.groupby("segment", sort=True):
        event = sub["event"].to_numpy()
        yield (name, sub["duration"].to_numpy(), event, sub["weight"].to_numpy(),
               int(sub["rows"].sum()), int(sub["rows"].to_numpy()[event > 0].sum()))


def km_curves(
    table: pd.DataFrame | None,
    by: str | Sequence[str] | None = None,
    *,
    duration_col: str = "duration",
    event_col: str = "event",
    weights_col: str | None = None,
    alpha: float = 0.05,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Kaplan-Meier survival curves per segment.

    Parameters
    ----------
    table : DataFrame
        A landmark or contract table.
    by : str or list of str, optional
        Segment column(s) (an attribute, a matrix cell, any column); None: one curve.
    alpha : float
        1 - level of the pointwise intervals (exponential Greenwood, lifelines' default).
    rows : pandas.DataFrame, optional
        ``table`` already compressed by :func:`segment_rows` (then ``table`` and ``by`` are
        not read): several of these functions on one table compress it once.

    Returns
    -------
    DataFrame
        Columns ``segment``, ``time`` (time units; 0 first), ``survival``, ``lower``, ``upper``,
        ``at_risk``, ``events``, ``censored``: one row per distinct duration per segment.
    """
    check_number(alpha, "alpha", "km_curves", low=0, high=0.5, low_open=True)
    frames = []
    rows = _rows_of(table, by, duration_col, event_col, weights_col, rows)
    for name, t, e, w, _, _ in _groups(rows):
        kmf = KaplanMeierFitter(alpha=alpha).fit(t, e, weights=w)
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_survival_function_
        ev = kmf.event_table.reindex(sf.index)
        frames.append(pd.DataFrame({
            "segment": name,
            "time": sf.index.to_numpy(dtype=float),
            "survival": sf.to_numpy(),
            "lower": ci.iloc[:, 0].to_numpy(),
            "upper": ci.iloc[:, 1].to_numpy(),
            "at_risk": ev["at_risk"].to_numpy(),
            "events": ev["observed"].to_numpy(),
            "censored": ev["censored"].to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def median_survival(
    table: pd.DataFrame | None,
    by: str | Sequence[str] | None = None,
    *,
    duration_col: str = "duration",
    event_col: str = "event",
    weights_col: str | None = None,
    alpha: float = 0.05,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Median survival time per segment with its confidence interval.

    Parameters
    ----------
    table, by, alpha
        As in :func:`km_curves`.
    rows : pandas.DataFrame, optional
        ``table`` already compressed by :func:`segment_rows` (then ``table`` and ``by`` are
        not read): several of these functions on one table compress it once.

    Returns
    -------
    DataFrame
        Columns ``segment``, ``n``, ``events``, ``median``, ``median_lower``, ``median_upper``
        (time units; ``inf`` when the curve never falls to 0.5 within the follow-up).
    """
    medians = []
    rows = _rows_of(table, by, duration_col, event_col, weights_col, rows)
    for name, t, e, w, n, events in _groups(rows):
        kmf = KaplanMeierFitter(alpha=alpha).fit(t, e, weights=w)
        ci = median_survival_times(kmf.confidence_interval_survival_function_)
        medians.append({"segment": name, "n": n, "events": events,
                     "median": float(kmf.median_survival_time_),
                     "median_lower": float(ci.iloc[0, 0]), "median_upper": float(ci.iloc[0, 1])})
    return pd.DataFrame(medians)


def logrank_tests(
    table: pd.DataFrame | None,
    by: str | Sequence[str] | None,
    *,
    duration_col: str = "duration",
    event_col: str = "event",
    weights_col: str | None = None,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Log-rank tests between segments: all segments at once, then every pair.

    Parameters
    ----------
    table, by
        As in :func:`km_curves`.
    rows : pandas.DataFrame, optional
        ``table`` already compressed by :func:`segment_rows` (then ``table`` and ``by`` are
        not read): several of these functions on one table compress it once.

    Returns
    -------
    DataFrame
        Columns ``segment_a``, ``segment_b`` (``"all segments"`` / ``""`` for the overall
        test), ``test_statistic`` (chi-square), ``degrees_of_freedom``, ``p_value``. Pairwise
        p-values are not adjusted for multiplicity.
    """
    rows = _rows_of(table, by, duration_col, event_col, weights_col, rows)
    seg = rows["segment"].to_numpy()
    t, e, w = (rows[c].to_numpy() for c in ("duration", "event", "weight"))
    levels = np.unique(seg)
    overall = multivariate_logrank_test(t, seg, e, weights=w)
    out = [{"segment_a": "all segments", "segment_b": "", "test_statistic": overall.test_statistic,
            "degrees_of_freedom": len(levels) - 1, "p_value": overall.p_value}]
    if len(levels) > 2:
        # lifelines' pairwise_logrank_test passes weights twice (0.30.3): loop over pairs here
        for a, b in combinations(levels, 2):
            ma, mb = seg == a, seg == b
            r = logrank_test(t[ma], t[mb], e[ma], e[mb], weights_A=w[ma], weights_B=w[mb])
            out.append({"segment_a": a, "segment_b": b, "test_statistic": r.test_statistic,
                        "degrees_of_freedom": 1, "p_value": r.p_value})
    elif len(levels) == 2:
        out.append({**out[0], "segment_a": levels[0], "segment_b": levels[1]})
    return pd.DataFrame(out)

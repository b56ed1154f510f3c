"""The value model's holdout: refit on the calibration window (up to one horizon before the
end) and compare its predictions with the purchases that followed.

One :class:`CalibrationWindow` is built per run; each candidate purchase model fitted on it
is scored by :func:`evaluate_candidate` (the automatic choice of ``value_model`` compares
these scores, see :mod:`clvtools.pipeline.value_choice`), and the chosen candidate's tables
become the run's ``holdout_*.csv`` files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..btyd.clv import revenue_by_month
from ..btyd.validation import calibration_vs_holdout_purchases
from ..data.holdout_window import calibration_holdout_revenue
from ..data.rfm import purchases_by_period
from ..data.transactions import TransactionLog
from .timeline import Timeline
from .value_models import rows_of

__all__ = ["CalibrationWindow", "calibration_window", "evaluate_candidate", "holdout_error",
           "by_segment", "segment_table", "auc", "FREQUENCY_BINS"]

#: Calibration frequencies 0 .. FREQUENCY_BINS - 1 are bins of their own; higher ones are
#: pooled into one bin (the holdout error and the chi-square test of the purchase model).
FREQUENCY_BINS = 10


@dataclass
class CalibrationWindow:
    """The customers acquired by the calibration end, their RFM there and their holdout.

    Attributes
    ----------
    cal : pandas.DataFrame
        lifetimes' calibration/holdout layout, indexed by ``customer_id``.
    rfm : pandas.DataFrame
        The same customers' ``frequency``, ``recency``, ``T`` (, ``monetary_value``) at the
        calibration end, time units.
    actual_revenue : numpy.ndarray, shape (n,)
        Revenue of each customer in the holdout, currency (purchases when the log has no
        amounts).
    segments : pandas.DataFrame or None
        The customers' categorical attributes (one column each), or None.
    """

    cal: pd.DataFrame
    rfm: pd.DataFrame
    actual_revenue: np.ndarray
    segments: pd.DataFrame | None

    @property
    def actual_purchases(self) -> np.ndarray:
        return self.cal["frequency_holdout"].to_numpy(float)

    def subset(self, index: pd.Index) -> CalibrationWindow:
        """The window restricted to the customers ``index`` (a sample)."""
        return self.take(self.cal.index.get_indexer(index))

    def take(self, rows: np.ndarray) -> CalibrationWindow:
        """The window restricted to the customers at positions ``rows`` (a sample)."""
        return CalibrationWindow(
            self.cal.iloc[rows], self.rfm.iloc[rows], self.actual_revenue[rows],
            None if self.segments is None else self.segments.iloc[rows])


def calibration_window(log: TransactionLog, timeline: Timeline,
                       segments: pd.DataFrame | None = None) -> CalibrationWindow:
    """RFM at the holdout start (``timeline.holdout_start``) and purchases after it.

    ``segments``: categorical attributes indexed by ``customer_id`` (any superset of the
    window's customers), or None.
    """
    cal, revenue = calibration_holdout_revenue(log, timeline.holdout_start,
                                               time_unit=timeline.time_unit)
    # the calibration columns under the RFM summary's names, sharing cal's arrays (neither
    # is written into): rename, then a selection, copied them twice (0.3 s at 1M)
    names = {"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T",
             "monetary_value_cal": "monetary_value"}
    rfm = pd.DataFrame({new: cal[old].to_numpy() for old, new in names.items() if old in cal},
                       index=cal.index, copy=False)
    if segments is not None:
        # as categories: each candidate's holdout error and the segment table group by them,
        # and grouping codes beats hashing a million strings again each time
        segments = (rows_of(segments, cal.index).astype("category") if segments.shape[1]
                    else None)
    return CalibrationWindow(cal, rfm, revenue, segments)


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (ties count half);
    NaN when either class is empty."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = pd.Series(np.asarray(score, float)).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _cell_error(expected: np.ndarray, actual: np.ndarray, cells: np.ndarray) -> float:
    """Sum over cells of |expected - actual| totals, per customer (customers weight cells)."""
    codes, uniques = pd.factorize(cells, use_na_sentinel=False)  # a missing value: a cell
    e = np.bincount(codes, expected, minlength=len(uniques))
    a = np.bincount(codes, actual, minlength=len(uniques))
    return float(np.abs(e - a).sum() / len(expected))


def holdout_error(expected: np.ndarray, window: CalibrationWindow) -> dict[str, float]:
    """The criterion of the automatic value model choice.

    For each grouping of the customers (calibration frequency 0, 1, ..., 9, 10+; and each
    categorical attribute's segments), the absolute gaps between expected and actual holdout
    purchases of each group, summed and divided by the customers (so a group counts by its
    customers); ``holdout_error`` is the mean of the frequency grouping's figure and the
    segments' (the mean over the attributes), or the frequency figure alone without
    attributes. Purchases per customer over the holdout.
    """
    frequency = np.minimum(window.cal["frequency_cal"].to_numpy(), FREQUENCY_BINS)
    actual = window.actual_purchases
    by_frequency = _cell_error(expected, actual, frequency)
    out = {"error_by_frequency": by_frequency}
    if window.segments is not None:
        by_segment = float(np.mean([_cell_error(expected, actual, window.segments[c].to_numpy())
                                    for c in window.segments.columns]))
        out["error_by_segment"] = by_segment
        out["holdout_error"] = (by_frequency + by_segment) / 2
    else:
        out["holdout_error"] = by_frequency
    return out


def by_segment(window: CalibrationWindow, expected_purchases: np.ndarray,
               expected_revenue: np.ndarray) -> pd.DataFrame | None:
    """``holdout_by_segment``: per categorical attribute segment (and ``all``), customers,
    actual versus expected holdout purchases and revenue (undiscounted) and their relative
    errors, (expected - actual) / actual. None without attributes."""
    if window.segments is None:
        return None
    frame = pd.DataFrame({"actual_purchases": window.actual_purchases,
                          "expected_purchases": expected_purchases,
                          "actual_revenue": window.actual_revenue,
                          "expected_revenue": expected_revenue})
    groups = {}
    for column in window.segments.columns:
        grouped = frame.groupby(window.segments[column].astype(str).to_numpy(), sort=True)
        groups[column] = grouped.sum().assign(customers=grouped.size())
    return segment_table(frame.sum(), len(frame), groups)


def segment_table(total: pd.Series, customers: int, groups: dict[str, pd.DataFrame]
                  ) -> pd.DataFrame:
    """``holdout_by_segment`` from its sums: ``total`` (the four sums of every customer of
    the window), ``customers`` and per attribute its segments' sums and ``customers`` (rows
    by segment label, sorted): the finish of :func:`by_segment`, which a chunked run feeds
    with sums added over its chunks."""
    parts = [total.to_frame().T.assign(attribute="all", segment="all", customers=customers)]
    for column, part in groups.items():
        parts.append(part.rename_axis("segment").reset_index().assign(attribute=column))
    out = pd.concat(parts, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        for what in ("purchases", "revenue"):
            out[f"{what}_relative_error"] = (out[f"expected_{what}"] / out[f"actual_{what}"]
                                             - 1.0)
    return out[["attribute", "segment", "customers", "actual_purchases", "expected_purchases",
                "purchases_relative_error", "actual_revenue", "expected_revenue",
                "revenue_relative_error"]]


def evaluate_candidate(models, window: CalibrationWindow, *, horizon: float,
                       unit_days: float, expected_spend: np.ndarray,
                       log: TransactionLog | None = None,
                       timeline: Timeline | None = None) -> tuple[dict, dict]:
    """A fitted candidate's holdout figures.

    Parameters
    ----------
    models : ValueModels
        Fitted on ``window.rfm``.
    expected_spend : numpy.ndarray, shape (n,)
        Expected spend per purchase of each customer of the window, currency.
    log, timeline : optional
        Given, the tables of the run's holdout files are built too (``holdout_by_month``
        needs the log).

    Returns
    -------
    (dict, dict of pandas.DataFrame)
        The summary row (customers, actual and expected purchases and revenue over the
        holdout, ``purchases_mae_per_customer``, the criterion's figures, ``p_alive_auc``:
        P(alive) at the calibration end against a purchase in the holdout), and the tables
        ``holdout_by_frequency``, ``holdout_by_month``, ``holdout_by_segment`` and
        ``holdout_customers`` (per customer: P(alive), revenue if retained, expected and
        realised revenue, undiscounted; not a file), empty unless ``log`` is given.
    """
    purchases = models.purchases
    rfm, cal = window.rfm, window.cal
    x, tx, age = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    # undiscounted, and only the totals of the revenue per month are read: not kept
    months = revenue_by_month(purchases, x, tx, age, expected_spend, horizon, unit_days, 0.0,
                              per_month_revenue=False)
    duration = cal["duration_holdout"].iloc[0]
    if months.period_end[-1] == duration:
        # the months end at the holdout's end (a horizon in weeks or days): their sum is the
        # expectation over the holdout, to rounding, without a second pass of the model's
        # quadrature over every customer (about 2 s of CPU on a million with attributes)
        expected_purchases = months.expected_purchases.sum(axis=1)
    else:
        expected_purchases = np.asarray(
            purchases.conditional_expected_number_of_purchases_up_to_time(duration, x, tx, age),
            float)
    expected_revenue = months.expected_revenue_total
    actual = window.actual_purchases
    p_alive = months.alive(purchases, x, tx, age)
    row = {
        "customers": len(cal),
        "actual_purchases": float(actual.sum()),
        "expected_purchases": float(expected_purchases.sum()),
        "actual_revenue": float(window.actual_revenue.sum()),
        "expected_revenue": float(expected_revenue.sum()),
        "purchases_mae_per_customer": float(np.mean(np.abs(expected_purchases - actual))),
        **holdout_error(expected_purchases, window),
        "p_alive_auc": auc(p_alive, actual > 0),
    }
    tables: dict[str, pd.DataFrame] = {}
    if log is None or timeline is None:
        return row, tables
    tables["holdout_by_frequency"] = calibration_vs_holdout_purchases(
        purchases, cal, n=FREQUENCY_BINS, predictions=expected_purchases).reset_index()
    starts, ends = (list(d) for d in zip(*timeline.holdout_months, strict=True))
    by_period = purchases_by_period(log, starts, ends, customers_acquired_by=timeline.holdout_start)
    tables["holdout_by_month"] = pd.DataFrame({
        "month": np.arange(1, len(ends) + 1),
        "start": starts,
        "end": ends,
        "actual_purchases": by_period["purchases"].to_numpy(float),
        "expected_purchases": months.expected_purchases.sum(axis=0),
        "actual_revenue": by_period["revenue"].to_numpy(float),
        # undiscounted: each customer's purchases x spend, summed over the customers without
        # the (n, M) product (einsum: the product's column sums, in their order; not BLAS)
        "expected_revenue": np.einsum("i,ij->j", np.broadcast_to(
            np.asarray(expected_spend, float), (len(x),)), months.expected_purchases),
    })
    segments = by_segment(window, expected_purchases, expected_revenue)
    if segments is not None:
        tables["holdout_by_segment"] = segments
    # per customer, for the targeting evaluation (clvtools.pipeline.evaluation), not a file:
    # the value at the holdout start, undiscounted like the revenue that followed
    tables["holdout_customers"] = pd.DataFrame({
        "p_alive": p_alive, "revenue_if_retained": months.revenue_if_retained_total,
        "expected_revenue": expected_revenue, "realised_revenue": window.actual_revenue,
    }, index=rfm.index)
    return row, tables

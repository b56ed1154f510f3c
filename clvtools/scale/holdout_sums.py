"""The value model's holdout checks from sums over chunks of customers (a chunked run's
chunks, a Spark run's partitions): each chunk of the calibration window's customers is
scored by the pipeline's own functions (:func:`~clvtools.btyd.clv.revenue_by_month`, the
model's conditional expectations, :func:`~clvtools.pipeline.value_models.expected_spend`)
and only sums are kept, per calibration frequency, per month of the holdout and per
attribute segment; :func:`holdout_files` finishes them into the standard engine's
``holdout_*`` tables (:func:`~clvtools.pipeline.holdout.evaluate_candidate`'s, for the model
used; the holdout's segment table by :func:`~clvtools.pipeline.holdout.segment_table`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..btyd.clv import revenue_by_month
from ..pipeline.holdout import FREQUENCY_BINS, segment_table
from ..pipeline.value_choice import ValueChoice, holdout_tables
from ..pipeline.value_models import expected_spend

__all__ = ["HoldoutSums", "auc_from_counts", "holdout_files", "NO_HOLDOUT", "HOLDOUT_FILES"]

#: The holdout's files, named as its tables.
HOLDOUT_FILES = ("holdout_summary.csv", "holdout_by_frequency.csv", "holdout_by_month.csv",
                 "holdout_by_segment.csv")

#: The note of a run whose history leaves no room for a holdout (the standard's words).
NO_HOLDOUT = ("No holdout validation: the history before the holdout window is shorter than "
              "half the horizon.")
_SUMS = ("actual_purchases", "expected_purchases", "actual_revenue", "expected_revenue")


@dataclass
class HoldoutSums:
    """What the holdout's tables need, added over chunks of the window's customers."""

    customers: int = 0
    totals: np.ndarray = field(default_factory=lambda: np.zeros(4))   # as _SUMS
    absolute_error: float = 0.0
    bins: np.ndarray = field(default_factory=lambda: np.zeros((2, FREQUENCY_BINS + 1)))
    by_frequency: pd.DataFrame | None = None
    months: np.ndarray | None = None        # (2, M): expected purchases, revenue
    segments: dict = field(default_factory=dict)

    def merge(self, other: HoldoutSums) -> HoldoutSums:
        """Add ``other``'s sums to these (another chunk's or partition's)."""
        self.customers += other.customers
        self.totals = self.totals + other.totals
        self.absolute_error += other.absolute_error
        self.bins = self.bins + other.bins
        self.by_frequency = _added(self.by_frequency, other.by_frequency)
        self.months = (other.months if self.months is None else self.months
                       if other.months is None else self.months + other.months)
        for name, frame in other.segments.items():
            self.segments[name] = _added(self.segments.get(name), frame)
        return self

    def add_chunk(self, models, rows: pd.DataFrame, labels: pd.DataFrame | None, *,
                  horizon: float, unit_days: float, duration: float) -> dict:
        """Add one chunk's sums (as :func:`~clvtools.pipeline.holdout.evaluate_candidate`
        sums every customer).

        Parameters
        ----------
        models : ValueModels
            Fitted on the calibration window, bound to the chunk's customers.
        rows : pandas.DataFrame
            The chunk's ``frequency``, ``recency``, ``T`` (, ``monetary_value``) at the
            calibration end, ``frequency_holdout`` and ``revenue_holdout``.
        labels : pandas.DataFrame or None
            The chunk's categorical attributes, rows as ``rows``.
        horizon, duration : float
            The horizon and the holdout's length, time units.
        unit_days : float

        Returns
        -------
        dict
            ``p_alive`` and ``bought`` (a purchase in the holdout) of the chunk's customers,
            arrays of shape (n,), for the AUC (:func:`auc_from_counts`).
        """
        purchases = models.purchases
        x, tx, age = (rows[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        months = revenue_by_month(purchases, x, tx, age, expected_spend(models, rows),
                                  horizon, unit_days, 0.0)
        predicted = np.asarray(purchases.conditional_expected_number_of_purchases_up_to_time(
            duration, x, tx, age), float)
        # as the standard: the months' sum where they end at the holdout's end
        expected = (months.expected_purchases.sum(axis=1) if months.period_end[-1] == duration
                    else predicted)
        revenue = months.expected_revenue.sum(axis=1)
        actual = rows["frequency_holdout"].to_numpy(float)
        realised = rows["revenue_holdout"].to_numpy(float)
        self.customers += len(rows)
        self.totals = self.totals + [actual.sum(), expected.sum(), realised.sum(), revenue.sum()]
        self.absolute_error += float(np.abs(expected - actual).sum())
        cells = np.minimum(x, FREQUENCY_BINS).astype(np.intp)
        for i, values in enumerate((expected, actual)):
            self.bins[i] += np.bincount(cells, values, minlength=FREQUENCY_BINS + 1)
        self.by_frequency = _added(self.by_frequency, pd.DataFrame(
            {"frequency_holdout": actual, "model_predictions": predicted, "n_customers": 1}
        ).groupby(x).sum())
        chunk_months = np.vstack([months.expected_purchases.sum(axis=0),
                                  months.expected_revenue.sum(axis=0)])
        self.months = chunk_months if self.months is None else self.months + chunk_months
        if labels is not None:
            frame = pd.DataFrame(dict(zip(_SUMS, (actual, expected, realised, revenue),
                                          strict=True)))
            frame["customers"] = 1
            for column in labels.columns:
                self.segments[column] = _added(self.segments.get(column), frame.groupby(
                    labels[column].astype(str).to_numpy()).sum())
        p_alive = months.p_alive if months.p_alive is not None else np.asarray(
            purchases.conditional_probability_alive(x, tx, age), float)
        return {"p_alive": np.asarray(p_alive, float), "bought": actual > 0}


def _added(have: pd.DataFrame | None, more: pd.DataFrame | None) -> pd.DataFrame | None:
    if have is None or more is None:
        return more if have is None else have
    return have.add(more, fill_value=0)


def auc_from_counts(value: np.ndarray, n: np.ndarray, positive: np.ndarray) -> float:
    """The AUC of a score for a positive outcome, ties counting half
    (:func:`~clvtools.pipeline.holdout.auc`), from the customers ``n`` and the positive
    ones ``positive`` at each distinct score ``value`` (sorted ascending)."""
    n, positive = np.asarray(n, float), np.asarray(positive, float)
    n_pos, n_neg = positive.sum(), (n - positive).sum()
    if not n_pos or not n_neg:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(n)[:-1]])
    ranks = positive * (below + (n + 1) / 2)       # each tie group's average rank
    return float((ranks.sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def holdout_files(sums: HoldoutSums, area: float, by_period: pd.DataFrame, *, timeline,
                  observation_end, value_model: str, models) -> dict:
    """The ``holdout_*`` tables from the sums (the standard's finish).

    Parameters
    ----------
    sums : HoldoutSums
        Over every customer of the window.
    area : float
        P(alive)'s AUC (:func:`auc_from_counts`).
    by_period : pandas.DataFrame
        ``purchases`` and ``revenue`` of the window's customers in each month of the
        holdout (:func:`~clvtools.data.rfm.purchases_by_period`'s).
    timeline : Timeline
    observation_end : datetime.date
    value_model : str
        The purchase model used.
    models : ValueModels
        Fitted on the window.

    Returns
    -------
    dict of pandas.DataFrame
        ``holdout_summary`` (one row: the model used), ``holdout_by_frequency``,
        ``holdout_by_month`` and, with segments, ``holdout_by_segment``.
    """
    n = sums.customers
    actual, expected, realised, revenue = sums.totals
    by_frequency_error = float(np.abs(sums.bins[0] - sums.bins[1]).sum() / n)
    row = {"customers": n, "actual_purchases": float(actual),
           "expected_purchases": float(expected), "actual_revenue": float(realised),
           "expected_revenue": float(revenue),
           "purchases_mae_per_customer": sums.absolute_error / n,
           "error_by_frequency": by_frequency_error}
    if sums.segments:
        errors = [float(np.abs(g["expected_purchases"] - g["actual_purchases"]).sum() / n)
                  for g in sums.segments.values()]
        row["error_by_segment"] = float(np.mean(errors))
        row["holdout_error"] = (by_frequency_error + row["error_by_segment"]) / 2
    else:
        row["holdout_error"] = by_frequency_error
    row["p_alive_auc"] = area
    grouped = sums.by_frequency.sort_index()
    count = grouped["n_customers"].astype(np.int64)
    frequency = pd.DataFrame({
        "frequency_holdout": grouped["frequency_holdout"] / count,
        "model_predictions": grouped["model_predictions"] / count,
        "n_customers": count}).rename_axis("frequency_cal")
    frequency["difference"] = frequency["model_predictions"] - frequency["frequency_holdout"]
    starts, ends = (list(d) for d in zip(*timeline.holdout_months, strict=True))
    tables = {
        "holdout_by_frequency": frequency.iloc[:FREQUENCY_BINS].reset_index(),
        "holdout_by_month": pd.DataFrame({
            "month": np.arange(1, len(ends) + 1), "start": starts, "end": ends,
            "actual_purchases": by_period["purchases"].to_numpy(float),
            "expected_purchases": sums.months[0],
            "actual_revenue": by_period["revenue"].to_numpy(float),
            "expected_revenue": sums.months[1]}),
    }
    if sums.segments:
        groups = {c: g.sort_index().astype({"customers": np.int64})
                  for c, g in sums.segments.items()}
        tables["holdout_by_segment"] = segment_table(pd.Series(sums.totals, index=list(_SUMS)),
                                                     n, groups)
    summary = pd.DataFrame([{"calibration_end": timeline.holdout_start,
                             "observation_end": observation_end, "model": value_model,
                             "basis": "all customers", **row}])
    _, out = holdout_tables(ValueChoice(value_model, value_model, "setting"),
                            {value_model: (models, tables)}, summary)
    return out

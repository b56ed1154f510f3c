"""Holdout validation of a BTYD model, as DataFrames (models never plot; the report does).

* :func:`calibration_vs_holdout_purchases`: mean actual versus model-expected holdout purchases
  by calibration frequency (the data of lifetimes'
  ``plot_calibration_purchases_vs_holdout_purchases``).
* :func:`tracking_purchases`: expected versus actual repeat purchases per period of the whole
  base, cumulative and incremental (the data of lifetimes' ``plot_cumulative_transactions``
  and ``plot_incremental_transactions``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices
from .utils import expected_cumulative_transactions

__all__ = ["calibration_vs_holdout_purchases", "tracking_purchases"]

_KINDS = ("frequency_cal", "recency_cal", "T_cal", "time_since_last_purchase")


def calibration_vs_holdout_purchases(model, calibration_holdout_matrix, kind="frequency_cal",
                                     n=7, predictions=None):
    """Mean actual and expected holdout purchases, grouped by a calibration-period figure.

    Parameters
    ----------
    model : fitted frequency/recency/T fitter
    calibration_holdout_matrix : pandas.DataFrame
        lifetimes' ``calibration_and_holdout_data`` layout: ``frequency_cal``, ``recency_cal``,
        ``T_cal``, ``frequency_holdout``, ``duration_holdout`` (the same for every row).
    kind : {"frequency_cal", "recency_cal", "T_cal", "time_since_last_purchase"}
        The grouping column.
    n : int, default 7
        Keep the first ``n`` groups, as lifetimes' plot does.
    predictions : array_like, shape (n_rows,), optional
        Each row's expected holdout purchases, when the caller has them already (the
        model's ``conditional_expected_number_of_purchases_up_to_time`` at
        ``duration_holdout``, or the same to rounding); the model is then not asked.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``kind``; columns ``frequency_holdout`` (actual mean), ``model_predictions``
        (expected mean), ``n_customers`` and ``difference`` (expected - actual).
    """
    if kind not in _KINDS:
        raise ClvInputError(f"The 'kind' parameter must be {format_choices(list(_KINDS))}. "
                            f"Got {kind!r} instead.")
    needed = ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"]
    missing = [c for c in needed if c not in calibration_holdout_matrix.columns]
    if missing:
        raise ClvInputError(f"The calibration/holdout table lacks the column(s) {missing}.",
                            advice="build it with clvtools.data (lifetimes' column names).")
    table = calibration_holdout_matrix
    if predictions is None:
        duration = float(table["duration_holdout"].iloc[0])
        predictions = model.conditional_expected_number_of_purchases_up_to_time(
            duration, table["frequency_cal"], table["recency_cal"], table["T_cal"])
    # the grouping column and the two means only (not a copy of the whole table)
    summary = pd.DataFrame({
        kind: (table["T_cal"] - table["recency_cal"] if kind == "time_since_last_purchase"
               else table[kind]),
        "frequency_holdout": table["frequency_holdout"],
        "model_predictions": np.asarray(predictions, dtype=float).reshape(-1),
    })
    grouped = summary.groupby(kind)
    out = grouped[["frequency_holdout", "model_predictions"]].mean()
    out["n_customers"] = grouped.size()
    out["difference"] = out["model_predictions"] - out["frequency_holdout"]
    return out.iloc[:n]


def tracking_purchases(model, transactions, datetime_col, customer_id_col, t,
                       datetime_format=None, freq="D", freq_multiplier=1, set_index_date=False):
    """Expected versus actual repeat purchases of the whole base, per step and cumulated.

    Parameters are those of :func:`clvtools.btyd.utils.expected_cumulative_transactions`
    (lifetimes' semantics and alignment).

    Returns
    -------
    pandas.DataFrame
        Columns ``actual_cumulative``, ``expected_cumulative``, ``actual_incremental``,
        ``expected_incremental`` (purchases per step), one row per step of
        ``freq_multiplier`` periods.
    """
    cum = expected_cumulative_transactions(
        model, transactions, datetime_col, customer_id_col, t, datetime_format=datetime_format,
        freq=freq, freq_multiplier=freq_multiplier, set_index_date=set_index_date)
    out = pd.DataFrame(index=cum.index)
    out["actual_cumulative"] = cum["actual"].astype(float)
    out["expected_cumulative"] = cum["predicted"].astype(float)
    out["actual_incremental"] = np.diff(cum["actual"].to_numpy(dtype=float), prepend=0.0)
    out["expected_incremental"] = np.diff(cum["predicted"].to_numpy(dtype=float), prepend=0.0)
    return out

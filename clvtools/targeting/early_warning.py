"""Early warning: the live customers whose churn probability rose most since an earlier date.

Frames in, frames out: two churn probabilities per customer (the same fitted model scored at
the observation end and one period earlier, through the log as it stood then), the value at
stake, and the drivers that moved the risk (changes of the model's terms, as text).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["early_warning_list"]


def early_warning_list(now: pd.Series, before: pd.Series, value: pd.Series,
                       drivers: pd.DataFrame | None = None, *,
                       min_rise: float = 0.0) -> tuple[pd.DataFrame, dict]:
    """The customers whose churn probability rose, largest rise first.

    Parameters
    ----------
    now : pandas.Series
        Churn probability at the observation end, indexed by customer id; NaN for the
        customers already declared churned (never on the list).
    before : pandas.Series
        Churn probability one period earlier, same meaning; customers absent or NaN had none
        then (acquired since, or declared churned then and back since).
    value : pandas.Series
        Value at stake (currency), indexed like ``now``.
    drivers : pandas.DataFrame, optional
        Text columns (``driver_1``, ``driver_2``, ...) saying what moved each customer's risk,
        indexed by customer id.
    min_rise : float
        Only rises above this (probability points, in [0, 1)) are listed.

    Returns
    -------
    (pandas.DataFrame, dict)
        ``customer_id``, ``early_warning_rank`` (1 = largest rise), ``churn_probability``,
        ``churn_probability_before``, ``rise``, ``value_at_stake``, then the driver columns;
        and counts: ``live`` (customers with a probability now), ``scored_before``,
        ``not_scored_before`` and ``listed``.
    """
    before = before.reindex(now.index)
    live = now.notna().to_numpy()
    both = live & before.notna().to_numpy()
    rise = (now - before).to_numpy(dtype=float)
    listed = both & (rise > min_rise)
    ids = now.index[listed]
    order = np.argsort(-rise[listed], kind="stable")
    out = pd.DataFrame({
        "customer_id": ids.to_numpy()[order],
        "early_warning_rank": np.arange(1, len(order) + 1),
        "churn_probability": now.to_numpy(dtype=float)[listed][order],
        "churn_probability_before": before.to_numpy(dtype=float)[listed][order],
        "rise": rise[listed][order],
        "value_at_stake": value.reindex(now.index).to_numpy(dtype=float)[listed][order],
    })
    if drivers is not None:
        for column in drivers.columns:
            out[column] = drivers[column].reindex(ids).fillna("").to_numpy()[order]
    counts = {"live": int(live.sum()), "scored_before": int(both.sum()),
              "not_scored_before": int((live & ~both).sum()), "listed": int(listed.sum())}
    return out, counts

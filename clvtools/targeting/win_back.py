"""The win-back list: customers already declared churned, ranked by what a reactivation offer
is worth.

The net benefit is the allocation's own (:func:`~clvtools.targeting.allocation.action_economics`:
for a declared-churned customer only reactivation counts, saved revenue = w x lapsed revenue,
and a conditional incentive is paid with probability w), read from the plan's
``net_benefit_push`` and ``net_benefit_pull`` columns: one formula, not a second one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NO_VALUE", "win_back_list"]

#: Lapsed revenue (currency) under which the value model gives a customer no value: lapsed so
#: long that nothing is expected back; left off the list and counted.
NO_VALUE = 0.005


def win_back_list(customers: pd.DataFrame, *, extra_columns=()) -> tuple[pd.DataFrame, int]:
    """The declared-churned customers ranked by the net benefit of their best reactivation offer.

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k), or dict of str to array
        The plan's customers (a mapping of columns serves: no frame is built):
        ``customer_id``, ``churn_probability`` (NaN for the declared churned),
        ``lapsed_revenue``, ``net_benefit_push``, ``net_benefit_pull``, ``action`` and
        ``last_purchase``, plus ``extra_columns``.
    extra_columns : sequence of str
        Columns carried to the list after the fixed ones (lifetime spend, purchases,
        attributes).

    Returns
    -------
    (pandas.DataFrame, int)
        The list, best first: ``customer_id``, ``win_back_rank`` (1 = best), ``best_offer``
        (``push`` or ``pull``: the larger net benefit), ``net_benefit`` (of that offer,
        currency, may be negative: the list ranks every churned customer with value, the plan
        decides whom to contact), ``net_benefit_push``, ``net_benefit_pull``,
        ``lapsed_revenue``, ``action`` (in the plan), ``last_purchase``, then
        ``extra_columns``; and the number of declared-churned customers left off because the
        value model gives them no value (lapsed revenue under :data:`NO_VALUE`).
    """
    def column(name: str) -> np.ndarray:
        values = customers[name]
        return values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)

    # positions, not filtered frames: only the listed rows of each column are copied
    churned = np.flatnonzero(np.isnan(column("churn_probability").astype(float)))
    valued = column("lapsed_revenue").astype(float)[churned] >= NO_VALUE
    left_off = int((~valued).sum())
    rows = churned[valued]
    push = column("net_benefit_push").astype(float)[rows]
    pull = column("net_benefit_pull").astype(float)[rows]
    # two str objects shared by the rows (a str array in a frame becomes one object per row)
    best = np.array(["pull", "push"], dtype=object)[(push > pull).astype(np.intp)]
    benefit = np.maximum(push, pull)
    # best first; ties by the customers' order, so the list is reproducible
    order = np.argsort(-benefit, kind="stable")
    listed = rows[order]
    out = pd.DataFrame({
        "customer_id": column("customer_id")[listed],
        "win_back_rank": np.arange(1, len(order) + 1),
        "best_offer": best[order],
        "net_benefit": benefit[order],
        "net_benefit_push": push[order],
        "net_benefit_pull": pull[order],
        "lapsed_revenue": column("lapsed_revenue").astype(float)[listed],
        "action": column("action")[listed],
        "last_purchase": column("last_purchase")[listed],
    })
    for name in extra_columns:
        out[name] = column(name)[listed]
    return out, left_off

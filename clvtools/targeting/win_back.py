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
    customers : pandas.DataFrame, shape (n, k)
        The plan's customers: ``customer_id``, ``churn_probability`` (NaN for the declared
        churned), ``lapsed_revenue``, ``net_benefit_push``, ``net_benefit_pull``, ``action``
        and ``last_purchase``, plus ``extra_columns``.
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
    churned = customers[customers["churn_probability"].isna()]
    valued = churned["lapsed_revenue"].to_numpy(dtype=float) >= NO_VALUE
    left_off = int((~valued).sum())
    rows = churned[valued]
    push = rows["net_benefit_push"].to_numpy(dtype=float)
    pull = rows["net_benefit_pull"].to_numpy(dtype=float)
    # two str objects shared by the rows (a str array in a frame becomes one object per row)
    best = np.array(["pull", "push"], dtype=object)[(push > pull).astype(np.intp)]
    benefit = np.maximum(push, pull)
    # best first; ties by the customers' order, so the list is reproducible
    order = np.argsort(-benefit, kind="stable")
    out = pd.DataFrame({
        "customer_id": rows["customer_id"].to_numpy()[order],
        "win_back_rank": np.arange(1, len(order) + 1),
        "best_offer": best[order],
        "net_benefit": benefit[order],
        "net_benefit_push": push[order],
        "net_benefit_pull": pull[order],
        "lapsed_revenue": rows["lapsed_revenue"].to_numpy(dtype=float)[order],
        "action": rows["action"].to_numpy()[order],
        "last_purchase": rows["last_purchase"].to_numpy()[order],
    })
    for column in extra_columns:
        out[column] = rows[column].to_numpy()[order]
    return out, left_off

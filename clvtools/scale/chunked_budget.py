"""The chunked run's allocation under ``push_budget`` or ``total_budget``: the standard
engine's knapsacks (:func:`clvtools.targeting.knapsack.knapsack_01`,
:func:`~clvtools.targeting.knapsack.multiple_choice_knapsack`) on the few numbers per
candidate they read, fetched from the decided parts in customer order.

The knapsacks see exactly the standard engine's arrays (the candidates in customer order,
so that their stable sorts break ties the same way): exact by MILP up to
:data:`~clvtools.targeting.knapsack.EXACT_MAX_CUSTOMERS` candidates, the greedy LP relaxation
beyond, whose order of best value per unit of cost is a sort and a running sum of the cost.
What goes back to DuckDB is each chosen customer's position and choice (9 bytes), from which
:func:`clvtools.data.chunked_plan.store_plan` builds the plan.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ..targeting.knapsack import knapsack_01, multiple_choice_knapsack

__all__ = ["budget_choices", "CHOICES_TABLE"]

#: The registered table of the knapsack's choices (``pos``, ``choice``).
CHOICES_TABLE = "_chunked_budget_choices"


def budget_choices(con: duckdb.DuckDBPyConnection, decided: str, *,
                   push_budget: float | None, total_budget: float | None
                   ) -> tuple[pd.DataFrame, dict]:
    """The knapsack's choices under the budget, and the allocation's summary fields.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    decided : str
        SQL of the decided parts (:func:`~clvtools.pipeline.scoring.decide_chunk`'s columns).
    push_budget, total_budget : float or None
        Exactly one given.

    Returns
    -------
    (pandas.DataFrame, dict)
        ``pos`` (the customer's position in id order) and ``choice`` (2 push, 1 pull) of
        the customers the knapsack chose (for :func:`~clvtools.data.chunked_plan.
        store_plan`, with ``pull_rest`` under a push budget only); and ``constraint``,
        ``limit``, ``solver``, ``bound`` and ``gap``, as the standard engine's plan summary
        gives them.
    """
    numbered = (f"(SELECT row_number() OVER (ORDER BY customer_id) - 1 AS pos, * "
                f"FROM {decided})")

    def open_value(action: str) -> str:
        return (f"CASE WHEN {action}_open THEN net_benefit_{action} "
                f"ELSE '-inf'::DOUBLE END")

    if total_budget is not None:
        rows = con.execute(
            f"SELECT pos, {open_value('pull')} AS v_pull, {open_value('push')} AS v_push, "
            f"cost_pull, cost_push FROM {numbered} WHERE pull_open OR push_open "
            "ORDER BY pos").df()
        res = multiple_choice_knapsack(rows[["v_pull", "v_push"]].to_numpy(float),
                                       rows[["cost_pull", "cost_push"]].to_numpy(float),
                                       total_budget)
        picked = res.choice > 0
        choices = pd.DataFrame({"pos": rows["pos"].to_numpy(np.int64)[picked],
                                "choice": res.choice[picked].astype(np.int8)})
        fields = {"constraint": "total_budget", "limit": total_budget, "solver": res.solver,
                  "bound": float(res.bound), "gap": float(res.gap)}
        return choices, fields
    rows = con.execute(f"SELECT pos, push_gain, cost_push FROM {numbered} "
                       "WHERE push_gain > 0 ORDER BY pos").df()
    res = knapsack_01(rows["push_gain"].to_numpy(float), rows["cost_push"].to_numpy(float),
                      push_budget)
    # the best alternative to push of every customer (pull where it pays), as the bound adds
    alternative = con.execute(f"SELECT coalesce(sum(CASE WHEN pull_open THEN "
                              f"net_benefit_pull ELSE 0.0 END), 0.0) FROM {decided}"
                              ).fetchall()[0][0]
    chosen = rows["pos"].to_numpy(np.int64)[res.chosen]
    choices = pd.DataFrame({"pos": chosen, "choice": np.full(len(chosen), 2, dtype=np.int8)})
    return choices, {"constraint": "push_budget", "limit": push_budget, "solver": res.solver,
                     "bound": float(alternative) + float(res.bound), "gap": float(res.gap)}

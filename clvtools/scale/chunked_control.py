"""The chunked run's control group: the standard engine's draw
(:func:`clvtools.targeting.control.assign_control`) over the plan kept in DuckDB.

The draw depends only on each chosen customer's stratum (action, cell) and on their order
in the plan (by customer id), so the chunked run fetches just that, a few bytes per chosen
customer (the action and cell as small integer codes, the plan row, the churn probability
for the power table), draws with the same function and seed, and writes the control
customers back into the plan table: ``group`` (``treatment``, ``control``, or ``""`` without
action) and the priority ranks renumbered over the treatment, the contact list, as
:func:`clvtools.pipeline.targets` does in pandas.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ..data.engine import quote_ident
from ..targeting.allocation import Action
from ..targeting.control import CONTROL, assign_control, power_table

__all__ = ["draw_control_group"]


def draw_control_group(con: duckdb.DuckDBPyConnection, plan: str, decided: str, *,
                       share: float, seed: int, push: Action, pull: Action) -> pd.DataFrame:
    """Draw the control group into the plan table ``plan`` and return the power table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    plan : str
        The plan table (:func:`clvtools.data.chunked_plan.store_plan`): replaced by the same
        rows with ``group`` and the priority ranks of the treatment only.
    decided : str
        SQL of the decided parts (``customer_id``, ``cell``, ``churn_probability``).
    share : float
        ``control_share``, in [0, 1).
    seed : int
    push, pull : Action
        Their reactivation rates (the power table's base for the declared churned).

    Returns
    -------
    pandas.DataFrame
        :func:`~clvtools.targeting.control.power_table`'s rows (control_power.csv).
    """
    actions = ["pull", "push"]
    cells = [r[0] for r in con.execute(f"SELECT DISTINCT cell FROM {decided} ORDER BY 1")
             .fetchall()]
    # codes, not text: a few bytes per chosen customer rather than two new Python strings
    # (the labels below are references to one string per action and cell)
    chosen = con.execute(
        f"SELECT p.rowid AS row, list_position($actions, p.action)::TINYINT - 1 AS action, "
        f"list_position($cells, d.cell)::SMALLINT - 1 AS cell, d.churn_probability "
        f"FROM {quote_ident(plan)} AS p JOIN {decided} AS d ON p.customer_id = d.customer_id "
        f"WHERE p.action <> 'none' ORDER BY p.customer_id",
        {"actions": actions, "cells": cells}).df()
    strata = pd.DataFrame({
        "action": np.asarray(actions, dtype=object)[chosen["action"].to_numpy()],
        "cell": np.asarray(cells, dtype=object)[chosen["cell"].to_numpy()],
        "churn_probability": chosen["churn_probability"].to_numpy(dtype=float)})
    # the standard draw over the chosen customers in plan order: the customers without
    # action form no stratum, so leaving them out changes no draw
    group = assign_control(strata, share, seed)
    strata["reactivation"] = np.where(strata["action"] == "push", push.reactivation,
                                      pull.reactivation)
    power = power_table(strata, group)
    control = pd.DataFrame({"row": chosen["row"].to_numpy()[group == CONTROL]})
    con.register("_chunked_control_rows", control)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {quote_ident(plan)} AS
            WITH grouped AS (
                SELECT p.* EXCLUDE (priority_rank), p.priority_rank AS planned_rank,
                       CASE WHEN p.action = 'none' THEN ''
                            WHEN c.row IS NOT NULL THEN 'control'
                            ELSE 'treatment' END AS "group"
                FROM {quote_ident(plan)} AS p
                LEFT JOIN _chunked_control_rows AS c ON p.rowid = c.row)
            SELECT * EXCLUDE (planned_rank),
                   CASE WHEN "group" = 'treatment' THEN row_number() OVER (
                       PARTITION BY "group" = 'treatment' ORDER BY planned_rank)
                   END AS priority_rank
            FROM grouped ORDER BY customer_id""")
    finally:
        con.unregister("_chunked_control_rows")
    return power

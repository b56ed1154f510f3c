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
from ..targeting.control import hold_out_contacts

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
    share, seed, push, pull
        As :func:`~clvtools.targeting.control.hold_out_contacts` takes them.

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
        f"list_position($cells, d.cell)::SMALLINT - 1 AS cell, d.churn_probability, "
        f"p.priority_rank FROM {quote_ident(plan)} AS p "
        f"JOIN {decided} AS d ON p.customer_id = d.customer_id "
        f"WHERE p.action <> 'none' ORDER BY p.customer_id",
        {"actions": actions, "cells": cells}).df()
    # the standard draw over the chosen customers in plan order
    drawn = hold_out_contacts(
        np.asarray(actions, dtype=object)[chosen["action"].to_numpy()],
        np.asarray(cells, dtype=object)[chosen["cell"].to_numpy()],
        chosen["churn_probability"].to_numpy(dtype=float),
        chosen["priority_rank"].to_numpy(dtype=float), share=share, seed=seed, push=push,
        pull=pull)
    held = pd.DataFrame({"row": chosen["row"].to_numpy(), "control": drawn.control,
                         "rank": drawn.rank})
    del chosen
    con.register("_chunked_held_out", held)
    try:
        # the chosen rows updated in place: the plan keeps its order, no sort of the base
        con.execute(f"ALTER TABLE {quote_ident(plan)} ADD COLUMN \"group\" VARCHAR "
                    "DEFAULT ''")
        con.execute(f"UPDATE {quote_ident(plan)} AS p SET \"group\" = CASE WHEN h.control "
                    "THEN 'control' ELSE 'treatment' END, priority_rank = NULLIF(h.rank, 0) "
                    "FROM _chunked_held_out AS h WHERE p.rowid = h.row")
    finally:
        con.unregister("_chunked_held_out")
    return drawn.power

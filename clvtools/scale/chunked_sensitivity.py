"""sensitivity.csv of a chunked run: the standard engine's
:func:`~clvtools.targeting.sensitivity.sensitivity_table` on its candidates' few numbers.

Each chunk of the decided parts is read in customer order with the columns the economics
read (:data:`~clvtools.targeting.allocation.ECONOMICS_COLUMNS`) and whether the plan pushes
the customer; :func:`~clvtools.targeting.sensitivity.sensitivity_candidates` keeps those for
whom some action pays under some scenario (the standard engine solves its scenarios on these
same rows), so the whole base is never in pandas: the candidates are, at 5 numbers each
(about 35 bytes a candidate; every contactable customer with a positive net benefit under
the most generous scenario). The stated plan's figures are the plan table's sums, the control
group counted as contacted, as the standard table counts it. Every scenario is solved
exactly as on one machine, so the table equals the standard one (figures to about 1e-12).
"""
from __future__ import annotations

import pandas as pd

from ..config import Settings
from ..data.chunked_tables import chunk_where
from ..data.engine import quote_ident
from ..targeting.allocation import ECONOMICS_COLUMNS, Action
from ..targeting.matrix import CELL_ORDER
from ..targeting.sensitivity import sensitivity_candidates, sensitivity_table

__all__ = ["chunked_sensitivity"]


def chunked_sensitivity(con, decided: str, plan: str, bounds: list, s: Settings, push: Action,
                        pull: Action) -> pd.DataFrame:
    """The plan under scaled uplifts and reactivation rates and a moved limit.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    decided : str
        SQL of the decided part files (:data:`ECONOMICS_COLUMNS`, sorted by customer).
    plan : str
        The plan table (``customer_id``, ``action``, ``expected_cost``, ``saved_revenue``,
        ``expected_net_benefit``; the control group keeps its action).
    bounds : list
        The chunks' first customer ids (:func:`~clvtools.data.chunked_tables.chunk_bounds`).
    s : Settings
    push, pull : Action

    Returns
    -------
    pandas.DataFrame
        sensitivity.csv (:func:`~clvtools.targeting.sensitivity.plan_sensitivity`'s table).
    """
    terms = {"margin": s.margin, "offer": s.offer}
    columns = ", ".join(f"d.{quote_ident(c)}" for c in ECONOMICS_COLUMNS)
    kept = []
    for k in range(len(bounds)):
        where = " AND ".join(chunk_where(bounds, k, f"{a}.customer_id") for a in ("d", "p"))
        chunk = con.execute(
            f"SELECT {columns}, d.contactable, p.action = 'push' AS pushed FROM {decided} AS d "
            f"JOIN {quote_ident(plan)} AS p ON d.customer_id = p.customer_id "
            f"WHERE {where} ORDER BY d.customer_id").df()
        # the cell as a category: a byte a candidate rather than a string object
        chunk["cell"] = pd.Categorical(chunk["cell"], categories=CELL_ORDER)
        # as the standard engine: only contactable customers are candidates
        kept.append(chunk[sensitivity_candidates(chunk, push, pull, **terms)
                          & chunk["contactable"].to_numpy(bool)])
    candidates = pd.concat(kept, ignore_index=True)
    stated = con.execute(f"""
        SELECT count(*) FILTER (WHERE action = 'push') AS push,
               count(*) FILTER (WHERE action = 'pull') AS pull,
               coalesce(sum(expected_cost), 0) AS cost,
               coalesce(sum(saved_revenue), 0) AS expected_saved_revenue,
               coalesce(sum(expected_net_benefit), 0) AS expected_net_benefit
        FROM {quote_ident(plan)}""").df().iloc[0]
    stated = {k: (int(v) if k in ("push", "pull") else float(v)) for k, v in stated.items()}
    return sensitivity_table(candidates[list(ECONOMICS_COLUMNS)], push, pull, stated,
                             candidates["pushed"].to_numpy(bool), capacity=s.push_capacity,
                             push_budget=s.push_budget, total_budget=s.total_budget, **terms)

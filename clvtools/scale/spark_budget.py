"""The Spark run's plan under a budget: the standard engine's knapsacks
(:mod:`clvtools.targeting.knapsack`) over a Spark plan.

Up to :data:`~clvtools.targeting.knapsack.EXACT_MAX_CUSTOMERS` candidates the standard engine
solves a knapsack exactly (MILP): the candidates, a few thousand small rows, are collected
to the driver in plan order (by customer id) and handed to the same function, so the plan is
the standard engine's. Beyond, the standard engine takes the greedy solution of the LP
relaxation, which is a global ranking with a cumulative cost: Spark ranks the candidates
(a push budget) or the edges of each customer's convex hull of options (a total budget:
:func:`~clvtools.targeting.knapsack.hull_edges`, per partition) by falling value per unit of
cost, ties by customer id as the standard engine breaks them, sums their costs along that
order (:func:`clvtools.scale.spark.global_running_sum`) and keeps the prefix within the
budget. The LP bound adds the first item left out, pro rata.
"""
from __future__ import annotations

import numpy as np

from ..targeting import knapsack
from ..targeting.knapsack import budget_with_slack, hull_edges
from .spark import allocate, global_running_sum

__all__ = ["plan_under_limit"]

#: The knapsack's options, in the order of the standard engine's value matrix.
_OPTIONS = ("pull", "push")


def plan_under_limit(decided, *, capacity: int | None = None, push_budget: float | None = None,
                     total_budget: float | None = None):
    """The plan under a push capacity, a push budget or a total budget (at most one), as
    :func:`clvtools.targeting.allocation.allocate` makes it.

    Parameters
    ----------
    decided : pyspark.sql.DataFrame
        :func:`clvtools.scale.spark.decide`'s rows.
    capacity : int, optional
        Most customers to push.
    push_budget, total_budget : float, optional
        Most expected spend (currency) on push, or on push and pull together.

    Returns
    -------
    (pyspark.sql.DataFrame, dict)
        :func:`clvtools.scale.spark.allocate`'s plan (under a budget persisted and
        computed, so that the frames the knapsack read twice are unpersisted before it
        returns: a long-lived session keeps nothing of them); and under a budget
        plan_summary.csv's ``constraint``, ``limit``, ``solver``, ``bound`` and ``gap``
        (currency), as the standard engine reports them (empty otherwise).
    """
    if push_budget is None and total_budget is None:
        return allocate(decided, capacity=capacity), {}
    if capacity is not None or (push_budget is not None and total_budget is not None):
        raise ValueError("Give at most one of capacity, push_budget, total_budget.")
    if not min(b for b in (push_budget, total_budget) if b is not None) >= 0:  # NaN too
        raise ValueError("A budget must be zero or more.")
    persisted = [decided.persist()]
    if push_budget is not None:
        pushed, solved = _push_under_budget(decided, float(push_budget), persisted)
        plan = allocate(decided, pushed=pushed)
        limit = {"constraint": "push_budget", "limit": push_budget}
    else:
        chosen, solved = _options_under_budget(decided, float(total_budget), persisted)
        plan = allocate(decided, chosen=chosen)
        limit = {"constraint": "total_budget", "limit": total_budget}
    plan = plan.persist()
    plan.count()    # computed while the frames it reads are still cached
    for frame in persisted:
        frame.unpersist()
    return plan, {**limit, **solved}


def _push_under_budget(decided, budget: float, persisted: list):
    """The customers to push under a push budget: the 0/1 knapsack on the gain of push
    over each candidate's best alternative, weighed by push's expected cost."""
    from pyspark.sql import functions as F

    candidate = F.col("push_gain") > 0
    totals = decided.agg(
        F.count_if(candidate).alias("n"),
        F.sum(F.when(candidate, F.col("cost_push"))).alias("cost"),
        F.sum(F.when(candidate, F.col("push_gain"))).alias("gain"),
        # the value of the best alternative of everyone (pull where it pays), which the
        # standard engine's bound adds to the knapsack's
        F.sum(F.when(F.col("pull_open"), F.col("net_benefit_pull"))).alias("alternative"),
    ).collect()[0]
    alternative = float(totals["alternative"] or 0.0)
    candidates = decided.where(candidate).select("customer_id", "push_gain", "cost_push")
    if totals["n"] <= knapsack.EXACT_MAX_CUSTOMERS:
        small = candidates.orderBy("customer_id").toPandas()
        res = knapsack.knapsack_01(small["push_gain"].to_numpy(float),
                                   small["cost_push"].to_numpy(float), budget)
        ids = small["customer_id"].to_numpy(dtype=object)[res.chosen]
        pushed = decided.sparkSession.createDataFrame(
            [(str(i),) for i in ids], schema="customer_id string")
        return pushed, _solved(res.solver, alternative + res.bound, res.gap)
    if float(totals["cost"] or 0.0) <= budget_with_slack(budget):
        return candidates, _solved("all_fit", alternative + float(totals["gain"]), 0.0)
    ratio = (F.when(F.col("cost_push") > 0, F.col("push_gain") / F.col("cost_push"))
             .otherwise(F.lit(float("inf"))))
    ranked = global_running_sum(candidates.withColumn("ratio", ratio),
                                [F.desc("ratio"), F.asc("customer_id")], "cost_push", "used")
    pushed, objective, bound = _greedy_prefix(ranked, budget, persisted, value="push_gain",
                                              cost="cost_push",
                                              order=[F.desc("ratio"), F.asc("customer_id")])
    return pushed, _solved("greedy_lp", alternative + bound, bound - objective)


def _options_under_budget(decided, budget: float, persisted: list):
    """Every contact's action under a total budget: the multiple-choice knapsack of pull,
    push or nothing per customer."""
    from pyspark.sql import functions as F

    open_any = F.col("push_open") | F.col("pull_open")
    # the unconstrained optimum: push where it gains over pull, else pull where it pays
    best_cost = (F.when(F.col("push_gain") > 0, F.col("cost_push"))
                 .when(F.col("pull_open"), F.col("cost_pull")))
    best_value = (F.when(F.col("push_gain") > 0, F.col("net_benefit_push"))
                  .when(F.col("pull_open"), F.col("net_benefit_pull")))
    totals = decided.agg(F.count_if(open_any).alias("n"), F.sum(best_cost).alias("cost"),
                         F.sum(best_value).alias("value")).collect()[0]
    columns = ["customer_id", "net_benefit_pull", "net_benefit_push", "cost_pull", "cost_push",
               "pull_open", "push_open"]
    candidates = decided.where(open_any).select(*columns)
    if totals["n"] <= knapsack.EXACT_MAX_CUSTOMERS:
        small = candidates.orderBy("customer_id").toPandas()
        value, cost, _ = _options(small)
        res = knapsack.multiple_choice_knapsack(value, cost, budget)
        taken = res.choice > 0
        chosen = decided.sparkSession.createDataFrame(
            [(str(i), _OPTIONS[c - 1]) for i, c in
             zip(small["customer_id"].to_numpy(dtype=object)[taken], res.choice[taken],
                 strict=True)],
            schema="customer_id string, action string")
        return chosen, _solved(res.solver, res.bound, res.gap)
    if float(totals["cost"] or 0.0) <= budget_with_slack(budget):
        chosen = decided.where(best_cost.isNotNull()).select(
            "customer_id", F.when(F.col("push_gain") > 0, "push").otherwise("pull")
            .alias("action"))
        return chosen, _solved("all_fit", float(totals["value"] or 0.0), 0.0)

    def edges(chunks):
        for chunk in chunks:
            value, cost, open_ = _options(chunk)
            cust, num, target, dc, dv, eff = hull_edges(value, cost, open_)
            yield chunk.iloc[cust][["customer_id"]].assign(
                edge=num, action=np.asarray(_OPTIONS, dtype=object)[target], dc=dc, dv=dv,
                eff=eff)

    order = [F.desc("eff"), F.asc("customer_id"), F.asc("edge")]
    ranked = global_running_sum(
        candidates.mapInPandas(edges, schema="customer_id string, edge long, action string, "
                                             "dc double, dv double, eff double"),
        order, "dc", "used")
    taken, objective, bound = _greedy_prefix(ranked, budget, persisted, value="dv", cost="dc",
                                             order=order, keep=True)
    # a customer's second edge, when taken, is where it ends (its first is taken too)
    chosen = taken.groupBy("customer_id").agg(F.max_by("action", "edge").alias("action"))
    return chosen, _solved("greedy_lp", bound, bound - objective)


def _options(frame):
    """The standard engine's value, cost and open matrices, shape (n, 2): pull, then push
    (a closed option's value is -inf)."""
    open_ = np.stack([frame["pull_open"].to_numpy(bool), frame["push_open"].to_numpy(bool)],
                     axis=1)
    value = np.where(open_, np.stack([frame["net_benefit_pull"].to_numpy(float),
                                      frame["net_benefit_push"].to_numpy(float)], axis=1),
                     -np.inf)
    cost = np.stack([frame["cost_pull"].to_numpy(float), frame["cost_push"].to_numpy(float)],
                    axis=1)
    return value, cost, open_


def _greedy_prefix(ranked, budget: float, persisted: list, *, value: str, cost: str, order,
                   keep: bool = False):
    """The rows of ``ranked`` whose running cost ``used`` fits the budget (a prefix: the
    costs are >= 0), their total ``value``, and the LP bound (that total plus the first row
    left out, pro rata to the room left). ``ranked`` is persisted (read three times) and
    added to ``persisted``, for the caller to unpersist once the plan is computed.

    Returns
    -------
    (pyspark.sql.DataFrame, float, float)
        The rows taken (``customer_id`` only unless ``keep``), the objective and the bound.
    """
    from pyspark.sql import functions as F

    limit = budget_with_slack(budget)
    ranked = ranked.persist()
    persisted.append(ranked)
    taken = ranked.where(F.col("used") <= limit)
    found = taken.agg(F.sum(value).alias("value"), F.max("used").alias("used")).collect()[0]
    objective = float(found["value"] or 0.0)
    bound = objective
    first_out = ranked.where(F.col("used") > limit).orderBy(*order).limit(1).collect()
    if first_out:
        room = budget - float(found["used"] or 0.0)
        bound += first_out[0][value] * max(room, 0.0) / first_out[0][cost]
    return (taken if keep else taken.select("customer_id")), objective, bound


def _solved(solver: str, bound: float, gap: float) -> dict:
    return {"solver": solver, "bound": float(bound), "gap": float(gap)}

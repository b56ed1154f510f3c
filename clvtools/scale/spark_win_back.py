"""The win-back list on Spark: the single-machine
:func:`clvtools.targeting.win_back.win_back_list` per partition, ranked over the whole base.

A declared-churned customer's entry depends on their own row only (the best of the plan's
two reactivation offers); the rank is a global ranking in Spark (net benefit, best first,
ties by customer id: the single machine's order of its customers), so the list is the single
machine's, row for row.
"""
from __future__ import annotations

from ..targeting.win_back import NO_VALUE, win_back_list
from .spark import global_row_number

__all__ = ["WIN_BACK_EXTRA", "spark_win_back"]

#: The lifecycle columns the list carries after its own (then the attributes).
WIN_BACK_EXTRA = ("declared_at", "purchases", "lifetime_spend")


def spark_win_back(plan, lifecycle, attributes=None):
    """The win-back list of a Spark plan, best first, and the count left off.

    Parameters
    ----------
    plan : pyspark.sql.DataFrame
        The plan's rows (``customer_id``, ``churn_probability``, ``lapsed_revenue``,
        ``net_benefit_push``, ``net_benefit_pull``, ``action``), one per customer.
    lifecycle : pyspark.sql.DataFrame
        :func:`~clvtools.data.spark_summaries.spark_lifecycle`'s rows.
    attributes : pyspark.sql.DataFrame, optional
        ``customer_id`` and the attributes at the observation end, carried last.

    Returns
    -------
    (pyspark.sql.DataFrame, int)
        The list (win_back.csv's columns, sorted by ``win_back_rank``: a range partitioning,
        part files in rank order) and the number of declared-churned customers left off for
        having no value (lapsed revenue under :data:`~clvtools.targeting.win_back.NO_VALUE`).
    """
    from pyspark.sql import functions as F

    churned = plan.where(F.col("churn_probability").isNull()).select(
        "customer_id", "churn_probability", "lapsed_revenue", "net_benefit_push",
        "net_benefit_pull", "action")
    left_off = churned.where(~(F.col("lapsed_revenue") >= NO_VALUE)).count()
    rows = churned.join(lifecycle.select("customer_id", "last_purchase", *WIN_BACK_EXTRA),
                        on="customer_id", how="left")
    extra = list(WIN_BACK_EXTRA)
    if attributes is not None:
        # an attribute named like a column of ours keeps its name with a suffix, as on one
        # machine
        named = [F.col(c).alias(f"{c}_attribute" if c in plan.columns else c)
                 for c in attributes.columns if c != "customer_id"]
        attributes = attributes.select("customer_id", *named)
        extra += [c for c in attributes.columns if c != "customer_id"]
        rows = rows.join(attributes, on="customer_id", how="left")
    types = dict(rows.dtypes)
    columns = ["customer_id", "best_offer", "net_benefit", "net_benefit_push",
               "net_benefit_pull", "lapsed_revenue", "action", "last_purchase", *extra]
    schema = ", ".join(f"`{c}` {types.get(c, 'string' if c == 'best_offer' else 'double')}"
                       for c in columns)

    def listed(chunks):
        for chunk in chunks:
            found, _ = win_back_list(chunk, extra_columns=extra)
            yield found[columns]

    entries = rows.mapInPandas(listed, schema=schema)
    ranked = global_row_number(entries, [F.desc("net_benefit"), F.asc("customer_id")],
                               "win_back_rank")
    ordered = ranked.select("customer_id", "win_back_rank", *columns[1:])
    return ordered.orderBy("win_back_rank"), int(left_off)

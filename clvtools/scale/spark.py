"""Per-customer scoring and the retention plan on Spark: the pipeline's own scoring functions
mapped over partitions.

:func:`score_customers` maps :func:`clvtools.pipeline.scoring.score_chunk` over the
partitions of the RFM summary joined to the scoring table (``mapInPandas``: each executor
scores its chunk with the fitted models, shipped once with the function), then the matrix's
cut points are found over the whole base (exact percentiles in Spark) and
:func:`clvtools.pipeline.scoring.decide_chunk` adds each customer's cell and the economics
of push and pull. :func:`allocate` gives push to the largest gains under a capacity by a
global ranking, pull where it pays, and numbers the contacts in priority order, all in Spark.
"""
from __future__ import annotations

from ..pipeline.scoring import DECISION_COLUMNS, SCORE_COLUMNS, Scorers, decide_chunk, score_chunk
from ..targeting.allocation import Action

__all__ = ["score_customers", "cut_points", "allocate", "global_row_number",
           "global_running_sum", "PLAN_COLUMNS"]

#: Prefix of the scoring table's columns inside a chunk (the table and the RFM summary both
#: have a ``frequency``).
_COVARIATE = "covariate__"
#: Prefix of the attributes' columns inside a chunk (the value model's covariates).
_ATTRIBUTE = "attribute__"
#: The columns :func:`allocate` adds.
PLAN_COLUMNS = ("action", "priority_rank", "expected_net_benefit", "saved_revenue",
                "expected_cost")

_TYPES = {"churn_model": "string", "cell": "string", "push_open": "boolean",
          "pull_open": "boolean"}


def _schema(columns) -> str:
    return ", ".join(f"`{c}` {_TYPES.get(c, 'double')}" for c in columns)


def score_customers(rfm, scoring, scorers: Scorers, attributes=None):
    """Value, churn probability and revenue at risk of every customer, on the executors.

    Parameters
    ----------
    rfm : pyspark.sql.DataFrame
        The RFM summary at the scoring date (``customer_id``, ``frequency``, ``recency``,
        ``T``, optionally ``monetary_value``), one row per customer.
    scoring : pyspark.sql.DataFrame
        The scoring table of the live customers (covariates at the scoring date).
    scorers : Scorers
        The fitted models and the run's constants.
    attributes : pyspark.sql.DataFrame, optional
        ``customer_id`` and the attributes at the scoring date, for a purchase model fitted
        with covariates (each chunk's model is bound to its customers' attributes).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per customer: ``customer_id``, the RFM columns and
        :data:`~clvtools.pipeline.scoring.SCORE_COLUMNS` (as the single-machine pipeline's
        customers table has them).
    """
    from pyspark.sql import functions as F

    rfm_columns = [c for c in rfm.columns if c != "customer_id"]
    covariates = [c for c in scoring.columns if c != "customer_id"]
    joined = rfm.join(
        scoring.select("customer_id", F.lit(True).alias("live"),
                       *[F.col(c).alias(_COVARIATE + c) for c in covariates]),
        on="customer_id", how="left")
    attribute_columns = [] if attributes is None else [c for c in attributes.columns
                                                       if c != "customer_id"]
    if attribute_columns:
        joined = joined.join(attributes.select(
            "customer_id", *[F.col(c).alias(_ATTRIBUTE + c) for c in attribute_columns]),
            on="customer_id", how="left")

    def unprefixed(frame, prefix):
        return frame.rename(columns=lambda c: c[len(prefix):])

    def score(chunks):
        for chunk in chunks:
            frame = chunk.set_index("customer_id")
            live = frame["live"].notna().to_numpy()     # True, or NULL: not in the table
            table = unprefixed(frame.loc[live, [_COVARIATE + c for c in covariates]],
                               _COVARIATE).reset_index()
            attrs = (unprefixed(frame[[_ATTRIBUTE + c for c in attribute_columns]], _ATTRIBUTE)
                     if attribute_columns else None)
            scored = score_chunk(frame[rfm_columns], table, scorers, attrs)
            yield scored.reset_index()

    schema = "customer_id string, " + _schema([*rfm_columns, *SCORE_COLUMNS])
    return joined.mapInPandas(score, schema=schema)


def cut_points(scored, *, value_axis: str, value_cut, risk_cut) -> dict[str, float]:
    """The matrix's cut points over the live customers of the whole base.

    Parameters
    ----------
    scored : pyspark.sql.DataFrame
        :func:`score_customers`'s rows.
    value_axis : {"revenue_if_retained", "expected_revenue"}
    value_cut, risk_cut : tuple or float
        ``("quantile", q)`` or an absolute number (:func:`clvtools.config.parse_cut`).

    Returns
    -------
    dict
        ``value`` and ``risk``: a quantile by Spark's exact ``percentile`` (linear
        interpolation between the closest ranks, numpy's default), an absolute cut as given.
    """
    from pyspark.sql import functions as F

    live = scored.where(F.col("churn_probability").isNotNull())
    out = {}
    for name, column, cut in (("value", value_axis, value_cut),
                              ("risk", "churn_probability", risk_cut)):
        kind, number = cut if isinstance(cut, tuple) else ("absolute", cut)
        if kind == "absolute":
            out[name] = float(number)
            continue
        found = live.agg(F.percentile(F.col(column), F.lit(float(number)))).collect()[0][0]
        out[name] = float("nan") if found is None else float(found)
    return out


def decide(scored, *, cut_points: dict, value_axis: str, push: Action, pull: Action,
           margin: float, offer: str):
    """:func:`clvtools.pipeline.scoring.decide_chunk` over the partitions: each customer's
    cell and the economics of push and pull (columns added to ``scored``); a boolean
    ``contactable`` column of ``scored``, when present, closes both actions where false."""
    columns = scored.columns

    def cells(chunks):
        for chunk in chunks:
            contactable = (chunk["contactable"].to_numpy(bool) if "contactable" in chunk
                           else None)
            decided = decide_chunk(chunk, cut_points=cut_points, value_axis=value_axis,
                                   push=push, pull=pull, margin=margin, offer=offer,
                                   contactable=contactable)
            yield chunk.join(decided)

    types = dict(scored.dtypes)
    schema = ", ".join(f"`{c}` {types[c]}" for c in columns) + ", " + _schema(DECISION_COLUMNS)
    return scored.mapInPandas(cells, schema=schema)


def allocate(decided, *, capacity: int | None = None, pushed=None, chosen=None):
    """Push, pull or nothing per customer, and the contacts' priority ranks, in Spark.

    As :func:`clvtools.targeting.allocation.allocate` under a push capacity (or none): push
    goes to the customers with the largest gain of push over their best alternative (ties
    by customer id, the single-machine order), taken by a global ranking; everyone else
    gets pull where it pays, nothing otherwise. Under a budget, the customers to push
    (``pushed``) or every contact's action (``chosen``) come from the knapsacks
    (:mod:`clvtools.scale.spark_budget`). Priority ranks run over push by expected net
    benefit, then pull, ties by customer id.

    Parameters
    ----------
    decided : pyspark.sql.DataFrame
        :func:`decide`'s rows.
    capacity : int, optional
        Most customers to push.
    pushed : pyspark.sql.DataFrame, optional
        ``customer_id`` of the customers to push (a push budget's); pull for the others
        where it pays.
    chosen : pyspark.sql.DataFrame, optional
        ``customer_id`` and ``action`` (``push`` or ``pull``) of every contact (a total
        budget's); nothing for the others.

    Returns
    -------
    pyspark.sql.DataFrame
        ``decided`` with :data:`PLAN_COLUMNS`; ``priority_rank`` is NULL for none.
    """
    from pyspark.sql import functions as F

    given = [n for n, v in (("capacity", capacity), ("pushed", pushed), ("chosen", chosen))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"Give at most one of capacity, pushed, chosen. Got {given}.")
    if chosen is not None:
        plan = (decided.join(chosen.withColumnRenamed("action", "chosen_action"),
                             on="customer_id", how="left")
                .withColumn("action", F.coalesce(F.col("chosen_action"), F.lit("none")))
                .drop("chosen_action"))
    else:
        if pushed is None:
            pushed = decided.where(F.col("push_gain") > 0)
            if capacity is not None:
                # Spark takes the top of each partition and merges them: no
                # single-partition sort
                pushed = pushed.orderBy(F.desc("push_gain"), "customer_id").limit(int(capacity))
        flagged = pushed.select("customer_id", F.lit(True).alias("pushed"))
        plan = (decided.join(flagged, on="customer_id", how="left")
                .withColumn("action", F.when(F.col("pushed"), "push")
                            .when(F.col("pull_open"), "pull").otherwise("none"))
                .drop("pushed"))
    for column, push_col, pull_col in (("expected_net_benefit", "net_benefit_push",
                                        "net_benefit_pull"),
                                       ("saved_revenue", "saved_revenue_push",
                                        "saved_revenue_pull"),
                                       ("expected_cost", "cost_push", "cost_pull")):
        plan = plan.withColumn(column, F.when(F.col("action") == "push", F.col(push_col))
                               .when(F.col("action") == "pull", F.col(pull_col))
                               .otherwise(F.lit(0.0)))
    # the contacts only are ranked
    contacted = plan.where(F.col("action") != "none").select(
        "customer_id", (F.col("action") == "push").alias("is_push"), "expected_net_benefit")
    order = [F.desc("is_push"), F.desc("expected_net_benefit"), F.asc("customer_id")]
    ranks = global_row_number(contacted, order, "priority_rank").select("customer_id",
                                                                        "priority_rank")
    return plan.join(ranks, on="customer_id", how="left")


def global_row_number(frame, order, name: str):
    """``frame`` with its row number (1, 2, ...) in ``order`` over the whole frame, as the
    column ``name``: a range partitioning sorts the rows across the executors, each
    partition numbers its own, offset by the counts of the partitions before it (no
    single-partition sort).

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
    order : list of pyspark.sql.Column
        A total order (end with a unique column).
    name : str
    """
    from pyspark.sql import functions as F

    numbered = _running(frame, order, lambda w: F.row_number().over(w), F.count("*"))
    return numbered.withColumn(name, F.col("running").cast("long")).drop("running")


def global_running_sum(frame, order, column: str, name: str):
    """``frame`` with the running sum of ``column`` in ``order`` over the whole frame, as
    the column ``name`` (the first row's value, then the first two rows' sum, ...): as
    :func:`global_row_number`, each partition sums its own rows, offset by the totals of
    the partitions before it.

    A double's running sum is added in another order than one pass over the rows would add
    it (numpy's ``cumsum``): the two differ in the last bits only.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    summed = _running(frame, order, lambda w: F.sum(column).over(
        w.rowsBetween(Window.unboundedPreceding, Window.currentRow)), F.sum(column))
    return summed.withColumnRenamed("running", name)


def _running(frame, order, within, total):
    """``frame`` with ``running``: ``within`` over the rows before and at each row of its
    partition after a range partitioning in ``order``, plus ``total`` over the partitions
    before it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ranked = (frame.repartitionByRange(*order).sortWithinPartitions(*order)
              .withColumn("partition", F.spark_partition_id())
              .withColumn("within", within(Window.partitionBy("partition").orderBy(*order))))
    offsets = (ranked.groupBy("partition").agg(total.alias("total"))
               .withColumn("offset", F.coalesce(F.sum("total").over(
                   Window.orderBy("partition").rowsBetween(Window.unboundedPreceding, -1)),
                   F.lit(0)))
               .select("partition", "offset"))
    return (ranked.join(F.broadcast(offsets), on="partition")
            .withColumn("running", F.col("offset") + F.col("within"))
            .drop("partition", "within", "offset"))

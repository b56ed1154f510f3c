"""The Spark run's control group: the standard engine's draw
(:func:`clvtools.targeting.control.hold_out_contacts`, which the chunked run calls too) over
the chosen customers, collected to the driver.

The draw depends only on each chosen customer's stratum (action, cell) and on their order in
the plan (by customer id), so only the chosen customers travel: their id, action, cell, churn
probability and priority rank, a few million small rows at most, in plan order (through
Arrow when the session enables it). The groups and the ranks renumbered over the treatment
are joined back into the plan on the executors, as :func:`clvtools.pipeline.targets` does in
pandas.
"""
from __future__ import annotations

import pandas as pd

from ..targeting.allocation import Action
from ..targeting.control import CONTROL, TREATMENT, hold_out_contacts

__all__ = ["spark_control_group"]


def spark_control_group(plan, *, share: float, seed: int, push: Action, pull: Action):
    """Draw the control group over a Spark plan.

    Parameters
    ----------
    plan : pyspark.sql.DataFrame
        :func:`clvtools.scale.spark.allocate`'s rows (``customer_id``, ``action``, ``cell``,
        ``churn_probability``, ``priority_rank``), one per customer.
    share, seed, push, pull
        As :func:`~clvtools.targeting.control.hold_out_contacts` takes them.

    Returns
    -------
    (pyspark.sql.DataFrame, pandas.DataFrame)
        The plan with ``group`` (``treatment``, ``control``, or ``""`` without action) and
        ``priority_rank`` renumbered over the treatment (NULL for the control and for none);
        and :func:`~clvtools.targeting.control.power_table`'s rows (control_power.csv).
    """
    from pyspark.sql import functions as F

    chosen = (plan.where(F.col("action") != "none")
              .select("customer_id", "action", "cell", "churn_probability", "priority_rank")
              .orderBy("customer_id").toPandas())
    drawn = hold_out_contacts(
        _shared_labels(chosen["action"]), _shared_labels(chosen["cell"]),
        chosen["churn_probability"].to_numpy(dtype=float, na_value=float("nan")),
        chosen["priority_rank"].to_numpy(dtype=float), share=share, seed=seed, push=push,
        pull=pull)
    held = pd.DataFrame({"customer_id": chosen["customer_id"].to_numpy(dtype=object),
                         "held_out": drawn.control, "treatment_rank": drawn.rank})
    del chosen
    spark = plan.sparkSession
    held = spark.createDataFrame(
        held, schema="customer_id string, held_out boolean, treatment_rank long")
    out = (plan.withColumnRenamed("priority_rank", "plan_rank")
           .join(held, on="customer_id", how="left")
           .withColumn("group", F.when(F.col("held_out"), F.lit(CONTROL))
                       .when(F.col("held_out").isNotNull(), F.lit(TREATMENT))
                       .otherwise(F.lit("")))
           .withColumn("priority_rank", F.when(F.col("treatment_rank") > 0,
                                               F.col("treatment_rank")))
           .drop("plan_rank", "held_out", "treatment_rank"))
    return out, drawn.power


def _shared_labels(labels: pd.Series):
    """The labels as an object array with one string object per distinct label (Arrow
    makes one per row): the draw groups them, and a few million rows keep a few bytes
    each."""
    # a missing label keeps its own code (the draw leaves an empty cell in the treatment, it
    # must not join the last label's stratum)
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    return uniques.to_numpy(dtype=object)[codes]

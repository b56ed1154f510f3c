"""What each customer of a saved plan did after it: the outcomes a campaign is judged by.

A plan refers to its observation end ``T0``; the evaluation window runs from the day after it
to ``min(end, T0 + horizon)``, ``end`` being the last day the new log covers. Within it, per
customer of the plan: purchase occasions and revenue; for a customer live at ``T0``, whether
churn was declared in the window (the churn rule of :mod:`.lifecycle`, walked from the plan's
last purchase through the new purchases); for one already declared churned at ``T0``, whether
the customer came back (bought at all).

The new log may be the full updated log or only the rows after ``T0``. When it reaches back to
the earliest last purchase of the plan's customers it is taken to be a full log, and a plan
customer absent from it is counted as missing (deleted from the source, merged, ...) and left
out of the evaluation, never silently counted as a churner.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .engine import quote_ident
from .lifecycle import first_declaration
from .transactions import TransactionLog

__all__ = ["CampaignOutcomes", "campaign_outcomes"]


@dataclass
class CampaignOutcomes:
    """The outcomes of a plan's customers over the evaluation window.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per plan customer found (or presumed) in the new log: ``customer_id``,
        ``purchases`` (occasions in the window), ``revenue`` (their amounts' sum, currency;
        occasions without amounts count 0), ``churned`` (bool: live at ``T0`` and declared
        churned in the window; False for the lapsed), ``declared_at`` (datetime64, NaT unless
        ``churned``), ``came_back`` (bool: lapsed at ``T0`` and bought in the window; False
        for the live).
    window_start, window_end : datetime.date
        First and last day of the window (``T0 + 1`` and ``min(end, T0 + horizon)``).
    horizon_end : datetime.date
        ``T0 + horizon``: the window is complete (the read-out final) when it reaches it.
    missing : list of str
        Plan customers absent from a full log (left out of ``table``).
    counts : dict
        ``occasions_in_window``, ``occasions_before_window`` (on or before ``T0``: the
        history, not an outcome), ``occasions_after_window``, ``customers_not_in_plan``
        (customers of the new log the plan does not know: acquired since), ``missing``,
        ``full_log`` (bool: the log reaches back to the plan customers' earliest last purchase).
    """

    table: pd.DataFrame
    window_start: dt.date
    window_end: dt.date
    horizon_end: dt.date
    missing: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """Whether the window has passed in full (the churn figures are final)."""
        return self.window_end >= self.horizon_end


def campaign_outcomes(plan: pd.DataFrame, log: TransactionLog, *, plan_end: dt.date,
                      horizon_days: int, churn_days: int) -> CampaignOutcomes:
    """Each plan customer's purchases, revenue, churn and return after the plan's date.

    Parameters
    ----------
    plan : pandas.DataFrame, shape (n, k)
        ``customer_id`` (str), ``cell`` (``churned`` for customers already declared churned at
        ``plan_end``) and ``last_purchase`` (datetime64: the last purchase on or before it).
    log : TransactionLog
        The new log (purchase occasions); its observation end is the window's end at most.
    plan_end : datetime.date
        The plan's observation end ``T0``.
    horizon_days : int
        The plan's horizon in days: churn and revenue count up to ``T0 + horizon_days``.
    churn_days : int
        The churn delay in days.

    Returns
    -------
    CampaignOutcomes
    """
    horizon_end = plan_end + dt.timedelta(days=horizon_days)
    window_end = min(log.observation_end, horizon_end)
    occasions = quote_ident(log.occasions)
    before, within, after = log.con.execute(
        f"""SELECT count(*) FILTER (WHERE date <= $t0),
                   count(*) FILTER (WHERE date > $t0 AND date <= $end),
                   count(*) FILTER (WHERE date > $end) FROM {occasions}""",
        {"t0": plan_end, "end": window_end}).fetchone()
    counts = {"occasions_before_window": before, "occasions_in_window": within,
              "occasions_after_window": after}
    rows = log.con.execute(
        f"""SELECT customer_id, date, coalesce(amount, 0) AS amount FROM {occasions}
            WHERE date > $t0 AND date <= $end""",
        {"t0": plan_end, "end": window_end}).df()
    seen = log.con.execute(f"SELECT DISTINCT customer_id FROM {occasions}").df()["customer_id"]
    ids = plan["customer_id"].astype(str)
    # a full log reaches back to every plan customer's last purchase; an export of the rows
    # since the plan does not reach back to any
    full_log = bool(log.first_date <= plan["last_purchase"].min().date())
    present = ids.isin(set(seen)).to_numpy() if full_log else np.ones(len(ids), dtype=bool)
    counts.update(customers_not_in_plan=int((~seen.isin(set(ids))).sum()),
                  missing=int((~present).sum()), full_log=full_log)

    kept = plan.loc[present]
    ids = kept["customer_id"].astype(str).to_numpy()
    position = pd.Index(ids).get_indexer(rows["customer_id"])
    found = position >= 0
    position = position[found]
    day = rows["date"].to_numpy()[found].astype("datetime64[D]").astype(np.int64)
    n = len(ids)
    purchases = np.bincount(position, minlength=n)
    revenue = np.bincount(position, rows["amount"].to_numpy(dtype=float)[found], minlength=n)
    lapsed = (kept["cell"].astype(str) == "churned").to_numpy()
    last = kept["last_purchase"].to_numpy().astype("datetime64[D]").astype(np.int64)
    declared = first_declaration(last, position, day, churn_days)
    end_day = np.datetime64(window_end, "D").astype(np.int64)
    churned = ~lapsed & (declared <= end_day)
    table = pd.DataFrame({
        "customer_id": ids,
        "purchases": purchases.astype(np.int64),
        "revenue": revenue,
        "churned": churned,
        # NaT is int64's minimum
        "declared_at": np.where(churned, declared, np.iinfo(np.int64).min)
                         .astype("datetime64[D]").astype("datetime64[ns]"),
        "came_back": lapsed & (purchases > 0),
    })
    return CampaignOutcomes(table, plan_end + dt.timedelta(days=1), window_end, horizon_end,
                            missing=plan.loc[~present, "customer_id"].astype(str).tolist(),
                            counts=counts)

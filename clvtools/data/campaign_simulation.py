"""A retention campaign simulated on a generated base, with a known true effect.

The generated base's follow-up (:mod:`.follow_up`) is what every customer does without any
action: the world of the control group. A campaign then changes it, in the allocation's own
definitions (:mod:`clvtools.targeting.allocation`), for the customers the plan treats:

* a treated customer live at the observation end who would have been declared churned within
  the horizon is **retained** with probability u (the uplift of the action in the customer's
  matrix cell): the customer renews, buying again the day before each declaration would fall,
  so that no churn is declared within the horizon;
* a treated customer already declared churned who would not have bought within the horizon
  **comes back** with probability w (the action's reactivation rate): one purchase on a day
  drawn uniformly over the horizon.

Each added purchase's amount is a new draw of the customer's own spend (Gamma-Gamma, rounded
to cents). The measured uplift ``1 - churn_treated / churn_control`` then has expectation u
over would-be churners, and the measured reactivation ``1 - (1 - back_treated) / (1 -
back_control)`` expectation w: what ``clvtools evaluate`` must recover.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .lifecycle import first_declaration
from .simulated_base import SimulatedBase

__all__ = ["SimulatedCampaign", "simulate_campaign"]


@dataclass
class SimulatedCampaign:
    """The log after a simulated campaign, and its truth.

    Attributes
    ----------
    transactions : pandas.DataFrame
        The purchases after the observation end as the campaign left them (the base's
        follow-up plus the renewals and returns it caused): ``customer_id``, ``date``,
        ``amount``, sorted by customer and date.
    truth : pandas.DataFrame
        One row per plan customer: ``customer_id``, ``live`` (not declared churned at the
        observation end), ``would_churn`` (declared within the horizon without the campaign),
        ``retained``, ``came_back`` (caused by the campaign), ``true_uplift`` and
        ``true_reactivation`` (the rates that applied to the customer; 0 untreated).
    """

    transactions: pd.DataFrame
    truth: pd.DataFrame


def _per_customer(rates: Mapping, plan: pd.DataFrame) -> np.ndarray:
    """A rate per action (a number) or per action and cell (a mapping), per customer; 0 for
    customers with no action."""
    out = np.zeros(len(plan))
    for action, rate in rates.items():
        mine = (plan["action"] == action).to_numpy()
        if isinstance(rate, Mapping):
            out[mine] = plan["cell"][mine].map({**dict.fromkeys(plan["cell"], 0.0), **rate}
                                               ).to_numpy(float)
        else:
            out[mine] = float(rate)
    return out


def simulate_campaign(base: SimulatedBase, plan: pd.DataFrame, *,
                      uplift: Mapping[str, float | Mapping[str, float]],
                      reactivation: Mapping[str, float], churn_days: int, horizon_days: int,
                      seed: int = 0) -> SimulatedCampaign:
    """Apply a campaign with known uplift and reactivation to a generated base's follow-up.

    Parameters
    ----------
    base : SimulatedBase
        Generated with a follow-up of at least ``horizon_days``.
    plan : pandas.DataFrame, shape (n, k)
        ``customer_id``, ``action`` (``push``, ``pull`` or ``none``), ``group``
        (``treatment`` is contacted) and ``cell``: the saved plan of a run on
        ``base.transactions``.
    uplift : mapping
        True uplift per action: a number, or a number per matrix cell.
    reactivation : mapping
        True reactivation rate per action.
    churn_days, horizon_days : int
        The churn rule's delay and the horizon, in days.
    seed : int
        Seed of the campaign's draws (which would-be churners are retained, ...).

    Returns
    -------
    SimulatedCampaign
    """
    rng = np.random.default_rng(seed)
    ids = plan["customer_id"].astype(str).to_numpy()
    declared = base.declared_churn(churn_days, horizon_days).set_index("customer_id")
    live = pd.Index(ids).isin(declared.index)
    found = pd.Index(ids).get_indexer(declared.index)
    would_churn = np.zeros(len(ids), dtype=bool)
    would_churn[found[found >= 0]] = declared["churned"].to_numpy()[found >= 0]
    treated = (plan["group"] == "treatment").to_numpy()
    u, w = _per_customer(uplift, plan) * treated, _per_customer(reactivation, plan) * treated
    end = np.datetime64(base.observation_end, "D").astype(np.int64)
    future = base.future_transactions
    position = pd.Index(ids).get_indexer(future["customer_id"])
    day = future["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    in_plan = position >= 0
    owner, day = position[in_plan], day[in_plan]

    due = pd.Series(ids).map(declared["declared_at"]).to_numpy().astype("datetime64[D]")
    reachable = due.astype(np.int64) > end + 1
    retained = live & would_churn & reachable & (rng.random(len(ids)) < u)
    bought = np.bincount(owner[day <= end + horizon_days], minlength=len(ids)) > 0
    came_back = ~live & ~bought & (rng.random(len(ids)) < w)
    added_owner = [np.flatnonzero(came_back)]
    added_day = [end + rng.integers(1, horizon_days + 1, size=int(came_back.sum()))]

    # renewals: the day before each declaration that would fall within the horizon
    last = pd.Series(ids).map(declared["last_purchase"]).to_numpy().astype("datetime64[D]")
    who = np.flatnonzero(retained)
    renewal_owner, renewal_day = np.empty(0, np.int64), np.empty(0, np.int64)
    while who.size:
        mine = np.isin(owner, who)
        local = pd.Index(who).get_indexer(np.concatenate([owner[mine], renewal_owner]))
        keep = local >= 0
        due = first_declaration(last[who].astype(np.int64), local[keep],
                                np.concatenate([day[mine], renewal_day])[keep], churn_days)
        falls = due <= end + horizon_days
        who, due = who[falls], due[falls]
        renewal_owner = np.concatenate([renewal_owner, who])
        renewal_day = np.concatenate([renewal_day, due - 1])
    added_owner.append(renewal_owner)
    added_day.append(renewal_day)

    added_owner, added_day = np.concatenate(added_owner), np.concatenate(added_day)
    nu = pd.Series(ids).map(base.customer_truth.set_index("customer_id")["nu"]).to_numpy()
    shape = base.truth["gamma_gamma"]["p"]
    amount = np.maximum(np.round(rng.gamma(shape, 1.0 / nu[added_owner]), 2), 0.01)
    added = pd.DataFrame({"customer_id": ids[added_owner],
                          "date": added_day.astype("datetime64[D]").astype("datetime64[ns]"),
                          "amount": amount})
    transactions = (pd.concat([future, added], ignore_index=True)
                    .sort_values(["customer_id", "date"], kind="stable", ignore_index=True))
    truth = pd.DataFrame({"customer_id": ids, "live": live, "would_churn": would_churn,
                          "retained": retained, "came_back": came_back,
                          "true_uplift": u, "true_reactivation": w})
    return SimulatedCampaign(transactions, truth)

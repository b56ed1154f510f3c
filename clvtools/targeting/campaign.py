"""What a retention campaign really did: treatment against its random control group.

The plan held out a random share of each action and matrix cell (:mod:`.control`); comparing
the treated customers with them measures the two rates the allocation had to assume
(:mod:`.allocation`), in the allocation's own definitions:

* **uplift** u, the relative cut in churn among would-be churners:
  ``u = (churn_control - churn_treated) / churn_control = 1 - RR``, RR the risk ratio of
  churn (treated over control);
* **reactivation** w, among customers already declared churned, the share of those who would
  not have come back who came back because of the action:
  ``w = (back_treated - back_control) / (1 - back_control)``, which is ``1 - RR`` of staying
  away;
* **revenue saved** per treated customer, the difference of the groups' mean revenue over the
  window, and in total that times the customers treated.

Intervals (95 %): the risk ratio's from the Mantel-Haenszel estimate over the cells with the
Greenland-Robins variance of its logarithm (for one cell, Katz's log interval), 0.5 added to
the counts of a cell where a group had no events or only events, for the interval; the
revenue difference's from the groups' variances (Welch, normal approximation), summed over
cells. A total over cells covers the cells that
have a control group. A cell is ``too small to say`` with fewer than :data:`MIN_GROUP` customers
in either group or fewer than :data:`MIN_EVENTS` events (churners, or customers who came back)
in the two together; no significance is claimed unless the interval excludes no effect.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .control import CONTROL, TREATMENT
from .matrix import CELL_ORDER, CHURNED

__all__ = ["MIN_EVENTS", "MIN_GROUP", "measure_campaign", "risk_ratio"]

#: Fewest customers in each group, and events in the two together, for a cell to say anything.
MIN_GROUP, MIN_EVENTS = 20, 10
_Z = float(stats.norm.ppf(0.975))


def risk_ratio(events_t, n_t, events_c, n_c) -> tuple[float, float, float]:
    """Mantel-Haenszel risk ratio over strata and its 95 % interval.

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array-like of int, shape (k,)
        Per stratum: events and customers in treatment and in control (strata without both
        groups are ignored).

    Returns
    -------
    (float, float, float)
        RR, its lower and upper 95 % bounds (Greenland-Robins variance of log RR); NaN when
        no stratum has both groups or no events in control.
    """
    a, n1, c, n0 = (np.asarray(x, dtype=float) for x in (events_t, n_t, events_c, n_c))
    both = (n1 > 0) & (n0 > 0)
    a, n1, c, n0 = a[both], n1[both], c[both], n0[both]
    rr = _mantel_haenszel(a, n1, c, n0)[0]
    # a group with no events makes the variance of log RR infinite, and groups all of whose
    # customers had the event make it zero: the usual 0.5 correction of such a stratum, for
    # the interval only
    zero = (a == 0) | (c == 0) | (a == n1) | (c == n0)
    a, c, n1, n0 = a + 0.5 * zero, c + 0.5 * zero, n1 + zero, n0 + zero
    corrected, r, s = _mantel_haenszel(a, n1, c, n0)
    if not (np.isfinite(rr) and r > 0 and s > 0):
        return np.nan, np.nan, np.nan
    n = n1 + n0
    variance = np.sum((n1 * n0 * (a + c) - a * c * n) / n ** 2) / (r * s)
    half = _Z * np.sqrt(max(variance, 0.0))
    # the interval around the corrected estimate, which differs from rr only with a zero
    return float(rr), float(corrected * np.exp(-half)), float(corrected * np.exp(half))


def _mantel_haenszel(a, n1, c, n0) -> tuple[float, float, float]:
    """The Mantel-Haenszel risk ratio and its two sums (NaN without control events)."""
    if a.size == 0:
        return np.nan, 0.0, 0.0
    n = n1 + n0
    r, s = float(np.sum(a * n0 / n)), float(np.sum(c * n1 / n))
    return (r / s if s > 0 else np.nan), r, s


def _difference(values: np.ndarray, treated: np.ndarray, control: np.ndarray
                ) -> tuple[float, float]:
    """Mean of treated minus mean of control and the variance of that difference."""
    t, c = values[treated], values[control]
    if t.size < 2 or c.size < 2:
        return np.nan, np.nan
    return float(t.mean() - c.mean()), float(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)


def measure_campaign(frame: pd.DataFrame, economics: Mapping[str, Mapping[str, float]], *,
                     margin: float = 1.0, offer: str = "conditional",
                     final: bool = True) -> pd.DataFrame:
    """Measured against predicted, per action and matrix cell, per action and in total.

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n, k)
        One row per customer of the plan with an action: ``action``, ``group`` (treatment or
        control), ``cell``, the plan's ``churn_probability``, ``assumed_uplift``,
        ``assumed_reactivation``, ``saved_revenue``, ``expected_cost``,
        ``expected_net_benefit``, and the outcomes ``churned``, ``came_back``, ``purchases``
        and ``revenue`` (:func:`clvtools.data.campaign_outcomes.campaign_outcomes`).
    economics : mapping
        Per action (``push``, ``pull``): ``cost`` (per contact) and ``incentive`` (per taker),
        currency.
    margin : float
        Contribution per unit of revenue.
    offer : {"conditional", "unconditional"}
        Who pays the incentive: those treated who stayed or came back, or every treated.
    final : bool
        Whether the window has passed in full (``read_out`` says ``final`` or ``early``).

    Returns
    -------
    pandas.DataFrame
        One row per action and cell, then per action (``cell`` = ``all``) and the whole
        campaign (``action`` = ``all``); columns as :data:`COLUMNS`.
    """
    rows = []
    actions = sorted(set(frame["action"]) - {"none"})
    for action in actions:
        part = frame[frame["action"] == action]
        cells = [c for c in CELL_ORDER if (part["cell"] == c).any()]
        for cell in cells:
            rows.append(_row(part[part["cell"] == cell], action, cell, economics, margin,
                             offer))
        rows.append(_row(part, action, "all", economics, margin, offer))
    if len(actions) > 1:
        rows.append(_row(frame[frame["action"].isin(actions)], "all", "all", economics, margin,
                         offer))
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out.insert(2, "read_out", "final" if final else "early")
    return out


#: The columns of :func:`measure_campaign` (after ``action``, ``cell``, ``read_out``).
COLUMNS = (
    "action", "cell", "treated", "control",
    "churn_treated", "churn_control", "predicted_churn_control", "predicted_churn_treated",
    "uplift", "uplift_low", "uplift_high", "assumed_uplift",
    "back_treated", "back_control", "reactivation", "reactivation_low", "reactivation_high",
    "assumed_reactivation",
    "purchases_per_treated", "purchases_per_control",
    "revenue_per_treated", "revenue_per_control",
    "revenue_saved_per_treated", "revenue_saved_per_treated_low",
    "revenue_saved_per_treated_high",
    "revenue_saved", "revenue_saved_low", "revenue_saved_high", "predicted_saved_revenue",
    "cost", "predicted_cost", "net_benefit", "net_benefit_low", "net_benefit_high",
    "predicted_net_benefit", "return_on_spend", "predicted_return_on_spend",
    "uplift_enough", "reactivation_enough", "conclusion",
)


def _row(part: pd.DataFrame, action: str, cell: str, economics, margin: float,
         offer: str) -> dict:
    """One line of the measurement: a cell, or cells pooled (stratified by action and cell)."""
    treated = (part["group"] == TREATMENT).to_numpy()
    control = (part["group"] == CONTROL).to_numpy()
    lapsed = (part["cell"] == CHURNED).to_numpy()
    live = ~lapsed
    strata = part["action"].astype(str) + "|" + part["cell"].astype(str)
    churned = part["churned"].to_numpy(dtype=bool)
    back = part["came_back"].to_numpy(dtype=bool)
    p = part["churn_probability"].to_numpy(dtype=float)
    u = part["assumed_uplift"].to_numpy(dtype=float)

    def rate(flag, group):
        n = int(group.sum())
        return float(flag[group].mean()) if n else np.nan

    def ratio(event, subset):
        """Risk ratio of ``event`` within ``subset`` over the strata, and whether each
        stratum is large enough."""
        counts = pd.DataFrame({"s": strata[subset].to_numpy(), "e": event[subset],
                               "t": treated[subset], "c": control[subset]})
        counts["et"], counts["ec"] = counts["e"] & counts["t"], counts["e"] & counts["c"]
        g = counts.groupby("s")[["et", "t", "ec", "c"]].sum()
        return risk_ratio(g["et"], g["t"], g["ec"], g["c"]), g

    (rr, rr_lo, rr_hi), live_counts = ratio(churned, live)
    # reactivation: 1 - RR of staying away
    (ra, ra_lo, ra_hi), lapsed_counts = ratio(~back, lapsed)
    enough_live = _enough(live_counts, live_counts["et"] + live_counts["ec"])
    # for the lapsed the informative events are the returns
    enough_lapsed = _enough(lapsed_counts, lapsed_counts["t"] + lapsed_counts["c"]
                            - lapsed_counts["et"] - lapsed_counts["ec"])
    revenue = part["revenue"].to_numpy(dtype=float)
    saved = saved_var = 0.0
    measured = False
    for _, rows in part.groupby(strata.to_numpy()).indices.items():
        diff, var = _difference(revenue[rows], treated[rows], control[rows])
        if np.isfinite(diff):
            n_t = int(treated[rows].sum())
            saved, saved_var, measured = saved + n_t * diff, saved_var + n_t ** 2 * var, True
    n_t, n_c = int(treated.sum()), int(control.sum())
    if not measured:
        saved = saved_var = np.nan
    per = saved / n_t if n_t else np.nan
    half = _Z * np.sqrt(saved_var)
    cost = _cost(part, treated, churned, back, lapsed, economics, offer)
    net = margin * saved - cost
    predicted_cost = float(part["expected_cost"].to_numpy()[treated].sum())
    predicted_net = float(part["expected_net_benefit"].to_numpy()[treated].sum())
    return {
        "action": action, "cell": cell, "treated": n_t, "control": n_c,
        "churn_treated": rate(churned, treated & live), "churn_control": rate(churned,
                                                                              control & live),
        "predicted_churn_control": float(np.mean(p[live])) if live.any() else np.nan,
        "predicted_churn_treated": (float(np.mean(p[live] * (1 - u[live]))) if live.any()
                                    else np.nan),
        "uplift": 1 - rr, "uplift_low": 1 - rr_hi, "uplift_high": 1 - rr_lo,
        "assumed_uplift": float(np.mean(u[live])) if live.any() else np.nan,
        "back_treated": rate(back, treated & lapsed), "back_control": rate(back,
                                                                           control & lapsed),
        "reactivation": 1 - ra, "reactivation_low": 1 - ra_hi, "reactivation_high": 1 - ra_lo,
        "assumed_reactivation": (float(part["assumed_reactivation"].to_numpy()[lapsed].mean())
                                 if lapsed.any() else np.nan),
        "purchases_per_treated": rate(part["purchases"].to_numpy(float), treated),
        "purchases_per_control": rate(part["purchases"].to_numpy(float), control),
        "revenue_per_treated": rate(revenue, treated),
        "revenue_per_control": rate(revenue, control),
        "revenue_saved_per_treated": per,
        "revenue_saved_per_treated_low": per - half / n_t if n_t else np.nan,
        "revenue_saved_per_treated_high": per + half / n_t if n_t else np.nan,
        "revenue_saved": saved, "revenue_saved_low": saved - half,
        "revenue_saved_high": saved + half,
        "predicted_saved_revenue": float(part["saved_revenue"].to_numpy()[treated].sum()),
        "cost": cost, "predicted_cost": predicted_cost,
        "net_benefit": net, "net_benefit_low": margin * (saved - half) - cost,
        "net_benefit_high": margin * (saved + half) - cost,
        "predicted_net_benefit": predicted_net,
        "return_on_spend": net / cost if cost > 0 else np.nan,
        "predicted_return_on_spend": predicted_net / predicted_cost if predicted_cost > 0
        else np.nan,
        "uplift_enough": enough_live, "reactivation_enough": enough_lapsed,
        "conclusion": _conclusion(n_c, (enough_live, 1 - rr_hi, 1 - rr_lo, "uplift"),
                                  (enough_lapsed, 1 - ra_hi, 1 - ra_lo, "reactivation")),
    }


def _cost(part, treated, churned, back, lapsed, economics, offer) -> float:
    """What the treatment cost: the contacts, and the incentives of those who took them (who
    stayed or came back, under a conditional offer; everyone treated otherwise)."""
    total = 0.0
    for action, terms in economics.items():
        mine = treated & (part["action"] == action).to_numpy()
        takers = (mine if offer == "unconditional"
                  else mine & np.where(lapsed, back, ~churned))
        total += terms["cost"] * mine.sum() + terms["incentive"] * takers.sum()
    return float(total)


def _enough(counts: pd.DataFrame, events: pd.Series) -> bool | None:
    """Whether the strata hold enough customers and events to say anything (None: no
    customers of this kind)."""
    if counts.empty:
        return None
    return bool(counts["t"].sum() >= MIN_GROUP and counts["c"].sum() >= MIN_GROUP
                and events.sum() >= MIN_EVENTS)


def _conclusion(n_control: int, *measures) -> str:
    """What the figures allow one to say, and no more: per measure (enough, low, high,
    name)."""
    if n_control == 0:
        return "no control group: uplift cannot be measured"
    said = []
    for enough, lo, hi, name in measures:
        if enough is None:
            continue
        if not enough or not np.isfinite(lo):
            said.append(f"{name}: too small to say")
        elif lo > 0:
            said.append(f"{name}: effect detected (95 % interval above 0)")
        elif hi < 0:
            said.append(f"{name}: harm detected (95 % interval below 0)")
        else:
            said.append(f"{name}: not distinguishable from none")
    return "; ".join(said)

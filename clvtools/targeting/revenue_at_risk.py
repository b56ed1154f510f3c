"""Revenue at risk and its two additive parts, as the concepts page (docs/concepts.rst)
defines them.

``revenue_at_risk = V - E`` (revenue if retained less expected revenue) splits into
``lapsed_revenue = (1 - P(alive)) V``, lost if the customer has already quietly left (win-back
territory), and ``preventable_revenue = P(alive) V - E``, lost from customers still buying who
will leave within the horizon (retention territory).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["involuntary_share", "revenue_at_risk"]

#: Relative slack for rounding: E <= P(alive) V holds exactly in theory.
_TOLERANCE = 1e-9


def revenue_at_risk(p_alive, revenue_if_retained, expected_revenue) -> pd.DataFrame:
    """Revenue at risk per customer, with its lapsed and preventable parts.

    Parameters
    ----------
    p_alive : array_like or Series, shape (n,)
        P(alive) at the observation end.
    revenue_if_retained : array_like or Series, shape (n,)
        V, discounted revenue over the horizon if the customer keeps buying (currency).
    expected_revenue : array_like or Series, shape (n,)
        E, discounted expected revenue over the horizon (currency), E <= P(alive) V.

    Returns
    -------
    pandas.DataFrame, shape (n, 3)
        ``revenue_at_risk``, ``lapsed_revenue``, ``preventable_revenue`` (currency, >= 0), which
        add up: revenue_at_risk = lapsed_revenue + preventable_revenue. Indexed like the
        Series given.
    """
    index = next((v.index for v in (p_alive, revenue_if_retained, expected_revenue)
                  if isinstance(v, pd.Series)), None)
    p = np.asarray(p_alive, dtype=float)
    v = np.asarray(revenue_if_retained, dtype=float)
    e = np.asarray(expected_revenue, dtype=float)
    if np.any(e > v * (1 + _TOLERANCE) + _TOLERANCE):
        raise ValueError("expected revenue exceeds revenue if retained: check the value model")
    lapsed = (1.0 - p) * v
    # rounding can make P(alive) V - E a hair negative for customers certain to stay
    preventable = np.maximum(p * v - e, 0.0)
    return pd.DataFrame(
        {"revenue_at_risk": lapsed + preventable, "lapsed_revenue": lapsed,
         "preventable_revenue": preventable},
        index=index,
    )


def _reason_key(reason: str) -> str:
    return "_".join(str(reason).strip().lower().replace("-", " ").split())


def involuntary_share(incidence: pd.DataFrame, horizon: float,
                      involuntary: list[str]) -> dict | None:
    """The share of ends within the horizon that are involuntary (non-payment, ...), which a
    retention offer does not address.

    Parameters
    ----------
    incidence : pandas.DataFrame
        Aalen-Johansen cumulative incidence per reason (``segment``, ``time``, ``reason``,
        ``cumulative_incidence``; reason ``all`` is the all-cause incidence), as
        :func:`clvtools.survival.competing_risks.cumulative_incidence` gives it.
    horizon : float
        In the table's time units.
    involuntary : list of str
        The involuntary reasons; case, spaces and hyphens are ignored.

    Returns
    -------
    dict or None
        ``involuntary_share`` = F_involuntary(h) / F_all(h) over every segment together,
        ``involuntary_reasons`` found (comma-separated), ``ended_within_horizon`` = F_all(h);
        None when no reason given is involuntary or nothing ended within the horizon.
    """
    keys = {_reason_key(r) for r in involuntary}
    table = incidence[(incidence["segment"] == "all") & (incidence["time"] <= horizon)]
    if table.empty:
        return None
    at = table.sort_values("time").groupby("reason")["cumulative_incidence"].last()
    found = [r for r in at.index if r != "all" and _reason_key(r) in keys]
    total = float(at.get("all", at.drop("all", errors="ignore").sum()))
    if not found or total <= 0:
        return None
    return {"involuntary_share": float(at[found].sum()) / total,
            "involuntary_reasons": ", ".join(sorted(found)), "ended_within_horizon": total}

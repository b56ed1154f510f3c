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

__all__ = ["revenue_at_risk"]

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

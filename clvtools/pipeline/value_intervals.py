"""Each customer's value with its uncertainty: 95 % intervals of ``expected_revenue`` and
``revenue_if_retained`` in customers.csv (the ``customer_intervals`` setting).

The interval is that of the estimate, the uncertainty the value and spend models' fitted
parameters carry into each customer's value (the CLV "with its uncertainty" of DESIGN.md),
not the spread of what the customer will actually spend (that randomness is in the
forecast's intervals, for totals). By the delta method: the value's gradient with respect to
the parameters (forward differences, one scoring of every customer per parameter) and their
covariance give its standard error ``se``; the interval is taken on the log scale,
``value * exp(+-1.96 se / value)``, so that it stays positive and skews as a value does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..forecast import delta_variance
from .value_models import ValueModels, models_at, parameters, score_customers

__all__ = ["INTERVAL_COLUMNS", "value_intervals"]

#: The columns :func:`value_intervals` adds, in customers.csv's order.
INTERVAL_COLUMNS = ("revenue_if_retained_lo95", "revenue_if_retained_hi95",
                    "expected_revenue_lo95", "expected_revenue_hi95")
_Z = float(stats.norm.ppf(0.975))


def value_intervals(models: ValueModels, rfm: pd.DataFrame, scores: pd.DataFrame, *,
                    horizon: float, time_unit_days: float, discount_rate: float
                    ) -> pd.DataFrame:
    """95 % intervals of each customer's revenue if retained and expected revenue.

    Parameters
    ----------
    models : ValueModels
        The fitted purchase and spend models.
    rfm : pandas.DataFrame, shape (n, k)
        The RFM summary the models scored.
    scores : pandas.DataFrame, shape (n, ...)
        Their scores (:func:`score_customers`): the values the intervals are around.
    horizon, time_unit_days, discount_rate
        As for :func:`score_customers`.

    Returns
    -------
    pandas.DataFrame, shape (n, 4)
        :data:`INTERVAL_COLUMNS`, indexed like ``rfm`` (currency, discounted as the values).
        Both bounds equal the value where the covariance is not finite (no interval can be
        given) and 0 where the value is 0.
    """
    theta, cov, k = parameters(models)
    terms = dict(horizon=horizon, time_unit_days=time_unit_days, discount_rate=discount_rate)

    def evaluate(th):
        moved = score_customers(models_at(models, th, k), rfm, **terms)
        return {c: moved[c].to_numpy(float) for c in ("revenue_if_retained", "expected_revenue")}

    variance = delta_variance(evaluate, theta, cov)
    out = {}
    for column in ("revenue_if_retained", "expected_revenue"):
        value = scores[column].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(value > 0, _Z * np.sqrt(variance[column]) / value, 0.0)
        out[f"{column}_lo95"] = value * np.exp(-spread)
        out[f"{column}_hi95"] = value * np.exp(spread)
    return pd.DataFrame(out, index=rfm.index)[list(INTERVAL_COLUMNS)]

"""The proportional-hazards check: Schoenfeld residual tests per covariate, with advice.

lifelines' :func:`~lifelines.statistics.proportional_hazard_test` took 12.9 s at 100k rows (its
Schoenfeld residuals are a Python loop that grows an array row by row). The same statistic is
computed here with vectorised Efron Schoenfeld residuals (``_cox_math``) on every row of the
fitted model, in well under a second at 1M rows; tests check it against lifelines.

On hundreds of thousands of rows the test flags departures too small to matter: a "violated"
verdict says the effect changes over time, not that it changes much.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._cox_math import schoenfeld_residuals

__all__ = ["ph_check", "PH_COLUMNS"]

PH_COLUMNS = ["ph_statistic", "ph_p_value", "ph_verdict", "ph_advice"]


def _advice(feature: str, variable: str, is_dummy: bool) -> str:
    if is_dummy:
        return (
            f"the effect of {variable!r} changes over time: stratify on it "
            f"(strata=[{variable!r}]) or add an interaction of {feature!r} with log(time)"
        )
    return (
        f"the effect of {feature!r} changes over time: add an interaction with log(time), "
        f"or bin it and stratify on the bins"
    )


def ph_check(
    x: np.ndarray,
    t: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    beta: np.ndarray,
    naive_cov: np.ndarray,
    *,
    features: list[str],
    variables: dict[str, str],
    dummies: set[str],
    strata: np.ndarray | None = None,
    level: float = 0.05,
) -> pd.DataFrame:
    """Schoenfeld residual test of each covariate (Grambsch & Therneau 1994), rank time
    transform, as lifelines' :func:`~lifelines.statistics.proportional_hazard_test`.

    .. math:: T_j = \\frac{\\bigl(\\sum_i (g_i - \\bar g) s^*_{ij}\\bigr)^2}
              {d \\, V_{jj} \\sum_i (g_i - \\bar g)^2}

    with :math:`s^* = d \\, s V` the scaled Schoenfeld residuals of the :math:`d` events,
    :math:`V` the model-based covariance and :math:`g_i` the rank of the event time;
    :math:`T_j \\sim \\chi^2_1` under proportional hazards.

    Parameters
    ----------
    x : ndarray, shape (n, p)
        Design matrix.
    t, d, w : ndarray, shape (n,)
        Durations, events, weights.
    beta : ndarray, shape (p,)
    naive_cov : ndarray, shape (p, p)
    features : list of str
        Design column names.
    variables : dict
        Feature -> source variable (a dummy's categorical column).
    dummies : set of str
        Features that are dummies or binary (advice: stratify).
    strata : ndarray of int, optional
    level : float
        p-values below it give the verdict ``"violated"``.

    Returns
    -------
    DataFrame
        Index ``covariate``; columns ``ph_statistic`` (chi-square, 1 df), ``ph_p_value``,
        ``ph_verdict`` (``"ok"`` or ``"violated"``) and ``ph_advice``.
    """
    res, rows = schoenfeld_residuals(x, t, d, w, beta, strata)
    n_d = len(rows)
    scaled = n_d * res @ naive_cov
    g = np.arange(1, n_d + 1, dtype=float)
    g -= g.mean()
    stat = (g @ scaled) ** 2 / (n_d * np.diag(naive_cov) * (g @ g))
    p = stats.chi2.sf(stat, 1)
    out = pd.DataFrame({"ph_statistic": stat, "ph_p_value": p},
                       index=pd.Index(features, name="covariate"))
    violated = p < level
    out["ph_verdict"] = np.where(violated, "violated", "ok")
    out["ph_advice"] = [
        _advice(f, variables[f], f in dummies) if v else ""
        for f, v in zip(features, violated, strict=True)
    ]
    out.attrs["rows"] = len(t)
    return out

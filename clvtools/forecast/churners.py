"""Expected customers declared churned per month, from the churn model.

A live customer (not declared churned at the observation end) is declared churned once in
the horizon at most (the Cox model's event is the first declaration after the scoring
landmark): month by month, the probability of that is the drop of the customer's survival
curve ``S(t | x) = exp(-H_0(t) e^{(x - x_bar) beta})`` over the month, and the count in a
month (or the horizon) is a Bernoulli sum over customers. Where no Cox model could be fitted,
the churn probability is 1 - P(alive) (the value model's, :mod:`clvtools.pipeline.risk`); a
customer who has left is declared on the current declaration date (last purchase +
``churn_after``), so that probability falls in the month of that date.
"""
from __future__ import annotations

import numpy as np

__all__ = ["declared_by_month", "declared_at_date", "bernoulli_variance"]


def declared_by_month(survival: np.ndarray) -> np.ndarray:
    """P(churn declared in each month) from the survival curve at the month ends.

    Parameters
    ----------
    survival : numpy.ndarray, shape (n, M)
        P(not declared by the end of month m), non-increasing along a row, in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (n, M)
        Probabilities summing along a row to 1 - survival[:, -1].
    """
    survival = np.clip(np.asarray(survival, dtype=float), 0.0, 1.0)
    survival = np.minimum.accumulate(survival, axis=1)  # a step curve read at sorted times
    before = np.column_stack([np.ones(len(survival)), survival[:, :-1]])
    return before - survival


def declared_at_date(probability: np.ndarray, declaration: np.ndarray,
                     month_ends: np.ndarray) -> np.ndarray:
    """``probability`` placed in the month of each customer's declaration date.

    Parameters
    ----------
    probability : numpy.ndarray, shape (n,)
        P(churn declared) (NaN: a declared-churned customer, 0 here).
    declaration : numpy.ndarray, shape (n,)
        Current declaration date, time units after the observation end (> 0 for a live
        customer).
    month_ends : numpy.ndarray, shape (M,)
        Ends of the months, time units after the observation end.

    Returns
    -------
    numpy.ndarray, shape (n, M)
        Zero rows for declaration dates beyond the horizon.
    """
    n, m = len(probability), len(month_ends)
    month = np.searchsorted(month_ends, declaration, side="left")
    out = np.zeros((n, m))
    inside = (month < m) & np.isfinite(probability)
    out[np.flatnonzero(inside), month[inside]] = probability[inside]
    return out


def bernoulli_variance(by_month: np.ndarray) -> np.ndarray:
    """Variance of the count of declarations per month and over the horizon.

    Parameters
    ----------
    by_month : numpy.ndarray, shape (n, M)

    Returns
    -------
    numpy.ndarray, shape (n, M + 1)
        ``p (1 - p)`` per month, then for the horizon (``p`` its row sum: one declaration
        at most).
    """
    whole = by_month.sum(axis=1, keepdims=True)
    both = np.hstack([by_month, whole])
    return both * (1.0 - both)

"""Is the targeting any good? Profit measures of a ranking of customers against what followed.

Arrays in, numbers and frames out: the scores of an earlier date (churn probabilities, or any
ranking), the outcomes that followed (declared churn within the horizon, 1 or 0) and each
customer's value. The pipeline (:mod:`clvtools.pipeline.evaluation`) supplies them from an
out-of-time refit.

Profit of targeting a customer (Verbraken, Verbeke and Baesens 2013; the push economics of
:mod:`.allocation`): a contact costs ``f``; a churner accepts the offer with probability
``gamma`` and is then kept (worth ``clv``) and paid the incentive ``d``; a non-churner takes
the incentive and stays as they would have. For a conditional offer (the incentive paid by
those who stay)::

    churner     : gamma * (clv - d) - f
    non-churner : -(d + f)

and for an unconditional one (paid by everyone contacted): ``gamma * clv - f - d`` and
``-(f + d)``. Each is linear in gamma, ``gamma * slope + intercept``
(:func:`targeting_profit_lines`); with ``gamma`` the push uplift, ``clv`` the value lost by a
churner and ``p`` the realised churn (0/1) it is exactly :func:`.allocation.action_economics`'
net benefit (a test checks it). Targeting the top ``k`` of a ranking earns the sum over them.

- **MP** (``mpc_score``): the largest profit over the cut-offs of the ranking at a fixed
  acceptance rate, per customer of the base, and the share targeted there.
- **EMPC** (``empc_score``): the expectation of that maximum when gamma ~ Beta(alpha, beta),
  the cut-off chosen for each gamma (the paper's definition). Since the profit at every
  cut-off is linear in gamma, the maximum is the upper envelope of those lines (an upper
  convex hull), integrated exactly with the regularised incomplete beta function.

With a constant ``clv`` these equal ``empulse``'s ``mpc_score`` and ``empc_score``; with a
per-customer ``clv`` and an incentive proportional to it, MP at the mean acceptance rate
equals ``empulse``'s ``empb_score`` (which maximises the expected profit over the cut-offs,
an expectation inside the maximum). Ties in the scores cannot be split by a threshold: a
cut-off only falls between groups of equal scores, as in empulse.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import special
from scipy.spatial import ConvexHull, QhullError

__all__ = ["ACCEPTANCE_CONCENTRATION", "TOP_SHARE", "acceptance_beta", "targeting_profit_lines",
           "ranking_order", "mpc_score", "empc_score", "top_decile_lift", "gini_coefficient",
           "profit_curve", "ranking_measures", "plan_by_ranking", "lift_of_groups",
           "gini_of_groups", "measures_of_groups", "curve_frame"]

#: alpha + beta of the acceptance rate's Beta distribution: Verbraken et al.'s Beta(6, 14)
#: has mean 0.3 and this concentration; around another push uplift u it is Beta(20u, 20(1-u)).
ACCEPTANCE_CONCENTRATION = 20.0
#: The share of the ranking whose churn rate the lift compares with the base's (top decile).
TOP_SHARE = 0.1


def acceptance_beta(mean: float, concentration: float = ACCEPTANCE_CONCENTRATION
                    ) -> tuple[float, float]:
    """(alpha, beta) of the Beta distribution with the given mean and alpha + beta.

    Parameters
    ----------
    mean : float
        Mean acceptance rate (the push uplift), strictly between 0 and 1.
    concentration : float
        alpha + beta (> 0); larger is tighter around the mean.
    """
    if not 0.0 < mean < 1.0 or concentration <= 0:
        raise ValueError(f"The acceptance rate's mean must lie strictly between 0 and 1 and its "
                         f"concentration be positive. Got {mean} and {concentration}.")
    return mean * concentration, (1.0 - mean) * concentration


def targeting_profit_lines(y_true, clv, *, incentive_cost, contact_cost,
                           offer: str = "conditional") -> tuple[np.ndarray, np.ndarray]:
    """Profit of targeting each customer as ``gamma * slope + intercept``.

    Parameters
    ----------
    y_true : array_like of {0, 1}, shape (n,)
        1 for a churner (churn declared within the horizon that followed).
    clv : float or array_like, shape (n,)
        The value kept when a churner is retained (currency); only churners' values matter.
    incentive_cost : float or array_like, shape (n,)
        ``d``, paid by each customer who takes the offer (currency).
    contact_cost : float or array_like, shape (n,)
        ``f``, paid for each customer contacted (currency).
    offer : {"conditional", "unconditional"}
        Whether the incentive is paid only by those who stay.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray), each shape (n,)
        slope and intercept (currency).
    """
    y = _binary(y_true)
    n = len(y)
    clv, d, f = (np.broadcast_to(np.asarray(v, dtype=float), (n,))
                 for v in (clv, incentive_cost, contact_cost))
    if offer == "conditional":
        return y * (clv - d), -f - (1.0 - y) * d
    if offer == "unconditional":
        return y * clv, -f - d
    raise ValueError(f"offer must be 'conditional' or 'unconditional'. Got {offer!r} instead.")


def _binary(y_true) -> np.ndarray:
    y = np.asarray(y_true, dtype=float).reshape(-1)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must hold 0 (stayed) and 1 (churned) only.")
    return y


def ranking_order(y_score) -> np.ndarray:
    """Positions of the customers from the highest score down (ties in the customers' order),
    shape (n,); pass it as ``order`` to the functions below to sort a large base only once."""
    score = np.asarray(y_score, dtype=float).reshape(-1)
    if np.isnan(score).any():
        raise ValueError("y_score must have one number (no NaN) per customer.")
    return np.argsort(-score, kind="stable")


def _group_starts(y_score, order: np.ndarray) -> np.ndarray:
    """Start of each group of equal scores in ``order``, shape (groups,)."""
    ranked = np.asarray(y_score, dtype=float).reshape(-1)[order]
    return np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])


def _cutoff_lines(y_score, slope, intercept, order=None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers targeted and the summed slope and intercept at each cut-off of the ranking
    (0 = nobody, then after each group of tied scores, highest scores first), shape (m,)."""
    if len(np.asarray(y_score).reshape(-1)) != len(slope):
        raise ValueError("y_score must have one number (no NaN) per customer.")
    order = ranking_order(y_score) if order is None else order
    # a threshold cannot separate equal scores: cut only where the next score is lower
    edges = np.r_[_group_starts(y_score, order)[1:], len(order)]
    cumulative_slope = np.r_[0.0, np.cumsum(slope[order])[edges - 1]]
    cumulative_intercept = np.r_[0.0, np.cumsum(intercept[order])[edges - 1]]
    return np.r_[0, edges], cumulative_slope, cumulative_intercept


def mpc_score(y_true, y_score, *, clv, accept_rate, incentive_cost, contact_cost,
              offer: str = "conditional", order=None) -> tuple[float, float]:
    """Maximum profit (MP) of a ranking at a fixed acceptance rate.

    Parameters
    ----------
    y_true, clv, incentive_cost, contact_cost, offer
        As in :func:`targeting_profit_lines`.
    y_score : array_like, shape (n,)
        Higher is targeted first (a churn probability, or any ranking score).
    accept_rate : float
        gamma, the share of targeted churners who are kept (the push uplift).
    order : numpy.ndarray, shape (n,), optional
        :func:`ranking_order` of ``y_score``, when already computed.

    Returns
    -------
    (float, float)
        The maximum profit per customer of the base (currency) and the share of the base
        targeted at that maximum (the first, smallest, such cut-off).
    """
    slope, intercept = targeting_profit_lines(y_true, clv, incentive_cost=incentive_cost,
                                              contact_cost=contact_cost, offer=offer)
    return _max_profit(*_cutoff_lines(y_score, slope, intercept, order), accept_rate,
                       len(slope))


def _max_profit(n_targeted, a, b, accept_rate, n) -> tuple[float, float]:
    """MP per customer and its share from the cut-off lines of :func:`_cutoff_lines`."""
    profit = accept_rate * a + b
    best = int(np.argmax(profit))
    return float(profit[best] / n), float(n_targeted[best] / n)


def empc_score(y_true, y_score, *, clv, alpha, beta, incentive_cost, contact_cost,
               offer: str = "conditional", order=None) -> tuple[float, float]:
    """Expected maximum profit (EMPC) of a ranking, the acceptance rate ~ Beta(alpha, beta).

    Parameters
    ----------
    y_true, y_score, clv, incentive_cost, contact_cost, offer, order
        As in :func:`mpc_score`.
    alpha, beta : float
        The acceptance rate's Beta distribution (:func:`acceptance_beta`).

    Returns
    -------
    (float, float)
        E[max over cut-offs of the profit] per customer of the base (currency), and the
        expected share of the base targeted (the optimal cut-off averaged over gamma).
    """
    slope, intercept = targeting_profit_lines(y_true, clv, incentive_cost=incentive_cost,
                                              contact_cost=contact_cost, offer=offer)
    return _expected_max_profit(*_cutoff_lines(y_score, slope, intercept, order), alpha, beta,
                                len(slope))


def _expected_max_profit(n_targeted, a, b, alpha, beta, n) -> tuple[float, float]:
    """EMPC per customer and its expected share from the cut-off lines."""
    vertices = _upper_envelope(a, b)
    a, b, k = a[vertices], b[vertices], n_targeted[vertices]
    # vertex j is optimal for gamma between its breakpoints with its neighbours
    breaks = np.clip((b[:-1] - b[1:]) / (a[1:] - a[:-1]), 0.0, 1.0)
    lower, upper = np.r_[0.0, breaks], np.r_[breaks, 1.0]
    probability = special.betainc(alpha, beta, upper) - special.betainc(alpha, beta, lower)
    # E[gamma; lower < gamma < upper] = mean * (I_upper(alpha + 1, beta) - I_lower(alpha + 1, beta))
    partial_mean = alpha / (alpha + beta) * (special.betainc(alpha + 1, beta, upper)
                                             - special.betainc(alpha + 1, beta, lower))
    expected = float((a * partial_mean + b * probability).sum())
    return expected / n, float((k * probability).sum() / n)


def _upper_envelope(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of the points (a, b) on the upper convex hull, by increasing a: the cut-offs
    that are optimal for some gamma (the maximum of gamma * a + b is on this chain)."""
    # only the chain from the best cut-off at gamma = 0 to the best at gamma = 1 matters:
    # a point left of the first or right of the last, or under the chord between them, is
    # never the maximum for a gamma in [0, 1] (Akl-Toussaint's filter, in O(n))
    top_b = np.flatnonzero(b == b.max())
    first = top_b[np.argmin(a[top_b])]
    top_ab = np.flatnonzero(a + b == (a + b).max())
    last = top_ab[np.argmax(a[top_ab])]
    keep = (a >= a[first]) & (a <= a[last]) & (
        (b - b[first]) * (a[last] - a[first]) >= (b[last] - b[first]) * (a - a[first]))
    if (np.diff(b) <= 0).all():
        # costs only ever add up (b never rises with k): a cut-off whose a is not above every
        # earlier one is dominated by that earlier one
        keep[1:] &= a[1:] > np.maximum.accumulate(a)[:-1]
    keep[[first, last]] = True
    candidates = np.flatnonzero(keep)
    if len(candidates) > 64:
        # the hull in C first (a million cut-offs), the exact chain below on its vertices
        try:
            hull = ConvexHull(np.column_stack([a[candidates], b[candidates]]))
            candidates = candidates[np.unique(hull.vertices)]
        except QhullError:  # collinear or too few distinct points: the chain handles them
            pass
    order = candidates[np.lexsort((-b[candidates], a[candidates]))]
    chain: list[int] = []
    for i in order:
        if chain and a[chain[-1]] == a[i]:
            continue  # same slope, lower or equal intercept: never the maximum
        while len(chain) >= 2:
            j, k = chain[-2], chain[-1]
            # k is under the segment j-i (or on it): drop it
            if (a[k] - a[j]) * (b[i] - b[j]) - (b[k] - b[j]) * (a[i] - a[j]) >= 0:
                chain.pop()
            else:
                break
        chain.append(int(i))
    return np.asarray(chain, dtype=int)


def top_decile_lift(y_true, y_score, share: float = TOP_SHARE, *, order=None) -> float:
    """Churn rate among the top ``share`` of the ranking over the base's churn rate.

    Ties at the boundary count in proportion (the expectation over random tie-breaking).
    NaN when nobody churned. ``order`` as in :func:`mpc_score`.
    """
    y = _binary(y_true)
    if y.sum() == 0:
        return float("nan")
    order = ranking_order(y_score) if order is None else order
    starts = _group_starts(y_score, order)
    return lift_of_groups(np.diff(np.r_[starts, len(y)]), np.add.reduceat(y[order], starts),
                          share)


def lift_of_groups(customers, churners, share: float = TOP_SHARE) -> float:
    """:func:`top_decile_lift` from the groups of tied scores, highest score first.

    Parameters
    ----------
    customers, churners : array_like, shape (groups,)
        Customers and churners in each group (counts).
    share : float
        The top share of the base.
    """
    counts = np.asarray(customers, dtype=float)
    positives = np.asarray(churners, dtype=float)
    n, total = counts.sum(), positives.sum()
    if total == 0:
        return float("nan")
    ends = np.cumsum(counts)
    starts = ends - counts
    top = share * n
    # the group of tied scores that holds the boundary, and the churners ranked before it
    g = int(np.searchsorted(ends, top, side="left"))
    before = positives[:g].sum()
    caught = before + (top - starts[g]) * (positives[g] / counts[g])
    return float((caught / top) / (total / n))


def gini_coefficient(y_true, y_score, *, order=None) -> float:
    """2 AUC - 1 of the scores against the outcomes (ties count one half; NaN with one
    class). ``order`` as in :func:`mpc_score`."""
    y = _binary(y_true)
    order = ranking_order(y_score) if order is None else order
    starts = _group_starts(y_score, order)
    return gini_of_groups(np.diff(np.r_[starts, len(y)]), np.add.reduceat(y[order], starts))


def gini_of_groups(customers, churners) -> float:
    """:func:`gini_coefficient` from the groups of tied scores, highest score first
    (``customers`` and ``churners`` per group, shape (groups,))."""
    counts = np.asarray(customers, dtype=float)
    pos = np.asarray(churners, dtype=float)
    positives = pos.sum()
    negatives = counts.sum() - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    neg = counts - pos
    # a churner beats the stayers of every lower group, and half of those tied with it
    below = negatives - np.cumsum(neg)
    auc = (pos * (below + 0.5 * neg)).sum() / (positives * negatives)
    return float(2.0 * auc - 1.0)


def profit_curve(net_benefit, rankings: Mapping[str, np.ndarray], *, y_true=None,
                 shares=None, orders: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Realised net benefit of targeting the top share of each ranking.

    Parameters
    ----------
    net_benefit : array_like, shape (n,)
        Each customer's realised net benefit if targeted (currency).
    rankings : mapping of str to array_like, shape (n,)
        Name -> score (higher first; ties kept in the customers' order).
    y_true : array_like of {0, 1}, shape (n,), optional
        Adds the churners among the targeted.
    shares : array_like, optional
        Shares of the base targeted; default 0, 0.01, ..., 1.
    orders : mapping of str to numpy.ndarray, optional
        :func:`ranking_order` of each ranking, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per ranking and share: ``ranking``, ``share_targeted``,
        ``customers_targeted``, ``net_benefit`` (currency, summed over the targeted) and,
        with ``y_true``, ``churners_targeted`` and ``share_of_churners``.
    """
    benefit = np.asarray(net_benefit, dtype=float).reshape(-1)
    n = len(benefit)
    shares = np.linspace(0.0, 1.0, 101) if shares is None else np.asarray(shares, dtype=float)
    k = np.round(shares * n).astype(int)
    y = None if y_true is None else _binary(y_true)
    frames = []
    for name, score in rankings.items():
        order = orders[name] if orders is not None else ranking_order(score)
        frames.append(curve_frame(
            name, shares, k, np.r_[0.0, np.cumsum(benefit[order])][k],
            None if y is None else np.r_[0.0, np.cumsum(y[order])][k],
            None if y is None else y.sum()))
    return pd.concat(frames, ignore_index=True)


def curve_frame(name: str, shares: np.ndarray, k: np.ndarray, net_benefit: np.ndarray,
                caught: np.ndarray | None = None, churners: float | None = None
                ) -> pd.DataFrame:
    """One ranking's rows of :func:`profit_curve` from its sums at each cut-off.

    Parameters
    ----------
    name : str
    shares : numpy.ndarray, shape (m,)
        Shares of the base targeted.
    k : numpy.ndarray of int, shape (m,)
        Customers targeted at each share (``round(share * n)``).
    net_benefit : numpy.ndarray, shape (m,)
        Realised net benefit of the top ``k`` (currency).
    caught : numpy.ndarray, shape (m,), optional
        Churners among the top ``k``.
    churners : float, optional
        Churners in the base.
    """
    frame = pd.DataFrame({"ranking": name, "share_targeted": shares, "customers_targeted": k,
                          "net_benefit": net_benefit})
    if caught is not None:
        frame["churners_targeted"] = caught.astype(int)
        frame["share_of_churners"] = caught / churners if churners else np.nan
    return frame


def ranking_measures(y_true, rankings: Mapping[str, np.ndarray], *, clv, incentive_cost,
                     contact_cost, accept_rate, concentration=ACCEPTANCE_CONCENTRATION,
                     offer: str = "conditional",
                     orders: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """MP, EMPC (with their optimal shares), top-decile lift and Gini of each ranking.

    Parameters
    ----------
    y_true, clv, incentive_cost, contact_cost, offer
        As in :func:`targeting_profit_lines`.
    rankings : mapping of str to array_like, shape (n,)
    accept_rate : float
        The mean acceptance rate (push uplift): MP's gamma and the Beta's mean.
    concentration : float
        alpha + beta of the Beta (:data:`ACCEPTANCE_CONCENTRATION`).
    orders : mapping of str to numpy.ndarray, optional
        :func:`ranking_order` of each ranking, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per ranking and measure: ``ranking``, ``measure`` (``mp``,
        ``mp_share_targeted``, ``empc``, ``empc_share_targeted``, ``top_decile_lift``,
        ``gini``), ``value`` (profit per customer of the base in currency, shares in [0, 1]).
    """
    alpha, beta = acceptance_beta(accept_rate, concentration)
    money = dict(clv=clv, incentive_cost=incentive_cost, contact_cost=contact_cost, offer=offer)
    rows = []
    slope, intercept = targeting_profit_lines(y_true, **money)
    n = len(slope)
    for name, score in rankings.items():
        order = orders[name] if orders is not None else ranking_order(score)
        lines = _cutoff_lines(score, slope, intercept, order)   # shared by MP and EMPC
        values = _profit_values(lines, n, accept_rate, alpha, beta)
        values["top_decile_lift"] = top_decile_lift(y_true, score, order=order)
        values["gini"] = gini_coefficient(y_true, score, order=order)
        rows += [{"ranking": name, "measure": m, "value": v} for m, v in values.items()]
    return pd.DataFrame(rows)


def _profit_values(lines, n: int, accept_rate: float, alpha: float, beta: float) -> dict:
    """MP and EMPC with their shares from the cut-off lines of :func:`_cutoff_lines`."""
    mp, mp_share = _max_profit(*lines, accept_rate, n)
    empc, empc_share = _expected_max_profit(*lines, alpha, beta, n)
    return {"mp": mp, "mp_share_targeted": mp_share, "empc": empc,
            "empc_share_targeted": empc_share}


def measures_of_groups(customers, churners, slope, intercept, *, accept_rate: float,
                       concentration: float = ACCEPTANCE_CONCENTRATION) -> dict[str, float]:
    """:func:`ranking_measures`' figures of one ranking from its groups of tied scores
    (highest score first), for a base too large to hold (a chunked run sums each group in
    DuckDB).

    Parameters
    ----------
    customers, churners : array_like, shape (groups,)
        Customers and churners in each group (counts).
    slope, intercept : array_like, shape (groups,)
        The sums over each group of :func:`targeting_profit_lines`' lines (currency).
    accept_rate, concentration
        As in :func:`ranking_measures`.

    Returns
    -------
    dict of str to float
        ``mp``, ``mp_share_targeted``, ``empc``, ``empc_share_targeted``,
        ``top_decile_lift``, ``gini``. The cumulative lines are summed by group here, by
        customer in :func:`ranking_measures`: the two agree to rounding (about 1e-12
        relative), not bit for bit.
    """
    alpha, beta = acceptance_beta(accept_rate, concentration)
    counts = np.asarray(customers, dtype=np.int64)
    lines = (np.r_[0, np.cumsum(counts)], np.r_[0.0, np.cumsum(np.asarray(slope, float))],
             np.r_[0.0, np.cumsum(np.asarray(intercept, float))])
    values = _profit_values(lines, int(counts.sum()), accept_rate, alpha, beta)
    values["top_decile_lift"] = lift_of_groups(counts, churners)
    values["gini"] = gini_of_groups(counts, churners)
    return values


def plan_by_ranking(score, *, push: int, pull: int, eligible=None, order=None) -> np.ndarray:
    """A naive plan with the model plan's counts: push to the top ``push`` of a ranking,
    pull to the next ``pull``, nothing to the rest.

    Parameters
    ----------
    score : array_like, shape (n,)
        Higher first (ties in the customers' order).
    push, pull : int
        How many customers get each action.
    eligible : array_like of bool, shape (n,), optional
        Only these may be chosen (the contactable customers).
    order : numpy.ndarray, shape (n,), optional
        :func:`ranking_order` of ``score``, when already computed.

    Returns
    -------
    numpy.ndarray of object, shape (n,)
        ``"push"``, ``"pull"`` or ``"none"`` per customer: three str objects shared by every
        row (a ``<U4`` array put in a DataFrame becomes one str object per row, about 50
        bytes each).
    """
    order = ranking_order(score) if order is None else order
    action = np.empty(len(order), dtype=object)
    action.fill("none")     # one object for every row (np.full would copy it into each)
    if eligible is not None:
        order = order[np.asarray(eligible, dtype=bool)[order]]
    action[order[:push]] = "push"
    action[order[push:push + pull]] = "pull"
    return action

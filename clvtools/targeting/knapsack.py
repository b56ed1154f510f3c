"""The two knapsacks of the push/pull plan, exact when small and greedy when large.

A 0/1 knapsack (push under a push budget: each candidate's value is its gain of push over
its best alternative, its weight the expected spend on push) and a multiple-choice knapsack
(push or pull or nothing under a total budget). Up to :data:`EXACT_MAX_CUSTOMERS` candidates
they are solved exactly by scipy's MILP (HiGHS, relative gap 0); beyond, by the greedy
solution of the LP relaxation (for the multiple-choice knapsack, on each customer's convex
hull of options: Sinha and Zoltners, Operations Research 27(3), 1979), which has at most one
fractional customer, rounded down. The LP optimum bounds the optimum, so the reported gap
(bound minus the plan's value) is at most that one customer's increment. The size limit is a
count, not a timer, so that the plan never depends on the machine's speed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["EXACT_MAX_CUSTOMERS", "KnapsackResult", "budget_with_slack", "hull_edges",
           "knapsack_01", "multiple_choice_knapsack"]

#: Most candidate customers for which the knapsacks are solved exactly (MILP).
EXACT_MAX_CUSTOMERS = 2_000
#: Relative slack allowed on a budget for floating-point sums.
_SLACK = 1e-12


@dataclass(frozen=True)
class KnapsackResult:
    """A knapsack's solution.

    Attributes
    ----------
    choice : numpy.ndarray of int, shape (n,)
        0/1 knapsack: 1 where the item is taken. Multiple choice: 0 nothing, else 1 + the
        option taken (column of the value matrix).
    solver : str
        ``"all_fit"`` (the unconstrained optimum fits), ``"milp"`` or ``"greedy_lp"``.
    objective : float
        The total value of the solution.
    bound : float
        An upper bound on the optimum (the LP bound for ``greedy_lp``, else the objective).
    gap : float
        ``bound - objective`` (>= 0).
    """

    choice: np.ndarray
    solver: str
    objective: float
    bound: float
    gap: float

    @property
    def chosen(self) -> np.ndarray:
        """Positions of the items taken (0/1 knapsack)."""
        return np.flatnonzero(self.choice)


def budget_with_slack(capacity: float) -> float:
    """The most total weight that fits ``capacity``, floating-point sums allowed for (same
    unit as ``capacity``)."""
    return capacity * (1 + _SLACK) + _SLACK


def _fits(total: float, capacity: float) -> bool:
    return total <= budget_with_slack(capacity)


def knapsack_01(value: np.ndarray, weight: np.ndarray, capacity: float) -> KnapsackResult:
    """Most total value within a capacity, each item taken or not.

    Parameters
    ----------
    value : numpy.ndarray, shape (n,)
        Item values (> 0).
    weight : numpy.ndarray, shape (n,)
        Item weights (>= 0; same unit as ``capacity``).
    capacity : float

    Returns
    -------
    KnapsackResult
    """
    value, weight = np.asarray(value, float), np.asarray(weight, float)
    n = len(value)
    if _fits(float(weight.sum()), capacity):
        return _result(np.ones(n, dtype=int), value[None, :].T, "all_fit")
    if n <= EXACT_MAX_CUSTOMERS:
        res = milp(-value, integrality=np.ones(n), bounds=Bounds(0, 1),
                   constraints=LinearConstraint(weight[None, :], -np.inf, capacity),
                   options={"mip_rel_gap": 0.0})
        if res.status == 0:
            x = np.round(res.x).astype(int)
            return _result(_repair(x, value, weight, capacity), value[:, None], "milp")
    # greedy: best value per unit of weight first (free items first); stable for ties
    with np.errstate(divide="ignore"):
        ratio = np.where(weight > 0, value / weight, np.inf)
    order = np.argsort(-ratio, kind="stable")
    used = np.cumsum(weight[order])
    k = int(np.searchsorted(used, budget_with_slack(capacity), side="right"))
    x = np.zeros(n, dtype=int)
    x[order[:k]] = 1
    objective = float(value[order[:k]].sum())
    bound = objective
    if k < n:   # the fractional item of the LP optimum, rounded down
        room = capacity - (used[k - 1] if k else 0.0)
        bound += value[order[k]] * max(room, 0.0) / weight[order[k]]
    return KnapsackResult(x, "greedy_lp", objective, bound, bound - objective)


def _repair(x: np.ndarray, value: np.ndarray, weight: np.ndarray, capacity: float) -> np.ndarray:
    """Drop the least efficient items until a rounded MILP solution fits (rarely needed)."""
    with np.errstate(divide="ignore"):
        ratio = np.where(weight > 0, value / weight, np.inf)
    for i in np.argsort(ratio, kind="stable"):
        if _fits(float(weight @ x), capacity):
            break
        x[i] = 0
    return x


def _result(choice: np.ndarray, value: np.ndarray, solver: str) -> KnapsackResult:
    """An exact result: ``value`` has one column per option, ``choice`` 0 or 1 + option."""
    rows = np.flatnonzero(choice)
    objective = float(value[rows, choice[rows] - 1].sum())
    return KnapsackResult(choice, solver, objective, objective, 0.0)


def multiple_choice_knapsack(value: np.ndarray, cost: np.ndarray,
                             budget: float) -> KnapsackResult:
    """Most total value within a budget, at most one option per customer.

    Parameters
    ----------
    value : numpy.ndarray, shape (n, m)
        Value of each customer's options; -inf (or <= 0) for an option that is closed.
    cost : numpy.ndarray, shape (n, m)
        Cost of each option (>= 0, currency).
    budget : float

    Returns
    -------
    KnapsackResult
        ``choice`` 0 (nothing) or 1 + the option taken.
    """
    value, cost = np.asarray(value, float), np.asarray(cost, float)
    n, m = value.shape
    open_ = value > 0
    best = np.where(open_, value, -np.inf)
    # the unconstrained optimum: each customer's best option (the first on a tie)
    unconstrained = np.where(open_.any(axis=1), 1 + np.argmax(best, axis=1), 0)
    rows = np.flatnonzero(unconstrained)
    if _fits(float(cost[rows, unconstrained[rows] - 1].sum()), budget):
        return _result(unconstrained, value, "all_fit")
    cand = np.flatnonzero(open_.any(axis=1))
    if len(cand) <= EXACT_MAX_CUSTOMERS:
        choice = _mck_milp(value[cand], cost[cand], open_[cand], budget)
        if choice is not None:
            out = np.zeros(n, dtype=int)
            out[cand] = choice
            return _result(out, value, "milp")
    return _mck_greedy(value, cost, open_, budget)


def _mck_milp(value, cost, open_, budget) -> np.ndarray | None:
    """Exact multiple-choice knapsack over the open options; None if HiGHS fails."""
    rows, cols = np.nonzero(open_)              # one binary variable per open option
    k = len(rows)
    one_each = sparse.csr_array((np.ones(k), (rows, np.arange(k))), shape=(len(value), k))
    res = milp(-value[rows, cols], integrality=np.ones(k), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(one_each, -np.inf, 1),
                            LinearConstraint(cost[rows, cols][None, :], -np.inf, budget)],
               options={"mip_rel_gap": 0.0})
    if res.status != 0:
        return None
    x = _repair(np.round(res.x).astype(int), value[rows, cols], cost[rows, cols], budget)
    choice = np.zeros(len(value), dtype=int)
    choice[rows[x == 1]] = 1 + cols[x == 1]
    return choice


def _mck_greedy(value, cost, open_, budget) -> KnapsackResult:
    """Greedy LP relaxation on each customer's upper convex hull of (cost, value) points,
    (0, 0) included: the hull's edges (:func:`hull_edges`), taken by falling value per unit
    of cost; at most one is fractional, and it is rounded down."""
    n = len(value)
    cust, num, target, dc, dv, eff = hull_edges(value, cost, open_)
    # by falling efficiency; a customer's two edges in hull order (its efficiencies fall)
    order = np.lexsort((num, cust, -eff))
    used = np.cumsum(dc[order])
    k = int(np.searchsorted(used, budget_with_slack(budget), side="right"))
    taken = order[:k]
    choice = np.zeros(n, dtype=int)
    for edge in (0, 1):     # a customer's second edge, when taken, is where it ends
        t = taken[num[taken] == edge]
        choice[cust[t]] = 1 + target[t]
    objective = float(dv[taken].sum())
    bound = objective
    if k < len(order):
        room = budget - (used[k - 1] if k else 0.0)
        bound += dv[order[k]] * max(room, 0.0) / dc[order[k]]
    return KnapsackResult(choice, "greedy_lp", objective, bound, bound - objective)


def hull_edges(value: np.ndarray, cost: np.ndarray, open_: np.ndarray) -> tuple[np.ndarray, ...]:
    """The edges of each customer's upper convex hull of (cost, value) points, (0, 0)
    included, which the greedy multiple-choice knapsack takes by falling efficiency. A
    customer's edges depend on their own row only: a Spark run computes them per partition
    and ranks them globally (:mod:`clvtools.scale.spark_budget`).

    Parameters
    ----------
    value, cost : numpy.ndarray, shape (n, 2)
        Each customer's two options, as :func:`multiple_choice_knapsack` takes them.
    open_ : numpy.ndarray of bool, shape (n, 2)

    Returns
    -------
    tuple of numpy.ndarray, each shape (e,)
        Per edge: its customer's row, its number along the hull (0, then 1), the option it
        ends at (column of ``value``), its cost and value increments (currency) and its
        efficiency (value per unit of cost; inf when free).
    """
    n, m = value.shape
    if m != 2:
        raise ValueError(f"The greedy multiple-choice knapsack takes two options. Got {m}.")
    v = np.where(open_, value, 0.0)
    # per customer: the cheaper open option (on equal cost, the more valuable) and the other
    a_cheap = ~open_[:, 1] | (open_[:, 0] & ((cost[:, 0] < cost[:, 1])
                                             | ((cost[:, 0] == cost[:, 1]) & (v[:, 0] >= v[:, 1]))))
    jc = np.where(a_cheap, 0, 1)
    je = 1 - jc
    rows = np.arange(n)
    cc, vc, ce, ve = cost[rows, jc], v[rows, jc], cost[rows, je], v[rows, je]
    both = open_.all(axis=1)
    better = both & (ve > vc)               # else the dearer option is dominated
    # two edges when the cheap option is strictly more efficient than the step up from it
    # (cross-multiplied: a free cheap option counts as infinitely efficient)
    two = better & (vc * (ce - cc) > (ve - vc) * cc)
    one_to_dear = better & ~two             # the cheap option lies under the chord: skip it
    first = open_.any(axis=1)
    t1 = np.where(one_to_dear, je, jc)
    c1 = np.where(one_to_dear, ce, cc)
    v1 = np.where(one_to_dear, ve, vc)
    i1, i2 = np.flatnonzero(first), np.flatnonzero(two)
    cust = np.concatenate([i1, i2])
    num = np.concatenate([np.zeros(len(i1), int), np.ones(len(i2), int)])
    target = np.concatenate([t1[i1], je[i2]])
    dc = np.concatenate([c1[i1], ce[i2] - cc[i2]])
    dv = np.concatenate([v1[i1], ve[i2] - vc[i2]])
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(dc > 0, dv / np.where(dc > 0, dc, 1.0), np.inf)
    return cust, num, target, dc, dv, eff

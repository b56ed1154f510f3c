"""Push versus pull retention: the economics of an action per customer, and the plan.

An action a (push: proactive, costly; pull: passive, cheap) has a contact cost f paid for
everyone contacted, an incentive d paid by those who take it, a retention uplift u (the share
of would-be churners it keeps, applied to the preventable revenue) and a reactivation rate w
(applied to the lapsed revenue). Per customer (docs/concepts.rst, "Decisions")::

    saved        = u * preventable + w * lapsed
    conditional  : net = margin * saved - f - d * P(stay | a),  P(stay | a) = 1 - p * (1 - u)
    unconditional: net = margin * saved - f - d

with p the churn probability. A customer already declared churned (p empty) can only be
reactivated: saved = w * lapsed, and a conditional incentive is paid with probability w.

:func:`allocate` chooses push, pull or nothing per customer under a push capacity (count), a
push budget or a total budget (expected spend); the knapsacks are in :mod:`.knapsack`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .knapsack import knapsack_01, multiple_choice_knapsack

__all__ = ["Action", "Allocation", "ECONOMICS_COLUMNS", "EconomicsInputs", "OFFERS", "Solution",
           "action_economics", "allocate", "economics_arrays", "net_benefit", "push_gain",
           "solve", "solve_economics"]

OFFERS = ("conditional", "unconditional")


@dataclass(frozen=True)
class Action:
    """A retention action.

    Attributes
    ----------
    name : str
        ``"push"`` or ``"pull"``.
    cost : float
        Contact cost f, paid for every customer contacted (currency, >= 0).
    incentive : float
        Incentive d, paid by those who take the offer (currency, >= 0).
    uplift : float, mapping of str to float, or pandas.Series
        u in [0, 1]: one number, a number per matrix cell (needs the ``cell`` column; a
        missing ``churned`` entry is 0, as uplift does not apply to them), or a number per
        customer (indexed like the customers).
    reactivation : float
        w in [0, 1], the share of the lapsed revenue the action wins back.
    """

    name: str
    cost: float
    incentive: float
    uplift: float | Mapping[str, float] | pd.Series = 0.0
    reactivation: float = 0.0

    def uplift_of(self, customers: pd.DataFrame) -> np.ndarray:
        """u per customer, shape (n,)."""
        u = self.uplift
        if isinstance(u, pd.Series) and u.index.equals(customers.index):
            out = u.to_numpy(dtype=float)
        elif isinstance(u, pd.Series):
            missing = ~customers.index.isin(u.index)
            if missing.any():
                raise ValueError(f"The {self.name} uplift is missing for {int(missing.sum())} "
                                 "customers: give it for every customer.")
            out = u.reindex(customers.index).to_numpy(dtype=float)
        elif isinstance(u, Mapping):
            if "cell" not in customers:
                raise ValueError(f"The {self.name} uplift is given by cell: the customers need "
                                 "a 'cell' column (value_risk_matrix).")
            table = {"churned": 0.0, **{str(k): float(v) for k, v in u.items()}}
            cells = customers["cell"].astype(str)
            unknown = sorted(set(cells.unique()) - set(table))
            if unknown:
                raise ValueError(f"The {self.name} uplift by cell has no value for {unknown}.")
            out = cells.map(table).to_numpy(dtype=float)
        else:
            out = np.full(len(customers), float(u))
        if np.isnan(out).any() or (out < 0).any() or (out > 1).any():
            raise ValueError(f"The {self.name} uplift must be a fraction in [0, 1] for every "
                             "customer.")
        return out


#: The columns of the customers table that :func:`action_economics` reads (``cell`` only for
#: an uplift given by cell).
ECONOMICS_COLUMNS = ("churn_probability", "preventable_revenue", "lapsed_revenue", "cell")


def action_economics(customers: pd.DataFrame, action: Action, *, margin: float = 1.0,
                     offer: str = "conditional") -> pd.DataFrame:
    """Saved revenue, expected cost and net benefit of one action for every customer.

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k)
        ``churn_probability`` (NaN for the declared churned), ``preventable_revenue`` and
        ``lapsed_revenue`` (currency), and ``cell`` when the uplift is given by cell.
    action : Action
    margin : float
        Contribution per unit of revenue (1: revenue is profit).
    offer : {"conditional", "unconditional"}
        Whether the incentive is paid only by those who stay (or come back).

    Returns
    -------
    pandas.DataFrame, shape (n, 3)
        ``saved_revenue`` (currency, before margin), ``expected_cost`` (f plus the expected
        incentive, currency) and ``net_benefit`` = margin * saved_revenue - expected_cost.
    """
    saved, cost, net = economics_arrays(customers, action, margin=margin, offer=offer)
    return pd.DataFrame({"saved_revenue": saved, "expected_cost": cost, "net_benefit": net},
                        index=customers.index)


def economics_arrays(customers: pd.DataFrame, action: Action, *, margin: float = 1.0,
                     offer: str = "conditional") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`action_economics` as three arrays, for callers that solve many plans
    (:mod:`.sensitivity`) and need no table.

    Parameters
    ----------
    customers, action, margin, offer
        As for :func:`action_economics`.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray), each shape (n,)
        ``saved_revenue``, ``expected_cost`` and ``net_benefit`` (currency).
    """
    if offer not in OFFERS:
        raise ValueError(f"offer must be one of {OFFERS}. Got {offer!r} instead.")
    inputs = EconomicsInputs.of(customers)
    return inputs.economics(action.uplift_of(customers), action.reactivation, action,
                            margin=margin, offer=offer)


@dataclass(frozen=True)
class EconomicsInputs:
    """The customers' columns that the economics read, as arrays of shape (n,): read once by
    a caller that prices many actions (:mod:`.sensitivity`: eight plans on up to a million
    customers) instead of once per action.

    Attributes
    ----------
    churn_probability : numpy.ndarray of float
        NaN for the declared churned.
    churned : numpy.ndarray of bool
    preventable_revenue : numpy.ndarray of float
        Currency, 0 for the declared churned (uplift does not apply to them).
    lapsed_revenue : numpy.ndarray of float
        Currency.
    """

    churn_probability: np.ndarray
    churned: np.ndarray
    preventable_revenue: np.ndarray
    lapsed_revenue: np.ndarray

    @classmethod
    def of(cls, customers: pd.DataFrame) -> EconomicsInputs:
        """The arrays of ``customers`` (:data:`ECONOMICS_COLUMNS` but ``cell``)."""
        p = customers["churn_probability"].to_numpy(dtype=float)
        churned = np.isnan(p)
        preventable = np.where(churned, 0.0, customers["preventable_revenue"].to_numpy(float))
        return cls(p, churned, preventable, customers["lapsed_revenue"].to_numpy(dtype=float))

    def subset(self, rows: np.ndarray) -> EconomicsInputs:
        """The rows ``rows`` (a boolean mask or positions) of every array."""
        return EconomicsInputs(self.churn_probability[rows], self.churned[rows],
                               self.preventable_revenue[rows], self.lapsed_revenue[rows])

    def economics(self, uplift: np.ndarray, reactivation: float, action: Action, *,
                  margin: float = 1.0,
                  offer: str = "conditional") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Saved revenue, expected cost and net benefit of ``action`` (its cost and incentive)
        with the uplift ``uplift`` (shape (n,), as :meth:`Action.uplift_of` gives it) and
        the reactivation rate ``reactivation``: :func:`economics_arrays`' arrays."""
        p, churned = self.churn_probability, self.churned
        if offer not in OFFERS:
            raise ValueError(f"offer must be one of {OFFERS}. Got {offer!r} instead.")
        u = np.where(churned, 0.0, uplift)
        w = float(reactivation)
        # the same operations in the same order as the formulas say, written into a few
        # buffers in place: each temporary of a million doubles costs a pass of memory
        # (the sensitivity prices 20 scenarios of every customer)
        saved = u * self.preventable_revenue
        saved += w * self.lapsed_revenue
        if offer == "conditional":
            # paid by those who stay (1 - p (1 - u)); for the declared churned, by those who
            # come back (w)
            pays = np.subtract(1.0, u)
            pays *= self._live_probability
            np.subtract(1.0, pays, out=pays)
            pays[churned] = w
        else:
            pays = np.ones_like(p)
        cost = pays
        cost *= action.incentive
        cost += action.cost
        net = margin * saved
        net -= cost
        return saved, cost, net

    @cached_property
    def _live_probability(self) -> np.ndarray:
        """The churn probability, 0 for the declared churned, shape (n,): computed once for
        every action and scenario priced."""
        return np.where(self.churned, 0.0, self.churn_probability)


def net_benefit(customers: pd.DataFrame, action: Action, *, margin: float = 1.0,
                offer: str = "conditional") -> pd.Series:
    """Expected net benefit of ``action`` per customer (currency), named after the action;
    see :func:`action_economics` for the parameters."""
    out = action_economics(customers, action, margin=margin, offer=offer)["net_benefit"]
    return out.rename(f"net_benefit_{action.name}")


@dataclass
class Allocation:
    """A retention plan.

    Attributes
    ----------
    plan : pandas.DataFrame, shape (n, 7)
        Indexed like the customers: ``action`` (``push``, ``pull`` or ``none``),
        ``priority_rank`` (1 = first to contact; empty for none), ``expected_net_benefit``
        (of the action taken, 0 for none), ``net_benefit_push``, ``net_benefit_pull``,
        ``saved_revenue`` and ``expected_cost`` (of the action taken, currency).
    summary : dict
        Counts (``push``, ``pull``, ``none``, ``not_contactable``), ``cost``,
        ``expected_saved_revenue`` (before margin), ``expected_net_benefit``,
        ``return_on_spend`` (net benefit per unit of cost), the constraint and how much of it
        is used, ``solver`` (``unconstrained``, ``sort``, ``milp`` or ``greedy_lp``), the LP
        ``bound`` on the plan's net benefit and the ``gap`` to it (currency, 0 when exact).
    """

    plan: pd.DataFrame
    summary: dict = field(default_factory=dict)


def push_gain(nb_push: np.ndarray, nb_pull: np.ndarray,
              contactable: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The value of each open action and the gain of push over the best alternative.

    Parameters
    ----------
    nb_push, nb_pull : numpy.ndarray, shape (n,)
        Net benefit of push and of pull per customer (currency).
    contactable : numpy.ndarray of bool, shape (n,)

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray), each shape (n,)
        ``v_push`` and ``v_pull``: the net benefit where the action is open (it pays and the
        customer may be contacted), -inf where it is closed; ``gain`` = v_push - max(v_pull,
        0), the gain of push over pull or nothing (-inf where push is closed). A customer
        depends on their own row only: a Spark job computes it per partition and ranks the
        gains globally (clvtools.scale.spark).
    """
    v_push = np.where(contactable & (nb_push > 0), nb_push, -np.inf)
    v_pull = np.where(contactable & (nb_pull > 0), nb_pull, -np.inf)
    return v_push, v_pull, v_push - np.maximum(v_pull, 0.0)


def allocate(customers: pd.DataFrame, push: Action, pull: Action, *, margin: float = 1.0,
             offer: str = "conditional", capacity: int | None = None,
             push_budget: float | None = None, total_budget: float | None = None,
             contactable=None) -> Allocation:
    """Push, pull or nothing for each customer, maximising the expected net benefit.

    Under ``capacity`` (push contacts, a count) push goes to the customers with the largest
    gain of push over their best alternative (pull or nothing), exactly, by sorting. Under
    ``push_budget`` (expected spend on push) it is a 0/1 knapsack on that gain; under
    ``total_budget`` (expected spend on push and pull) a multiple-choice knapsack; both are
    exact (scipy's MILP) up to :data:`clvtools.targeting.knapsack.EXACT_MAX_CUSTOMERS`
    candidates and solved by the greedy LP relaxation beyond (the gap to the LP bound is
    reported). Everyone else gets pull where its net benefit is positive, nothing otherwise;
    an action with a negative net benefit is never assigned.

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k)
        As :func:`action_economics` needs.
    push, pull : Action
    margin : float
    offer : {"conditional", "unconditional"}
    capacity : int, optional
        Most customers to push.
    push_budget, total_budget : float, optional
        Most expected spend (currency) on push, or on push and pull together. At most one of
        ``capacity``, ``push_budget`` and ``total_budget``.
    contactable : array_like of bool, shape (n,), optional
        False for customers who must not be contacted (never targeted; counted).

    Returns
    -------
    Allocation
    """
    solution = solve(customers, push, pull, margin=margin, offer=offer, capacity=capacity,
                     push_budget=push_budget, total_budget=total_budget,
                     contactable=contactable)
    choice, (nb_push, nb_pull) = solution.choice, solution.net_benefit
    taken, saved, spent = solution.taken()
    plan = pd.DataFrame({"action": np.array(["none", "pull", "push"], dtype=object)[choice],
                         "priority_rank": _priority(choice, taken),
                         "expected_net_benefit": taken, "net_benefit_push": nb_push,
                         "net_benefit_pull": nb_pull, "saved_revenue": saved,
                         "expected_cost": spent}, index=customers.index)
    totals = solution.totals()
    total, cost = totals["expected_net_benefit"], totals["cost"]
    summary = {
        "customers": len(choice), **totals,
        "return_on_spend": total / cost if cost > 0 else float("nan"),
        "constraint": solution.constraint, "limit": solution.limit,
        "solver": solution.solver,
        "bound": total if solution.solver in ("unconstrained", "sort") else solution.bound,
        "gap": solution.gap,
    }
    return Allocation(plan, summary)


@dataclass
class Solution:
    """The choice :func:`solve` makes, before it becomes a plan table.

    Attributes
    ----------
    choice : numpy.ndarray of int8, shape (n,)
        0 nothing, 1 pull, 2 push.
    net_benefit, saved_revenue, expected_cost : (numpy.ndarray, numpy.ndarray)
        Push's and pull's figures per customer (currency), shape (n,) each.
    solver : str
        ``unconstrained``, ``sort`` (a capacity), ``milp`` (an exact knapsack) or
        ``greedy_lp`` (the LP relaxation's greedy solution, beyond the exact solver's size).
    bound, gap : float
        The LP bound on the net benefit and the gap to it (currency; 0 when exact). The bound
        of an exact sort is the plan's own total, which :func:`allocate` fills in.
    constraint : str
        ``capacity``, ``push_budget``, ``total_budget`` or ``none``.
    limit : float or None
        The capacity (customers) or budget (currency) in force; None without one.
    not_contactable : int
        Customers who must not be contacted (never chosen).
    """

    choice: np.ndarray
    net_benefit: tuple[np.ndarray, np.ndarray]
    saved_revenue: tuple[np.ndarray, np.ndarray]
    expected_cost: tuple[np.ndarray, np.ndarray]
    solver: str
    bound: float
    gap: float
    constraint: str
    limit: float | None
    not_contactable: int
    _taken: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False)

    def taken(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Net benefit, saved revenue and expected cost of the action taken (0 for none),
        shape (n,) each; computed once (the plan table and its totals both read them)."""
        if self._taken is None:
            push, pull = self.choice == 2, self.choice == 1

            def of(pair):
                return np.where(push, pair[0], np.where(pull, pair[1], 0.0))

            self._taken = (of(self.net_benefit), of(self.saved_revenue),
                           of(self.expected_cost))
        return self._taken

    def totals(self) -> dict:
        """The plan's counts (``push``, ``pull``, ``none``, ``not_contactable``) and money
        (``push_cost``, ``pull_cost``, ``cost``, ``expected_saved_revenue``,
        ``expected_net_benefit``: currency)."""
        taken, saved, spent = self.taken()
        push, pull = self.choice == 2, self.choice == 1
        return {"push": int(push.sum()), "pull": int(pull.sum()),
                "none": int((self.choice == 0).sum()), "not_contactable": self.not_contactable,
                "push_cost": float(spent[push].sum()), "pull_cost": float(spent[pull].sum()),
                "cost": float(spent.sum()), "expected_saved_revenue": float(saved.sum()),
                "expected_net_benefit": float(taken.sum())}


def solve(customers: pd.DataFrame, push: Action, pull: Action, *, margin: float = 1.0,
          offer: str = "conditional", capacity: int | None = None,
          push_budget: float | None = None, total_budget: float | None = None,
          contactable=None) -> Solution:
    """The choice of :func:`allocate` (same parameters) without its table: what a caller
    that solves many plans needs (:func:`~clvtools.targeting.sensitivity.plan_sensitivity`).

    Returns
    -------
    Solution
    """
    given = _limits(capacity, push_budget, total_budget)
    n = len(customers)
    ok = (np.ones(n, dtype=bool) if contactable is None
          else np.asarray(contactable, dtype=bool).reshape(n))
    if offer not in OFFERS:
        raise ValueError(f"offer must be one of {OFFERS}. Got {offer!r} instead.")
    inputs = EconomicsInputs.of(customers)      # read once for both actions
    push_economics, pull_economics = (
        inputs.economics(a.uplift_of(customers), a.reactivation, a, margin=margin, offer=offer)
        for a in (push, pull))
    return _solve(push_economics, pull_economics, ok, given)


def solve_economics(push_economics: tuple[np.ndarray, np.ndarray, np.ndarray],
                    pull_economics: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                    capacity: int | None = None, push_budget: float | None = None,
                    total_budget: float | None = None) -> Solution:
    """:func:`solve` from the economics already computed, every customer contactable.

    Parameters
    ----------
    push_economics, pull_economics : (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Saved revenue, expected cost and net benefit of push and of pull per customer
        (currency, shape (n,) each), as :func:`economics_arrays` or
        :meth:`EconomicsInputs.economics` give them.
    capacity, push_budget, total_budget
        As for :func:`allocate`.

    Returns
    -------
    Solution
    """
    given = _limits(capacity, push_budget, total_budget)
    n = len(push_economics[2])
    return _solve(push_economics, pull_economics, np.ones(n, dtype=bool), given)


def _limits(capacity, push_budget, total_budget) -> dict:
    """The limit given (none or one of them), checked."""
    limits = {"capacity": capacity, "push_budget": push_budget, "total_budget": total_budget}
    given = {k: v for k, v in limits.items() if v is not None}
    if len(given) > 1:
        raise ValueError(f"Give at most one of capacity, push_budget, total_budget. Got "
                         f"{sorted(given)}.")
    if any(not v >= 0 for v in given.values()):     # NaN included
        raise ValueError(f"A capacity or budget must be zero or more. Got {given}.")
    return given


def _solve(push_economics, pull_economics, ok: np.ndarray, given: dict) -> Solution:
    """The choice under the limit ``given`` (:func:`_limits`) for the customers ``ok``."""
    saved_push, cost_push, nb_push = push_economics
    saved_pull, cost_pull, nb_pull = pull_economics
    capacity, push_budget, total_budget = (given.get(k) for k in
                                           ("capacity", "push_budget", "total_budget"))
    v_push, v_pull, gain = push_gain(nb_push, nb_pull, ok)
    alternative = np.maximum(v_pull, 0.0)
    choice = np.where(v_pull > 0, 1, 0).astype(np.int8)     # 0 none, 1 pull, 2 push
    bound = gap = 0.0
    if total_budget is not None:
        res = multiple_choice_knapsack(np.stack([v_pull, v_push], axis=1),
                                       np.stack([cost_pull, cost_push], axis=1), total_budget)
        choice, solver, bound, gap = res.choice.astype(np.int8), res.solver, res.bound, res.gap
    else:
        candidates = np.flatnonzero(gain > 0)
        if push_budget is not None:
            res = knapsack_01(gain[candidates], cost_push[candidates], push_budget)
            chosen = candidates[res.chosen]
            solver, gap = res.solver, res.gap
            bound = float(alternative.sum()) + res.bound
        else:
            k = len(candidates) if capacity is None else min(int(capacity), len(candidates))
            # stable sort: ties broken by the customers' order, so the plan is reproducible
            order = candidates[np.argsort(-gain[candidates], kind="stable")]
            chosen = order[:k]
            solver = "unconstrained" if capacity is None else "sort"
        choice[chosen] = 2
    return Solution(choice, (nb_push, nb_pull), (saved_push, saved_pull), (cost_push, cost_pull),
                    solver, float(bound), float(gap), next(iter(given), "none"),
                    next(iter(given.values()), None), int((~ok).sum()))


def _priority(choice: np.ndarray, benefit: np.ndarray) -> pd.Series:
    """1, 2, ... over push by expected net benefit (descending), then pull; empty for none."""
    contacted = np.flatnonzero(choice > 0)
    # lexsort sorts by the last key first: action (push first), then benefit, then position
    order = contacted[np.lexsort((contacted, -benefit[contacted], -choice[contacted]))]
    rank = np.zeros(len(choice), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return pd.arrays.IntegerArray(rank, mask=choice == 0)

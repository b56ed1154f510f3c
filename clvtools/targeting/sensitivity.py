"""How the push/pull plan moves when its assumptions move.

The uplifts and reactivation rates are guesses until an experiment measures them
(``clvtools evaluate``), and a capacity or budget is a choice: :func:`plan_sensitivity` reruns
:func:`~clvtools.targeting.allocation.allocate` with the uplifts and reactivation rates scaled
and with the limit moved, and says how many customers each action takes, what the plan is
expected to return and how much of the push list stays the same.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .allocation import Action, Allocation, EconomicsInputs, solve_economics

__all__ = ["FACTORS", "plan_sensitivity", "scaled", "sensitivity_candidates",
           "sensitivity_table"]

#: Factors applied to the uplifts and reactivation rates, and to the capacity or budget.
FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5)
#: The plan's figures each scenario reports (from :attr:`Allocation.summary`).
_FIGURES = ("push", "pull", "cost", "expected_saved_revenue", "expected_net_benefit")


def scaled(action: Action, customers: pd.DataFrame, factor: float) -> Action:
    """``action`` with its uplift and reactivation rate multiplied by ``factor`` (capped at 1),
    the uplift resolved per customer."""
    uplift = np.minimum(action.uplift_of(customers) * factor, 1.0)
    return replace(action, uplift=pd.Series(uplift, index=customers.index),
                   reactivation=min(action.reactivation * factor, 1.0))


def plan_sensitivity(customers: pd.DataFrame, push: Action, pull: Action, base: Allocation, *,
                     margin: float = 1.0, offer: str = "conditional",
                     capacity: int | None = None, push_budget: float | None = None,
                     total_budget: float | None = None, contactable=None,
                     factors=FACTORS) -> pd.DataFrame:
    """The plan under scaled uplifts and reactivation rates, and under a moved limit.

    Parameters
    ----------
    customers, push, pull, margin, offer, capacity, push_budget, total_budget, contactable
        As given to :func:`~clvtools.targeting.allocation.allocate` for ``base``.
    base : Allocation
        The plan with the stated assumptions, the reference for the overlap.
    factors : sequence of float
        Multipliers (1 is the plan as stated).

    Returns
    -------
    pandas.DataFrame
        One row per scenario: ``scenario`` (``uplift_and_reactivation``, or the limit moved:
        ``push_capacity``, ``push_budget`` or ``total_budget``), ``factor``, ``limit`` (the
        capacity or budget in force; empty when none), the plan's ``push`` and ``pull``
        counts, ``cost``, ``expected_saved_revenue`` and ``expected_net_benefit`` (currency),
        ``push_kept`` (the share of the stated plan's push customers still pushed) and
        ``push_added`` (push customers the stated plan did not push). Without a capacity or
        budget, the limit rows cap push at the factor times the stated plan's push count:
        what the plan becomes when fewer can be called.
    """
    n = len(customers)
    ok = np.ones(n, bool) if contactable is None else np.asarray(contactable, bool).reshape(n)
    # the columns the economics read and each action's uplift per customer, read once
    inputs = EconomicsInputs.of(customers)
    # by position, not by name: the two actions may share a name
    uplifts = tuple(action.uplift_of(customers) for action in (push, pull))
    candidate = _candidates(inputs, uplifts, push, pull, margin, offer, factors) & ok
    pushed = (base.plan["action"] == "push").to_numpy()[candidate]
    return _table(inputs.subset(candidate), tuple(u[candidate] for u in uplifts),
                  push, pull, base.summary, pushed, margin=margin, offer=offer,
                  capacity=capacity, push_budget=push_budget, total_budget=total_budget,
                  factors=factors)


def sensitivity_candidates(customers: pd.DataFrame, push: Action, pull: Action, *,
                           margin: float = 1.0, offer: str = "conditional",
                           factors=FACTORS) -> np.ndarray:
    """The customers for whom some action pays under some scenario, shape (n,) bool: the
    others get none in every scenario, so the scenarios are solved on these only (the same
    plans, a fraction of the time). Additive over chunks of customers (the chunked run)."""
    uplifts = tuple(action.uplift_of(customers) for action in (push, pull))
    return _candidates(EconomicsInputs.of(customers), uplifts, push, pull, margin, offer,
                       factors)


def sensitivity_table(candidates: pd.DataFrame, push: Action, pull: Action, stated: dict,
                      pushed: np.ndarray, *, margin: float = 1.0, offer: str = "conditional",
                      capacity: int | None = None, push_budget: float | None = None,
                      total_budget: float | None = None, factors=FACTORS) -> pd.DataFrame:
    """:func:`plan_sensitivity`'s table from the candidates alone (the chunked run).

    Parameters
    ----------
    candidates : pandas.DataFrame, shape (m, k)
        The contactable :func:`sensitivity_candidates`' rows (:data:`~clvtools.targeting.
        allocation.ECONOMICS_COLUMNS`), in the customers' order.
    push, pull : Action
        The stated actions (a per-customer uplift indexed like ``candidates``).
    stated : dict
        The stated plan's summary (``push``, ``pull``, ``cost``, ``expected_saved_revenue``,
        ``expected_net_benefit``; the control group counted as contacted).
    pushed : numpy.ndarray of bool, shape (m,)
        The candidates the stated plan pushes.
    margin, offer, capacity, push_budget, total_budget, factors
        As for :func:`plan_sensitivity`.
    """
    uplifts = tuple(action.uplift_of(candidates) for action in (push, pull))
    return _table(EconomicsInputs.of(candidates), uplifts, push, pull, stated,
                  np.asarray(pushed, bool), margin=margin, offer=offer, capacity=capacity,
                  push_budget=push_budget, total_budget=total_budget, factors=factors)


def _scenarios(push: Action, pull: Action, uplifts: tuple, factors) -> dict:
    """Per factor, both actions' (uplift per customer, reactivation rate): a scenario scales
    the uplift arrays (as :func:`scaled` does) instead of building actions."""
    return {f: tuple(_scaled_terms(a, u, f) for a, u in zip((push, pull), uplifts, strict=True))
            for f in factors}


def _economics(inputs: EconomicsInputs, terms: tuple, push: Action, pull: Action,
               margin: float, offer: str) -> tuple:
    """Both actions' (saved, cost, net benefit) arrays under one scenario's ``terms``."""
    return tuple(inputs.economics(uplift, reactivation, action, margin=margin, offer=offer)
                 for action, (uplift, reactivation) in zip((push, pull), terms, strict=True))


def _candidates(inputs: EconomicsInputs, uplifts: tuple, push: Action, pull: Action,
                margin: float, offer: str, factors) -> np.ndarray:
    """:func:`sensitivity_candidates` on arrays read once."""
    candidate = np.zeros(len(inputs.churned), bool)
    for terms in _scenarios(push, pull, uplifts, factors).values():
        for _saved, _cost, net in _economics(inputs, terms, push, pull, margin, offer):
            candidate |= net > 0
    return candidate


def _table(sub: EconomicsInputs, uplifts: tuple, push: Action, pull: Action, stated: dict,
           pushed: np.ndarray, *, margin: float, offer: str, capacity, push_budget,
           total_budget, factors) -> pd.DataFrame:
    """The sensitivity table from the candidates' arrays (``sub``, ``uplifts`` cut to them):
    each scenario's economics, elementwise, are the same numbers as over the whole base."""
    scenarios = _scenarios(push, pull, uplifts, factors)

    def plan_of(pair: tuple, **limit) -> tuple[dict, np.ndarray]:
        # the plan's figures without its table (ranks, labels): eight plans on up to a
        # million candidates
        solution = solve_economics(*pair, **limit)
        return solution.totals(), solution.choice == 2

    limit_name, limit = next(((n, v) for n, v in (("push_capacity", capacity),
                                                    ("push_budget", push_budget),
                                                    ("total_budget", total_budget))
                              if v is not None), ("push_capacity", None))
    limits = dict(capacity=capacity, push_budget=push_budget, total_budget=total_budget)
    stated = (stated, pushed)
    rows = []
    for factor, terms in scenarios.items():
        plan = (stated if factor == 1
                else plan_of(_economics(sub, terms, push, pull, margin, offer), **limits))
        rows.append(_row("uplift_and_reactivation", factor, limit, plan, pushed))
    at = limit if limit is not None else int(pushed.sum())
    key = {"push_capacity": "capacity"}.get(limit_name, limit_name)
    # the stated actions' economics, shared by the moved limits
    stated_terms = scenarios.get(1.0) or _scenarios(push, pull, uplifts, (1.0,))[1.0]
    stated_economics = _economics(sub, stated_terms, push, pull, margin, offer)
    for factor in factors:
        moved = int(np.floor(at * factor)) if limit_name == "push_capacity" else at * factor
        plan = stated if factor == 1 else plan_of(stated_economics, **{key: moved})
        rows.append(_row(limit_name, factor, moved, plan, pushed))
    return pd.DataFrame(rows)

def _scaled_terms(action: Action, uplift: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """The uplift per customer and the reactivation rate of :func:`scaled` ``(action,
    factor)``, from the action's uplift per customer ``uplift`` (factor 1: as stated)."""
    if factor == 1:
        return uplift, action.reactivation
    return np.minimum(uplift * factor, 1.0), min(action.reactivation * factor, 1.0)


def _row(scenario: str, factor: float, limit, plan, pushed: np.ndarray) -> dict:
    summary, now = plan
    kept = int((now & pushed).sum())
    return {"scenario": scenario, "factor": factor, "limit": limit,
            **{k: summary[k] for k in _FIGURES},
            "push_kept": kept / pushed.sum() if pushed.any() else np.nan,
            "push_added": int((now & ~pushed).sum())}

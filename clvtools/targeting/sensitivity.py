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

__all__ = ["FACTORS", "plan_sensitivity", "scaled"]

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
    # the columns the economics read and each action's uplift per customer, read once; a
    # scenario scales the uplift arrays (as scaled() does) instead of building actions
    inputs = EconomicsInputs.of(customers)
    uplifts = {action.name: action.uplift_of(customers) for action in (push, pull)}
    scenarios = {f: tuple(_scaled_terms(a, uplifts[a.name], f) for a in (push, pull))
                 for f in factors}

    def economics(of: EconomicsInputs, action: Action, uplift, reactivation, rows=None):
        return of.economics(uplift if rows is None else uplift[rows], reactivation, action,
                            margin=margin, offer=offer)

    # a customer for whom no action pays under any scenario gets none in all of them: the
    # scenarios are solved on the others only (the same plans, a fraction of the time)
    candidate = np.zeros(n, bool)
    for terms in scenarios.values():
        for action, (uplift, reactivation) in zip((push, pull), terms, strict=True):
            candidate |= economics(inputs, action, uplift, reactivation)[2] > 0
    candidate &= ok
    # the candidates' rows only: each scenario's economics, elementwise, are the same numbers
    # as over the whole base
    sub = inputs.subset(candidate)

    def economics_of(terms) -> tuple:
        return tuple(economics(sub, action, uplift, reactivation, candidate)
                     for action, (uplift, reactivation) in zip((push, pull), terms, strict=True))

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
    pushed = (base.plan["action"] == "push").to_numpy()[candidate]
    stated = (base.summary, pushed)
    rows = []
    for factor, terms in scenarios.items():
        plan = stated if factor == 1 else plan_of(economics_of(terms), **limits)
        rows.append(_row("uplift_and_reactivation", factor, limit, plan, pushed))
    at = limit if limit is not None else int(pushed.sum())
    key = {"push_capacity": "capacity"}.get(limit_name, limit_name)
    # the stated actions' economics, shared by the moved limits
    stated_economics = economics_of(scenarios.get(1.0) or _stated_terms(push, pull, uplifts))
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


def _stated_terms(push: Action, pull: Action, uplifts: dict) -> tuple:
    """Both actions' terms as stated (factor 1), when the factors leave 1 out."""
    return tuple(_scaled_terms(a, uplifts[a.name], 1) for a in (push, pull))


def _row(scenario: str, factor: float, limit, plan, pushed: np.ndarray) -> dict:
    summary, now = plan
    kept = int((now & pushed).sum())
    return {"scenario": scenario, "factor": factor, "limit": limit,
            **{k: summary[k] for k in _FIGURES},
            "push_kept": kept / pushed.sum() if pushed.any() else np.nan,
            "push_added": int((now & ~pushed).sum())}

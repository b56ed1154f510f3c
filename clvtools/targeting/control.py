"""Control groups: the random hold-out that turns a retention plan into a measurement.

Within each action and matrix cell, a share of the customers the plan chose is held out at
random (seeded, so the same plan holds out the same customers); they are not contacted, and
comparing them with the treated customers later measures the uplift and the reactivation
rate that the plan had to assume (``clvtools evaluate``). The power table says, before the
campaign, how small an uplift the hold-out will be able to tell from none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .allocation import Action

__all__ = ["CONTROL", "TREATMENT", "HeldOut", "assign_control", "hold_out_contacts",
           "power_table"]

TREATMENT, CONTROL = "treatment", "control"


def assign_control(plan: pd.DataFrame, share: float, seed: int = 0) -> np.ndarray:
    """Each customer's group: ``treatment``, ``control`` or empty (no action).

    Parameters
    ----------
    plan : pandas.DataFrame, shape (n, k)
        ``action`` (``push``, ``pull`` or ``none``) and ``cell``.
    share : float
        Share of each (action, cell) stratum held out, in [0, 1); 0: no control group.
    seed : int
        Seed of the draw (numpy's ``default_rng``).

    Returns
    -------
    numpy.ndarray of object, shape (n,)
        Round(share x stratum size) customers of each stratum, drawn without replacement,
        are ``control``; the other chosen customers ``treatment``; customers with no action
        ``""``.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1). Got {share!r} instead.")
    action = plan["action"].to_numpy(dtype=object)
    # one str object per label, shared by the rows (np.where(...).astype(object) and
    # np.full make one per row)
    group = np.empty(len(action), dtype=object)
    group.fill(TREATMENT)
    group[action == "none"] = ""
    if share == 0:
        return group
    rng = np.random.default_rng(seed)
    # strata in a fixed order, so that the draw depends on the seed only
    for _, positions in _strata(action, plan["cell"].to_numpy(dtype=object)):
        k = int(np.floor(share * len(positions) + 0.5))
        group[rng.choice(positions, size=k, replace=False)] = CONTROL
    return group


def _strata(action: np.ndarray, cell: np.ndarray) -> list[tuple[tuple, np.ndarray]]:
    """The chosen customers' (action, cell) strata in sorted order, each with its rows'
    positions in ascending order, shape (n_k,) int64: what ``groupby(["action",
    "cell"]).groups`` gives over the rows with an action (a missing key forms no stratum), on
    arrays (integer codes, one stable sort), not on a frame of text keys.

    Parameters
    ----------
    action, cell : numpy.ndarray of object, shape (n,)
        ``none`` in ``action`` for the customers without an action.
    """
    chosen = np.flatnonzero(action != "none")
    action_code, actions = pd.factorize(action[chosen])
    cell_code, cells = pd.factorize(cell[chosen])
    keep = (action_code >= 0) & (cell_code >= 0)
    chosen = chosen[keep]
    key = action_code[keep].astype(np.int64) * len(cells) + cell_code[keep]
    order = np.argsort(key, kind="stable")      # stable: positions ascending in each stratum
    key, chosen = key[order], chosen[order]
    if not len(key):
        return []
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    return sorted(((actions[key[a] // len(cells)], cells[key[a] % len(cells)]), chosen[a:b])
                  for a, b in zip(starts, ends, strict=True))


def power_table(plan: pd.DataFrame, group: np.ndarray, *, alpha: float = 0.05,
                power: float = 0.8) -> pd.DataFrame:
    """The smallest effect each (action, cell) stratum's hold-out can detect.

    A two-sided test of two proportions at level ``alpha`` with the given ``power``, normal
    approximation: a difference d between the treated and control shares is detectable when
    d >= (z_{1-alpha/2} + z_power) sqrt(p (1 - p) (1/n_t + 1/n_c)), p being the expected
    share without the action. For live customers p is the mean churn probability and the
    uplift (the relative cut in churn among would-be churners, as the allocation defines it)
    is d / p; for customers already declared churned the effect is the reactivation rate
    itself, with p taken as the rate the plan assumes (``reactivation``) or 1 % at least.

    Parameters
    ----------
    plan : pandas.DataFrame, shape (n, k)
        ``action``, ``cell``, ``churn_probability`` (NaN for the declared churned) and
        ``reactivation`` (the action's assumed rate per customer).
    group : numpy.ndarray, shape (n,)
        As :func:`assign_control` returns it.

    Returns
    -------
    pandas.DataFrame
        One row per action and cell: ``action``, ``cell``, ``treated``, ``control``,
        ``expected_churn`` (live cells) , ``min_detectable_uplift`` (live cells; empty when
        larger than 1, that is undetectable) and ``min_detectable_reactivation`` (the
        declared-churned cell).
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    group = np.asarray(group, dtype=object)
    treated, control = group == TREATMENT, group == CONTROL
    p = plan["churn_probability"].to_numpy(dtype=float)
    w = plan["reactivation"].to_numpy(dtype=float)
    rows = []
    for (action, cell), at in _strata(plan["action"].to_numpy(dtype=object),
                                      plan["cell"].to_numpy(dtype=object)):
        n_t, n_c = int(treated[at].sum()), int(control[at].sum())
        part = p[at]
        known = ~np.isnan(part)
        live = bool(known.any())
        # as pandas' mean: NaN read as 0 in the sum, divided by the values present
        base = (float(np.where(known, part, 0.0).sum() / known.sum()) if live
                else max(float(w[at].mean()), 0.01))
        d = (z * np.sqrt(base * (1 - base) * (1 / n_t + 1 / n_c))
             if n_t and n_c else np.inf)
        uplift = d / base if live and base > 0 else np.nan
        rows.append({"action": action, "cell": cell, "treated": n_t, "control": n_c,
                     "expected_churn": base if live else np.nan,
                     "min_detectable_uplift": uplift if live and uplift <= 1 else np.nan,
                     "min_detectable_reactivation": np.nan if live else (
                         d if d <= 1 else np.nan)})
    return pd.DataFrame(rows, columns=["action", "cell", "treated", "control", "expected_churn",
                                       "min_detectable_uplift",
                                       "min_detectable_reactivation"])


@dataclass(frozen=True)
class HeldOut:
    """The control group drawn over the chosen customers (:func:`hold_out_contacts`).

    Attributes
    ----------
    control : numpy.ndarray of bool, shape (n,)
        True for the customers held out.
    rank : numpy.ndarray of int64, shape (n,)
        The priority ranks renumbered over the treatment (1 = first to contact); 0 for the
        control, who have none.
    power : pandas.DataFrame
        :func:`power_table`'s rows (control_power.csv).
    """

    control: np.ndarray
    rank: np.ndarray
    power: pd.DataFrame


def hold_out_contacts(action: np.ndarray, cell: np.ndarray, churn_probability: np.ndarray,
                      priority_rank: np.ndarray, *, share: float, seed: int, push: Action,
                      pull: Action) -> HeldOut:
    """The standard engine's control group over the chosen customers only, for the runs
    that keep their plan elsewhere (in DuckDB, :mod:`clvtools.scale.chunked_control`; in
    Spark, :mod:`clvtools.scale.spark_control`) and fetch just these columns.

    The draw depends only on each chosen customer's stratum (action, cell) and on their
    order in the plan: the customers without action form no stratum, so leaving them out
    changes no draw, and the groups equal :func:`assign_control`'s over the whole plan.

    Parameters
    ----------
    action, cell : numpy.ndarray of object, shape (n,)
        The chosen customers' action (``push`` or ``pull``) and matrix cell, in plan order
        (by customer id).
    churn_probability : numpy.ndarray of float, shape (n,)
        NaN for the declared churned (the power table's base).
    priority_rank : numpy.ndarray of float, shape (n,)
        The plan's priority ranks before the hold-out.
    share : float
        ``control_share``, in [0, 1).
    seed : int
    push, pull : Action
        Their reactivation rates (the power table's base for the declared churned).

    Returns
    -------
    HeldOut
    """
    strata = pd.DataFrame({"action": action, "cell": cell,
                           "churn_probability": np.asarray(churn_probability, dtype=float)})
    group = assign_control(strata, share, seed)
    strata["reactivation"] = np.where(strata["action"] == "push", push.reactivation,
                                      pull.reactivation)
    power = power_table(strata, group)
    # the contact list's ranks over the treatment in priority order, as the standard
    # engine renumbers them (pipeline.targets._hold_out)
    treated = group == TREATMENT
    order = np.argsort(np.asarray(priority_rank, dtype=float), kind="stable")
    order = order[treated[order]]
    rank = np.zeros(len(group), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return HeldOut(~treated, rank, power)

"""Landmark survival tables and contract tables with known hazard ratios, for recovery tests,
calibration checks and benchmarks.

Churn times follow a Weibull proportional-hazards model,
:math:`H(t \\mid x) = (t / \\lambda)^k \\exp(x\\beta)`, sampled by inversion:
:math:`T = \\lambda (E e^{-x\\beta})^{1/k}` with :math:`E \\sim \\mathrm{Exp}(1)`. Durations are
rounded up to a grid (whole days, as the landmark builder gives them) and censored at the
follow-up (the observation end).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["TRUE_EFFECTS", "simulate_landmark_table", "simulate_contracts"]

#: True log hazard ratios of the default simulation (dummies against the reference level).
TRUE_EFFECTS: dict[str, float] = {
    "channel=store": np.log(0.7),
    "channel=phone": np.log(1.5),
    "region=south": np.log(1.25),
    "time_since_last_purchase": 0.08,
    "n_purchases": -0.05,
}


def _covariates(rng: np.random.Generator, n: int, n_numeric_noise: int = 0) -> pd.DataFrame:
    df = pd.DataFrame({
        "customer_id": pd.Series([f"c{i:07d}" for i in range(n)], dtype=object),
        "channel": rng.choice(["web", "store", "phone"], size=n, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(["north", "south"], size=n, p=[0.6, 0.4]),
        "time_since_last_purchase": rng.gamma(2.0, 3.0, size=n).round(1),
        "n_purchases": rng.poisson(4.0, size=n).astype(float),
    })
    for j in range(n_numeric_noise):
        df[f"noise_{j}"] = rng.normal(size=n)
    return df


def _linear_predictor(df: pd.DataFrame, effects: Mapping[str, float]) -> np.ndarray:
    eta = np.zeros(len(df))
    for name, b in effects.items():
        if "=" in name:
            col, level = name.split("=", 1)
            eta += b * (df[col].to_numpy() == level)
        else:
            eta += b * df[name].to_numpy(dtype=float)
    return eta


def simulate_landmark_table(
    n_customers: int,
    *,
    effects: Mapping[str, float] | None = None,
    shape: float = 1.3,
    scale: float = 30.0,
    follow_up: float = 26.0,
    grid: float = 1 / 7,
    n_landmarks: int = 1,
    spacing: float = 4.0,
    n_numeric_noise: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """A landmark survival table with known hazard ratios.

    Parameters
    ----------
    n_customers : int
    effects : mapping, optional
        True log hazard ratios by design-column name (default :data:`TRUE_EFFECTS`).
    shape, scale : float
        Weibull baseline (``scale`` in time units). With several landmarks use ``shape=1``
        (memoryless), so that every landmark has the same baseline hazard.
    follow_up : float
        Time units from the first landmark to the observation end.
    grid : float
        Durations are rounded up to multiples of it (1/7: whole days in weeks).
    n_landmarks : int
        Landmarks stacked, ``spacing`` time units apart; a customer appears at every landmark
        at which they have not churned yet (the same customer, correlated rows).
    n_numeric_noise : int
        Extra standard-normal covariates with no effect (benchmarks).
    seed : int

    Returns
    -------
    DataFrame
        ``customer_id``, ``landmark`` (date), ``duration``, ``event``, then covariates.
    """
    rng = np.random.default_rng(seed)
    effects = dict(TRUE_EFFECTS if effects is None else effects)
    base = _covariates(rng, n_customers, n_numeric_noise)
    eta = _linear_predictor(base, effects)
    t = scale * (rng.exponential(size=n_customers) * np.exp(-eta)) ** (1 / shape)
    t = np.maximum(np.ceil(t / grid) * grid, grid)
    parts = []
    start = pd.Timestamp("2024-01-01")
    for j in range(n_landmarks):
        offset = j * spacing
        at_risk = t > offset
        horizon = follow_up - offset
        if horizon <= 0:
            break
        part = base.loc[at_risk].copy()
        remaining = t[at_risk] - offset
        part.insert(1, "landmark", (start + pd.Timedelta(days=7 * offset)).date())
        part.insert(2, "duration", np.round(np.minimum(remaining, horizon), 10))
        part.insert(3, "event", (remaining <= horizon).astype(int))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def simulate_contracts(
    n_customers: int,
    *,
    reasons: Mapping[str, Mapping[str, float]] | None = None,
    shape: float = 1.0,
    scale: Mapping[str, float] | None = None,
    follow_up: float = 24.0,
    grid: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A contract table with competing end reasons (cause-specific Weibull hazards).

    Parameters
    ----------
    reasons : mapping of reason -> effects, optional
        Default: ``voluntary`` (channel=phone raises it) and ``non_payment`` (region=south
        raises it).
    scale : mapping of reason -> float, optional
        Weibull scale per reason, in time units.

    Returns
    -------
    DataFrame
        ``customer_id``, ``duration``, ``event`` (any reason), ``event_type`` (0 censored,
        1..k in the order of ``reasons``), ``end_reason`` (the reason's name or ``""``), then
        covariates.
    """
    rng = np.random.default_rng(seed)
    reasons = reasons or {
        "voluntary": {"channel=phone": np.log(1.6), "n_purchases": -0.08},
        "non_payment": {"region=south": np.log(1.8), "channel=store": np.log(0.7)},
    }
    scale = scale or {"voluntary": 40.0, "non_payment": 80.0}
    base = _covariates(rng, n_customers)
    times = []
    for name, eff in reasons.items():
        eta = _linear_predictor(base, eff)
        e = rng.exponential(size=n_customers)
        times.append(scale[name] * (e * np.exp(-eta)) ** (1 / shape))
    times = np.column_stack(times)
    cause = times.argmin(axis=1)
    t = np.maximum(np.ceil(times.min(axis=1) / grid) * grid, grid)
    event = t <= follow_up
    names = np.array(list(reasons), dtype=object)
    out = base.copy()
    out.insert(1, "duration", np.minimum(t, follow_up))
    out.insert(2, "event", event.astype(int))
    out.insert(3, "event_type", np.where(event, cause + 1, 0))
    out.insert(4, "end_reason", np.where(event, names[cause], ""))
    return out

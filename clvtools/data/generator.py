"""A simulated retail customer base with known truth: BTYD purchases, attribute-driven churn.

:func:`generate_customer_base` draws customers with attributes (channel, region, plan), a
purchase process (BG/NBD or Pareto/NBD, rates per **week**) whose purchase rate and dropout
depend on the attributes as static covariates do in R's CLVTools, and Gamma-Gamma spend.
Everything is vectorised numpy: 1M customers take a few seconds. The result keeps the
true parameters and each customer's true rates, so that fitted models can be checked
against the truth (tests, the ``clvtools demo`` command, notebooks).

Purchase times are continuous, dates are whole days. Customer *i* is acquired at the start
of its acquisition day (model time 0, which is also its first purchase) and observed for
``T_i = (observation_end - acquisition_date).days / 7`` weeks, the ``T`` that clvtools'
RFM summary computes; a purchase at model time ``t`` lands on day ``floor(7 t)`` after
acquisition. Two purchases of one customer that fall on the same day are two rows of
``transactions`` but **one purchase occasion** in clvtools' summaries (as in lifetimes).
The default rates (about 4 purchases a year on average) keep this rare: about 2-3 % of
repeat purchases share a day with another purchase of the same customer.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting Your Customers" the Easy
Way: An Alternative to the Pareto/NBD Model. *Marketing Science* 24(2), 275-284.
Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). Counting Your Customers: Who
Are They and What Will They Do Next? *Management Science* 33(1), 1-24.
Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary Value.
http://www.brucehardie.com/notes/025/
Bachmann, P., Meierer, M. and Naef, J. (2021). The Role of Time-Varying Contextual Factors
in Latent Attrition Models for Customer Base Analysis. *Marketing Science* 40(4), 783-809
(the covariate specification of R's CLVTools).
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices
from .btyd_processes import bgnbd_purchases, pnbd_purchases
from .follow_up import check_follow_up, follow_up_rng, simulate_follow_up
from .simulated_base import SimulatedBase

__all__ = [
    "ATTRIBUTE_LEVELS",
    "DEFAULT_COVARIATE_EFFECTS",
    "DEFAULT_PARAMS",
    "SimulatedBase",
    "generate_customer_base",
]

#: Attribute levels and their shares in the population; the first level of each attribute
#: is the reference level of the dummy coding.
ATTRIBUTE_LEVELS: dict[str, dict[str, float]] = {
    "channel": {"online": 0.50, "store": 0.35, "referral": 0.15},
    "region": {"north": 0.30, "south": 0.25, "east": 0.25, "west": 0.20},
    "plan": {"basic": 0.70, "premium": 0.30},
}

#: Dummy columns in a fixed order, ``"<attribute>_<level>"`` for each non-reference level.
DUMMY_NAMES: tuple[str, ...] = tuple(
    f"{attr}_{level}" for attr, levels in ATTRIBUTE_LEVELS.items() for level in list(levels)[1:]
)

#: True parameters by model (rates per week) and of Gamma-Gamma spend (``gamma`` is the
#: Fader-Hardie gamma, which lifetimes' GammaGammaFitter calls ``v``). Mean purchase rate
#: r / alpha = 0.075 a week (about 4 a year); mean spend p * gamma / (q - 1) = 50.
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "bgnbd": {"r": 0.6, "alpha": 8.0, "a": 0.8, "b": 4.0},
    "pnbd": {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 30.0},
    "gamma_gamma": {"p": 6.0, "q": 4.0, "gamma": 25.0},
}

#: Log-multipliers of the purchase rate and of the dropout (CLVTools' gamma_trans and
#: gamma_life), by dummy. Negative dropout effects mean leaving more slowly: referred and
#: premium customers stay longer, store customers a little longer; the south buys more.
DEFAULT_COVARIATE_EFFECTS: dict[str, dict[str, float]] = {
    "purchase": {
        "channel_store": 0.10,
        "channel_referral": 0.0,
        "region_south": 0.35,
        "region_east": 0.0,
        "region_west": -0.15,
        "plan_premium": 0.20,
    },
    "dropout": {
        "channel_store": -0.25,
        "channel_referral": -0.80,
        "region_south": 0.0,
        "region_east": 0.0,
        "region_west": 0.20,
        "plan_premium": -0.70,
    },
}

_MAX_CUSTOMERS = 10_000_000


def generate_customer_base(
    n_customers: int = 20_000,
    *,
    model: Literal["bgnbd", "pnbd"] = "bgnbd",
    seed: int = 0,
    start: str | dt.date = "2023-01-01",
    observation_end: str | dt.date = "2024-12-31",
    acquisition_end: str | dt.date | None = None,
    params: dict[str, float] | None = None,
    covariate_effects: dict[str, dict[str, float]] | None = None,
    follow_up: int = 0,
) -> SimulatedBase:
    """Simulate a retail customer base with known true parameters.

    Per customer *i* with attribute dummies z_i (reference levels: online, north, basic):

    * purchase rate (per week) lambda_i = lambda0_i * exp(g_purchase' z_i), with
      lambda0_i ~ Gamma(shape r, rate alpha);
    * BG/NBD (Fader, Hardie & Lee 2005): after each *repeat* purchase the customer drops
      out with probability p_i = 1 - (1 - p0_i) ** exp(g_dropout' z_i), p0_i ~ Beta(a, b)
      (per-purchase survival (1 - p0_i) raised to the attribute multiplier); the
      customer is alive at acquisition;
    * Pareto/NBD (Schmittlein, Morrison & Colombo 1987): lifetime ~ Exponential(mu_i),
      mu_i = mu0_i * exp(g_dropout' z_i), mu0_i ~ Gamma(shape s, rate beta);
    * spend (Gamma-Gamma): nu_i ~ Gamma(shape q, rate gamma), each amount ~ Gamma(shape
      p, rate nu_i), rounded to cents (at least 0.01).

    The first purchase is at acquisition; acquisition dates are uniform over the days
    from ``start`` to ``acquisition_end``. Given lambda_i, the repeat purchases in a window
    of length w are Poisson(lambda_i w) in number and uniform order statistics in time;
    BG/NBD keeps the first min(N_i, J_i) of them, J_i ~ Geometric(p_i) being the repeat
    purchase after which the customer leaves, and Pareto/NBD draws them in the window cut
    at the dropout. See the module docstring for how continuous times become dates.

    Parameters
    ----------
    n_customers : int
        Number of customers, 1 to 10,000,000 (tested from 1,000 to 1,000,000).
    model : {"bgnbd", "pnbd"}
        Purchase and dropout process.
    seed : int
        Seed of numpy's ``default_rng``: equal seeds and arguments give equal bases.
    start, observation_end : str or datetime.date
        First possible acquisition day and last observed day (ISO dates).
    acquisition_end : str or datetime.date, optional
        Last possible acquisition day; default ``start`` plus two thirds of the period.
    params : dict of str to float, optional
        Overrides of the true parameters, by name: the model's (``r``, ``alpha``, ``a``,
        ``b`` for BG/NBD; ``r``, ``alpha``, ``s``, ``beta`` for Pareto/NBD; rates per week)
        and Gamma-Gamma's (``p``, ``q``, ``gamma``); see :data:`DEFAULT_PARAMS`.
    covariate_effects : dict, optional
        ``{"purchase": {dummy: effect}, "dropout": {dummy: effect}}`` with dummies
        ``channel_store``, ``channel_referral``, ``region_south``, ``region_east``,
        ``region_west``, ``plan_premium``: log-multipliers of the purchase rate and of
        the dropout. Dummies left out have no effect, so ``{}`` switches all effects off.
        Default :data:`DEFAULT_COVARIATE_EFFECTS` (churn clearly depends on attributes).
    follow_up : int
        Days after ``observation_end`` to simulate too, 0 (none) to 3650: the customers'
        processes carried on (:mod:`clvtools.data.follow_up`), from a stream of their own
        so that the other tables are the same for any ``follow_up``.

    Returns
    -------
    SimulatedBase
        ``customers``, ``transactions``, ``truth``, ``customer_truth``,
        ``observation_end``, ``follow_up``, ``future_transactions``.

    Raises
    ------
    ClvInputError
        For a bad size, model, date, parameter or effect.

    Examples
    --------
    >>> base = generate_customer_base(1_000, seed=1)
    >>> base.customers.columns.tolist()
    ['customer_id', 'channel', 'region', 'plan', 'acquisition_date']
    """
    n = _check_n(n_customers)
    if model not in ("bgnbd", "pnbd"):
        raise ClvInputError(
            f"The 'model' parameter of generate_customer_base must be "
            f"{format_choices(['bgnbd', 'pnbd'])}. Got {model!r} instead."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ClvInputError(
            f"The 'seed' parameter of generate_customer_base must be a non-negative "
            f"integer. Got {seed!r} instead."
        )
    start_d = _as_date(start, "start")
    end_d = _as_date(observation_end, "observation_end")
    if end_d <= start_d:
        raise ClvInputError(
            f"The 'observation_end' parameter of generate_customer_base must be after "
            f"'start' ({start_d}). Got {end_d} instead."
        )
    if acquisition_end is None:
        acq_end_d = start_d + dt.timedelta(days=(2 * (end_d - start_d).days) // 3)
    else:
        acq_end_d = _as_date(acquisition_end, "acquisition_end")
        if not start_d <= acq_end_d <= end_d:
            raise ClvInputError(
                f"The 'acquisition_end' parameter of generate_customer_base must lie "
                f"between 'start' ({start_d}) and 'observation_end' ({end_d}). "
                f"Got {acq_end_d} instead."
            )
    model_params, gg = _resolve_params(model, params)
    effects = _resolve_effects(covariate_effects)
    follow_up = check_follow_up(follow_up)

    rng = np.random.default_rng(seed)

    # Attributes (integer codes) and dummy matrix, shape (n, n_dummies).
    codes = {
        attr: rng.choice(len(levels), size=n, p=np.fromiter(levels.values(), float))
        for attr, levels in ATTRIBUTE_LEVELS.items()
    }
    z = np.column_stack(
        [
            codes[attr] == k
            for attr, levels in ATTRIBUTE_LEVELS.items()
            for k in range(1, len(levels))
        ]
    ).astype(float)
    lin_purchase = z @ np.array([effects["purchase"][d] for d in DUMMY_NAMES])
    lin_dropout = z @ np.array([effects["dropout"][d] for d in DUMMY_NAMES])

    # Acquisition day (days after start), sorted so that ids follow acquisition order
    # (attributes are independent of it, so sorting does not bias anything).
    acq_day = np.sort(rng.integers(0, (acq_end_d - start_d).days + 1, size=n))
    n_days_obs = (end_d - start_d).days
    t_obs = (n_days_obs - acq_day) / 7.0  # weeks observed, T_i, shape (n,)

    lam = rng.gamma(model_params["r"], 1.0 / model_params["alpha"], size=n) * np.exp(lin_purchase)

    simulate = bgnbd_purchases if model == "bgnbd" else pnbd_purchases
    owner, tau, dropout_time, dropout_value = simulate(
        rng, model_params, lam, lin_dropout, t_obs
    )
    # A Pareto/NBD dropout_time is the lifetime, also if it ends after T_i; NaN < T_i is False.
    dead = dropout_time < t_obs

    # Transactions: acquisition rows, then repeat purchases on day floor(7 tau).
    cust = np.concatenate([np.arange(n), owner])
    day = np.concatenate([acq_day, acq_day[owner] + np.floor(7.0 * tau).astype(np.int64)])
    order = np.argsort(cust * (n_days_obs + 1) + day, kind="stable")
    cust, day = cust[order], day[order]

    nu = rng.gamma(gg["q"], 1.0 / gg["gamma"], size=n)
    amount = np.maximum(np.round(rng.gamma(gg["p"], 1.0 / nu[cust]), 2), 0.01)

    width = max(7, len(str(n)))
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)
    origin = np.datetime64(start_d, "D")
    acq_dates = (origin + acq_day).astype("datetime64[ns]")

    customers = pd.DataFrame(
        {"customer_id": ids}
        | {
            attr: np.array(list(levels), dtype=object)[codes[attr]]
            for attr, levels in ATTRIBUTE_LEVELS.items()
        }
        | {"acquisition_date": acq_dates}
    )
    transactions = pd.DataFrame(
        {
            "customer_id": ids[cust],
            "date": (origin + day).astype("datetime64[ns]"),
            "amount": amount,
        }
    )
    dropout_day = acq_day + np.floor(7.0 * np.where(dead, dropout_time, 0.0)).astype(np.int64)
    dropout_date = np.where(dead, origin + dropout_day, np.datetime64("NaT", "D"))
    customer_truth = pd.DataFrame(
        {
            "customer_id": ids,
            "lambda": lam,
            ("p" if model == "bgnbd" else "mu"): dropout_value,
            "nu": nu,
            "expected_spend": gg["p"] / nu,
            "dropout_date": dropout_date.astype("datetime64[ns]"),
            "alive_at_end": ~dead,
        }
    )
    future = None
    if follow_up:  # from a stream of its own: nothing above depends on follow_up
        future = simulate_follow_up(
            follow_up_rng(seed), follow_up, model=model, lam=lam, dropout=dropout_value,
            alive=~dead, life_left=7.0 * (dropout_time - t_obs), nu=nu, spend_shape=gg["p"])
        customer_truth = customer_truth.assign(
            **future.truth_columns(end_d, dropout_date, gg["p"] / nu))
    truth = {
        "model": model,
        "time_unit": "week",
        "params": model_params,
        "gamma_gamma": gg,
        "covariate_effects": effects,
        "reference_levels": {attr: next(iter(levels)) for attr, levels in ATTRIBUTE_LEVELS.items()},
        "attribute_shares": {attr: dict(levels) for attr, levels in ATTRIBUTE_LEVELS.items()},
        "seed": int(seed),
        "n_customers": n,
        "start": start_d.isoformat(),
        "acquisition_end": acq_end_d.isoformat(),
        "observation_end": end_d.isoformat(),
    }
    return SimulatedBase(
        customers=customers,
        transactions=transactions,
        truth=truth,
        customer_truth=customer_truth,
        observation_end=end_d,
        model=model,
        follow_up=follow_up,
        future_transactions=None if future is None else future.transactions(ids, end_d),
    )


def _check_n(n_customers) -> int:
    if (
        isinstance(n_customers, bool)
        or not isinstance(n_customers, (int, np.integer))
        or not 1 <= n_customers <= _MAX_CUSTOMERS
    ):
        raise ClvInputError(
            f"The 'n_customers' parameter of generate_customer_base must be an integer "
            f"from 1 to {_MAX_CUSTOMERS:,}. Got {n_customers!r} instead."
        )
    return int(n_customers)


def _as_date(value, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ClvInputError(
            f"The '{name}' parameter of generate_customer_base must be an ISO date "
            f"(YYYY-MM-DD). Got {value!r} instead."
        ) from None


def _resolve_params(model: str, params: dict | None) -> tuple[dict, dict]:
    model_params = dict(DEFAULT_PARAMS[model])
    gg = dict(DEFAULT_PARAMS["gamma_gamma"])
    for key, value in (params or {}).items():
        if key in model_params:
            target = model_params
        elif key in gg:
            target = gg
        else:
            raise ClvInputError(
                f"Unknown parameter {key!r} for model {model!r}.",
                advice=f"Use {format_choices([*model_params, *gg])}.",
            )
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value <= 0:
            raise ClvInputError(
                f"The parameter {key!r} of generate_customer_base must be a positive number. "
                f"Got {value!r} instead."
            )
        target[key] = float(value)
    if gg["q"] <= 1:
        raise ClvInputError(
            f"The Gamma-Gamma parameter 'q' must be above 1 (the mean spend p*gamma/(q-1) "
            f"is infinite otherwise). Got {gg['q']!r} instead."
        )
    return model_params, gg


def _resolve_effects(covariate_effects: dict | None) -> dict[str, dict[str, float]]:
    if covariate_effects is None:
        return {k: dict(v) for k, v in DEFAULT_COVARIATE_EFFECTS.items()}
    out = {process: {d: 0.0 for d in DUMMY_NAMES} for process in ("purchase", "dropout")}
    for process, effects in covariate_effects.items():
        if process not in out:
            raise ClvInputError(
                f"Unknown process {process!r} in 'covariate_effects'.",
                advice=f"Use {format_choices(list(out))}.",
            )
        for dummy, value in effects.items():
            if dummy not in out[process]:
                raise ClvInputError(
                    f"Unknown attribute dummy {dummy!r} in covariate_effects[{process!r}].",
                    advice=f"Use {format_choices(list(DUMMY_NAMES))}.",
                )
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ClvInputError(
                    f"covariate_effects[{process!r}][{dummy!r}] must be a finite number. "
                    f"Got {value!r} instead."
                )
            out[process][dummy] = float(value)
    return out

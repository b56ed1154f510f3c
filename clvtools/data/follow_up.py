"""The simulated customers after the observation end: the same processes carried on.

:func:`clvtools.data.generator.generate_customer_base` with ``follow_up = F`` days continues
every customer's purchase process for ``w = F / 7`` weeks after the observation end, with
the customer's own rates and state there (not a new customer):

* a customer dead at the observation end makes no further purchase;
* BG/NBD, alive: Poisson purchases at rate lambda_i; after each of them the customer drops
  out with probability p_i. Given alive at the end, the number of purchases left before the
  dropout is again Geometric(p_i) (memoryless), so drawing the dropout purchase by
  purchase is the continuation of the drawn history, not a second draw of it;
* Pareto/NBD, alive: Poisson purchases at rate lambda_i until the exponential lifetime that
  was drawn for the customer ends;
* each amount is a new Gamma(p, rate nu_i) draw, rounded to cents (at least 0.01).

Time. Customer *i*'s observation covers model time [0, T_i) (see the generator's module
docstring: day ``floor(7 t)`` after acquisition, so no repeat purchase falls on the
observation end day). The follow-up covers model time (T_i, T_i + w], and a time
``T_i + s`` (``s`` in days) is dated ``observation_end + ceil(s)``: the dates in
``(observation_end, observation_end + F]`` are exactly that window, in the convention of
the RFM summary and of lifetimes' holdout period (date ``d`` is model time
``(d - acquisition) / 7``). The expected counts below are thus exact expectations of the
counts of dated rows.

Expected purchases in the follow-up, given lambda_i, the dropout parameter and the state at
the end (0 for a customer dead at the end), with h(x) = (1 - exp(-x)) / x, h(0) = 1:

* Pareto/NBD: the remaining lifetime D is Exponential(mu) (memoryless), and the expected
  purchases lambda E[min(D, w)] = lambda w h(mu w) = lambda / mu (1 - exp(-mu w));
* BG/NBD: the dropout comes at the first purchase that "fails" (probability p each), the
  first event of a thinned Poisson process, so D is Exponential(lambda p); the purchases up
  to and including it number lambda E[min(D, w)] (optional stopping of N(t) - lambda t),
  that is lambda w h(lambda p w) = (1 - exp(-lambda p w)) / p.

The block drawing below costs a whole block (a year of purchases) even for a short
follow-up; at 1M customers the whole follow-up takes about half a second.

Randomness. The follow-up draws from its own stream, ``SeedSequence(seed, spawn_key=(1,))``,
independent of the stream of the observed base, so the observed tables do not depend on
``follow_up``. The follow-up is drawn in blocks of :data:`BLOCK_DAYS` days, each block fully
whatever ``F``, and then cut at ``F``: a longer follow-up extends a shorter one (the rows in
the first ``k`` days are the same for every ``F >= k``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ClvInputError

__all__ = ["BLOCK_DAYS", "MAX_FOLLOW_UP_DAYS", "FollowUp", "check_follow_up",
           "expected_future_purchases", "follow_up_rng", "simulate_follow_up"]

#: Longest follow-up, days (ten years).
MAX_FOLLOW_UP_DAYS = 3650

#: Days simulated per block; fixed, so that the draws do not depend on the follow-up length.
BLOCK_DAYS = 365

#: Spawn key of the follow-up stream under the base's seed.
_STREAM = 1


def check_follow_up(follow_up) -> int:
    """Return ``follow_up`` as an int, or raise a ClvInputError unless it is 0..3650 days."""
    if (
        isinstance(follow_up, bool)
        or not isinstance(follow_up, (int, np.integer))
        or not 0 <= follow_up <= MAX_FOLLOW_UP_DAYS
    ):
        raise ClvInputError(
            f"The 'follow_up' parameter of generate_customer_base must be a whole number of "
            f"days from 0 to {MAX_FOLLOW_UP_DAYS}. Got {follow_up!r} instead.",
            advice="Pass e.g. follow_up=365 to simulate one year after the observation end.",
        )
    return int(follow_up)


def follow_up_rng(seed: int) -> np.random.Generator:
    """The follow-up's generator: a child of ``SeedSequence(seed)``, independent of the
    ``default_rng(seed)`` stream that draws the observed base."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_STREAM,)))


def _h(x: np.ndarray) -> np.ndarray:
    """(1 - exp(-x)) / x for x >= 0, with h(0) = 1 (no 0/0 for tiny x)."""
    small = x < 1e-10
    return np.where(small, 1.0 - 0.5 * x, -np.expm1(-x) / np.where(small, 1.0, x))


def expected_future_purchases(model: str, weeks: float, lam: np.ndarray,
                              dropout: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Expected purchases in the ``weeks`` after the end, given the true rates and state.

    Parameters
    ----------
    model : {"bgnbd", "pnbd"}
    weeks : float
        Follow-up length w, weeks.
    lam, dropout : numpy.ndarray, shape (n,)
        Purchase rate per week; dropout probability after a purchase (BG/NBD) or dropout
        rate per week (Pareto/NBD).
    alive : numpy.ndarray of bool, shape (n,)
        Alive at the observation end.

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``lambda w h(p lambda w)`` (BG/NBD) or ``lambda w h(mu w)`` (Pareto/NBD), 0 if dead;
        h(x) = (1 - exp(-x)) / x.
    """
    x = (lam * dropout if model == "bgnbd" else dropout) * weeks
    return np.where(alive, lam * weeks * _h(x), 0.0)


@dataclass
class FollowUp:
    """Purchases in the follow-up and the dropouts during it.

    Attributes
    ----------
    days : int
        Follow-up length F, days.
    owner, day : numpy.ndarray of int64, shape (n_purchases,)
        Customer index and day after the observation end (1..F) of each purchase, sorted by
        customer then day.
    amount : numpy.ndarray of float, shape (n_purchases,)
        Amounts, currency units, cents.
    dropout_day : numpy.ndarray of float, shape (n,)
        Day after the observation end (1..F) of a dropout during the follow-up; NaN for
        customers dead at the end or still alive at the follow-up end.
    expected : numpy.ndarray, shape (n,)
        Expected purchases in the follow-up (:func:`expected_future_purchases`).
    """

    days: int
    owner: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    dropout_day: np.ndarray
    expected: np.ndarray

    def transactions(self, ids: np.ndarray, end: dt.date) -> pd.DataFrame:
        """Rows like the base's transactions: ``customer_id``, ``date``, ``amount``."""
        return pd.DataFrame({
            "customer_id": ids[self.owner],
            "date": (np.datetime64(end, "D") + self.day).astype("datetime64[ns]"),
            "amount": self.amount,
        })

    def truth_columns(self, end: dt.date, dropout_date: np.ndarray,
                      expected_spend: np.ndarray) -> dict[str, np.ndarray]:
        """The follow-up columns of ``customer_truth`` (see :class:`SimulatedBase`), from the
        observation end, the dropout dates up to it (datetime64, NaT if alive at the end)
        and the expected spend per purchase, shapes (n,)."""
        n = dropout_date.size
        leaves = ~np.isnan(self.dropout_day)
        late = np.datetime64(end, "D") + np.where(leaves, self.dropout_day, 0).astype(np.int64)
        dropout = np.where(leaves, late, dropout_date).astype("datetime64[ns]")
        return {
            "alive_at_follow_up_end": np.isnat(dropout),
            "follow_up_dropout_date": dropout,
            "future_purchases": np.bincount(self.owner, minlength=n).astype(np.int64),
            "future_revenue": np.round(np.bincount(self.owner, self.amount, minlength=n), 2),
            "expected_future_purchases": self.expected,
            "expected_future_revenue": self.expected * expected_spend,
        }


def simulate_follow_up(
    rng: np.random.Generator,
    days: int,
    *,
    model: str,
    lam: np.ndarray,
    dropout: np.ndarray,
    alive: np.ndarray,
    life_left: np.ndarray,
    nu: np.ndarray,
    spend_shape: float,
) -> FollowUp:
    """Carry every customer's process on for ``days`` days after the observation end.

    Parameters
    ----------
    rng : numpy.random.Generator
        The follow-up stream (:func:`follow_up_rng`).
    days : int
        Follow-up length F, 1..3650 days.
    model : {"bgnbd", "pnbd"}
    lam, dropout : numpy.ndarray, shape (n,)
        Purchase rate per week; dropout probability after a purchase (BG/NBD) or dropout
        rate per week (Pareto/NBD).
    alive : numpy.ndarray of bool, shape (n,)
        Alive at the observation end.
    life_left : numpy.ndarray, shape (n,)
        Pareto/NBD: days from the observation end to the end of the drawn lifetime (read
        where ``alive``); ignored for BG/NBD.
    nu : numpy.ndarray, shape (n,)
        Gamma-Gamma scale of each customer's amounts; ``spend_shape`` is Gamma-Gamma's p.

    Returns
    -------
    FollowUp
    """
    n = lam.size
    rate = lam / 7.0  # per day
    # Day (continuous, after the end) of the dropout; inf while none is known.
    death = np.full(n, np.inf)
    if model == "pnbd":
        death[alive] = life_left[alive]
    owners, offsets, amounts = [], [], []
    for lo in range(0, days, BLOCK_DAYS):
        active = np.flatnonzero(alive & (death > lo))
        owner = np.repeat(active, rng.poisson(rate[active] * BLOCK_DAYS))
        # 1 - u is in (0, 1], so s is in (lo, lo + BLOCK_DAYS] and ceil(s) a day of the block.
        s = lo + BLOCK_DAYS * (1.0 - rng.random(owner.size))
        if model == "bgnbd":
            # Each purchase ends the life with probability p; the first such one (in time)
            # is the dropout, and purchases after it in the block are dropped below.
            fails = rng.random(owner.size) < dropout[owner]
            np.minimum.at(death, owner[fails], s[fails])
        keep = s <= death[owner]
        owner, s = owner[keep], s[keep]
        # Amounts of every kept purchase of the block, so that the draws do not depend on F.
        amount = np.maximum(np.round(rng.gamma(spend_shape, 1.0 / nu[owner]), 2), 0.01)
        within = s <= days
        owners.append(owner[within])
        offsets.append(np.ceil(s[within]).astype(np.int64))
        amounts.append(amount[within])
    owner, day, amount = (np.concatenate(x) for x in (owners, offsets, amounts))
    order = np.argsort(owner * (days + 1) + day, kind="stable")
    # A lifetime ending exactly at T_i (probability 0) counts as a dropout on day 1.
    dropout_day = np.where(alive & (death <= days), np.maximum(np.ceil(death), 1.0), np.nan)
    return FollowUp(
        days=days,
        owner=owner[order],
        day=day[order],
        amount=amount[order],
        dropout_day=dropout_day,
        expected=expected_future_purchases(model, days / 7.0, lam, dropout, alive),
    )

"""The reading policies: what to do with rows that are valid but need a decision.

Returns, zero amounts, duplicates, same-day rows, late rows, implausible dates and outlying
amounts each have a policy; :meth:`DataPolicies.exclusion_rules` turns them into the SQL
conditions that DuckDB's reader (:mod:`.transactions`) and Spark's (:mod:`.spark_reader`)
apply in the same order.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from ..errors import ClvInputError, format_choices
from .plausibility import PlausibleBounds

__all__ = ["DataPolicies"]


@dataclass(frozen=True)
class DataPolicies:
    """What to do with rows that are valid but need a decision.

    Every choice is reported in ``data_quality.json``, whatever it is.

    Attributes
    ----------
    negative_amounts : {"drop", "keep", "error"}
        Returns and refunds. ``"drop"`` excludes them (counted); ``"keep"`` nets them
        against the same day's purchases.
    zero_amounts : {"keep", "drop", "error"}
        A zero-amount row is still a purchase occasion under ``"keep"``.
    duplicate_rows : {"keep", "drop", "error"}
        Rows equal in customer id, timestamp and amount. lifetimes keeps them (their
        amounts add up within the day); ``"drop"`` keeps one of each.
    same_day : {"combine", "error"}
        Several transactions of a customer on one day form one purchase occasion with
        the amounts summed (``"combine"``, as lifetimes does), or are an error.
    after_observation_end : {"error", "drop"}
        Rows dated after the observation end.
    implausible_dates : {"drop", "error"}
        Rows dated outside the plausible window (:mod:`.plausibility`): 9999-12-31, 1900-01-01.
        They are left out (counted) before the observation end is taken.
    date_window : float
        Width of that window on each side of the central 90 % of dates, in multiples of
        their span (at least two years).
    amount_outliers : {"drop", "keep", "error"}
        Amounts larger (in absolute value) than ``amount_outlier_factor`` times the median
        positive amount: ``"drop"`` leaves them out (counted), so that one absurd amount
        cannot ruin the spend model of every customer.
    amount_outlier_factor : float
        That multiple of the median positive amount.
    """

    negative_amounts: Literal["drop", "keep", "error"] = "drop"
    zero_amounts: Literal["keep", "drop", "error"] = "keep"
    duplicate_rows: Literal["keep", "drop", "error"] = "keep"
    same_day: Literal["combine", "error"] = "combine"
    after_observation_end: Literal["error", "drop"] = "error"
    implausible_dates: Literal["drop", "error"] = "drop"
    date_window: float = 1.0
    amount_outliers: Literal["drop", "keep", "error"] = "drop"
    amount_outlier_factor: float = 10_000.0

    def __post_init__(self):
        allowed = {
            "negative_amounts": ("drop", "keep", "error"),
            "zero_amounts": ("keep", "drop", "error"),
            "duplicate_rows": ("keep", "drop", "error"),
            "same_day": ("combine", "error"),
            "after_observation_end": ("error", "drop"),
            "implausible_dates": ("drop", "error"),
            "amount_outliers": ("drop", "keep", "error"),
        }
        for name, choices in allowed.items():
            value = getattr(self, name)
            if value not in choices:
                raise ClvInputError(
                    f"The {name!r} setting must be {format_choices(choices)}. "
                    f"Got {value!r} instead."
                )
        for name in ("date_window", "amount_outlier_factor"):
            if not getattr(self, name) > 0:
                raise ClvInputError(f"The {name!r} setting must be a positive number. "
                                    f"Got {getattr(self, name)!r} instead.")

    def exclusion_rules(self, bounds: PlausibleBounds, given_end: dt.date | None, *,
                        has_amounts: bool, day: str) -> list[tuple[str, str, str, str, str]]:
        """The rules that exclude a row or stop the reading, in the order they apply: each
        row is counted under the first that excludes it. The SQL conditions read the columns
        ``amount`` (DOUBLE) and the DATE expression ``day``; DuckDB's reader and Spark's
        (:mod:`.spark_reader`) apply the same rules.

        Parameters
        ----------
        bounds : PlausibleBounds
            The log's plausible dates and amounts.
        given_end : datetime.date or None
            The observation end the user gave; without one it is the last plausible date,
            so that no row kept can be after it.
        has_amounts : bool
        day : str
            SQL of a row's calendar day.

        Returns
        -------
        list of (name, condition, policy, problem, advice)
            ``name`` is the key of ``excluded_by_reason``; ``problem`` and ``advice`` make
            the error when ``policy`` is ``"error"`` and rows meet ``condition``.
        """
        implausible = bounds.date_condition(day)
        late = f"{day} > DATE '{given_end.isoformat()}'" if given_end else "FALSE"
        rules = [("implausible_dates", implausible, self.implausible_dates,
                  f"Transactions are dated outside the plausible window {bounds.earliest} "
                  f"to {bounds.latest} (the central 90 % of the dates widened by date_window "
                  "times their span).",
                  "Correct these dates, or set implausible_dates = 'drop' to exclude them "
                  "(counted in data_quality.json); a larger date_window widens the window."),
                 ("after_observation_end", late, self.after_observation_end,
                  f"Transactions are dated after the observation end {given_end}.",
                  "Set observation_end to the last day of the data, or set "
                  "after_observation_end = 'drop' to exclude these rows (they are counted in "
                  "data_quality.json).")]
        if has_amounts:
            for name, cond, policy, word in (
                ("negative_amounts", "amount < 0", self.negative_amounts,
                 "negative (returns or refunds)"),
                ("zero_amounts", "amount = 0", self.zero_amounts, "zero"),
            ):
                rules.append((name, cond, policy, f"Amounts are {word}.",
                              f"Set {name} = 'drop' to exclude these rows or 'keep' to keep "
                              "them."))
            rules.append((
                "amount_outliers", bounds.amount_condition("amount"), self.amount_outliers,
                f"Amounts are larger than {bounds.amount_limit:,.6g} (amount_outlier_factor "
                "times the median positive amount)." if bounds.amount_limit else "",
                "Correct these amounts, or set amount_outliers = 'drop' to exclude them (counted "
                "in data_quality.json) or 'keep' to use them; a larger amount_outlier_factor "
                "raises the limit."))
        return rules

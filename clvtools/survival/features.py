"""The landmark feature set: the covariates a churn model derives from a raw landmark or
scoring table (as :func:`clvtools.data.survival_tables.landmark_table` and ``scoring_table``
write them), so that the caller never builds derived columns.

A landmark table has more behaviour columns than a Cox model can take together
(``n_purchases`` is ``frequency + 1``; the longest window often equals the whole history), so
the set keeps one column per idea, without exact collinearity:

========================================  ===================================================
feature                                   from
========================================  ===================================================
``time_since_last_purchase``              as is (time units)
``tenure``                                as is (time units)
``log_frequency``                         log1p(``frequency``), repeat purchases
``log_purchases_last_{w}``                log1p(``purchases_last_{w}``), one window ``w``
``purchase_trend``                        as is (purchases, recent minus earlier window)
``log_average_spend``                     log1p(``average_spend`` clipped at 0, over its
                                          training median), only when every training row
                                          has a spend
every attribute column                    as is (numeric ones as float64)
========================================  ===================================================

Counts and spend are skewed, hence log1p. Spend is first divided by its median over the
training rows, so that the model does not depend on the currency unit (amounts in cents or in
euros give the same churn probabilities; log1p of the amount itself did not). The recipe (the
window, whether spend enters and its scale, the attribute columns) is decided once in
:meth:`BehaviourFeatures.fit` and saved in the model file, so that a loaded model derives
exactly the same columns from any later table.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from ._params import check_columns

__all__ = ["BehaviourFeatures", "BEHAVIOUR_COLUMNS", "has_landmark_columns"]

#: The landmark table's fixed behaviour columns (besides ``purchases_last_*``/``spend_last_*``).
BEHAVIOUR_COLUMNS = ("n_purchases", "frequency", "tenure", "time_since_last_purchase",
                     "total_spend", "average_spend", "purchase_trend")
_WINDOW_PREFIXES = ("purchases_last_", "spend_last_")


def is_behaviour_column(column: str) -> bool:
    """Whether ``column`` of a landmark table describes purchase behaviour (not an attribute)."""
    return column in BEHAVIOUR_COLUMNS or column.startswith(_WINDOW_PREFIXES)


def _purchase_windows(columns: Iterable[str]) -> list[str]:
    """The ``purchases_last_*`` columns, in table order (the landmark table's window order)."""
    return [c for c in columns if c.startswith("purchases_last_")]


def has_landmark_columns(columns: Iterable[str]) -> bool:
    """True when ``columns`` hold every behaviour column of a landmark or scoring table."""
    columns = list(columns)
    return set(BEHAVIOUR_COLUMNS) <= set(columns) and bool(_purchase_windows(columns))


def window_name(window: float) -> str:
    """Column suffix of a window length, as the landmark table writes it: 13 -> "13",
    0.5 -> "0_5"."""
    return f"{window:g}".replace(".", "_")


class BehaviourFeatures:
    """Derive the landmark feature set from a raw landmark or scoring table.

    Parameters
    ----------
    window : float, optional
        Length ``w`` (time units) of the ``purchases_last_{w}`` column whose log1p enters.
        Default: the table's second purchase window (the landmark table's default windows
        are about 1, 3, 6 and 12 months: 13 weeks, 91 days or 3 months), its only one if it
        has one.
    exclude : sequence of str
        Columns that are never attributes (id, landmark, outcome, weights, strata).

    Attributes
    ----------
    window_column_ : str
        The ``purchases_last_*`` column used.
    log_spend_ : bool
        Whether ``log_average_spend`` enters (every training row had an ``average_spend``).
    spend_scale_ : float
        The median positive ``average_spend`` of the training rows (currency; 1 if none, and
        in model files written before it existed), which spend is divided by.
    attributes_ : list of str
        The attribute columns passed through, in table order.
    feature_names_ : list of str
        The output columns, in order: the behaviour features, then the attributes.
    """

    kind = "landmark"

    def __init__(self, *, window: float | None = None, exclude: Sequence[str] = ()):
        self.window = window
        self.exclude = tuple(exclude)

    def fit(self, table: pd.DataFrame, source: str = "DataFrame") -> BehaviourFeatures:
        """Decide the recipe from a training table; returns self."""
        check_columns(table, list(BEHAVIOUR_COLUMNS), source, "landmark behaviour column")
        windows = _purchase_windows(table.columns)
        if self.window is not None:
            self.window_column_ = f"purchases_last_{window_name(self.window)}"
            check_columns(table, [self.window_column_], source, "purchase window column")
        elif not windows:
            raise ClvInputError("The table has no purchases_last_* column.", source=source,
                                advice="Pass a landmark table as landmark_table() writes it.")
        else:
            # the second window is about 3 months with the default windows
            self.window_column_ = windows[min(1, len(windows) - 1)]
        self.log_spend_ = bool(table["average_spend"].notna().all())
        spend = table["average_spend"].astype("float64")
        positive = spend[spend > 0]
        self.spend_scale_ = float(positive.median()) if len(positive) else 1.0
        skip = set(self.exclude)
        self.attributes_ = [c for c in table.columns
                            if c not in skip and not is_behaviour_column(c)]
        return self

    @property
    def feature_names_(self) -> list[str]:
        names = ["time_since_last_purchase", "tenure", "log_frequency",
                 f"log_{self.window_column_}", "purchase_trend"]
        if self.log_spend_:
            names.append("log_average_spend")
        return names + list(self.attributes_)

    def transform(self, table: pd.DataFrame, source: str = "DataFrame") -> pd.DataFrame:
        """The derived features of ``table``.

        Parameters
        ----------
        table : DataFrame, shape (n_rows, ...)
            A raw landmark or scoring table with the behaviour columns used and the
            attributes seen in :meth:`fit`.

        Returns
        -------
        DataFrame, shape (n_rows, len(feature_names_))
            Index as ``table``; float64 behaviour features, then the attributes.
        """
        used = ["time_since_last_purchase", "tenure", "frequency", self.window_column_,
                "purchase_trend", *(["average_spend"] if self.log_spend_ else []),
                *self.attributes_]
        check_columns(table, used, source, "column the model's landmark features need")

        def as_float(column: str) -> pd.Series:
            return table[column].astype("float64")

        out = pd.DataFrame({
            "time_since_last_purchase": as_float("time_since_last_purchase"),
            "tenure": as_float("tenure"),
            "log_frequency": np.log1p(as_float("frequency")),
            f"log_{self.window_column_}": np.log1p(as_float(self.window_column_)),
            "purchase_trend": as_float("purchase_trend"),
        }, index=table.index)
        if self.log_spend_:
            out["log_average_spend"] = np.log1p(table["average_spend"].clip(lower=0)
                                                .astype("float64") / self.spend_scale_)
        for column in self.attributes_:
            values = table[column]
            # lifelines wants float64, not pandas' nullable integers
            out[column] = (values.astype("float64") if pd.api.types.is_numeric_dtype(values)
                           else values)
        return out

    def to_dict(self) -> dict:
        """The recipe as a JSON-ready dict (the model file's ``features``)."""
        return {"kind": self.kind, "window_column": self.window_column_,
                "log_spend": self.log_spend_, "spend_scale": self.spend_scale_,
                "attributes": list(self.attributes_)}

    @classmethod
    def from_dict(cls, d: dict) -> BehaviourFeatures:
        """Inverse of :meth:`to_dict`."""
        if d.get("kind") != cls.kind:
            raise ClvInputError(f"Unknown feature recipe {d.get('kind')!r} in the model file.",
                                advice="Save the model again with this version of clvtools.")
        out = cls()
        out.window_column_ = str(d["window_column"])
        out.log_spend_ = bool(d["log_spend"])
        out.spend_scale_ = float(d.get("spend_scale", 1.0))   # older files: the amount itself
        out.attributes_ = [str(c) for c in d["attributes"]]
        return out

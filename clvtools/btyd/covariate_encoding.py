"""Customer attributes as a numeric design matrix for the BTYD covariate models.

A categorical column becomes one 0/1 dummy per level except a reference level, named
``column=level``; a numeric column is used as it is. The levels seen in ``fit`` are
remembered; a level never seen there is an error at prediction (the model has no
coefficient for it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .utils import _rows

__all__ = ["CovariateEncoder"]


def _is_numeric(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            and not isinstance(s.dtype, pd.CategoricalDtype))


class CovariateEncoder:
    """Numeric design matrix from customer attributes (dummies with a reference level).

    Parameters
    ----------
    columns : list of str
        Attribute columns to use, in order. Empty: no covariates (a matrix of shape (n, 0)).
    reference_levels : dict of str to object, optional
        Reference level per categorical column. Default: the first category of a pandas
        ``Categorical``, otherwise the first level in sorted order (R's ``factor`` default).

    Attributes
    ----------
    names_ : list of str
        Names of the design columns: ``column=level`` for dummies, ``column`` for numeric
        columns.
    spec_ : list of dict
        Per attribute: ``{"column", "kind": "numeric"|"categorical", "levels", "reference"}``.
    """

    def __init__(self, columns=None, reference_levels=None):
        self.columns = list(columns or [])
        self.reference_levels = dict(reference_levels or {})

    def fit(self, df: pd.DataFrame | None, source: str = "covariates") -> CovariateEncoder:
        """Learn the levels of the categorical columns; returns self."""
        self.spec_, self.names_ = [], []
        if len(set(self.columns)) != len(self.columns):
            raise ClvInputError(f"The covariate columns {self.columns} contain duplicates.",
                                source=source, advice="list each attribute once per process.")
        if self.columns and df is None:
            raise ClvInputError(
                f"Covariates {self.columns} were requested but no covariates table was given.",
                advice="pass covariates=<DataFrame with one row per customer>.")
        unknown = set(self.reference_levels) - set(self.columns)
        if unknown:
            raise ClvInputError(
                f"reference_levels names columns that are not covariates: {sorted(unknown)}.",
                advice=f"use columns among {self.columns}.")
        for col in self.columns:
            s = self._column(df, col, source)
            if _is_numeric(s):
                v = s.to_numpy(dtype=float)
                self._check_finite(v, col, source)
                self.spec_.append({"column": col, "kind": "numeric"})
                self.names_.append(col)
                continue
            self._check_not_missing(s, col, source, df.index)
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = [lv for lv in s.cat.categories if (s == lv).any()]
            else:
                levels = sorted(pd.unique(s), key=lambda v: (str(type(v)), v))
            levels = [_plain(v) for v in levels]
            ref = _plain(self.reference_levels.get(col, levels[0]))
            if ref not in levels:
                raise ClvInputError(
                    f"The reference level {ref!r} of covariate {col!r} does not occur.",
                    source=source, column=col, advice=f"use one of {levels}.")
            if len(levels) < 2:
                raise ClvInputError(
                    f"The covariate {col!r} has a single level ({levels[0]!r}): its effect "
                    "cannot be estimated.", source=source, column=col,
                    advice="drop it from the covariate lists.")
            self.spec_.append({"column": col, "kind": "categorical", "levels": levels,
                               "reference": ref})
            self.names_.extend(f"{col}={lv}" for lv in levels if lv != ref)
        return self

    @staticmethod
    def _column(df, col, source):
        if col not in df.columns:
            raise ClvInputError(f"The covariate column {col!r} is missing.", source=source,
                                column=col, advice=f"the table has {list(df.columns)}.")
        return df[col]

    @staticmethod
    def _check_finite(v, col, source, index=None):
        bad = ~np.isfinite(v)
        if bad.any():
            raise ClvInputError(
                f"The numeric covariate {col!r} has missing or infinite values.",
                source=source, column=col, n_rows=int(bad.sum()), rows=_rows(bad, {col: v}, index),
                advice="fill them in or drop these customers.")

    @staticmethod
    def _check_not_missing(s, col, source, index):
        bad = s.isna().to_numpy()
        if bad.any():
            raise ClvInputError(
                f"The covariate {col!r} has missing values.", source=source, column=col,
                n_rows=int(bad.sum()), rows=_rows(bad, {col: s.to_numpy()}, index),
                advice="fill them with a level of their own (e.g. 'unknown') or drop "
                "these customers.")

    def transform(self, df: pd.DataFrame | None, n: int | None = None,
                  source: str = "covariates") -> np.ndarray:
        """Design matrix, shape (n_rows, len(names_)), float64.

        Raises
        ------
        ClvInputError
            For a missing column, a missing value or a level not seen in ``fit``.
        """
        if not self.spec_:
            rows = n if df is None else len(df)
            return np.zeros((0 if rows is None else rows, 0))
        if df is None:
            raise ClvInputError(
                f"This model needs the covariates {[s['column'] for s in self.spec_]}.",
                advice="pass covariates=<DataFrame with one row per customer>.")
        blocks = []
        for spec in self.spec_:
            col = spec["column"]
            s = self._column(df, col, source)
            if spec["kind"] == "numeric":
                if not _is_numeric(s):
                    raise ClvInputError(f"The covariate {col!r} was numeric when the model "
                                        f"was fitted; got dtype {s.dtype}.", source=source,
                                        column=col)
                v = s.to_numpy(dtype=float)
                self._check_finite(v, col, source, df.index)
                blocks.append(v[:, None])
                continue
            self._check_not_missing(s, col, source, df.index)
            # Levels are looked up once per distinct value, not once per row (a million
            # customers have a handful of levels).
            inverse, uniques = pd.factorize(s)
            uniques = np.array([_plain(v) for v in np.asarray(uniques, dtype=object)], dtype=object)
            levels = spec["levels"]
            codes = pd.Index(levels, dtype=object).get_indexer(uniques)[inverse]
            bad = codes < 0
            if bad.any():
                raise ClvInputError(
                    f"The covariate {col!r} has levels that the model was not fitted with: "
                    f"{sorted({str(v) for v in uniques[inverse[bad]]})[:5]}.", source=source,
                    column=col, n_rows=int(bad.sum()),
                    rows=_rows(bad, {col: uniques[inverse]}, df.index),
                    advice=f"the model knows {levels}; map new levels to one of them "
                    "(e.g. the reference level) or refit with them.")
            for j, lv in enumerate(levels):
                if lv != spec["reference"]:
                    blocks.append((codes == j).astype(float)[:, None])
        return np.hstack(blocks)

    def to_dict(self) -> dict:
        return {"columns": self.columns, "spec": self.spec_, "names": self.names_}

    @classmethod
    def from_dict(cls, d: dict) -> CovariateEncoder:
        enc = cls(d["columns"])
        enc.spec_, enc.names_ = d["spec"], d["names"]
        return enc


def _plain(v):
    """numpy scalars as Python scalars (JSON-friendly, hash-equal)."""
    return v.item() if isinstance(v, np.generic) else v

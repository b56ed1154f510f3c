"""Covariate encoding for the churn model: numeric columns as they are, categorical attributes
as 0/1 dummies against a reference level.

The encoder is fitted on the training table and stored in the model's JSON file, so that a
scoring table is encoded exactly as the training table was (same dummies, same order, same
reference levels). Unknown levels and missing values at scoring are errors, never silently zero.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ClvInputError

__all__ = ["CovariateEncoder", "dummy_name"]


def dummy_name(column: str, level: str) -> str:
    """Name of the dummy of ``level`` in ``column``: ``"channel=store"``."""
    return f"{column}={level}"


def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _level_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of each row and the distinct values as strings (booleans 'True'/'False').

    Factorises the raw values first (hashing 1M strings once), then names the few uniques.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = [str(u) for u in uniques]
    if len(set(names)) < len(names):  # e.g. 1 and "1": merge values that print alike
        merged = {n: i for i, n in reversed(list(enumerate(names)))}
        remap = np.array([merged[n] for n in names])
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return codes, names


#: Categorical covariates with more levels than this are refused (an id or a date, probably).
MAX_LEVELS = 50


class CovariateEncoder:
    """Turn a table's covariate columns into the float design matrix the Cox model uses.

    Parameters
    ----------
    covariates : sequence of str
        Columns to use, in order.
    categorical : sequence of str, optional
        Columns to treat as categorical even if numeric (a numeric plan code, say). Columns of
        string, category, object or bool dtype are always categorical.
    reference : mapping of str to str, optional
        Reference level per categorical column. The default is the most frequent level (ties
        broken by sort order): its hazard ratio is 1 and the others are compared to it.

    Attributes
    ----------
    levels_ : dict of str to list of str
        Levels of each categorical column, reference first.
    feature_names_ : list of str
        Columns of the design matrix: numeric covariates by name, dummies as ``"column=level"``.
    """

    def __init__(
        self,
        covariates: Sequence[str],
        categorical: Sequence[str] | None = None,
        reference: Mapping[str, str] | None = None,
    ):
        self.covariates = list(covariates)
        self.categorical = list(categorical or [])
        self.reference = dict(reference or {})

    # ------------------------------------------------------------------ fitting
    def fit(self, df: pd.DataFrame, source: str = "DataFrame") -> CovariateEncoder:
        """Learn the levels and reference of each categorical covariate from ``df``."""
        missing = [c for c in self.covariates if c not in df.columns]
        if missing:
            raise ClvInputError(
                f"The covariate column(s) {missing} are not in the table.",
                source=source,
                advice=f"Pass covariates among the table's columns: {list(df.columns)}.",
            )
        unknown_ref = [c for c in self.reference if c not in self.covariates]
        if unknown_ref:
            raise ClvInputError(
                f"The 'reference' parameter names column(s) {unknown_ref} that are not covariates.",
                advice="Give a reference level only for categorical covariates.",
            )
        self.levels_: dict[str, list[str]] = {}
        self.numeric_: list[str] = []
        self.binary_: list[str] = []
        for col in self.covariates:
            s = df[col]
            self._check_missing(s, col, source)
            if col in self.categorical or _is_categorical(s) or col in self.reference:
                codes, names = _level_codes(s)
                n_per = np.bincount(codes[codes >= 0], minlength=len(names))
                counts = pd.Series(n_per, index=names)
                counts = counts[counts > 0]
                if len(counts) > MAX_LEVELS:
                    raise ClvInputError(
                        f"The categorical covariate has {len(counts)} levels (more than "
                        f"{MAX_LEVELS}): it looks like an identifier or a date.",
                        source=source,
                        column=col,
                        advice="Pass covariates=[...] without it, or group its levels first.",
                    )
                if len(counts) < 2:
                    raise ClvInputError(
                        f"The categorical covariate has a single level ({counts.index[0]!r}): "
                        "it cannot explain any difference in churn.",
                        source=source,
                        column=col,
                        advice="Drop it from the covariates.",
                    )
                levels = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
                ref = self.reference.get(col, levels[0])
                ref = str(ref)
                if ref not in levels:
                    raise ClvInputError(
                        f"The reference level {ref!r} does not occur in the table.",
                        source=source,
                        column=col,
                        advice=f"Choose one of {levels}.",
                    )
                self.levels_[col] = [ref] + [lv for lv in levels if lv != ref]
            else:
                v = s.to_numpy(dtype=np.float64)
                lo, hi = v.min(), v.max()
                if lo == hi:
                    raise ClvInputError(
                        "The numeric covariate is constant: it cannot explain any difference in "
                        "churn and makes the Cox fit singular.",
                        source=source,
                        column=col,
                        advice="Drop it from the covariates.",
                    )
                self.numeric_.append(col)
                if np.all((v == lo) | (v == hi)):
                    self.binary_.append(col)
        names = []
        for col in self.covariates:
            if col in self.levels_:
                names.extend(dummy_name(col, lv) for lv in self.levels_[col][1:])
            else:
                names.append(col)
        self.feature_names_ = names
        return self

    @staticmethod
    def _check_missing(s: pd.Series, col: str, source: str) -> None:
        bad = s.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            bad |= ~np.isfinite(s.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            rows = s[bad].head(5).reset_index()
            raise ClvInputError(
                "The covariate has missing or infinite values; the Cox model needs every value.",
                source=source,
                column=col,
                rows=rows,
                n_rows=int(bad.sum()),
                advice="Impute them (with an indicator column if missingness is informative) "
                "or drop the rows before fitting and scoring.",
            )

    # ---------------------------------------------------------------- transform
    def transform(self, df: pd.DataFrame, source: str = "DataFrame") -> np.ndarray:
        """Design matrix of ``df``, float64 of shape (n_rows, n_features), C order."""
        n = len(df)
        out = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        j = 0
        for col in self.covariates:
            if col not in df.columns:
                raise ClvInputError(
                    "A covariate of the fitted model is missing from the table.",
                    source=source,
                    column=col,
                    advice="Score with a table that has the same covariates as the training table.",
                )
            s = df[col]
            self._check_missing(s, col, source)
            if col in self.levels_:
                levels = self.levels_[col]
                raw, names = _level_codes(s)
                position = {lv: i for i, lv in enumerate(levels)}
                lookup = np.array([position.get(n, -1) for n in names] + [-1])
                codes = lookup[raw]  # raw == -1 (missing) picks the trailing -1
                unknown = codes < 0
                if unknown.any():
                    new = sorted(n for n, i in zip(names, lookup[:-1], strict=True) if i < 0)
                    raise ClvInputError(
                        f"The categorical covariate has levels not seen in fitting: {new[:10]}.",
                        source=source,
                        column=col,
                        rows=s[unknown].head(5).reset_index(),
                        n_rows=int(unknown.sum()),
                        advice="Map them to a known level or refit the model on data that "
                        f"contains them. Known levels: {levels}.",
                    )
                k = len(levels) - 1
                out[:, j : j + k] = codes[:, None] == np.arange(1, k + 1)[None, :]
                j += k
            else:
                out[:, j] = s.to_numpy(dtype=np.float64)
                j += 1
        return out

    # --------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """JSON-ready description of the fitted encoding."""
        return {
            "covariates": self.covariates,
            "numeric": self.numeric_,
            "binary": self.binary_,
            "levels": self.levels_,
            "feature_names": self.feature_names_,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> CovariateEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict` output."""
        enc = cls(d["covariates"], categorical=list(d["levels"]))
        enc.levels_ = {k: list(v) for k, v in d["levels"].items()}
        enc.reference = {k: v[0] for k, v in enc.levels_.items()}
        enc.numeric_ = list(d["numeric"])
        enc.binary_ = list(d.get("binary", []))
        enc.feature_names_ = list(d["feature_names"])
        return enc

    def describe(self) -> pd.DataFrame:
        """One row per design column: ``feature``, ``variable``, ``level``, ``reference``."""
        rows = []
        for col in self.covariates:
            if col in self.levels_:
                ref = self.levels_[col][0]
                rows += [(dummy_name(col, lv), col, lv, ref) for lv in self.levels_[col][1:]]
            else:
                rows.append((col, col, None, None))
        return pd.DataFrame(rows, columns=["feature", "variable", "level", "reference"])

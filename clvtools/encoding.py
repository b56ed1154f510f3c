"""Customer attributes as a numeric design matrix: one encoder for the BTYD covariate models and
the Cox churn model.

A numeric column is used as it is; a categorical column (string, category, object or bool
dtype, or named in ``categorical``) becomes one 0/1 dummy per level except a reference level,
named ``column=level``. Levels are kept as strings (``True``, ``3``), so a level is found again
whatever the dtype of the scoring table. The encoder is fitted on the training table and
stored in the model file, so that a scoring table is encoded exactly as the training table was
(same dummies, same order, same reference levels); unknown levels and missing values at
scoring are errors, never silently zero.

The two model families choose their reference level differently, and each passes its rule
explicitly: the BTYD models ``reference="sorted"`` (the first category of a pandas
``Categorical``, else the first level in sorted order: R's ``factor`` default, as in CLVTools),
the churn model ``reference="most_frequent"`` (its hazard ratios then compare with the bulk of
the customers).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ClvInputError

__all__ = ["CovariateEncoder", "EncodedCovariates", "dummy_name", "as_categories", "MAX_LEVELS",
           "REFERENCE_RULES"]

#: Rules for the default reference level of a categorical column.
REFERENCE_RULES = ("sorted", "most_frequent")

#: A sensible ``max_levels``: more levels than this is an identifier or a date, probably.
MAX_LEVELS = 50


def dummy_name(column: str, level: str) -> str:
    """Name of the dummy of ``level`` in ``column``: ``"channel=store"``."""
    return f"{column}={level}"


def _is_numeric(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            and not isinstance(s.dtype, pd.CategoricalDtype))


def _level_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code of each row (-1 if missing) and the distinct values as strings.

    Factorises the raw values first (hashing 1M strings once), then names the few uniques.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    names = [str(u) for u in uniques]
    if len(set(names)) < len(names):  # e.g. 1 and "1": merge values that print alike
        merged = {n: i for i, n in reversed(list(enumerate(names)))}
        remap = np.array([merged[n] for n in names])
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return codes, names


def _level_order(value) -> tuple:
    """Sort key of a raw level: sorting the raw values keeps 2 before 10; the type name
    first keeps mixed types apart."""
    return str(type(value)), value


def _sorted_levels(s: pd.Series, observed: set[str]) -> list[str]:
    """Levels in R's order: a Categorical's category order, else sorted raw values."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        raw = list(s.cat.categories)
    else:
        raw = sorted(pd.unique(s), key=_level_order)
    return list(dict.fromkeys(str(v) for v in raw if str(v) in observed))


def as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each object column as a pandas ``Categorical`` whose categories are
    its distinct values in the order :func:`_sorted_levels` gives them (missing values stay
    missing): an encoder fits and transforms it exactly as the object column, from the
    codes, instead of hashing every row's text again at each fit and each scoring (about
    0.5 s of CPU per fit of three attributes at a million customers).

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n, k)

    Returns
    -------
    pandas.DataFrame, shape (n, k)
        A new frame; the other columns are ``frame``'s own (not copied).
    """
    columns = {}
    for name, column in frame.items():
        if column.dtype == object:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            order = sorted(range(len(uniques)), key=lambda i: _level_order(uniques[i]))
            rank = np.empty(len(order) + 1, dtype=np.int64)
            rank[order] = np.arange(len(order))
            rank[-1] = -1                         # a missing value (code -1) stays missing
            column = pd.Series(pd.Categorical.from_codes(
                rank[codes], categories=pd.Index([uniques[i] for i in order], dtype=object)),
                index=frame.index, name=name)
        columns[name] = column
    return pd.DataFrame(columns, index=frame.index)


def _rows(s: pd.Series, bad: np.ndarray) -> pd.DataFrame:
    return s[bad].head(5).reset_index()


class CovariateEncoder:
    """Numeric design matrix from customer attributes (dummies against a reference level).

    Parameters
    ----------
    columns : sequence of str
        Attribute columns to use, in order. Empty: no covariates (a matrix of shape (n, 0)).
    reference : {"sorted", "most_frequent"}
        Default reference level of a categorical column: the first category of a pandas
        ``Categorical``, else the first level in sorted order, with the other levels in that
        order (``"sorted"``, R's default); or the most frequent level, ties broken by sort
        order, then the others from the most frequent (``"most_frequent"``).
    reference_levels : mapping of str to object, optional
        Reference level per column; it makes the column categorical.
    categorical : sequence of str, optional
        Numeric columns to encode as categories too (a numeric plan code, say).
    max_levels : int, optional
        Refuse a categorical column with more levels (an identifier or a date, probably).
    allow_constant : bool
        Accept a constant numeric column (its effect cannot be estimated).

    Attributes
    ----------
    levels_ : dict of str to list of str
        Levels of each categorical column, the reference first, then the levels of the
        dummies in their order.
    numeric_ : list of str
        Columns used as they are.
    binary_ : list of str
        Numeric columns with exactly two values (0/1 indicators).
    feature_names_ : list of str
        Columns of the design matrix: numeric columns by name, dummies as ``"column=level"``.
    """

    def __init__(
        self,
        columns: Sequence[str] = (),
        *,
        reference: str = "sorted",
        reference_levels: Mapping[str, object] | None = None,
        categorical: Sequence[str] | None = None,
        max_levels: int | None = None,
        allow_constant: bool = True,
    ):
        self.columns = list(columns or [])
        self.reference = reference
        self.reference_levels = dict(reference_levels or {})
        self.categorical = list(categorical or [])
        self.max_levels = max_levels
        self.allow_constant = allow_constant

    # ------------------------------------------------------------------ fitting
    def fit(self, df: pd.DataFrame | None, source: str = "covariates") -> CovariateEncoder:
        """Learn the levels and reference of each categorical column from ``df``; returns self.

        Raises
        ------
        ClvInputError
            For a missing column, a missing value, a single level or an unknown reference.
        """
        if self.reference not in REFERENCE_RULES:
            raise ClvInputError(f"The 'reference' parameter of CovariateEncoder must be one of "
                                f"{list(REFERENCE_RULES)}. Got {self.reference!r} instead.")
        if len(set(self.columns)) != len(self.columns):
            raise ClvInputError(f"The covariate columns {self.columns} contain duplicates.",
                                source=source, advice="list each attribute once.")
        if self.columns and df is None:
            raise ClvInputError(
                f"Covariates {self.columns} were requested but no covariates table was given.",
                advice="pass covariates=<DataFrame with one row per customer>.")
        unknown = [c for c in self.reference_levels if c not in self.columns]
        if unknown:
            raise ClvInputError(
                f"Reference levels are given for column(s) {unknown} that are not covariates.",
                advice=f"Give a reference level only for covariates among {self.columns}.")
        missing = [c for c in self.columns if c not in df.columns] if self.columns else []
        if missing:
            what = (f"column {missing[0]!r} is" if len(missing) == 1
                    else f"columns {missing} are")
            raise ClvInputError(f"The covariate {what} missing from the table.", source=source,
                                column=missing[0], advice=f"Use columns among {list(df.columns)}.")
        self.levels_: dict[str, list[str]] = {}
        self.numeric_: list[str] = []
        self.binary_: list[str] = []
        for col in self.columns:
            s = df[col]
            self._check_missing(s, col, source)
            if col in self.categorical or col in self.reference_levels or not _is_numeric(s):
                self.levels_[col] = self._fit_levels(s, col, source)
            else:
                self._fit_numeric(s, col, source)
        self.feature_names_ = [
            name for col in self.columns
            for name in ([dummy_name(col, lv) for lv in self.levels_[col][1:]]
                         if col in self.levels_ else [col])
        ]
        return self

    def _fit_levels(self, s: pd.Series, col: str, source: str) -> list[str]:
        codes, names = _level_codes(s)
        counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(names)), index=names)
        counts = counts[counts > 0]
        if self.max_levels is not None and len(counts) > self.max_levels:
            raise ClvInputError(
                f"The categorical covariate has {len(counts)} levels (more than "
                f"{self.max_levels}): it looks like an identifier or a date.",
                source=source, column=col,
                advice="Leave it out of the covariates, or group its levels first.")
        if len(counts) < 2:
            raise ClvInputError(
                f"The categorical covariate has a single level ({counts.index[0]!r}): its "
                "effect cannot be estimated.", source=source, column=col,
                advice="Leave it out of the covariates.")
        if self.reference == "sorted":
            order = _sorted_levels(s, set(counts.index))
        else:
            order = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
        ref = str(self.reference_levels.get(col, order[0]))
        if ref not in order:
            raise ClvInputError(f"The reference level {ref!r} does not occur in the table.",
                                source=source, column=col, advice=f"Choose one of {order}.")
        return [ref] + [lv for lv in order if lv != ref]

    def _fit_numeric(self, s: pd.Series, col: str, source: str) -> None:
        v = s.to_numpy(dtype=np.float64)
        lo, hi = v.min(), v.max()
        if lo == hi and not self.allow_constant:
            raise ClvInputError(
                "The numeric covariate is constant: its effect cannot be estimated (and it "
                "makes the fit singular).", source=source, column=col,
                advice="Leave it out of the covariates.")
        self.numeric_.append(col)
        if lo < hi and np.all((v == lo) | (v == hi)):
            self.binary_.append(col)

    @staticmethod
    def _check_missing(s: pd.Series, col: str, source: str) -> None:
        bad = s.isna().to_numpy()
        numeric = _is_numeric(s)
        if numeric:
            bad |= ~np.isfinite(s.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            raise ClvInputError(
                "The covariate has missing or infinite values." if numeric
                else "The covariate has missing values.",
                source=source, column=col, rows=_rows(s, bad), n_rows=int(bad.sum()),
                advice="Impute them (with an indicator column if missingness is informative), "
                "give them a level of their own (e.g. 'unknown'), or drop these rows before "
                "fitting and scoring.")

    # ---------------------------------------------------------------- transform
    def transform(self, df: pd.DataFrame | None, source: str = "covariates", *,
                  n_rows: int | None = None) -> np.ndarray:
        """Design matrix of ``df``, float64 of shape (n_rows, len(feature_names_)), C order.

        Parameters
        ----------
        df : DataFrame or None
            None only for an encoder without columns: then a matrix of ``n_rows`` rows (0 if
            None) and no column.
        source : str
            Name of the table in error messages.

        Raises
        ------
        ClvInputError
            For a missing column, a missing value or a level not seen in ``fit``.
        """
        if not self.columns:
            rows = n_rows if df is None else len(df)
            return np.zeros((rows or 0, 0))
        if df is None:
            raise ClvInputError(f"This model needs the covariates {self.columns}.",
                                advice="pass covariates=<DataFrame with one row per customer>.")
        out = np.empty((len(df), len(self.feature_names_)), dtype=np.float64)
        j = 0
        for col in self.columns:
            if col not in df.columns:
                raise ClvInputError(
                    f"The covariate column {col!r} is missing from the table.", source=source,
                    column=col, advice="Score with a table that has the model's covariates; "
                    f"the table has {list(df.columns)}.")
            s = df[col]
            self._check_missing(s, col, source)
            if col in self.levels_:
                k = len(self.levels_[col]) - 1
                out[:, j:j + k] = self._dummies(s, col, source)
                j += k
                continue
            if not _is_numeric(s):
                raise ClvInputError(f"The covariate was numeric when the model was fitted; got "
                                    f"dtype {s.dtype}.", source=source, column=col)
            out[:, j] = s.to_numpy(dtype=np.float64)
            j += 1
        return out

    def _dummies(self, s: pd.Series, col: str, source: str) -> np.ndarray:
        levels = self.levels_[col]
        raw, names = _level_codes(s)
        position = {lv: i for i, lv in enumerate(levels)}
        lookup = np.array([position.get(n, -1) for n in names] + [-1])
        codes = lookup[raw]  # raw == -1 (missing) picks the trailing -1
        unknown = codes < 0
        if unknown.any():
            new = sorted(n for n, i in zip(names, lookup[:-1], strict=True) if i < 0)
            raise ClvInputError(
                f"The covariate has levels that the model was not fitted with: {new[:10]}.",
                source=source, column=col, rows=_rows(s, unknown), n_rows=int(unknown.sum()),
                advice=f"The model knows {levels}; map new levels to one of them (e.g. the "
                "reference level) or refit with them.")
        return codes[:, None] == np.arange(1, len(levels))[None, :]

    def describe(self) -> pd.DataFrame:
        """One row per design column: ``feature``, ``variable``, ``level``, ``reference``."""
        rows = []
        for col in self.columns:
            if col in self.levels_:
                ref = self.levels_[col][0]
                rows += [(dummy_name(col, lv), col, lv, ref) for lv in self.levels_[col][1:]]
            else:
                rows.append((col, col, None, None))
        return pd.DataFrame(rows, columns=["feature", "variable", "level", "reference"])

    # --------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """JSON-ready description of the fitted encoding.

        Keys: ``covariates`` (the columns), ``numeric``, ``binary``, ``levels`` (reference
        first) and ``feature_names``: the shape churn model files have always had.
        """
        return {"covariates": list(self.columns), "numeric": list(self.numeric_),
                "binary": list(self.binary_),
                "levels": {k: list(v) for k, v in self.levels_.items()},
                "feature_names": list(self.feature_names_)}

    @classmethod
    def from_dict(cls, d: Mapping) -> CovariateEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict` output, or from the encoder of a BTYD
        covariate model file written before clvtools had one encoder (keys ``columns``,
        ``spec``, ``names``)."""
        if "spec" in d:
            d = _from_btyd_v0(d)
        levels = {k: [str(lv) for lv in v] for k, v in d["levels"].items()}
        enc = cls(d["covariates"], reference_levels={k: v[0] for k, v in levels.items()},
                  categorical=list(levels))
        enc.levels_ = levels
        enc.numeric_ = list(d["numeric"])
        enc.binary_ = list(d.get("binary", []))
        enc.feature_names_ = list(d["feature_names"])
        return enc


def _from_btyd_v0(d: Mapping) -> dict:
    """The BTYD encoder's old dict (levels in R's order with the reference among them, raw
    values) in the shape of :meth:`CovariateEncoder.to_dict`: the same design columns."""
    levels, numeric = {}, []
    for spec in d["spec"]:
        if spec["kind"] == "numeric":
            numeric.append(spec["column"])
        else:
            ref = spec["reference"]
            levels[spec["column"]] = [ref] + [lv for lv in spec["levels"] if lv != ref]
    return {"covariates": d["columns"], "numeric": numeric, "levels": levels,
            "feature_names": d["names"]}


@dataclass(frozen=True)
class EncodedCovariates:
    """Customers' covariates encoded once by a fitted covariate model's encoders.

    Taken wherever a prediction method takes a DataFrame of covariates, it skips the
    encoding: scoring a million customers reads their attributes once, not once per
    prediction, and a copy of the model with other parameter values (the delta method's)
    keeps the same encoders and so the same encoding.

    Attributes
    ----------
    purchase, dropout : numpy.ndarray, shape (n, k_purchase) and (n, k_dropout)
        The design matrices of the purchase and the dropout process.
    index : pandas.Index, shape (n,)
        The customers' index (the DataFrame's).
    """

    purchase: np.ndarray
    dropout: np.ndarray
    index: pd.Index

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows) -> EncodedCovariates:
        """The rows at positions ``rows`` (a sample of the customers)."""
        return EncodedCovariates(self.purchase[rows], self.dropout[rows], self.index[rows])

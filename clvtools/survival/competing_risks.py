"""Competing churn reasons (contracts with an end reason): Aalen-Johansen cumulative incidence
per reason, cause-specific Cox models, and each customer's probability of each reason within
the horizon.

The Aalen-Johansen estimator is computed here (a dozen numpy lines) rather than with lifelines'
``AalenJohansenFitter``, which breaks tied times by random jitter (contract durations on a day
grid are heavily tied) and fits one reason at a time. At each distinct time :math:`t_j` with
:math:`n_j` at risk, :math:`d_{kj}` ends for reason :math:`k` and :math:`d_j = \\sum_k d_{kj}`:

.. math:: \\hat F_k(t) = \\sum_{t_j \\le t} \\hat S(t_{j-1}) \\, d_{kj} / n_j, \\qquad
          \\hat S(t) = \\prod_{t_j \\le t} (1 - d_j / n_j)

so that :math:`\\sum_k \\hat F_k(t) = 1 - \\hat S(t)` (Kaplan-Meier) exactly.

Per customer, with cause-specific cumulative hazards :math:`H_k(t \\mid x)` from one Cox model
per reason and :math:`H = \\sum_k H_k`, the probability of reason :math:`k` within ``h`` is

.. math:: F_k(h \\mid x) = \\sum_{t_j \\le h} S(t_{j-1} \\mid x)
          \\bigl(1 - e^{-\\Delta H(t_j \\mid x)}\\bigr)
          \\, \\Delta H_k(t_j \\mid x) / \\Delta H(t_j \\mid x)

with :math:`S = e^{-H}`; the reasons then add up to the all-cause probability
:math:`1 - e^{-H(h \\mid x)}` exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from ..model_io import ModelFile
from ._params import check_columns, check_number
from .churn_model import ChurnModel
from .kaplan_meier import segment_labels

__all__ = ["cumulative_incidence", "CompetingRisksModel"]


def _reason_labels(table, event_type_col, reason_col) -> dict[int, str]:
    types = sorted(int(k) for k in pd.unique(table[event_type_col]) if k != 0)
    if reason_col is None or reason_col not in table.columns:
        return {k: f"reason_{k}" for k in types}
    out = {}
    for k in types:
        names = table.loc[table[event_type_col] == k, reason_col].astype(str).value_counts()
        out[k] = names.index[0] if len(names) else f"reason_{k}"
    return out


def _check_event_types(table, event_type_col, source="DataFrame") -> np.ndarray:
    et = pd.to_numeric(table[event_type_col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(et) | (et < 0) | (et != np.round(et))
    if bad.any():
        raise ClvInputError("Event types must be 0 (censored) or a reason code 1..k.",
                            source=source, column=event_type_col, rows=table.loc[bad].head(5),
                            n_rows=int(bad.sum()))
    return et.astype(int)


def cumulative_incidence(
    table: pd.DataFrame,
    by=None,
    *,
    duration_col: str = "duration",
    event_type_col: str = "event_type",
    reason_col: str | None = "end_reason",
    weights_col: str | None = None,
) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of each end reason, per segment.

    Parameters
    ----------
    table : DataFrame
        Contracts: ``duration`` (time units), ``event_type`` (0 censored, 1..k reason) and
        optionally ``end_reason`` (labels).
    by : str or list of str, optional
        Segment column(s).

    Returns
    -------
    DataFrame
        Columns ``segment``, ``time``, ``reason`` (label, plus ``"all"`` = 1 - Kaplan-Meier),
        ``cumulative_incidence``: one row per distinct duration, segment and reason.
    """
    check_columns(table, [duration_col, event_type_col, weights_col], "DataFrame")
    et_all = _check_event_types(table, event_type_col)
    labels = _reason_labels(table, event_type_col, reason_col)
    seg = segment_labels(table, by).to_numpy()
    t_all = table[duration_col].to_numpy(dtype=float)
    w_all = (np.ones(len(table)) if weights_col is None
             else table[weights_col].to_numpy(dtype=float))
    frames = []
    for s in np.unique(seg):
        m = seg == s
        t, et, w = t_all[m], et_all[m], w_all[m]
        times, inv = np.unique(t, return_inverse=True)
        at_exit = np.bincount(inv, weights=w, minlength=len(times))
        n_risk = np.cumsum(at_exit[::-1])[::-1]
        d_k = np.column_stack([np.bincount(inv, weights=w * (et == k), minlength=len(times))
                               for k in labels])
        d = d_k.sum(axis=1)
        surv = np.cumprod(1 - d / n_risk)
        surv_before = np.r_[1.0, surv[:-1]]
        cif = np.cumsum(surv_before[:, None] * d_k / n_risk[:, None], axis=0)
        for j, k in enumerate(labels):
            frames.append(pd.DataFrame({"segment": s, "time": times, "reason": labels[k],
                                        "cumulative_incidence": cif[:, j]}))
        frames.append(pd.DataFrame({"segment": s, "time": times, "reason": "all",
                                    "cumulative_incidence": 1 - surv}))
    return pd.concat(frames, ignore_index=True)


class CompetingRisksModel(ModelFile):
    """Cause-specific Cox models, one per end reason, and per-customer reason probabilities.

    Parameters
    ----------
    event_type_col : str
        0 censored, 1..k the end reason.
    reason_col : str, optional
        Labels of the reasons (the most frequent label per code is used).
    **churn_model_params
        Passed to every reason's :class:`ChurnModel` (covariates, strata, penalizer, tail...).

    Attributes
    ----------
    models_ : dict of int to ChurnModel
        The cause-specific model of each reason code (other reasons censored).
    reason_labels_ : dict of int to str

    Notes
    -----
    Saved and read like :class:`ChurnModel` (:meth:`save_model`, :meth:`load_model`,
    :meth:`to_dict`, :meth:`from_dict`); the file holds every reason's model.
    """

    def __init__(self, *, event_type_col: str = "event_type", reason_col: str | None = "end_reason",
                 **churn_model_params):
        self.event_type_col = event_type_col
        self.reason_col = reason_col
        self.churn_model_params = churn_model_params

    def get_params(self) -> dict:
        """Constructor settings (JSON-ready)."""
        return {"event_type_col": self.event_type_col, "reason_col": self.reason_col,
                **ChurnModel(**self.churn_model_params).get_params()}

    def fit(self, table: pd.DataFrame, source: str = "DataFrame") -> CompetingRisksModel:
        """Fit one Cox model per end reason (the other reasons are censored at their time)."""
        check_columns(table, [self.event_type_col], source)
        et = _check_event_types(table, self.event_type_col, source)
        self.reason_labels_ = _reason_labels(table, self.event_type_col, self.reason_col)
        if len(self.reason_labels_) < 1:
            raise ClvInputError("No contract ended in the table.", source=source,
                                column=self.event_type_col)
        probe = ChurnModel(**self.churn_model_params)
        skip = {self.event_type_col, self.reason_col}
        covs = probe.covariates
        if covs is None:
            covs = [c for c in probe._covariate_names(table) if c not in skip]
        self.models_ = {}
        for k in self.reason_labels_:
            params = {**self.churn_model_params, "covariates": covs}
            data = table.assign(**{probe.event_col: (et == k).astype(float)})
            self.models_[k] = ChurnModel(**params).fit(data, source=f"{source}, reason {k}")
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise ClvInputError("This CompetingRisksModel is not fitted yet.",
                                advice="Call fit(contracts) or clvtools.survival.load_model.")

    @property
    def summary(self) -> pd.DataFrame:
        """Each reason's :attr:`ChurnModel.summary`, stacked with a ``reason`` index level."""
        self._check_fitted()
        return pd.concat({self.reason_labels_[k]: m.summary for k, m in self.models_.items()},
                         names=["reason", "covariate"])

    def reason_probabilities(self, covariates: pd.DataFrame, horizon: float,
                             source: str = "DataFrame", chunk_rows: int = 50_000) -> pd.DataFrame:
        """Per customer, P(the contract ends for each reason within ``horizon``).

        Parameters
        ----------
        covariates : DataFrame, shape (n_rows, ...)
        horizon : float
            Time units, > 0.
        chunk_rows : int
            Rows scored at once (memory: chunk_rows x distinct times x reasons floats).

        Returns
        -------
        DataFrame, shape (n_rows, k + 1)
            One column per reason label, then ``all_causes`` (their sum, = 1 - S(h | x)).
        """
        self._check_fitted()
        check_number(horizon, "horizon", "CompetingRisksModel.reason_probabilities",
                     low=0, low_open=True)
        grid = np.unique(np.concatenate(
            [b["times"] for m in self.models_.values() for b in m.baselines_.values()]
            + [[horizon]]))
        grid = grid[grid <= horizon]
        follow = min(b["follow_up"] for m in self.models_.values() for b in m.baselines_.values())
        if horizon > follow:  # constant-hazard tail (or the model raises): a regular grid there
            grid = np.unique(np.r_[grid, np.linspace(follow, horizon, 50)])
        n = len(covariates)
        out = np.empty((n, len(self.models_)))
        for lo in range(0, n, chunk_rows):
            part = covariates.iloc[lo:lo + chunk_rows]
            h = np.stack([m.cumulative_hazard(part, grid, source) for m in self.models_.values()],
                         axis=2)  # (rows, times, reasons)
            dh_k = np.diff(h, axis=1, prepend=0.0)
            dh = dh_k.sum(axis=2)
            s_before = np.exp(-(np.cumsum(dh, axis=1) - dh))
            step = s_before * -np.expm1(-dh)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(dh[..., None] > 0, dh_k / dh[..., None], 0.0)
            out[lo:lo + chunk_rows] = (step[..., None] * share).sum(axis=1)
        labels = [self.reason_labels_[k] for k in self.models_]
        res = pd.DataFrame(out, index=covariates.index, columns=labels)
        res["all_causes"] = out.sum(axis=1)
        return res

    # ---- JSON: to_dict/from_dict/save_model/load_model come from ModelFile -----------------
    _file_kind = "survival"

    def _document(self) -> dict:
        return {"settings": self.get_params(),
                "reasons": {k: m._state() for k, m in self.models_.items()},
                "reason_labels": self.reason_labels_}

    def _restore(self, doc: dict) -> None:
        settings = dict(doc["settings"])
        self.event_type_col = settings.pop("event_type_col")
        self.reason_col = settings.pop("reason_col")
        self.churn_model_params = settings
        self.models_ = {int(k): ChurnModel()._set_state(v) for k, v in doc["reasons"].items()}
        self.reason_labels_ = {int(k): v for k, v in doc["reason_labels"].items()}

"""Churn models as JSON files (never pickle).

A file holds: ``format`` and ``kind`` (which model), the clvtools ``version`` that wrote it, the
settings, the covariate encoding (levels and references), the coefficients, their covariance,
the centring means, the baseline cumulative hazard per stratum (jump times and values, the
follow-up and the tail hazard), fit statistics and the PH check. A loaded model predicts
exactly as the saved one: the same floats go through the same numpy code (JSON writes floats
with 17 significant digits, which round-trip exactly).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import ClvInputError
from ..schemas import read_model_file, write_model_file

__all__ = ["save_model", "load_model", "model_to_dict", "model_from_dict"]

FORMAT = "clvtools.survival/1"


def _clean(v):
    """NaN -> None, numpy scalars -> Python, recursively."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _churn_to_dict(m) -> dict:
    ph = None
    if m.ph_test_ is not None:
        ph = {"rows": m.ph_test_.attrs.get("rows"),
              "table": {c: m.ph_test_[c].tolist() for c in m.ph_test_.columns}}
    return {
        "settings": m.get_params(),
        "encoding": m.encoder_.to_dict(),
        "coef": m.params_.to_numpy(),
        "covariance": m.variance_.to_numpy(),
        "robust": m.robust_,
        "norm_mean": m.norm_mean_,
        "baselines": {k: {kk: vv for kk, vv in b.items()} for k, b in m.baselines_.items()},
        "log_likelihood": m.log_likelihood_,
        "concordance": m.concordance_,
        "n_rows": m.n_rows_, "n_customers": m.n_customers_, "n_events": m.n_events_,
        "ph_test": ph,
    }


def _churn_from_dict(d: dict):
    from ..encoding import CovariateEncoder
    from .churn_model import ChurnModel

    m = ChurnModel(**d["settings"])
    m.encoder_ = CovariateEncoder.from_dict(d["encoding"])
    names = m.encoder_.feature_names_
    m.feature_names_ = list(names)
    idx = pd.Index(names, name="covariate")
    m.params_ = pd.Series(np.asarray(d["coef"], dtype=float), index=idx, name="coef")
    m.variance_ = pd.DataFrame(np.asarray(d["covariance"], dtype=float).reshape(len(names), -1),
                               index=idx, columns=idx)
    m.robust_ = bool(d["robust"])
    m.norm_mean_ = np.asarray(d["norm_mean"], dtype=float)
    m.baselines_ = {
        k: {"times": np.asarray(b["times"], dtype=float),
            "cumhaz": np.asarray(b["cumhaz"], dtype=float),
            "follow_up": float(b["follow_up"]), "tail_hazard": float(b["tail_hazard"])}
        for k, b in d["baselines"].items()
    }
    m.log_likelihood_ = float(d["log_likelihood"])
    m.concordance_ = float("nan") if d["concordance"] is None else float(d["concordance"])
    m.n_rows_, m.n_customers_, m.n_events_ = d["n_rows"], d["n_customers"], d["n_events"]
    if d["ph_test"] is None:
        m.ph_test_ = None
    else:
        ph = pd.DataFrame(d["ph_test"]["table"], index=idx)
        ph = ph.astype({"ph_statistic": float, "ph_p_value": float})
        ph.attrs["rows"] = d["ph_test"]["rows"]
        m.ph_test_ = ph
    return m


def model_to_dict(model) -> dict:
    """JSON-ready dict of a fitted :class:`ChurnModel` or :class:`CompetingRisksModel`."""
    from .churn_model import ChurnModel
    from .competing_risks import CompetingRisksModel

    model._check_fitted()
    if isinstance(model, ChurnModel):
        body = {"kind": "ChurnModel", "model": _churn_to_dict(model)}
    elif isinstance(model, CompetingRisksModel):
        body = {"kind": "CompetingRisksModel", "settings": model.get_params(),
                "reasons": {str(k): _churn_to_dict(m) for k, m in model.models_.items()},
                "reason_labels": {str(k): v for k, v in model.reason_labels_.items()}}
    else:
        raise TypeError(f"Cannot save a {type(model).__name__}.")
    return _clean({"format": FORMAT, "version": __version__, **body})


def model_from_dict(d: dict):
    """Inverse of :func:`model_to_dict`."""
    if d.get("format") != FORMAT:
        raise ClvInputError(
            f"Not a clvtools survival model file (format {d.get('format')!r}, "
            f"expected {FORMAT!r}).")
    try:
        if d["kind"] == "ChurnModel":
            return _churn_from_dict(d["model"])
        if d["kind"] == "CompetingRisksModel":
            from .competing_risks import CompetingRisksModel

            m = CompetingRisksModel(**d["settings"])
            m.models_ = {int(k): _churn_from_dict(v) for k, v in d["reasons"].items()}
            m.reason_labels_ = {int(k): v for k, v in d["reason_labels"].items()}
            return m
    except KeyError as exc:
        raise ClvInputError(
            f"The model file is incomplete: the key {exc.args[0]!r} is missing.",
            advice="Save the model again with clvtools.survival.save_model.") from None
    raise ClvInputError(f"Unknown model kind {d['kind']!r} in the model file.")


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` as JSON, atomically (temporary file, then rename).

    Parameters
    ----------
    model : ChurnModel or CompetingRisksModel
        Fitted.
    path : str or Path
    """
    write_model_file(model_to_dict(model), path)


def load_model(path):
    """Read a model written by :func:`save_model`."""
    return model_from_dict(read_model_file(path, "survival"))

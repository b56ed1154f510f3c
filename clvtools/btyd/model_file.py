"""BTYD model files: JSON (never pickle), checked against ``clvtools/schemas`` when read.

:class:`ModelFileMixin` gives every fitter ``save_model`` and ``load_model``; the module's
:func:`load_model` rebuilds whichever fitter wrote a file, from the registry that
:class:`~clvtools.btyd.base.BTYDFitter` fills as its subclasses are defined.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import ClvInputError
from ..schemas import read_model_file, write_model_file
from .utils import collapse

__all__ = ["ModelFileMixin", "load_model"]

#: Every concrete fitter registers here by class name, so that ``load_model`` can rebuild it.
_REGISTRY: dict[str, type] = {}


class ModelFileMixin:
    """``save_model`` / ``load_model`` of the BTYD fitters (lifetimes' names).

    Subclasses extend :meth:`_to_document` and :meth:`_from_document` with their own keys
    (the covariate fitters add their encoders) and :meth:`_settings` with their settings.
    """

    def _settings(self) -> dict:
        return {"penalizer_coef": float(self.penalizer_coef)}

    def save_model(self, path, save_data: bool = True) -> None:
        """Write the fitted model to ``path`` as JSON (never pickle).

        The file holds the model class, the clvtools version, the parameters, the covariance,
        the settings, the fit statistics and (``save_data=True``) the collapsed data: the
        distinct rows with their weights, enough for every method that reads ``data``.
        """
        self._check_fitted()
        write_model_file(self._to_document(save_data), path)

    def _to_document(self, save_data: bool) -> dict:
        """The JSON document of :meth:`save_model` (subclasses add their own keys)."""

        def clean(a):
            a = np.asarray(a, dtype=float)
            return np.where(np.isfinite(a), a, None).tolist()

        doc = {
            "model_class": type(self).__name__,
            "clvtools_version": __version__,
            "param_names": list(self.params_.index),
            "params": clean(self.params_.to_numpy()),
            "variance_matrix": clean(self.variance_matrix_.to_numpy()),
            "settings": self._settings(),
            "fit": {
                "log_likelihood": self.log_likelihood_,
                "negative_log_likelihood_mean": self._negative_log_likelihood_,
                "n_customers": self.n_customers_,
                "n_distinct": self.n_distinct_,
                "AIC": self.AIC_,
                "BIC": self.BIC_,
                "n_iterations": self.n_iterations_,
                "converged": bool(self.converged_),
            },
        }
        if save_data and self.data is not None:
            cols = {c: self.data[c].to_numpy() for c in self._fit_columns}
            distinct, counts = collapse(cols, self.data["weights"].to_numpy(dtype=float))
            doc["data"] = {**{k: v.tolist() for k, v in distinct.items()},
                           "weights": counts.tolist()}
        return doc

    def load_model(self, path):
        """Read a model written by ``save_model`` into this instance; returns ``self``."""
        doc = read_model_file(path, "btyd")
        if doc["model_class"] != type(self).__name__:
            raise ClvInputError(
                f"The model file holds a {doc['model_class']!r}, not a {type(self).__name__}.",
                source=str(path),
                advice="use clvtools.btyd.load_model(path), which picks the class itself.",
            )
        k = len(doc["param_names"])
        shape = np.shape(doc["variance_matrix"])
        if len(doc["params"]) != k or shape != (k, k):
            raise ClvInputError(
                f"The model file has {k} parameter names, {len(doc['params'])} parameters and a "
                f"{' x '.join(map(str, shape))} variance matrix; they must agree ({k}, {k} x {k}).",
                source=str(path), advice="Save the model again.",
            )
        self._from_document(doc)
        self._set_inference()
        return self

    def _from_document(self, doc: dict) -> None:
        """Restore the fitted state from a :meth:`_to_document` document."""
        names = doc["param_names"]
        for key, value in doc["settings"].items():
            setattr(self, key, value)

        def arr(a):
            return np.array([np.nan if v is None else v for v in np.ravel(a)], dtype=float)

        k = len(names)
        self.params_ = pd.Series(arr(doc["params"]), index=names, dtype=float)
        self.variance_matrix_ = pd.DataFrame(
            arr(doc["variance_matrix"]).reshape(k, k), index=names, columns=names
        )
        fit = doc["fit"]
        self.log_likelihood_ = fit["log_likelihood"]
        self._negative_log_likelihood_ = fit["negative_log_likelihood_mean"]
        self.n_customers_ = fit["n_customers"]
        self.n_distinct_ = fit["n_distinct"]
        self.AIC_, self.BIC_ = fit["AIC"], fit["BIC"]
        self.n_iterations_ = fit["n_iterations"]
        self.converged_ = fit["converged"]
        self.data = pd.DataFrame(doc["data"]) if "data" in doc else None
        self.clvtools_version_ = doc.get("clvtools_version")


def load_model(path):
    """Rebuild whichever fitter ``save_model`` wrote to ``path`` (JSON)."""
    name = read_model_file(path, "btyd")["model_class"]
    if name not in _REGISTRY:
        raise ClvInputError(
            f"The model file holds an unknown model class {name!r}.", source=str(path),
            advice=f"expected one of {', '.join(sorted(_REGISTRY))}.",
        )
    return _REGISTRY[name]().load_model(path)

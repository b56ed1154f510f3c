"""BTYD model files: the document of a fitter, and :func:`load_model`, which rebuilds whichever
fitter wrote a file.

The mechanics (JSON, atomic write, schema check, version stamp) are
:class:`clvtools.model_io.ModelFile`'s; here is what a BTYD file holds: the model class, the
clvtools version, the parameters, the covariance, the settings, the fit statistics and
optionally the collapsed data. ``load_model`` finds the class in the registry that
:class:`~clvtools.btyd.base.BTYDFitter` fills as its subclasses are defined.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from ..model_io import ModelFile, load_model_file
from .utils import collapse

__all__ = ["ModelFileMixin", "load_model"]

#: Every concrete fitter registers here by class name, so that ``load_model`` can rebuild it.
_REGISTRY: dict[str, type] = {}


class ModelFileMixin(ModelFile):
    """``to_dict`` / ``from_dict`` / ``save_model`` / ``load_model`` of the BTYD fitters.

    Subclasses extend :meth:`_document` and :meth:`_restore` with their own keys (the
    covariate fitters add their encoders) and :meth:`_settings` with their settings.
    """

    _file_kind = "btyd"

    def _settings(self) -> dict:
        return {"penalizer_coef": float(self.penalizer_coef)}

    def to_dict(self, save_data: bool = True) -> dict:
        """The fitted model as a JSON-ready dict: what :meth:`save_model` writes.

        Parameters
        ----------
        save_data : bool, default True
            Include the collapsed data: the distinct rows with their weights, enough for
            every method that reads ``data``.
        """
        return super().to_dict(save_data=save_data)

    def save_model(self, path, save_data: bool = True) -> None:
        """Write the fitted model to ``path`` as JSON (never pickle), atomically.

        The file holds the model class, the clvtools version, the parameters, the covariance,
        the settings, the fit statistics and (``save_data=True``) the collapsed data: the
        distinct rows with their weights, enough for every method that reads ``data``.
        """
        super().save_model(path, save_data=save_data)

    def _document(self, save_data: bool = True) -> dict:
        """The keys of :meth:`to_dict` after the class and version (subclasses add theirs)."""
        doc = {
            "param_names": list(self.params_.index),
            "params": self.params_.to_numpy(dtype=float),
            "variance_matrix": self.variance_matrix_.to_numpy(dtype=float),
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
            doc["data"] = {**distinct, "weights": counts}
        return doc

    def _check_document(self, doc: dict, source: str | None) -> None:
        k = len(doc["param_names"])
        shape = np.shape(doc["variance_matrix"])
        if len(doc["params"]) != k or shape != (k, k):
            raise ClvInputError(
                f"The model file has {k} parameter names, {len(doc['params'])} parameters and a "
                f"{' x '.join(map(str, shape))} variance matrix; they must agree ({k}, {k} x {k}).",
                source=source, advice="Save the model again.",
            )

    def _restore(self, doc: dict) -> None:
        """Set the settings and the fitted state from a :meth:`to_dict` document."""
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
        self._set_inference()


def load_model(path):
    """Rebuild whichever fitter ``save_model`` wrote to ``path`` (JSON).

    Raises
    ------
    ClvInputError
        The file is missing, is not a BTYD model file, or names an unknown fitter.
    """
    return load_model_file(path, "btyd", _REGISTRY)

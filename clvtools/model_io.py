"""Model files: the one persistence design of every clvtools model.

Every model (the BTYD fitters, Gamma-Gamma, the covariate fitters, ``ChurnModel``,
``CompetingRisksModel``) inherits :class:`ModelFile`, which gives it lifetimes' names:

* ``model.to_dict()`` and ``Model.from_dict(d)``: the model as a JSON-ready dict and back;
* ``model.save_model(path)``: that dict written as JSON (never pickle), atomically;
* ``model.load_model(path)``: a file read into this instance (returns it), lifetimes style;

and each package's ``load_model(path)`` (:func:`load_model_file`) rebuilds whichever model a
file holds. Files are checked against the JSON Schemas of :mod:`clvtools.schemas` when read.
Floats are written with 17 significant digits, which round-trip exactly: a loaded model
predicts exactly as the saved one.

There are two kinds of file, with the keys they have always had: ``"btyd"`` (``model_class``
names the fitter, ``clvtools_version`` the version that wrote it) and ``"survival"``
(``format``, then ``version``, then ``kind`` names the model).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ._version import __version__
from .errors import ClvInputError
from .schemas import read_model_file, write_model_file

__all__ = ["ModelFile", "json_ready", "load_model_file", "FILE_KINDS"]

#: kind of model file -> the key naming the model class, the version key, the format stamp
FILE_KINDS = {
    "btyd": {"class_key": "model_class", "version_key": "clvtools_version", "format": None},
    "survival": {"class_key": "kind", "version_key": "version", "format": "clvtools.survival/1"},
}


def json_ready(value):
    """``value`` with numpy arrays and scalars as Python lists and scalars, and NaN or
    infinite floats as None (JSON has no such numbers), recursively; dict keys as strings."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _header(kind: str, name: str) -> dict:
    """The keys that open every file of ``kind``, in the order files have always had them."""
    spec = FILE_KINDS[kind]
    if spec["format"] is None:
        return {spec["class_key"]: name, spec["version_key"]: __version__}
    return {"format": spec["format"], spec["version_key"]: __version__, spec["class_key"]: name}


class ModelFile:
    """``to_dict`` / ``from_dict`` / ``save_model`` / ``load_model`` of every model.

    A subclass sets ``_file_kind`` (a key of :data:`FILE_KINDS`) and implements
    ``_document(**options)`` (its keys after the header), ``_restore(doc)`` (set the fitted
    state and the settings from a whole document) and ``_check_fitted()``; it may override
    ``_check_document(doc, source)`` for checks that the JSON Schema cannot express.
    """

    _file_kind: ClassVar[str]

    def _document(self, **options) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _restore(self, doc: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_document(self, doc: dict, source: str | None) -> None:
        """Checks of a document beyond its schema (none by default)."""

    def to_dict(self, **options) -> dict:
        """The fitted model as a JSON-ready dict: what :meth:`save_model` writes."""
        self._check_fitted()
        return json_ready({**_header(self._file_kind, type(self).__name__),
                           **self._document(**options)})

    @classmethod
    def from_dict(cls, d: Mapping):
        """Rebuild a fitted model from :meth:`to_dict` output (or a parsed model file)."""
        return cls()._load_document(d, None)

    def save_model(self, path, **options) -> None:
        """Write the fitted model to ``path`` as JSON (never pickle), atomically: through a
        temporary file and a rename, so an interrupted save leaves no half-written file."""
        write_model_file(self.to_dict(**options), path)

    def load_model(self, path):
        """Read a file written by :meth:`save_model` into this instance; returns ``self``.

        Raises
        ------
        ClvInputError
            The file is missing, is not JSON, does not follow the schema, or holds another
            model class.
        """
        return self._load_document(read_model_file(path, self._file_kind), str(path))

    def _load_document(self, doc: Mapping, source: str | None):
        kind, spec = self._file_kind, FILE_KINDS[self._file_kind]
        if spec["format"] is not None and doc.get("format") != spec["format"]:
            raise ClvInputError(
                f"Not a clvtools {kind} model file (format {doc.get('format')!r}, "
                f"expected {spec['format']!r}).", source=source)
        name = doc.get(spec["class_key"])
        if name != type(self).__name__:
            raise ClvInputError(
                f"The model file holds a {name!r}, not a {type(self).__name__}.",
                source=source,
                advice=f"use clvtools.{kind}.load_model(path), which picks the class itself.",
            )
        try:
            self._check_document(doc, source)
            self._restore(dict(doc))
        except KeyError as exc:
            raise ClvInputError(
                f"The model file is incomplete: the key {exc.args[0]!r} is missing.",
                source=source, advice="Save the model again.") from None
        return self


def load_model_file(path, kind: str, classes: Mapping[str, type]):
    """Rebuild whichever model of ``classes`` (class name -> class) the file holds.

    Parameters
    ----------
    path : str or Path
    kind : {"btyd", "survival"}
    classes : mapping of str to type
        The model classes that may be in a file of this kind, each a :class:`ModelFile`.
    """
    doc = read_model_file(path, kind)
    name = doc[FILE_KINDS[kind]["class_key"]]
    if name not in classes:
        raise ClvInputError(
            f"The model file holds an unknown model class {name!r}.", source=str(path),
            advice=f"expected one of {', '.join(sorted(classes))}.",
        )
    return classes[name]()._load_document(doc, str(path))

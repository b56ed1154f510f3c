"""JSON Schemas of clvtools' model files, and the one reader that checks a file against them.

Model files are JSON, never pickle, so they can be read, diffed and edited by hand. A file
that was edited wrongly, truncated or written by something else gets a clear error naming
the file and the first wrong field (as a path such as ``fit.n_iterations``), not a
``KeyError`` deep inside the loader. The schemas ship with the package
(``btyd_model.schema.json``, ``survival_model.schema.json``) for other tools to use too.
The models' side of the files (``to_dict``/``from_dict``, ``save_model``/``load_model``) is
:mod:`clvtools.model_io`.
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema

from ..errors import ClvInputError

__all__ = ["model_schema", "read_model_file", "write_model_file", "SCHEMAS"]

#: kind of model file -> schema file in this package
SCHEMAS = {"btyd": "btyd_model.schema.json", "survival": "survival_model.schema.json"}


@cache
def model_schema(kind: str) -> dict:
    """The JSON Schema (a dict) of a kind of model file: ``"btyd"`` or ``"survival"``."""
    return json.loads(
        resources.files(__package__).joinpath(SCHEMAS[kind]).read_text(encoding="utf-8")
    )


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "the top level"


def read_model_file(path, kind: str) -> dict:
    """Read a model file and check it against its schema.

    Parameters
    ----------
    path : str or Path
    kind : {"btyd", "survival"}

    Returns
    -------
    dict
        The document, valid against :func:`model_schema` ``(kind)``.

    Raises
    ------
    ClvInputError
        The file is missing, is not JSON, or does not follow the schema.
    """
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClvInputError(
            "The model file does not exist.", source=label,
            advice="Check the path; model files are written by save_model.",
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClvInputError(
            f"The model file is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}.",
            source=label,
            advice="Restore the file from the run that wrote it, or save the model again.",
        ) from None
    schema = model_schema(kind)
    # A file of another kind altogether gets one plain sentence rather than its first
    # schema violation: the key that identifies the kind must be there (with its value).
    key = next(iter(schema["required"]))
    expected = schema["properties"][key].get("const")
    if not isinstance(doc, dict) or key not in doc or (expected and doc[key] != expected):
        raise ClvInputError(
            f"The file is not a clvtools {kind} model file (no {key!r}"
            + (f" equal to {expected!r}" if expected else "") + ").",
            source=label, advice="Give a file written by save_model.",
        )
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise ClvInputError(
            f"The model file does not follow the {kind} model schema: "
            f"at {_where(error)}, {error.message}.",
            source=label,
            advice="Save the model again, or fix that field "
            f"(schema: clvtools/schemas/{SCHEMAS[kind]}).",
        )
    return doc


def write_model_file(doc: dict, path) -> None:
    """Write a model document as JSON, atomically: through a temporary file and a rename, so
    that an interrupted save never leaves half a model file behind. NaN and inf are refused
    (JSON has no such numbers; the writers store them as null)."""
    path = Path(path)
    text = json.dumps(doc, allow_nan=False, indent=1)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Churn model files: :func:`load_model` rebuilds whichever model a file holds.

Dispatch only: each model writes and reads its own state (``to_dict``/``from_dict``,
``save_model``/``load_model``, from :class:`clvtools.model_io.ModelFile`); this module reads the
file, picks the class by the file's ``kind`` and rebuilds it. No model module imports this one.
"""
from __future__ import annotations

from ..model_io import load_model_file
from .churn_model import ChurnModel
from .competing_risks import CompetingRisksModel

__all__ = ["load_model"]

#: ``kind`` of a survival model file -> the class that reads it
MODEL_CLASSES = {"ChurnModel": ChurnModel, "CompetingRisksModel": CompetingRisksModel}


def load_model(path):
    """Rebuild the :class:`ChurnModel` or :class:`CompetingRisksModel` written to ``path``.

    Parameters
    ----------
    path : str or Path
        A file written by ``save_model``.

    Raises
    ------
    ClvInputError
        The file is missing, is not a survival model file, or is damaged.
    """
    return load_model_file(path, "survival", MODEL_CLASSES)

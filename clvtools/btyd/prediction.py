"""The ``prediction`` decorator: scalars, arrays and Series in; float, array or Series out.

Every prediction method of the BTYD fitters is written once, on broadcast float64 arrays;
the decorator gives it lifetimes' calling conventions (positional or keyword arguments)
and returns the type the caller gave.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .utils import _to_float_array

__all__ = ["ByHorizon", "by_horizon_inputs", "check_horizons", "prediction"]


def prediction(func: Callable) -> Callable:
    """Decorate a prediction method so it accepts scalars, arrays and Series alike.

    The wrapped body receives every positional argument as a float64 numpy array (broadcast
    together) and returns an array. The result is a ``float`` when every argument was a
    scalar, a ``pandas.Series`` carrying the index of the first Series argument when one was
    given (and the shapes agree), and a numpy array otherwise.
    """

    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        self._check_fitted()
        # keyword calls (t=..., frequency=...) are as valid as positional ones, as in lifetimes
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        names = list(bound.arguments)[1:]
        values = [bound.arguments[n] for n in names]
        index = next((v.index for v in values if isinstance(v, pd.Series)), None)
        scalar = all(np.ndim(v) == 0 for v in values)
        arrays = [_to_float_array(v, n) for v, n in zip(values, names, strict=True)]
        if arrays:
            arrays = np.broadcast_arrays(*arrays)
        out = np.asarray(func(self, *arrays), dtype=float)
        if scalar:
            return float(out.reshape(-1)[0]) if out.size == 1 else out
        if index is not None and out.ndim == 1 and len(out) == len(index):
            return pd.Series(out, index=index, name=func.__name__)
        return out

    return wrapper


def check_horizons(horizons) -> np.ndarray:
    """``horizons`` as a 1-d float array of positive finite numbers, or a clear error."""
    try:
        values = np.atleast_1d(np.asarray(horizons, dtype=float))
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values) & (values > 0)):
        raise ClvInputError(
            "The 'horizons' argument must be a non-empty 1-d array of positive numbers (time "
            f"units). Got {horizons!r} instead.")
    return values


def by_horizon_inputs(horizons, frequency, recency, T):
    """The checked horizons, the RFM columns as flat float arrays of one length, and the
    index of the first Series among them (None without one): the inputs of the models'
    ``expected_purchases_by_horizon``."""
    values = {"frequency": frequency, "recency": recency, "T": T}
    index = next((v.index for v in values.values() if isinstance(v, pd.Series)), None)
    arrays = np.broadcast_arrays(*(_to_float_array(v, n).reshape(-1) for n, v in values.items()))
    return check_horizons(horizons), arrays, index


class ByHorizon:
    """``expected_purchases_by_horizon`` for a plain fitter that computes the expectations at
    several horizons in one pass (``_by_horizon_plain``)."""

    def expected_purchases_by_horizon(self, horizons, frequency, recency, T):
        """E[X(T, T+h) | x, t_x, T] for several horizons h in one pass: the values of
        ``conditional_expected_number_of_purchases_up_to_time`` at each horizon, with the
        costly parts (P(alive); BG/NBD's hypergeometric function, once per distinct (x, T)
        pair and horizon) computed once.

        Parameters
        ----------
        horizons : array_like, shape (k,)
            Lengths of the periods (time units), e.g. the ends of each month of a forecast.
        frequency, recency, T : array_like or Series, shape (n,)

        Returns
        -------
        pandas.DataFrame, shape (n, k)
            One column per horizon (named by it), indexed like the inputs.
        """
        self._check_fitted()
        horizons, (x, tx, age), index = by_horizon_inputs(horizons, frequency, recency, T)
        return pd.DataFrame(self._by_horizon_plain(horizons, x, tx, age), index=index,
                            columns=horizons)

    def _by_horizon_plain(self, horizons, x, tx, T):  # pragma: no cover - abstract
        """Expected purchases in (T, T + h] per customer and horizon, shape (n, k)."""
        raise NotImplementedError

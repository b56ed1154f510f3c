"""Reason codes: the few drivers that put a customer on the contact list, as text.

Frames in, frames out: the drivers are any per-customer additive parts of a log hazard ratio
(a Cox model's terms against the average customer) with a phrase for each.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["REASON_COLUMNS", "format_distinct", "reason_codes", "top_drivers"]

#: targets.csv's reason columns: the value at stake, then the strongest risk drivers.
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


def top_drivers(contributions: pd.DataFrame, labels: pd.DataFrame, *, k: int = 2,
                min_ratio: float = 1.1, sign: int = 1) -> pd.DataFrame:
    """The ``k`` drivers that raise (``sign=1``) or lower (``sign=-1``) each customer's risk
    most, as ``label (risk ×1.8)``.

    Parameters
    ----------
    contributions : pandas.DataFrame, shape (n, v)
        Log hazard ratio parts by driver (:meth:`ChurnModel.variable_contributions`).
    labels : pandas.DataFrame, shape (n, v)
        A phrase per customer and driver, same index and columns.
    k : int
        Drivers per customer.
    min_ratio : float
        A driver is named only when it moves the hazard by at least this factor.
    sign : {1, -1}

    Returns
    -------
    pandas.DataFrame of str, shape (n, k)
        Columns ``driver_1`` ... ``driver_k``; empty where fewer drivers pass ``min_ratio``.
    """
    values = sign * contributions.to_numpy(dtype=float)
    text = labels[contributions.columns].to_numpy(dtype=object)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(values))[:, None]
    strongest = values[rows, order]
    ratio = np.exp(sign * strongest)
    out = {}
    for j in range(min(k, values.shape[1])):
        named = np.flatnonzero(strongest[:, j] >= np.log(min_ratio))
        # the phrases of the named drivers only, each distinct ratio formatted once (two
        # significant digits: a few hundred among a million rows)
        distinct, which = np.unique(ratio[named, j], return_inverse=True)
        shown = [f"{r:.2g}" for r in distinct]
        column = np.empty(len(values), dtype=object)
        column.fill("")
        column[named] = [f"{t} (risk ×{shown[i]})"
                         for t, i in zip(text[named, order[named, j]], which, strict=True)]
        out[f"driver_{j + 1}"] = column
    return pd.DataFrame(out, index=contributions.index)


def reason_codes(customers: pd.DataFrame, drivers: pd.DataFrame | None, *,
                 value_column: str = "revenue_if_retained") -> pd.DataFrame:
    """:data:`REASON_COLUMNS` for each customer of the contact list.

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k)
        The customers to explain: ``value_column``, ``churn_probability`` (NaN for the
        declared churned), ``value_share`` (the share of live customers with a larger value,
        in [0, 1]), ``last_purchase`` and ``lapsed_revenue``.
    drivers : pandas.DataFrame, optional, shape (n, 2)
        The strongest risk drivers (:func:`top_drivers`), indexed like ``customers``; the
        declared churned have none.

    Returns
    -------
    pandas.DataFrame of str, shape (n, 3)
        ``reason_1``: the value at stake and the risk (or, for a customer already declared
        churned, the last purchase and the revenue a reactivation would win back);
        ``reason_2``, ``reason_3``: the risk drivers, empty where none is strong enough.
    """
    value = customers[value_column].to_numpy(dtype=float)
    p = customers["churn_probability"].to_numpy(dtype=float)
    top = np.maximum(np.ceil(customers["value_share"].to_numpy(dtype=float) * 100), 1)
    # each row's text by the rule of its kind (live or declared churned), from parts each
    # formatted once per distinct value: format(v, ",.0f") is format(rint(v), ",.0f") and
    # format(q, ".0%") is format(rint(q * 100), ".0f") + "%" (the same rounding)
    churned = np.isnan(p)
    live = ~churned
    first = np.empty(len(customers), dtype=object)
    first[live] = [f"value at stake {v} (top {t} %), churn risk {q}%" for v, t, q in zip(
        format_distinct(np.rint(value[live]), "{:,.0f}"), format_distinct(top[live], "{:.0f}"),
        format_distinct(np.rint(p[live] * 100), "{:.0f}"), strict=True)]
    # last_purchase: whole days, so printed alike in any subset
    last = customers["last_purchase"].to_numpy()[churned]
    lapsed = customers["lapsed_revenue"].to_numpy(dtype=float)[churned]
    first[churned] = [f"declared churned, last purchase {d}, lapsed revenue {r}" for d, r in zip(
        format_distinct(last, _as_text), format_distinct(np.rint(lapsed), "{:,.0f}"), strict=True)]
    out = pd.DataFrame({REASON_COLUMNS[0]: first}, index=customers.index)
    for j, column in enumerate(REASON_COLUMNS[1:], start=1):
        if drivers is None or f"driver_{j}" not in drivers:
            out[column] = ""
        elif drivers.index.equals(customers.index):
            out[column] = drivers[f"driver_{j}"].fillna("").to_numpy()
        else:
            out[column] = drivers[f"driver_{j}"].reindex(customers.index).fillna("").to_numpy()
    return out


def format_distinct(values: np.ndarray, form) -> np.ndarray:
    """``values`` (shape (n,)) as text, each distinct value (a missing one included)
    formatted once: by the format string ``form``, or by ``form`` applied to the array of
    distinct values. Shape (n,) of object."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    if not isinstance(form, str):
        return np.asarray(form(distinct), dtype=object)[codes]
    text = np.array([form.format(v) for v in distinct], dtype=object)[codes]
    if values.dtype.kind == "f":
        # factorize takes -0.0 and 0.0 for one value, which format as "-0" and "0"
        zero = values == 0
        text[zero] = np.where(np.signbit(values[zero]), form.format(-0.0), form.format(0.0))
    return text


def _as_text(values) -> np.ndarray:
    """``astype(str)`` of a Series of ``values``: dates print as the whole column prints them
    (days only when every value is a whole day), which a subset's distinct values share."""
    return pd.Series(values).astype(str).to_numpy(dtype=object)

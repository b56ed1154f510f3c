"""lifetimes.utils' model-based functions, same names and arguments, vectorised; and the
input checks and row collapsing that every fitter uses (lifetimes keeps its ``_check_inputs``
in its utils too).

``calculate_alive_path``, ``expected_cumulative_transactions`` and ``_customer_lifetime_value``
(also exported as ``customer_lifetime_value``) take a fitted clvtools (or lifetimes) model.
``check_rfm`` validates frequency/recency/T columns and ``collapse`` merges identical rows into
weights. Turning transaction logs into RFM summaries is the job of :mod:`clvtools.data`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices

__all__ = [
    "_customer_lifetime_value",
    "calculate_alive_path",
    "check_rfm",
    "collapse",
    "customer_lifetime_value",
    "expected_cumulative_transactions",
]


# ----------------------------------------------------------------------------------------
# Input validation and collapsing (used by every fitter)
# ----------------------------------------------------------------------------------------
def _to_float_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, pd.Series):
        # its values, not the Series: numpy's probes for array attributes go through
        # Series.__getattr__, which looks each name up among the index's labels (hashing a
        # million text ids anew for each new index: about 0.15 s of CPU per fit column)
        value = value.array
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ClvInputError(f"The {name!r} argument must be numeric.", column=name) from None
    return arr


def _rows(mask: np.ndarray, columns: dict[str, np.ndarray], index: Any = None) -> pd.DataFrame:
    """The first five offending rows, with the user's index where there is one."""
    where = np.flatnonzero(mask)[:5]
    df = pd.DataFrame({k: np.asarray(v)[where] for k, v in columns.items()})
    df.insert(0, "row", where if index is None else np.asarray(index)[where])
    return df


def check_rfm(
    columns: dict[str, np.ndarray],
    *,
    index: Any = None,
    frequency: str = "frequency",
    recency: str = "recency",
    age: str = "T",
    integer_recency: bool = False,
) -> None:
    """Raise ``ClvInputError`` unless (frequency, recency, age) are valid RFM columns.

    Checks: equal non-zero lengths, finite values, integer non-negative frequency,
    non-negative recency, recency <= age, recency = 0 where frequency = 0, and at least one
    repeat buyer (otherwise no purchase-rate parameter is identifiable).
    """
    x, tx, T = columns[frequency], columns[recency], columns[age]
    src = "DataFrame"
    if not (len(x) == len(tx) == len(T)):
        raise ClvInputError(
            f"{frequency!r}, {recency!r} and {age!r} must have the same length. "
            f"Got {len(x)}, {len(tx)} and {len(T)} instead.",
            advice="pass three columns of the same RFM summary table.",
        )
    if len(x) == 0:
        raise ClvInputError("There are no customers to fit.", advice="check the filters.")
    for name, v in ((frequency, x), (recency, tx), (age, T)):
        bad = ~np.isfinite(v)
        if bad.any():
            raise ClvInputError(
                f"The {name!r} column has missing or infinite values.", source=src, column=name,
                rows=_rows(bad, columns, index), n_rows=int(bad.sum()),
                advice="drop these customers or fill in their value.",
            )
    checks = [
        (x < 0, frequency, "must be non-negative (repeat purchases)."),
        (x != np.round(x), frequency, "must be whole numbers (repeat purchase occasions)."),
        (tx < 0, recency, "must be non-negative (time from first to last purchase)."),
        (tx > T, recency, f"must not exceed {age!r} (last purchase after the observation end)."),
        ((x == 0) & (tx != 0), recency, "must be 0 for customers without repeat purchases."),
    ]
    if integer_recency:
        checks.insert(3, (tx != np.round(tx), recency, "must be whole numbers of periods."))
        checks.insert(4, (T != np.round(T), age, "must be whole numbers of periods."))
    for bad, name, what in checks:
        if bad.any():
            raise ClvInputError(
                f"The {name!r} column {what}", source=src, column=name,
                rows=_rows(bad, columns, index), n_rows=int(bad.sum()),
                advice="rebuild the RFM summary with clvtools.data (or lifetimes' "
                "summary_data_from_transaction_data) and check the date columns.",
            )
    if not (x > 0).any():
        raise ClvInputError(
            "No customer has a repeat purchase, so the purchase rate cannot be estimated.",
            column=frequency, n_rows=len(x),
            advice="use a longer calibration period, or check that frequency counts repeat "
            "purchase occasions (lifetimes' convention), not all purchases minus something.",
        )


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _to_float_array(weights, "weights").reshape(-1)
    if len(w) != n:
        raise ClvInputError(f"'weights' must have one value per row ({n}). Got {len(w)} instead.")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ClvInputError(
            "The 'weights' must be finite and non-negative (numbers of customers).",
            column="weights", n_rows=int(bad.sum()), rows=_rows(bad, {"weights": w}),
        )
    if w.sum() <= 0:
        raise ClvInputError("The 'weights' sum to zero: there is nothing to fit.", column="weights")
    return w


def _codes(col: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values and their range (whole numbers need no hashing)."""
    if len(col) and np.all(np.isfinite(col)):
        lo, hi = col.min(), col.max()
        if hi - lo < 2**24 and np.array_equal(col, np.floor(col)):
            return (col - lo).astype(np.int64), int(hi - lo) + 1
    codes, uniques = pd.factorize(col)
    return codes.astype(np.int64), max(len(uniques), 1)


def distinct_rows(columns) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of equal-length float columns, by hashing (O(n)).

    Parameters
    ----------
    columns : sequence of numpy.ndarray, each shape (n,)

    Returns
    -------
    first : numpy.ndarray of int, shape (g,)
        Index of the first row of each distinct row, in order of appearance.
    inverse : numpy.ndarray of int, shape (n,)
        The distinct row (0..g-1) of every row.
    """
    cols = [np.asarray(c, dtype=float) for c in columns]
    # Hash-based grouping (pandas.factorize, O(n)) rather than np.unique(axis=0), whose sort
    # of 1M rows took 8 s. Row keys are mixed-radix codes built column by column (whole-number
    # columns code as value - min, without hashing) and re-numbered before they could overflow.
    key = np.zeros(len(cols[0]), dtype=np.int64)
    size = 1
    for col in cols:
        codes, n_codes = _codes(col)
        if size * n_codes >= 2**62:  # re-number the key before it could overflow
            key = pd.factorize(key)[0]
            size = int(key.max()) + 1
        key = key * n_codes + codes
        size *= n_codes
    key = pd.factorize(key)[0]
    # factorize numbers groups in order of first appearance: a row opens a new group exactly
    # when its code exceeds every earlier code.
    running = np.maximum.accumulate(key)
    first = np.flatnonzero(np.concatenate([[True], key[1:] > running[:-1]])) if len(key) else key
    return first, key


def collapse(columns: dict[str, np.ndarray], weights: np.ndarray):
    """Merge identical rows into one weighted row (sufficient statistics).

    Returns ``(distinct, counts)``: a dict of the distinct rows' columns, sorted by their
    values (the first column first), and the summed weights. Rows with zero weight are dropped.
    """
    keep = weights > 0
    cols = [np.asarray(v, dtype=float) for v in columns.values()]
    if not keep.all():
        cols, weights = [col[keep] for col in cols], weights[keep]
    key = _ordered_key(cols)
    if key is None:
        first, key = distinct_rows(cols)
        order = np.lexsort([col[first] for col in reversed(cols)])
    else:  # the key orders the rows as their values do: sort the distinct keys alone
        key, uniques = pd.factorize(key)
        running = np.maximum.accumulate(key)
        first = np.flatnonzero(np.concatenate([[True], key[1:] > running[:-1]]))
        order = np.argsort(uniques)
    counts = np.bincount(key, weights=weights, minlength=len(first))
    # Sorted, not in order of first appearance: a fit's sums then run in the same order
    # whatever the order of the customers, so that reordering them leaves the parameters
    # unchanged to the last bit (in order of appearance they moved by ~1e-13)
    return {k: col[first][order] for k, col in zip(columns, cols, strict=True)}, counts[order]


#: Steps per unit of the grids :func:`_ordered_key` recognises: whole numbers, then whole
#: days in weeks (the default time unit: recency and age are days / 7), hours in days, and
#: days in 30-day months.
_GRID_STEPS = (1, 7, 24, 30)


def _grid_codes(col: np.ndarray) -> np.ndarray | None:
    """``round(col * s)`` for the first step ``s`` of :data:`_GRID_STEPS` on whose grid
    every value lies exactly (``round(col * s) / s == col``), shape (n,); else None.

    On its grid a column's codes are in the order of its values and equal only for equal
    values (two values with one code would both equal code / s), so they key the rows as
    the values would."""
    for steps in _GRID_STEPS:
        with np.errstate(over="ignore"):  # a huge value scaled to inf is on no grid
            scaled = col * steps if steps != 1 else col
        codes = np.round(scaled)
        if np.array_equal(codes if steps == 1 else codes / steps, col):
            return codes
    return None


def _ordered_key(cols) -> np.ndarray | None:
    """A mixed-radix int64 key per row that sorts as the rows' values do (first column
    first), when every column lies on a grid of :data:`_GRID_STEPS` in a modest range (days,
    weeks of whole days, counts); else None. Sorting the few hundred thousand distinct keys
    then replaces a lexicographic sort of the distinct rows (a third of :func:`collapse`'s
    time on 1M customers)."""
    key = np.zeros(len(cols[0]), dtype=np.int64)
    size = 1
    for col in cols:
        if not len(col) or not np.all(np.isfinite(col)):
            return None
        codes = _grid_codes(col)
        if codes is None:
            return None
        lo, hi = codes.min(), codes.max()
        # the range first, without hi - lo, which overflows for -1e308 and 1e308 (large
        # values whose spacing exceeds 1 fall back too: lo + 2**24 rounds to lo)
        if hi >= lo + 2**24:
            return None
        n_codes = int(hi - lo) + 1
        if size * n_codes >= 2**62:
            return None
        key *= n_codes
        key += (codes - lo).astype(np.int64)
        size *= n_codes
    return key


#: Time units per month in lifetimes' discrete CLV (30 days, 4.345 weeks a month).
CLV_FREQ_FACTOR = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24, "h": 30.0 * 24}


def _pandas_freq(freq: str) -> str:
    """pandas' spelling of a period: ``"H"`` (hours, which pandas 2.2 deprecated) -> ``"h"``."""
    return freq[:-1] + "h" if isinstance(freq, str) and freq.endswith("H") else freq


def calculate_alive_path(model, transactions, datetime_col, t, freq="D"):
    """P(alive) of ONE customer at the end of each period since their first purchase.

    Parameters
    ----------
    model : fitted BG/NBD, MBG/NBD or Pareto/NBD fitter
    transactions : pandas.DataFrame
        The customer's transactions.
    datetime_col : str
        Column of transaction dates.
    t : int
        Number of periods to cover after the first one.
    freq : str, default "D"
        pandas frequency of a period (the model's time unit).

    Returns
    -------
    pandas.Series, shape (max(t + 1, periods with history),)
        P(alive) at T = 0, 1, ..., indexed by the period number.
    """
    dates = pd.to_datetime(transactions[datetime_col])
    counts = pd.Series(1, index=pd.DatetimeIndex(dates)).resample(_pandas_freq(freq)).sum()
    counts = counts.to_numpy()
    bought = np.zeros(max(t + 1, len(counts)), dtype=bool)
    bought[: len(counts)] = counts > 0
    age = np.arange(len(bought), dtype=float)
    frequency = np.cumsum(bought) - 1.0  # the first purchase is not a repeat purchase
    # recency: the last period with a purchase so far (forward fill)
    recency = np.maximum.accumulate(np.where(bought, age, 0.0))
    p = model.conditional_probability_alive(frequency, recency, age)
    return pd.Series(np.asarray(p, dtype=float).reshape(-1), index=pd.RangeIndex(len(age)))


def _customer_lifetime_value(transaction_prediction_model, frequency, recency, T, monetary_value,
                             time=12, discount_rate=0.01, freq="D"):
    """lifetimes' discrete CLV: sum over months k = 1..time of E[purchases in month k] x spend
    / (1 + discount_rate)^k.

    Parameters
    ----------
    transaction_prediction_model : fitted frequency/recency/T fitter
    frequency, recency, T : array_like or Series, shape (n,)
        RFM summary in the time unit ``freq``.
    monetary_value : array_like or Series, shape (n,)
        Spend per purchase (currency).
    time : int, default 12
        Months.
    discount_rate : float, default 0.01
        MONTHLY discount rate.
    freq : {"D", "W", "M", "H", "h"}, default "D"
        Time unit of the data; a month is 30 days / 4.345 weeks / 720 hours, as in lifetimes.

    Returns
    -------
    pandas.Series, shape (n,), name ``clv``
        Indexed like ``frequency`` when it is a Series.
    """
    if freq not in CLV_FREQ_FACTOR:
        raise ClvInputError(f"The 'freq' parameter must be {format_choices(list(CLV_FREQ_FACTOR))}."
                            f" Got {freq!r} instead.")
    index = frequency.index if isinstance(frequency, pd.Series) else None
    x, tx, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    spend = np.asarray(monetary_value, dtype=float)
    factor = CLV_FREQ_FACTOR[freq]
    predict = transaction_prediction_model.conditional_expected_number_of_purchases_up_to_time
    clv = np.zeros(np.broadcast(x, spend).shape)
    previous = np.zeros_like(clv)
    for k in range(1, int(time) + 1):
        cumulative = np.asarray(predict(k * factor, x, tx, age), dtype=float)
        clv = clv + spend * (cumulative - previous) / (1 + discount_rate) ** k
        previous = cumulative
    return pd.Series(clv, index=index, name="clv")


customer_lifetime_value = _customer_lifetime_value


def expected_cumulative_transactions(model, transactions, datetime_col, customer_id_col, t,
                                     datetime_format=None, freq="D", freq_multiplier=1,
                                     set_index_date=False):
    """Actual and model-expected cumulative repeat transactions of a whole customer base.

    Same semantics as lifetimes 0.11.3 (including its alignment: the actual count at step j
    covers periods 0..j*freq_multiplier-1, the expectation customers' ages at period
    j*freq_multiplier), vectorised over first-purchase dates.

    Parameters
    ----------
    model : fitted model with ``expected_number_of_purchases_up_to_time``
    transactions : pandas.DataFrame
        Transaction log.
    datetime_col, customer_id_col : str
    t : int
        Number of periods of ``freq`` to cover from the first transaction in the log.
    datetime_format : str, optional
    freq : str, default "D"
        The model's time unit as a pandas period frequency.
    freq_multiplier : int, default 1
        Periods per reported step (e.g. 7 with daily data for weekly steps).
    set_index_date : bool, default False
        Index the result by period instead of 0, 1, ...

    Returns
    -------
    pandas.DataFrame, columns ``actual`` and ``predicted``, t // freq_multiplier rows
    """
    dates = pd.to_datetime(transactions[datetime_col], format=datetime_format)
    freq = _pandas_freq(freq)
    periods = dates.dt.to_period(freq)
    start = periods.min()
    ids = transactions[customer_id_col].to_numpy()
    offset = np.asarray((periods - start).map(lambda d: d.n), dtype=np.int64)
    occ = pd.DataFrame({"id": ids, "k": offset})
    occ = occ[occ["k"] <= t].drop_duplicates()  # one occasion per customer and period
    first = occ.groupby("id")["k"].transform("min")
    is_first = occ["k"].to_numpy() == first.to_numpy()

    first_counts = occ.loc[is_first, "k"].value_counts().sort_index()
    f_k, f_n = first_counts.index.to_numpy(), first_counts.to_numpy(dtype=float)
    steps = np.arange(1, t // freq_multiplier + 1) * freq_multiplier
    ages = (steps[:, None] - f_k[None, :]).astype(float) / freq_multiplier
    valid = ages > 0
    expected = np.zeros_like(ages)
    if valid.any():
        expected[valid] = np.asarray(model.expected_number_of_purchases_up_to_time(ages[valid]),
                                     dtype=float)
    predicted = (expected * f_n[None, :]).sum(axis=1)

    repeat_per_period = np.bincount(occ.loc[~is_first, "k"].to_numpy(), minlength=t + 1)
    cum = np.concatenate([[0], np.cumsum(repeat_per_period)])
    actual = cum[steps]
    if set_index_date:
        index = pd.period_range(start, periods=t + 1, freq=freq)[
            freq_multiplier - 1 : -1 : freq_multiplier
        ]
    else:
        index = range(t // freq_multiplier)
    return pd.DataFrame({"actual": actual, "predicted": predicted}, index=index)

"""Landmark rows from the purchase occasions sorted by customer, in numpy: the covariates and
outcomes of :func:`~clvtools.data.survival_tables.landmark_table` and
:func:`~clvtools.data.survival_tables.scoring_table`, the same numbers bit for bit, from one
fetch of the occasions shared by every landmark of a run.

Why not SQL: each landmark table's query joins every occasion up to each landmark to the
customers at risk there and aggregates the pairs in a hash table (about 16 s of CPU for the
three tables of a run at a million customers, 9.4M occasions). Sorted by customer and day,
every covariate is a difference of two positions (counts) or of two cumulative sums (spend)
found by binary search, and the outcome is the next spell end at or after a position: a
fetch and a few vectorised passes.

Money stays exact as in :mod:`.money`: each occasion's amount is fetched as whole
micro-units (DuckDB's own rounding), summed as int64 (a window's difference of cumulative
sums is exact modulo 2**64, so exact while a customer's window total stays below 9.2e12
currency units), then converted to a double and divided by 1e6 once, as the SQL does.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .engine import quote_ident
from .transactions import TransactionLog

__all__ = ["SortedOccasions", "sorted_occasions", "landmark_covariates", "customer_money"]

_EPOCH = np.datetime64("1970-01-01", "D")
#: Bits of the day offset in a (customer, day) search key: 11 million years of days.
_DAY_BITS = 32


@dataclass(frozen=True)
class SortedOccasions:
    """A log's occasions sorted by customer id (as DuckDB orders text) and day.

    Attributes
    ----------
    customer_ids : numpy.ndarray of object, shape (n_customers,)
        The ids, sorted; a customer's position is their code.
    starts : numpy.ndarray of int64, shape (n_customers + 1,)
        Each customer's first occasion's position; the last entry is ``n_occasions``.
    day : numpy.ndarray of int64, shape (n_occasions,)
        Days since 1970-01-01.
    key : numpy.ndarray of int64, shape (n_occasions,)
        ``code << 32 | (day - first_day)``: increasing, for binary search.
    first_day : int
        The earliest day of the log.
    micro_sum : numpy.ndarray of int64, shape (n_occasions + 1,) or None
        Cumulative micro-units of the amounts (0 for an occasion without one), from 0
        (modulo 2**64); None when no occasion has an amount.
    amount_count : numpy.ndarray of int64, shape (n_occasions + 1,) or None
        Cumulative count of occasions with an amount, from 0; None when every occasion
        has one (the positions count them).
    next_end : numpy.ndarray of int64, shape (n_occasions,)
        Position of the first spell end at or after each occasion: the customer's next
        occasion with no purchase within ``churn_days`` after it.
    churn_days : int
    """

    customer_ids: np.ndarray
    starts: np.ndarray
    day: np.ndarray
    key: np.ndarray
    first_day: int
    micro_sum: np.ndarray | None
    amount_count: np.ndarray | None
    next_end: np.ndarray
    churn_days: int

    @functools.cached_property
    def arrow_ids(self) -> pa.StringArray:
        """``customer_ids`` as an arrow string array, shape (n_customers,): made once for the
        tables loaded into DuckDB from these occasions (the KPIs' spell bounds and value-tier
        codes; about 0.4 s of CPU each time at a million customers)."""
        return pa.array(self.customer_ids, pa.string())

    def count_until(self, code: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Occasions of each customer ``code`` dated on or before ``day`` (arrays of one
        shape), as positions: the customer's start plus that count."""
        offset = np.clip(day.astype(np.int64) - self.first_day + 1, 0, (1 << _DAY_BITS) - 1)
        return search_in_slices(self.key, (code.astype(np.int64) << _DAY_BITS) | offset)


#: Targets searched at once by :func:`search_in_slices`.
SEARCH_CHUNK = 8192


def search_in_slices(keys: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``np.searchsorted(keys, targets, "left")``, the same positions, a chunk of targets at a
    time, each searched in the slice of ``keys`` between its smallest and its largest target.

    The callers' targets come in order (customers ascending, days ascending in each): a
    chunk's slice is then about as long as the chunk and stays in the CPU's cache, where one
    search over all of ``keys`` (9.4M at a million customers) misses it at most steps; at a
    million customers the landmark tables' 31 searches took 0.9-1.0 CPU-s instead of
    1.2-1.7. Any order gives the same positions: every key before the slice is below the
    chunk's smallest target, every key after it above its largest.

    Parameters
    ----------
    keys : numpy.ndarray, shape (n,)
        Sorted ascending.
    targets : numpy.ndarray, shape (m,)

    Returns
    -------
    numpy.ndarray of int64, shape (m,)
    """
    if targets.size <= SEARCH_CHUNK:
        return np.searchsorted(keys, targets, "left")
    out = np.empty(targets.shape, dtype=np.int64)
    for start in range(0, targets.size, SEARCH_CHUNK):
        part = targets[start:start + SEARCH_CHUNK]
        low = np.searchsorted(keys, part.min(), "left")
        high = np.searchsorted(keys, part.max(), "right")
        out[start:start + SEARCH_CHUNK] = np.searchsorted(keys[low:high], part, "left") + low
    return out


#: The largest sum of a customer's absolute amounts (currency units) the int64 micro-units
#: hold exactly (2**63 micro-units is 9.2e12); beyond it the landmark tables' SQL runs.
MAX_CUSTOMER_MONEY = 9e12


def sorted_occasions(log: TransactionLog, churn_days: int) -> SortedOccasions | None:
    """Fetch ``log``'s occasions sorted by customer and day, with the running sums and spell
    ends that :func:`landmark_covariates` reads (two queries; about 39 bytes per occasion
    held, 65 to 85 at the peak of building, measured at 3.0M occasions).

    Parameters
    ----------
    log : TransactionLog
    churn_days : int
        The churn delay in days (:func:`~clvtools.data.lifecycle.churn_days`).

    Returns
    -------
    SortedOccasions or None
        None when a customer's absolute amounts sum to :data:`MAX_CUSTOMER_MONEY` or more
        (their micro-units could overflow int64): the caller's SQL sums them as decimals.
    """
    con, q = log.con, quote_ident(log.occasions)
    ids = con.execute(f"SELECT customer_id, count(*) AS n, sum(abs(amount)) AS money FROM {q} "
                      "GROUP BY customer_id ORDER BY customer_id").df()
    if len(ids) and (ids["money"].max() or 0) >= MAX_CUSTOMER_MONEY:
        return None
    # micro-units as money.micro_units rounds them (the same double, rounded by DuckDB),
    # cast to BIGINT straight from the whole double: exact, a third of the DECIMAL cast's cost
    rows = con.execute(
        f"SELECT datediff('day', DATE '1970-01-01', date) AS day, "
        f"CAST(round((amount) * 1e6) AS BIGINT) AS micro FROM {q} "
        "ORDER BY customer_id, date").fetchnumpy()
    day = np.asarray(rows["day"], dtype=np.int64)
    micro = rows["micro"]
    counts = ids["n"].to_numpy(dtype=np.int64)
    starts = np.r_[0, np.cumsum(counts)]
    first_day = int(day.min()) if len(day) else 0
    # each array of the occasions' length made once, in place where it can be: each new
    # one is 75 MB at 9.4M occasions, whose first touch (page faults) costs about as much
    # as the arithmetic
    key = np.repeat(np.arange(len(counts), dtype=np.int64) << _DAY_BITS, counts)
    key += day          # the low bits are zero: adding is or-ing
    key -= first_day
    present = ~np.ma.getmaskarray(micro)
    micro_sum = amount_count = None
    if present.any():
        values = np.ma.filled(micro, 0).astype(np.int64) if np.ma.isMaskedArray(micro) \
            else np.asarray(micro, dtype=np.int64)
        micro_sum = np.empty(len(values) + 1, dtype=np.int64)
        micro_sum[0] = 0
        with np.errstate(over="ignore"):     # modular: differences stay exact
            np.cumsum(values, dtype=np.int64, out=micro_sum[1:])
        del values
        if not present.all():
            amount_count = np.r_[0, np.cumsum(present, dtype=np.int64)]
    # a spell ends at a customer's last occasion, or where the next comes churn_days or later
    ends = np.zeros(len(day), dtype=bool)
    np.greater_equal(day[1:] - day[:-1], churn_days, out=ends[:-1])
    ends[starts[1:][counts > 0] - 1] = True
    # the nearest end at or after each position: the positions from one end (exclusive) to
    # the next (inclusive) take the next's (linear; a binary search per occasion took 4x the
    # CPU). The last occasion ends a spell, so every position has one.
    end_at = np.flatnonzero(ends)
    next_end = np.repeat(end_at, np.diff(end_at, prepend=-1))
    return SortedOccasions(ids["customer_id"].to_numpy(dtype=object), starts, day, key,
                           first_day, micro_sum, amount_count, next_end, int(churn_days))


def _money(micro_sum: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The exact total of the occasions at positions [lower, upper), in currency units."""
    with np.errstate(over="ignore"):
        return (micro_sum[upper] - micro_sum[lower]).astype(np.float64) / 1e6


def landmark_covariates(occ: SortedOccasions, landmarks: Sequence, *, window_days: Sequence[int],
                        window_names: Sequence[str], unit_days: float, end=None,
                        has_amounts: bool) -> pd.DataFrame:
    """The rows of the customers at risk at each landmark, with their covariates and, given
    ``end``, their outcome censored there: the columns, order and values of
    :func:`~clvtools.data.survival_tables.landmark_table` (with ``end``) or
    :func:`~clvtools.data.survival_tables.scoring_table` (without), attributes aside.

    Parameters
    ----------
    occ : SortedOccasions
    landmarks : sequence of datetime.date
        Sorted, distinct.
    window_days, window_names : sequence
        The covariate windows in whole days, and their column suffixes.
    unit_days : float
        Days per time unit.
    end : datetime.date, optional
        The observation end, where outcomes are censored; None for a scoring table.
    has_amounts : bool
        Whether the data has amounts (spend columns NaN throughout otherwise).

    Returns
    -------
    pandas.DataFrame
        Sorted by landmark, then customer id; plus a ``_code`` column (the customer's
        position in ``occ.customer_ids``), last.
    """
    n_customers = len(occ.customer_ids)
    all_codes = np.arange(n_customers, dtype=np.int64)
    first = occ.starts[:-1]
    parts = []
    for landmark in landmarks:
        mark = int((np.datetime64(landmark, "D") - _EPOCH).astype(np.int64))
        upto = occ.count_until(all_codes, np.full(n_customers, mark))
        # at risk: a purchase on or before the landmark, the last one within churn_days
        bought = upto > first
        at_risk = bought.copy()
        at_risk[bought] = occ.day[upto[bought] - 1] > mark - occ.churn_days
        code = all_codes[at_risk]
        upper, lower = upto[at_risk], first[at_risk]
        last = upper - 1
        n = upper - lower
        cols: dict[str, object] = {"_code": code}
        if end is not None:
            end_day = int((np.datetime64(end, "D") - _EPOCH).astype(np.int64))
            declared = occ.day[occ.next_end[last]] + occ.churn_days
            cols["duration"] = (np.minimum(declared, end_day) - mark) / unit_days
            cols["event"] = (declared <= end_day).astype(np.int64)
        cols["n_purchases"] = n
        cols["frequency"] = n - 1
        cols["tenure"] = (mark - occ.day[lower]) / unit_days
        cols["time_since_last_purchase"] = (mark - occ.day[last]) / unit_days
        mark_of = np.full(len(code), mark, dtype=np.int64)
        since = {d: occ.count_until(code, mark_of - d) for d in {*window_days,
                                                                 2 * window_days[0]}}
        for name, d in zip(window_names, window_days, strict=True):
            cols[f"purchases_last_{name}"] = upper - since[d]
        for name, d in zip(window_names, window_days, strict=True):
            cols[f"spend_last_{name}"] = _spend(occ, has_amounts, upper, since[d])
        cols["total_spend"] = _spend(occ, has_amounts, upper, lower)
        cols["average_spend"] = _average(occ, upper, lower)
        short = window_days[0]
        cols["purchase_trend"] = (upper - since[short]) - (since[short] - since[2 * short])
        parts.append((mark, cols))
    return _stack(occ, parts, end is not None)


def customer_money(occ: SortedOccasions) -> np.ndarray:
    """Each customer's exact total of their amounts (currency units; NaN for a customer
    without any), shape (n_customers,); ``occ`` must hold amounts."""
    upper, lower = occ.starts[1:], occ.starts[:-1]
    total = _money(occ.micro_sum, upper, lower)
    if occ.amount_count is None:
        return total
    return np.where(occ.amount_count[upper] > occ.amount_count[lower], total, np.nan)


def _spend(occ: SortedOccasions, has_amounts: bool, upper, lower) -> np.ndarray:
    """A window's spend: its exact total, 0 without purchases (or amounts) in it, NaN
    throughout when the data has no amounts."""
    if not has_amounts or occ.micro_sum is None:
        return np.full(len(upper), np.nan)
    return _money(occ.micro_sum, upper, lower)


def _average(occ: SortedOccasions, upper, lower) -> np.ndarray:
    """Mean amount per occasion with an amount; NaN where there is none."""
    if occ.micro_sum is None:
        return np.full(len(upper), np.nan)
    with_amount = (upper - lower if occ.amount_count is None
                   else occ.amount_count[upper] - occ.amount_count[lower])
    with np.errstate(invalid="ignore", divide="ignore"):
        average = _money(occ.micro_sum, upper, lower) / with_amount
    return np.where(with_amount > 0, average, np.nan)


def _stack(occ: SortedOccasions, parts, outcome: bool) -> pd.DataFrame:
    """The landmarks' columns stacked into one frame (landmark, then customer order)."""
    if not parts:
        raise ValueError("no landmark")
    sizes = [len(cols["_code"]) for _, cols in parts]
    marks = np.repeat(np.array([m for m, _ in parts], dtype=np.int64), sizes)
    names = list(parts[0][1])
    stacked = {name: np.concatenate([cols[name] for _, cols in parts]) for name in names}
    code = stacked.pop("_code")
    frame = {"customer_id": occ.customer_ids[code],
             "landmark": (_EPOCH + marks).astype("datetime64[us]")}
    frame.update(stacked)
    frame["_code"] = code
    # each column a block of its own (copy=False: not consolidated): every array here is
    # fresh and held only by the frame, and consolidating copied them all into new memory
    # (about 0.35 s of a landmark table of 870k rows, mostly the new pages' first touch)
    return pd.DataFrame(frame, copy=False)

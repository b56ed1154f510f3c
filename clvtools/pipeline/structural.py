"""The structural churn term: the value model's own P(churn declared within the horizon), as
an input column of the churn model's survival and scoring tables.

Churn is declared ``churn_after`` after the last purchase, so the hazard of a declaration is
far from proportional in the time since the last purchase: a customer whose declaration
date lies beyond a short horizon cannot be declared within it, one whose date is near is
declared unless they buy first. A linear Cox term cannot carry that shape; the BG/NBD
probability of :func:`clvtools.btyd.declared_churn.declared_churn_probability` does. It
enters the Cox model on the complementary log-log scale, ``log(-log(1 - P))``, the scale on
which a Cox model with coefficient 1 and the right baseline reproduces ``P`` at the horizon;
the other covariates then explain what the purchase process leaves unexplained.

At each landmark ``L`` the term comes from a plain BG/NBD fitted on ``log.until(L)`` (no
future information: the landmark table's rule); at the scoring date from the log itself.
BG/NBD is used whatever the ``value_model`` setting: it is the process with a closed form,
and a plain fit on compressed rows costs well under a second.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..btyd.bgnbd import BetaGeoFitter
from ..btyd.declared_churn import declared_churn_probability
from ..data.engine import cursor, run_scope
from ..data.rfm import rfm_summary
from ..data.rfm_counts import rfm_counts, rfm_counts_at
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from ..units import unit_days

__all__ = ["STRUCTURAL_COLUMN", "RECENCY_BAND", "structural_probability", "add_structural_term",
           "add_recency_band", "churn_model_inputs", "cloglog", "seed_structural_cache",
           "fit_structural_model", "structural_from_rfm", "structural_work"]

#: The column the churn model takes: log(-log(1 - P_struct)), P_struct clipped.
STRUCTURAL_COLUMN = "structural_churn_cloglog"
#: P_struct is clipped to [_LOW, 1 - _LOW] before the log-log (exact 0s and 1s occur).
_LOW = 1e-6


def cloglog(p) -> np.ndarray:
    """``log(-log(1 - p))`` of ``p`` clipped to [1e-6, 1 - 1e-6]; shape as ``p``."""
    p = np.clip(np.asarray(p, dtype=float), _LOW, 1.0 - _LOW)
    return np.log(-np.log1p(-p))


def structural_probability(log: TransactionLog, *, horizon: float, churn_after: float,
                           time_unit: str, seed: int = 0, cache: dict | None = None
                           ) -> pd.Series:
    """P(churn declared within ``horizon``) for every live customer at ``log``'s observation
    end, from a plain BG/NBD fitted on ``log``.

    Parameters
    ----------
    log : TransactionLog
        The history up to the scoring date (``log.until(L)`` for a landmark ``L``).
    horizon, churn_after : float
        Time units.
    time_unit : {"day", "week", "month"}
    seed : int
        Seed of the posterior simulation (only for ``horizon > 2 churn_after``).
    cache : dict, optional
        One run's terms by date, shared by the main fit, the out-of-time validation and the
        scoring (they meet the same dates: the holdout start is a landmark of both), and the
        plain BG/NBD fits by date (:func:`seed_structural_cache` puts the value step's there).
        Every log given with one cache must be a prefix of the same log.

    Returns
    -------
    pandas.Series
        Indexed by ``customer_id`` (live customers only: last purchase less than
        ``churn_after`` ago), named ``structural_churn_probability``.

    Raises
    ------
    ConvergenceError, ClvInputError
        When BG/NBD cannot be fitted on this history.
    """
    cache = {} if cache is None else cache
    key = ("term", log.observation_end, horizon, churn_after, time_unit, seed)
    if key in cache:
        return cache[key]
    fit_key = ("fit", log.observation_end, time_unit)
    rfm, model = cache.get(fit_key, (None, None))
    if rfm is None:     # no fit yet, or one fitted on distinct rows (structural_work)
        rfm = rfm_summary(log, time_unit=time_unit)
        cache[fit_key] = (rfm, model if model is not None else fit_structural_model(rfm))
    rfm, model = cache[fit_key]
    cache[key] = structural_from_rfm(model, rfm, horizon=horizon, churn_after=churn_after,
                                     seed=seed)
    return cache[key]


def _row_keys(frequency, recency_days, age_days) -> np.ndarray:
    """One int64 per (frequency, recency, T) row of an RFM summary, in whole days: 21 bits
    each for the days (5,700 years), the rest for the frequency; increasing with the row
    in that order."""
    return ((np.asarray(frequency).astype(np.int64) << 42)
            | (np.asarray(recency_days, dtype=np.int64) << 21)
            | np.asarray(age_days, dtype=np.int64))


def _distinct_term(rows: pd.DataFrame, end, *, horizon: float, churn_after: float,
                   time_unit: str, seed: int, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """The structural term at ``end`` on the distinct rows of its RFM summary
    (:func:`~clvtools.data.rfm_counts.rfm_counts`): the plain BG/NBD (cached, or fitted on
    the rows weighted by their customers: the same fit as on the customers, whose likelihood
    it collapses to the same rows) and the probability of each live row, as (row keys,
    probabilities), both sorted by key."""
    fit_key = ("fit", end, time_unit)
    if fit_key not in cache:
        cache[fit_key] = (None, fit_structural_model(
            rows, weights=rows["customers"].to_numpy(dtype=float)))
    model = cache[fit_key][1]
    p = structural_from_rfm(model, rows, horizon=horizon, churn_after=churn_after, seed=seed)
    live = rows.loc[p.index]
    return (_row_keys(live["frequency"], live["recency_days"], live["T_days"]),
            p.to_numpy())


def _term_key(end, horizon, churn_after, time_unit, seed) -> tuple:
    return ("rows", end, horizon, churn_after, time_unit, seed)


def structural_work(log: TransactionLog, dates, *, horizon: float, churn_after: float,
                    time_unit: str, seed: int = 0, cache: dict) -> Callable[[], None]:
    """The structural terms' work at each of ``dates`` whose term is not in ``cache``, as a
    function for a second thread (:func:`~clvtools.pipeline._threads.alongside_thread`) while
    the caller's thread builds the landmark tables: the distinct rows of the RFM summary at
    every date (one query for them all, on a cursor of its own: :func:`~clvtools.data.engine
    .cursor`), then each date's BG/NBD fit and term into ``cache``.
    :func:`add_structural_term` then reads the terms off the cache.

    On a caller's own connection the run's tables are TEMP ones, which a cursor does not
    see: the query runs here then, on the calling thread, and the function runs no SQL.

    Parameters
    ----------
    log : TransactionLog
        The full log; the term at a date sees only ``log.until(date)`` (the summary stops
        there).
    dates : iterable of datetime.date
        On or before the log's observation end.
    horizon, churn_after, time_unit, seed, cache
        As in :func:`structural_probability`.

    Returns
    -------
    callable
        Without arguments, returning None. A date whose BG/NBD fit fails is left out of the
        cache, so that :func:`add_structural_term` meets the error there (and
        :func:`churn_model_inputs` notes it).
    """
    term = dict(horizon=horizon, churn_after=churn_after, time_unit=time_unit, seed=seed)
    ends = {min(date, log.observation_end) for date in dates}
    # every date's distinct rows from one aggregation of the occasions
    missing = [end for end in ends if _term_key(end, **term) not in cache]

    def query(on: TransactionLog) -> list:
        return sorted(rfm_counts_at(on, missing, time_unit=time_unit).items()) if missing else []

    if run_scope(log.con):      # "TEMP ": a caller's connection
        jobs = query(log)

        def queried() -> list:
            return jobs
    else:
        def queried() -> list:
            # beside the caller's fetch of the sorted occasions (at a million customers the
            # query took about a second of the landmark step on the caller's thread)
            own = cursor(log.con)
            try:
                return query(dataclasses.replace(log, con=own))
            finally:
                own.close()

    def fit_and_score() -> None:
        for end, rows in queried():
            try:
                cache[_term_key(end, **term)] = _distinct_term(rows, end, cache=cache, **term)
            except (ConvergenceError, ClvInputError):
                pass    # met again, and noted, where the tables take their terms
    return fit_and_score


def fit_structural_model(rfm: pd.DataFrame, weights=None) -> BetaGeoFitter:
    """The plain BG/NBD of the structural term, fitted on an RFM summary (``frequency``,
    ``recency``, ``T``; with ``weights``, the customers each row stands for: compressed
    statistics, as a Spark job collects them)."""
    x, tx, age = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    # numpy's error state, not a warnings filter: it is the thread's own, where
    # warnings.catch_warnings swaps the process's filters under a thread running beside it
    with np.errstate(all="ignore"):
        return BetaGeoFitter().fit(x, tx, age, weights=weights)


def structural_from_rfm(model: BetaGeoFitter, rfm: pd.DataFrame, *, horizon: float,
                        churn_after: float, seed: int = 0) -> pd.Series:
    """P(churn declared within ``horizon``) of the live customers of ``rfm`` (rows of an RFM
    summary at the scoring date, any subset of its customers), from a fitted BG/NBD; indexed
    like ``rfm``'s live rows, named ``structural_churn_probability``.

    Without a posterior simulation (``horizon <= 2 churn_after``) a customer's probability
    depends on their own row only, so that a chunk of customers scores as the whole would.
    """
    x, tx, age = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    # declared on the day last purchase + churn_after: a gap of exactly churn_after (26 weeks
    # as 35.857 - 9.857 = 25.999...) is declared, as the day-based lifecycle rule says
    live = age - tx < churn_after - 1e-9
    p = declared_churn_probability(model, x[live], tx[live], age[live], horizon=horizon,
                                   churn_after=churn_after, seed=seed)
    return pd.Series(p, index=rfm.index[live], name="structural_churn_probability")


def seed_structural_cache(log: TransactionLog, rfm: pd.DataFrame, purchases,
                          time_unit: str) -> dict:
    """A cache for :func:`structural_probability` holding the value step's fit when it is
    the plain BG/NBD on ``log``'s RFM summary (the structural term's own fit at the
    observation end: fitting it again would give the same model)."""
    if type(purchases) is BetaGeoFitter:
        return {("fit", log.observation_end, time_unit): (rfm, purchases)}
    return {}


def add_structural_term(table: pd.DataFrame, log: TransactionLog, *, horizon: float,
                        churn_after: float, time_unit: str, seed: int = 0,
                        cache: dict | None = None) -> pd.DataFrame:
    """``table`` with :data:`STRUCTURAL_COLUMN` added, computed at each row's landmark.

    Parameters
    ----------
    table : pandas.DataFrame
        A landmark table (``customer_id``, ``landmark`` before ``log``'s observation end) or
        a scoring table (``landmark`` equal to the observation end).
    log : TransactionLog
        The full log; each landmark's term uses ``log.until(landmark)`` only.
    cache : dict, optional
        As in :func:`structural_probability`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the new float column; rows and order unchanged.

    Raises
    ------
    ConvergenceError, ClvInputError
        When BG/NBD cannot be fitted at some landmark.
    """
    # a shallow copy given a column of its own: the table's columns are shared, never
    # written into (a deep copy of a landmark table of a million rows cost about 0.3 s)
    out = table.copy(deep=False)
    if out.empty:
        out[STRUCTURAL_COLUMN] = np.nan
        return out
    cache = {} if cache is None else cache
    term = dict(horizon=horizon, churn_after=churn_after, time_unit=time_unit, seed=seed)
    # each row's RFM summary at its landmark, in whole days, from the table's own columns
    # (the same days as the summary's SQL: tenure is the age T, tenure less the time since
    # the last purchase the recency), looked up among the summary's distinct rows
    per_unit = unit_days(time_unit)
    age = np.rint(out["tenure"].to_numpy(dtype=float) * per_unit).astype(np.int64)
    idle = np.rint(out["time_since_last_purchase"].to_numpy(dtype=float) * per_unit)
    keys = _row_keys(out["frequency"].to_numpy(), age - idle.astype(np.int64), age)
    # days as numbers, not a date object per row (a million rows)
    days = pd.to_datetime(out["landmark"]).to_numpy(dtype="datetime64[D]")
    values = np.full(len(out), np.nan)
    for day in np.unique(days):
        end = min(day.astype(object), log.observation_end)     # a datetime.date
        if _term_key(end, **term) not in cache:
            at = log if end >= log.observation_end else log.until(end)
            cache[_term_key(end, **term)] = _distinct_term(
                rfm_counts(at, time_unit=time_unit), end, cache=cache, **term)
        live_keys, p = cache[_term_key(end, **term)]
        rows = days == day
        at_rows = np.minimum(np.searchsorted(live_keys, keys[rows]), max(len(live_keys) - 1, 0))
        found = (live_keys[at_rows] == keys[rows]) if len(live_keys) else np.zeros(rows.sum(), bool)
        if not found.all():
            raise ClvInputError(
                f"{int((~found).sum())} customers of the table at {end} have no "
                "structural churn probability (not live by the RFM summary).")
        values[rows] = cloglog(p[at_rows])
    out[STRUCTURAL_COLUMN] = values
    return out


#: The churn model's strata: equal bands of the time since the last purchase, from 0 to
#: ``churn_after`` (one week each with the defaults). The declaration hazard's shape in
#: time is set by how far off the current declaration date is; a baseline per band carries
#: it, the structural term and the covariates scale it.
RECENCY_BAND, RECENCY_BANDS = "recency_band", 26
_BAND_LABELS = np.array([f"{b:02d}" for b in range(RECENCY_BANDS + 1)], dtype=object)


def add_recency_band(table: pd.DataFrame, churn_after: float) -> pd.DataFrame:
    """``table`` with the :data:`RECENCY_BAND` stratum column (``"01"`` .. ``"26"``, str)."""
    edges = np.linspace(0.0, churn_after, RECENCY_BANDS + 1)
    band = np.searchsorted(edges, table["time_since_last_purchase"].to_numpy(float), "right")
    band = np.clip(band, 1, RECENCY_BANDS)
    # the labels looked up, not formatted per row (seconds on a landmark table of millions);
    # added to a shallow copy (assign copied every column: about 0.25 s at a million rows)
    out = table.copy(deep=False)
    out[RECENCY_BAND] = _BAND_LABELS[band]
    return out


def churn_model_inputs(survival: pd.DataFrame, scoring: pd.DataFrame, log: TransactionLog, *,
                       horizon: float, churn_after: float, time_unit: str, seed: int = 0,
                       scoring_log: TransactionLog | None = None, cache: dict | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The survival and scoring tables with the structural term and the recency band added.

    Parameters
    ----------
    survival, scoring : pandas.DataFrame
        A landmark table (its outcomes may run past ``log``'s end only if ``log`` is the
        full log) and a scoring (or evaluation) table.
    log : TransactionLog
        The log the tables were built from; each landmark's term sees only
        ``log.until(landmark)``.
    scoring_log : TransactionLog, optional
        The log of the scoring table when it differs from ``log``.
    cache : dict, optional
        As in :func:`structural_probability`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, list of str)
        Both tables (with the band only, when BG/NBD cannot be fitted at a landmark) and the
        notes for data_quality.json.
    """
    term = dict(horizon=horizon, churn_after=churn_after, time_unit=time_unit, seed=seed,
                cache={} if cache is None else cache)
    notes = []
    try:
        # both tables or neither: a model fitted with the term cannot score a table without it
        survival, scoring = (add_structural_term(survival, log, **term),
                             add_structural_term(scoring, scoring_log or log, **term))
    except (ConvergenceError, ClvInputError) as exc:
        notes.append(f"No structural churn term ({str(exc).splitlines()[0]}): the churn model "
                     "is stratified by time since the last purchase only.")
    return (add_recency_band(survival, churn_after), add_recency_band(scoring, churn_after),
            notes)

"""Landmark survival tables from purchase occasions: computed in numpy from the occasions
sorted by customer (:mod:`.landmark_arrays`), or, for a table kept in DuckDB (the chunked
run) or amounts past int64 micro-units, one SQL query run by DuckDB; the same rows either way.

Every function takes a :class:`~clvtools.data.transactions.TransactionLog`: its occasions
(``customer_id VARCHAR, date DATE, amount DOUBLE``, one row per customer per day; ``amount``
may be NULL) are all dated on or before its observation end, where outcomes are censored.
Churn is declared by the rule of :mod:`clvtools.data.lifecycle` (the concepts page,
docs/concepts.rst, "Definitions"): ``churn_days`` after the last purchase.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from ..errors import ClvInputError
from ..units import to_days, unit_days
from .attributes import CustomerAttributes, decoded_text
from .engine import quote_ident
from .landmark_arrays import SortedOccasions, landmark_covariates, sorted_occasions
from .lifecycle import churn_days, spell_bounds
from .money import money_sum
from .schema import check_date, check_occasions, check_table
from .transactions import TransactionLog

__all__ = ["DEFAULT_WINDOWS", "landmark_table", "scoring_table"]

#: Default covariate windows, in time units: about 1, 3, 6 and 12 months in every unit.
DEFAULT_WINDOWS: dict[str, tuple[float, ...]] = {
    "day": (28, 91, 182, 364),
    "week": (4, 13, 26, 52),
    "month": (1, 3, 6, 12),
}


def _window_names(windows: Sequence[float]) -> list[str]:
    """Column suffixes: 4 -> "4", 0.5 -> "0_5" (no dots in column names)."""
    return [f"{w:g}".replace(".", "_") for w in windows]


def _check_windows(windows: Sequence[float] | None,
                   time_unit: str) -> tuple[list[float], list[int]]:
    windows = list(DEFAULT_WINDOWS[time_unit] if windows is None else windows)
    if not windows:
        raise ClvInputError("The 'windows' parameter must list at least one window length.")
    days = [to_days(w, time_unit, "windows") for w in windows]
    if len(set(_window_names(windows))) != len(windows):
        raise ClvInputError(f"The 'windows' parameter has repeated lengths: {windows}.")
    return windows, days


# ---------------------------------------------------------------- covariates
def _covariates_sql(occasions: str, windows: Sequence[float], window_days: Sequence[int]) -> str:
    """SQL of the covariates of each row of the CTE ``at_risk(customer_id, landmark)``.

    Only occasions with ``date <= landmark`` enter: this join condition is what keeps future
    information out of every covariate. Parameter: ``$has_amounts``.
    """
    short = window_days[0]
    # The trend window is the first (usually shortest) window: purchases in (L - w, L]
    # minus purchases in (L - 2w, L - w]. A difference, not a ratio, so that it is defined
    # for customers with no purchase in the earlier window.
    # Spend: 0 for a window without purchases, but NULL throughout when the data has no
    # amounts at all ($has_amounts), so that a model does not take a constant 0 for a fact.
    parts = []
    for name, d in zip(_window_names(windows), window_days, strict=True):
        parts.append(f"count(*) FILTER (WHERE o.date > l.landmark - {int(d)}) "
                     f"AS purchases_last_{name}")
    for name, d in zip(_window_names(windows), window_days, strict=True):
        spend = money_sum("o.amount", f"o.date > l.landmark - {int(d)}")
        parts.append(f"CASE WHEN $has_amounts THEN coalesce({spend}, 0) END AS spend_last_{name}")
    windows_sql = ",\n               ".join(parts)
    return f"""
        SELECT o.customer_id, l.landmark,
               count(*) AS n_purchases,
               min(o.date) AS first_purchase,
               max(o.date) AS last_purchase,
               {windows_sql},
               CASE WHEN $has_amounts THEN coalesce({money_sum('o.amount')}, 0) END AS total_spend,
               {money_sum('o.amount')} / count(o.amount) AS average_spend,
               count(*) FILTER (WHERE o.date > l.landmark - {int(short)})
                 - count(*) FILTER (WHERE o.date > l.landmark - {2 * int(short)}
                                    AND o.date <= l.landmark - {int(short)}) AS purchase_trend
        FROM {quote_ident(occasions)} AS o JOIN at_risk AS l
          ON o.customer_id = l.customer_id AND o.date <= l.landmark
        GROUP BY o.customer_id, l.landmark"""


def _at_risk_sql(occasions: str) -> str:
    """SQL of the (customer_id, landmark) pairs at risk: a purchase in ``(L - $cd, L]``.

    Found first, so that only these customers' occasions are aggregated (at scale most
    customers are long gone at a landmark).
    """
    return f"""
        SELECT DISTINCT o.customer_id, l.landmark
        FROM {quote_ident(occasions)} AS o JOIN landmarks AS l
          ON o.date <= l.landmark AND o.date > l.landmark - $cd"""


def _covariate_columns(windows: Sequence[float]) -> list[str]:
    """Names of the covariate columns, in output order."""
    names = _window_names(windows)
    return (["n_purchases", "frequency", "tenure", "time_since_last_purchase"]
            + [f"purchases_last_{n}" for n in names] + [f"spend_last_{n}" for n in names]
            + ["total_spend", "average_spend", "purchase_trend"])


def _covariate_select(windows: Sequence[float]) -> str:
    names = _window_names(windows)
    cols = (["c.n_purchases", "c.n_purchases - 1 AS frequency",
             "(c.landmark - c.first_purchase) / $ud AS tenure",
             "(c.landmark - c.last_purchase) / $ud AS time_since_last_purchase"]
            + [f"c.purchases_last_{n}" for n in names] + [f"c.spend_last_{n}" for n in names]
            + ["c.total_spend", "c.average_spend", "c.purchase_trend"])
    return ", ".join(cols)


def _attributes(con: duckdb.DuckDBPyConnection, attributes: CustomerAttributes | None,
                taken: Sequence[str], *, as_of: bool, coded: bool) -> tuple[str, str]:
    """The SELECT list and JOIN clause that add the customer attributes (or two empty strings):
    durations in days at each row's landmark; with ``as_of``, rows not yet valid at the
    landmark replaced by their fill; with ``coded``, text attributes as ENUMs, for a result
    fetched into pandas (:func:`_fetched`)."""
    if attributes is None:
        return "", ""
    customers = attributes.table
    check_table(con, customers, ["customer_id"], "customer attributes")
    cols = attributes.columns()
    clash = sorted(set(cols) & set(taken) - {"customer_id"})
    if clash:
        raise ClvInputError(f"Customer attribute columns {clash} clash with computed columns.",
                            source=customers, advice="Rename those attribute columns.")
    q = quote_ident(customers)
    dup = con.execute(f"SELECT customer_id, count(*) AS n FROM {q} GROUP BY customer_id "
                      "HAVING count(*) > 1 ORDER BY customer_id").df()
    if len(dup):
        raise ClvInputError("Customer attributes list some customers more than once.",
                            source=customers, column="customer_id", rows=dup.head(5),
                            n_rows=int(dup["n"].sum()),
                            advice="Keep one row per customer.")
    select = "".join(", " + attributes.column_sql(c, "a", "c.landmark", as_of=as_of,
                                                  coded=coded)
                     for c in cols)
    return select, f"LEFT JOIN {q} AS a ON a.customer_id = c.customer_id"


def _spell_ends_sql(log: TransactionLog, cd: int, *, shared: bool) -> str:
    """SQL of the log's spell ends after ``$since``: the ``(customer_id, date)`` of every
    occasion dated after ``$since`` that no purchase of the customer follows within ``cd``
    days (``$cd`` in the query).

    ``shared``: read from the run's table of spell starts and ends
    (:func:`~clvtools.data.lifecycle.spell_bounds`: one window pass over the occasions, the
    costliest part of a landmark table's query, made once for the main fit's landmarks, the
    out-of-time validation's and the KPIs). Otherwise (the chunked run's one table, kept in
    DuckDB, with no KPIs to share with), the window pass over the occasions after ``$since``
    only. An occasion's next purchase is the same whatever earlier occasions are left out, so
    both give the same rows.
    """
    if shared:
        return f"""SELECT customer_id, date FROM {spell_bounds(log, cd)}
                   WHERE spell_end AND date > $since"""
    return f"""
        SELECT customer_id, date FROM (
            SELECT customer_id, date,
                   lead(date) OVER (PARTITION BY customer_id ORDER BY date) AS next
            FROM {quote_ident(log.occasions)} WHERE date > $since)
        WHERE coalesce(next - date >= $cd, TRUE)"""


def landmark_table(
    log: TransactionLog,
    *,
    landmarks: Sequence[dt.date],
    churn_after: float,
    time_unit: str = "week",
    windows: Sequence[float] | None = None,
    attributes: CustomerAttributes | None = None,
    into: str | None = None,
    sorted_rows: SortedOccasions | None = None,
) -> pd.DataFrame | None:
    """Stacked landmark survival table: one row per customer at risk at each landmark.

    At a landmark ``L`` a customer is at risk when their first purchase is on or before ``L``
    and they are not yet declared churned (``L - last purchase < churn_days``). Covariates use
    only occasions dated on or before ``L``; the outcome uses only later ones.

    Parameters
    ----------
    log : TransactionLog
        The purchase occasions; outcomes are censored at its observation end
        (``observation_end`` below). To build a table as it could have been built at an
        earlier date, pass ``log.until(date)``.
    landmarks : sequence of datetime.date
        Landmark dates, each before ``observation_end``.
    churn_after : float
        Time units without a purchase after which churn is declared.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``, ``windows`` and every duration or time covariate.
    windows : sequence of float, optional
        Window lengths w in time units for ``purchases_last_{w}`` and ``spend_last_{w}``
        (window ``(L - w, L]``, w rounded to whole days). Default: ``DEFAULT_WINDOWS[time_unit]``.
    attributes : CustomerAttributes, optional
        Customer attributes (from :func:`~clvtools.data.attributes.read_customers`; its
        ``table`` holds ``customer_id`` plus attribute columns), left-joined: a date
        attribute as days from it to the landmark; attributes taken as known at every
        landmark unless the rows carry the date from which they are valid, in which case a
        row is replaced by its fill (``"(missing)"``, the median) at earlier landmarks.

    Returns
    -------
    pandas.DataFrame
        One row per (customer, landmark) at risk, sorted by landmark then customer, with
        columns:

        - ``customer_id``; ``landmark`` (datetime64);
        - ``duration`` (float, time units, a whole number of days): from ``L`` to the next churn
          declaration, or to ``observation_end`` if that declaration is later (censored);
        - ``event`` (int, 1 = churn declared on or before ``observation_end``). The next
          declaration is found by walking forward from the last purchase on or before ``L``
          through later purchases until a gap of ``churn_days`` or more; it is the last
          purchase of that run plus ``churn_days``;
        - ``n_purchases`` (occasions up to L), ``frequency`` (= n_purchases - 1, repeat
          occasions), ``tenure`` (L - first purchase, time units), ``time_since_last_purchase``
          (time units);
        - ``purchases_last_{w}``, ``spend_last_{w}`` for each window (``w`` written as in
          ``windows``, a decimal point as ``_``; spend 0 for a window without purchases, NaN
          throughout when the data has no amounts);
        - ``total_spend``, ``average_spend`` (mean amount per occasion up to L; NaN without
          amounts);
        - ``purchase_trend``: purchases in ``(L - w1, L]`` minus purchases in
          ``(L - 2 w1, L - w1]``, w1 the first window (positive = buying more lately);
        - then the attribute columns of ``attributes``.

        With ``into`` (a table name), the rows are kept in DuckDB as that temporary table
        instead, in the same order, and None is returned.

    Other Parameters
    ----------------
    sorted_rows : SortedOccasions, optional
        ``log``'s occasions sorted by customer
        (:func:`~clvtools.data.landmark_arrays.sorted_occasions` with this ``churn_after``),
        shared by the run's landmark and scoring tables; fetched here when omitted. Without
        ``into``, the rows are computed from them in numpy (the same numbers as the query,
        at a fraction of its cost); the query runs only with ``into`` or when amounts are
        too large for int64 micro-units.
    """
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    marks = sorted({check_date(x, "landmarks") for x in landmarks})
    if not marks:
        raise ClvInputError("The 'landmarks' parameter must list at least one date.")
    late = [x for x in marks if x >= observation_end]
    if late:
        raise ClvInputError(f"Landmarks must fall before the observation end {observation_end}. "
                            f"Got {[str(x) for x in late]}.",
                            advice="Drop those landmarks; score at the observation end with "
                                   "scoring_table().")
    cd = churn_days(churn_after, time_unit)
    windows, window_days = _check_windows(windows, time_unit)
    has_amounts = check_occasions(con, occasions, observation_end)
    covs = _covariate_select(windows)
    taken = ["landmark", "duration", "event"] + _covariate_columns(windows)
    attr_select, attr_join = _attributes(con, attributes, taken, as_of=True,
                                          coded=into is None)
    if into is None:
        fetched = _sorted(log, cd, sorted_rows)
        if fetched is not None:
            rows = landmark_covariates(fetched, marks, window_days=window_days,
                                       window_names=_window_names(windows),
                                       unit_days=unit_days(time_unit), end=observation_end,
                                       has_amounts=has_amounts)
            return _with_attributes(con, rows, attr_select, attr_join)
    sql = f"""
        WITH landmarks AS (SELECT unnest($landmarks::DATE[]) AS landmark),
        at_risk AS ({_at_risk_sql(occasions)}),
        cov AS ({_covariates_sql(occasions, windows, window_days)}),
        -- Outcome. The last purchase p up to L of an at-risk customer is after
        -- min(L) - churn days: the spell ends from then on (no purchase within churn days
        -- after) hold the one that follows p (built once per log, _spell_ends_sql).
        ends AS ({_spell_ends_sql(log, cd, shared=into is None)}),
        -- The next spell end on or after the last purchase up to L: walking forward through
        -- later purchases until a gap of churn days. Later purchases reach no covariate.
        out AS (SELECT c.*, e.date + $cd AS declared
                FROM cov AS c ASOF JOIN ends AS e
                  ON c.customer_id = e.customer_id AND e.date >= c.last_purchase)
        SELECT c.customer_id, c.landmark,
               (least(c.declared, $end) - c.landmark) / $ud AS duration,
               (c.declared <= $end)::BIGINT AS event,
               {covs}{attr_select}
        FROM out AS c {attr_join}
        ORDER BY c.landmark, c.customer_id"""
    params = {"landmarks": marks, "cd": cd, "since": marks[0] - dt.timedelta(days=cd),
              "ud": unit_days(time_unit), "end": observation_end, "has_amounts": has_amounts}
    if into is not None:
        # the chunked run keeps the table in DuckDB (larger than memory at 10M customers);
        # it asks for one set of landmarks and no KPIs: its spell ends are not held
        con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS {sql}", params)
        return None
    return _fetched(con.execute(sql, params).df())


def scoring_table(
    log: TransactionLog,
    *,
    churn_after: float,
    time_unit: str = "week",
    windows: Sequence[float] | None = None,
    attributes: CustomerAttributes | None = None,
    into: str | None = None,
    sorted_rows: SortedOccasions | None = None,
) -> pd.DataFrame | None:
    """Covariates at the log's observation end (the scoring landmark), for scoring a fitted
    model.

    Same parameters and covariate columns as :func:`landmark_table`, for every customer not
    yet declared churned at the observation end (one row each, sorted by customer); no
    ``duration`` or ``event`` columns. ``landmark`` equals the observation end on every row;
    the attributes are the customers file's, validity dates notwithstanding (the latest known
    state is the one to score). With ``into``, kept in DuckDB as that temporary table (None
    returned), as :func:`landmark_table` does; ``sorted_rows`` as there, or those of a longer
    log this one was cut from (:meth:`TransactionLog.until`): a scoring row reads only the
    occasions up to its date, so the rows are the same (a landmark table's outcomes read
    later occasions: it takes only its own log's).
    """
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    cd = churn_days(churn_after, time_unit)
    windows, window_days = _check_windows(windows, time_unit)
    has_amounts = check_occasions(con, occasions, observation_end)
    covs = _covariate_select(windows)
    taken = ["landmark"] + _covariate_columns(windows)
    attr_select, attr_join = _attributes(con, attributes, taken, as_of=False,
                                          coded=into is None)
    if into is None:
        fetched = _sorted(log, cd, sorted_rows)
        if fetched is not None:
            rows = landmark_covariates(fetched, [observation_end], window_days=window_days,
                                       window_names=_window_names(windows),
                                       unit_days=unit_days(time_unit), has_amounts=has_amounts)
            return _with_attributes(con, rows, attr_select, attr_join)
    sql = f"""
        WITH landmarks AS (SELECT $end::DATE AS landmark),
        at_risk AS ({_at_risk_sql(occasions)}),
        cov AS ({_covariates_sql(occasions, windows, window_days)})
        SELECT c.customer_id, c.landmark, {covs}{attr_select}
        FROM cov AS c {attr_join}
        ORDER BY c.customer_id"""
    params = {"cd": cd, "ud": unit_days(time_unit), "end": observation_end,
              "has_amounts": has_amounts}
    if into is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(into)} AS {sql}", params)
        return None
    return _fetched(con.execute(sql, params).df())


def _sorted(log: TransactionLog, cd: int, sorted_rows: SortedOccasions | None
            ) -> SortedOccasions | None:
    """The log's sorted occasions for the churn delay ``cd``: those given when they fit,
    else fetched (None when amounts are too large for the numpy path)."""
    if sorted_rows is not None and sorted_rows.churn_days == cd:
        return sorted_rows
    return sorted_occasions(log, cd)


def _with_attributes(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, attr_select: str,
                     attr_join: str) -> pd.DataFrame:
    """``rows`` (from :func:`~clvtools.data.landmark_arrays.landmark_covariates`) with the
    attribute columns of :func:`_attributes`' SELECT list and JOIN, computed by DuckDB at
    each row's landmark, and without the helper column ``_code``."""
    if not attr_select:
        return rows.drop(columns="_code")
    name = f"_landmark_keys_{uuid.uuid4().hex}"
    keys = pd.DataFrame({"_row": np.arange(len(rows), dtype=np.int64),
                         "customer_id": rows["customer_id"], "landmark": rows["landmark"]})
    con.register(name, keys)
    try:
        attrs = con.execute(
            f"""SELECT c._row{attr_select}
                FROM (SELECT _row, customer_id, CAST(landmark AS DATE) AS landmark
                      FROM {name}) AS c {attr_join}
                ORDER BY c._row""").df()
    finally:
        con.unregister(name)
    out = rows.drop(columns="_code")
    for column in attrs.columns[1:]:
        out[column] = decoded_text(attrs[column])
    return out


def _fetched(table: pd.DataFrame) -> pd.DataFrame:
    """A table fetched with the ``coded`` attributes (:func:`_attributes`), its text
    attributes as DuckDB gives text (:func:`~clvtools.data.attributes.decoded_text`)."""
    for column in table.columns:
        if isinstance(table[column].dtype, pd.CategoricalDtype):
            table[column] = decoded_text(table[column])
    return table

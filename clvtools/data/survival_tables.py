"""Survival tables from purchase occasions, each one SQL query run by DuckDB.

Every function takes a DuckDB connection and the *name* of a table or view of purchase
occasions with columns ``customer_id VARCHAR, date DATE, amount DOUBLE`` (one row per
customer per day; ``amount`` may be NULL), all dated on or before the observation end.

Churn rule (DESIGN.md, "Definitions")
-------------------------------------
Churn is declared ``churn_after`` time units after the last purchase. In days that is
``churn_days = round(churn_after * unit_days(time_unit))``, rounded half up to a whole number
of days so that every date and duration stays on the day grid (lifelines' fitting time grows
with the number of distinct durations). A customer is declared churned *on* the day
``last purchase + churn_days``; a purchase on that very day or later starts a new "active
spell" (a reactivation). Equivalently, a gap of ``churn_days`` or more between two purchases
ends a spell. A customer is at risk at a date ``L`` when ``L - last purchase < churn_days``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import pandas as pd

from ..errors import ClvInputError
from ..units import to_days, unit_days
from .engine import quote_ident

__all__ = [
    "DEFAULT_WINDOWS",
    "landmark_table",
    "scoring_table",
    "contract_table",
    "lifecycle_status",
]

#: Default covariate windows, in time units: about 1, 3, 6 and 12 months in every unit.
DEFAULT_WINDOWS: dict[str, tuple[float, ...]] = {
    "day": (28, 91, 182, 364),
    "week": (4, 13, 26, 52),
    "month": (1, 3, 6, 12),
}

_OCCASION_COLUMNS = ("customer_id", "date", "amount")


# ---------------------------------------------------------------- shared helpers (kpis.py too)
def check_date(value: object, name: str) -> dt.date:
    """Accept a ``datetime.date`` (or pandas Timestamp at midnight) and return a ``date``."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise ClvInputError(f"The {name!r} parameter must be a date. Got {value!r} instead.")
    return value


def check_table(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str],
                what: str, dates: Sequence[str] = ()) -> list[str]:
    """Raise a ClvInputError unless ``table`` exists with ``columns``, those in ``dates``
    of SQL type DATE (day arithmetic below relies on it); return all its columns."""
    try:
        empty = con.execute(f"SELECT * FROM {quote_ident(table)} LIMIT 0")
    except duckdb.CatalogException:
        raise ClvInputError(f"There is no table or view named {table!r} for the {what}.",
                            advice="Create or register it on the same DuckDB connection.") from None
    types = {d[0]: str(d[1]) for d in empty.description}
    missing = [c for c in columns if c not in types]
    if missing:
        raise ClvInputError(f"The {what} table lacks the column(s) {missing}.", source=table,
                            advice=f"It needs the columns {list(columns)}.")
    for col in dates:
        if types[col] != "DATE":
            raise ClvInputError(f"The column must be of type DATE. Got {types[col]} instead.",
                                source=table, column=col,
                                advice=f'Cast it in a view: SELECT ..., "{col}"::DATE AS "{col}".')
    return list(types)


def check_occasions(con: duckdb.DuckDBPyConnection, occasions: str,
                    observation_end: dt.date) -> bool:
    """Check the occasions' columns and that no occasion is dated after the observation end.

    Returns whether any occasion has an amount.
    """
    check_table(con, occasions, _OCCASION_COLUMNS, "purchase occasions", dates=["date"])
    q = quote_ident(occasions)
    n = con.execute(f"SELECT count(*) FROM {q} WHERE date > $end",
                    {"end": observation_end}).fetchone()[0]
    if n:
        rows = con.execute(f"SELECT customer_id, date, amount FROM {q} WHERE date > $end "
                           "ORDER BY date LIMIT 5", {"end": observation_end}).df()
        raise ClvInputError(f"Purchases are dated after the observation end {observation_end}.",
                            source=occasions, column="date", rows=rows, n_rows=n,
                            advice="Set 'observation_end' to the last date of the data or later, "
                                   "or drop the later rows.")
    return con.execute(f"SELECT count(amount) > 0 FROM {q}").fetchone()[0]


def spell_ends_sql(occasions: str) -> str:
    """SQL of each occasion with the customer's ``first_date`` and flags ``first_occasion``,
    ``spell_start`` (it opens an active spell) and ``spell_end`` (it closes one: no purchase
    follows within ``$cd`` days).

    One window pass; ``$cd`` is the churn delay in days.
    """
    return f"""
        SELECT customer_id, date, amount,
               first_value(date) OVER w AS first_date,
               lag(date) OVER w IS NULL AS first_occasion,
               coalesce(date - lag(date) OVER w >= $cd, TRUE) AS spell_start,
               coalesce(lead(date) OVER w - date >= $cd, TRUE) AS spell_end
        FROM {quote_ident(occasions)}
        WINDOW w AS (PARTITION BY customer_id ORDER BY date)"""


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
    for name, d in zip(_window_names(windows), window_days):
        parts.append(f"count(*) FILTER (WHERE o.date > l.landmark - {int(d)}) "
                     f"AS purchases_last_{name}")
    for name, d in zip(_window_names(windows), window_days):
        parts.append(f"CASE WHEN $has_amounts THEN coalesce(sum(o.amount) FILTER "
                     f"(WHERE o.date > l.landmark - {int(d)}), 0) END AS spend_last_{name}")
    windows_sql = ",\n               ".join(parts)
    return f"""
        SELECT o.customer_id, l.landmark,
               count(*) AS n_purchases,
               min(o.date) AS first_purchase,
               max(o.date) AS last_purchase,
               {windows_sql},
               CASE WHEN $has_amounts THEN coalesce(sum(o.amount), 0) END AS total_spend,
               avg(o.amount) AS average_spend,
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


def _attributes(con: duckdb.DuckDBPyConnection, customers: str | None,
                taken: Sequence[str]) -> tuple[str, str]:
    """The SELECT list and JOIN clause that add the customer attributes (or two empty strings)."""
    if customers is None:
        return "", ""
    cols = check_table(con, customers, ["customer_id"], "customer attributes")
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
    attrs = [c for c in cols if c != "customer_id"]
    select = "".join(f", a.{quote_ident(c)}" for c in attrs)
    return select, f"LEFT JOIN {q} AS a ON a.customer_id = c.customer_id"


def landmark_table(
    con: duckdb.DuckDBPyConnection,
    occasions: str,
    *,
    landmarks: Sequence[dt.date],
    observation_end: dt.date,
    churn_after: float,
    time_unit: str = "week",
    windows: Sequence[float] | None = None,
    customers: str | None = None,
) -> pd.DataFrame:
    """Stacked landmark survival table: one row per customer at risk at each landmark.

    At a landmark ``L`` a customer is at risk when their first purchase is on or before ``L``
    and they are not yet declared churned (``L - last purchase < churn_days``). Covariates use
    only occasions dated on or before ``L``; the outcome uses only later ones.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the tables.
    occasions : str
        Name of the purchase-occasions table or view (see the module docstring).
    landmarks : sequence of datetime.date
        Landmark dates, each before ``observation_end``.
    observation_end : datetime.date
        Last day of observation; occasions are all on or before it.
    churn_after : float
        Time units without a purchase after which churn is declared.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``, ``windows`` and every duration or time covariate.
    windows : sequence of float, optional
        Window lengths w in time units for ``purchases_last_{w}`` and ``spend_last_{w}``
        (window ``(L - w, L]``, w rounded to whole days). Default: ``DEFAULT_WINDOWS[time_unit]``.
    customers : str, optional
        Name of a table of customer attributes (``customer_id`` plus attribute columns),
        left-joined (attributes are taken as known at every landmark).

    Returns
    -------
    pandas.DataFrame
        One row per (customer, landmark), sorted by landmark then customer, with columns:

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
        - then the attribute columns of ``customers``.
    """
    observation_end = check_date(observation_end, "observation_end")
    marks = sorted({check_date(x, "landmarks") for x in landmarks})
    if not marks:
        raise ClvInputError("The 'landmarks' parameter must list at least one date.")
    late = [x for x in marks if x >= observation_end]
    if late:
        raise ClvInputError(f"Landmarks must fall before the observation end {observation_end}. "
                            f"Got {[str(x) for x in late]}.",
                            advice="Drop those landmarks; score at the observation end with "
                                   "scoring_table().")
    cd = to_days(churn_after, time_unit, "churn_after")
    windows, window_days = _check_windows(windows, time_unit)
    has_amounts = check_occasions(con, occasions, observation_end)
    covs = _covariate_select(windows)
    taken = ["landmark", "duration", "event"] + _covariate_columns(windows)
    attr_select, attr_join = _attributes(con, customers, taken)
    sql = f"""
        WITH landmarks AS (SELECT unnest($landmarks::DATE[]) AS landmark),
        at_risk AS ({_at_risk_sql(occasions)}),
        cov AS ({_covariates_sql(occasions, windows, window_days)}),
        -- Outcome. The last purchase p up to L of an at-risk customer is after
        -- min(L) - churn days, so the occasions of at-risk customers from then on hold p and
        -- everything after it: their spell ends (no purchase within churn days after) are
        -- the same as in the full history, for a fraction of the window's cost.
        tail AS (SELECT customer_id, date,
                        lead(date) OVER (PARTITION BY customer_id ORDER BY date) AS next
                 FROM {quote_ident(occasions)}
                 WHERE date > $first_landmark - $cd
                   AND customer_id IN (SELECT customer_id FROM at_risk)),
        ends AS (SELECT customer_id, date FROM tail WHERE coalesce(next - date >= $cd, TRUE)),
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
    params = {"landmarks": marks, "first_landmark": marks[0], "cd": cd,
              "ud": unit_days(time_unit), "end": observation_end, "has_amounts": has_amounts}
    return con.execute(sql, params).df()


def scoring_table(
    con: duckdb.DuckDBPyConnection,
    occasions: str,
    *,
    observation_end: dt.date,
    churn_after: float,
    time_unit: str = "week",
    windows: Sequence[float] | None = None,
    customers: str | None = None,
) -> pd.DataFrame:
    """Covariates at the observation end (the scoring landmark), for scoring a fitted model.

    Same parameters and covariate columns as :func:`landmark_table`, for every customer not
    yet declared churned at ``observation_end``; no ``duration`` or ``event`` columns.
    ``landmark`` equals ``observation_end`` on every row.
    """
    observation_end = check_date(observation_end, "observation_end")
    cd = to_days(churn_after, time_unit, "churn_after")
    windows, window_days = _check_windows(windows, time_unit)
    has_amounts = check_occasions(con, occasions, observation_end)
    covs = _covariate_select(windows)
    taken = ["landmark"] + _covariate_columns(windows)
    attr_select, attr_join = _attributes(con, customers, taken)
    sql = f"""
        WITH landmarks AS (SELECT $end::DATE AS landmark),
        at_risk AS ({_at_risk_sql(occasions)}),
        cov AS ({_covariates_sql(occasions, windows, window_days)})
        SELECT c.customer_id, c.landmark, {covs}{attr_select}
        FROM cov AS c {attr_join}
        ORDER BY c.customer_id"""
    params = {"cd": cd, "ud": unit_days(time_unit), "end": observation_end,
              "has_amounts": has_amounts}
    return con.execute(sql, params).df()


def contract_table(
    con: duckdb.DuckDBPyConnection,
    contracts: str,
    *,
    observation_end: dt.date,
    time_unit: str = "week",
) -> pd.DataFrame:
    """Durations and competing end reasons from contracts.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the table.
    contracts : str
        Name of a table with ``customer_id VARCHAR, start DATE, "end" DATE NULL,
        end_reason VARCHAR NULL``; one row per contract.
    observation_end : datetime.date
        A contract with no end, or one ending after this date, is censored here.
    time_unit : {"day", "week", "month"}
        Unit of ``duration``.

    Returns
    -------
    pandas.DataFrame
        One row per contract, sorted by customer_id then start: ``customer_id``,
        ``start``, ``end`` (as given), ``duration`` (time units, from start to the end or to
        ``observation_end``), ``event`` (1 = ended on or before ``observation_end``),
        ``event_type`` (0 = censored, 1..k = reason code) and ``end_reason`` (NULL when
        censored; ``"unspecified"`` when an observed end has no reason). Reason codes are
        numbered 1..k in alphabetical order of the reasons; the mapping code -> reason is
        also in ``table.attrs["reason_codes"]`` (a dict; pandas may drop ``attrs`` in
        later operations, the ``end_reason`` column keeps it row by row).
    """
    observation_end = check_date(observation_end, "observation_end")
    check_table(con, contracts, ["customer_id", "start", "end", "end_reason"], "contracts",
                dates=["start", "end"])
    q = quote_ident(contracts)
    params = {"obs": observation_end}
    checks = [
        ('"start" IS NULL', "Contracts have no start date.", "start",
         "Give every contract a start date."),
        ('"end" < "start"', "Contracts end before they start.", "end",
         "Correct the start or end dates of these contracts."),
        ('"start" > $obs', f"Contracts start after the observation end {observation_end}.",
         "start", "Drop them or move 'observation_end' later."),
    ]
    for where, problem, column, advice in checks:
        bound = params if "$obs" in where else {}
        n = con.execute(f"SELECT count(*) FROM {q} WHERE {where}", bound).fetchone()[0]
        if n:
            rows = con.execute(f'SELECT customer_id, "start", "end", end_reason FROM {q} '
                               f"WHERE {where} LIMIT 5", bound).df()
            raise ClvInputError(problem, source=contracts, column=column, rows=rows, n_rows=n,
                                advice=advice)
    sql = f"""
        WITH t AS (
            SELECT customer_id, "start", "end",
                   coalesce("end" <= $obs, FALSE) AS ended,
                   CASE WHEN "end" <= $obs THEN coalesce(end_reason, 'unspecified') END AS reason
            FROM {q}),
        codes AS (
            SELECT reason AS end_reason, row_number() OVER (ORDER BY reason) AS event_type,
                   n_events
            FROM (SELECT reason, count(*) AS n_events FROM t WHERE ended GROUP BY reason))
        SELECT t.customer_id, t."start", t."end",
               (least(coalesce(t."end", $obs), $obs) - t."start") / $ud AS duration,
               t.ended::BIGINT AS event,
               coalesce(codes.event_type, 0)::BIGINT AS event_type,
               t.reason AS end_reason
        FROM t LEFT JOIN codes ON codes.end_reason = t.reason
        ORDER BY t.customer_id, t."start" """
    params["ud"] = unit_days(time_unit)
    table = con.execute(sql, params).df()
    events = table[table["event"] == 1]
    table.attrs["reason_codes"] = {
        int(k): str(r) for k, r in sorted(set(zip(events["event_type"], events["end_reason"])))}
    return table


def lifecycle_status(
    con: duckdb.DuckDBPyConnection,
    occasions: str,
    *,
    observation_end: dt.date,
    churn_after: float,
    at_risk_after: float,
    time_unit: str = "week",
    new_within: float | None = None,
) -> pd.DataFrame:
    """Lifecycle status of every customer at the observation end.

    Parameters
    ----------
    con, occasions, observation_end, churn_after, time_unit
        As in :func:`landmark_table`.
    at_risk_after : float
        Time units without a purchase after which an active customer is "at risk"; must be
        less than ``churn_after``.
    new_within : float, optional
        A customer whose first purchase lies within the last ``new_within`` time units
        (``observation_end - first < new_within``, in whole days) is "new". Default: one
        month (30 days, 365.2425 / 12 rounded half up).

    Returns
    -------
    pandas.DataFrame
        One row per customer, sorted by id: ``customer_id``, ``first_purchase``,
        ``last_purchase``, ``time_since_last_purchase`` (time units), ``declared_at`` (date
        churn was declared, NaT unless churned) and ``lifecycle``, the first that applies of:
        ``churned`` (``observation_end - last >= churn_days``), ``at_risk``
        (``>= at_risk_days``), ``new``, ``active``.
    """
    observation_end = check_date(observation_end, "observation_end")
    cd = to_days(churn_after, time_unit, "churn_after")
    rd = to_days(at_risk_after, time_unit, "at_risk_after")
    if rd >= cd:
        raise ClvInputError(f"The 'at_risk_after' parameter ({at_risk_after}) must be less than "
                            f"'churn_after' ({churn_after}).")
    nd = (to_days(1, "month", "new_within") if new_within is None
          else to_days(new_within, time_unit, "new_within"))
    check_occasions(con, occasions, observation_end)
    sql = f"""
        WITH c AS (SELECT customer_id, min(date) AS first_purchase, max(date) AS last_purchase
                   FROM {quote_ident(occasions)} GROUP BY customer_id)
        SELECT customer_id, first_purchase, last_purchase,
               ($end - last_purchase) / $ud AS time_since_last_purchase,
               CASE WHEN $end - last_purchase >= $cd THEN last_purchase + $cd END AS declared_at,
               CASE WHEN $end - last_purchase >= $cd THEN 'churned'
                    WHEN $end - last_purchase >= $rd THEN 'at_risk'
                    WHEN $end - first_purchase < $nd THEN 'new'
                    ELSE 'active' END AS lifecycle
        FROM c ORDER BY customer_id"""
    params = {"end": observation_end, "ud": unit_days(time_unit), "cd": cd, "rd": rd, "nd": nd}
    return con.execute(sql, params).df()

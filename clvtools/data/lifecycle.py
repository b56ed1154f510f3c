"""The churn rule, and each customer's lifecycle status at the observation end.

Churn rule (the concepts page, docs/concepts.rst, "Definitions")
-----------------------------------------------------------------
Churn is declared ``churn_after`` time units after the last purchase. In days that is
``churn_days = round(churn_after * unit_days(time_unit))``, rounded half up to a whole number
of days so that every date and duration stays on the day grid (lifelines' fitting time grows
with the number of distinct durations). A customer is declared churned *on* the day
``last purchase + churn_days``; a purchase on that very day or later starts a new "active
spell" (a reactivation). Equivalently, a gap of ``churn_days`` or more between two purchases
ends a spell. A customer is at risk at a date ``L`` when ``L - last purchase < churn_days``.

The landmark tables (:mod:`.survival_tables`) and the KPIs and cohorts
(:mod:`clvtools.data.kpis`) apply this rule through :func:`churn_days` and :func:`spell_ends_sql`,
whose spell starts and ends a run builds once (:func:`spell_bounds`).
"""
from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ClvInputError
from ..units import to_days, unit_days
from .engine import quote_ident, run_scope
from .landmark_arrays import SortedOccasions, customer_money
from .money import money_sum
from .schema import check_date, check_occasions
from .transactions import TransactionLog

_EPOCH = np.datetime64("1970-01-01", "D")     # the sorted occasions' day 0

__all__ = ["churn_days", "first_declaration", "spell_ends_sql", "spell_bounds",
           "lifecycle_status", "lifecycle_query"]


def churn_days(churn_after: float, time_unit: str) -> int:
    """The churn delay in whole days (half up, at least one).

    Parameters
    ----------
    churn_after : float
        Time units without a purchase after which churn is declared; positive.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``.

    Returns
    -------
    int
        ``churn_days`` of the churn rule (module docstring), in days.
    """
    return to_days(churn_after, time_unit, "churn_after")


def first_declaration(last_day: np.ndarray, owner: np.ndarray, day: np.ndarray,
                      churn_days: int) -> np.ndarray:
    """The day each customer is next declared churned, walking forward from a last purchase.

    From the last purchase ``L0`` (on or before a reference date) through the later purchases,
    the walk stops at the first gap of ``churn_days`` or more, or at the last purchase; the
    declaration falls ``churn_days`` after the purchase where it stopped (the churn rule of
    the module docstring). Whether it falls within a window depends only on the purchases
    before the window's end, so a log that stops there is enough.

    Parameters
    ----------
    last_day : numpy.ndarray of int, shape (n,)
        Each customer's last purchase ``L0``, as a day number (e.g. days since 1970).
    owner, day : numpy.ndarray of int, shape (m,)
        The later purchases: customer position (0..n-1) and day number, each after its
        customer's ``L0``; in any order.
    churn_days : int
        The churn delay in days (:func:`churn_days`).

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        The declaration's day number, ``churn_days`` after the purchase that ends the first
        run.
    """
    n = last_day.size
    owner = np.concatenate([np.arange(n), np.asarray(owner, dtype=np.int64)])
    day = np.concatenate([np.asarray(last_day, dtype=np.int64), np.asarray(day, dtype=np.int64)])
    order = np.lexsort((day, owner))
    owner, day = owner[order], day[order]
    # a run ends at a purchase with no next one of the same customer within churn_days
    same = np.r_[owner[1:] == owner[:-1], False]
    ends = ~same | (np.r_[day[1:], 0] - day >= churn_days)
    first = np.unique(owner[ends], return_index=True)[1]   # the first run end of each
    return day[ends][first] + churn_days


def spell_ends_sql(occasions: str) -> str:
    """SQL of each occasion with the customer's ``first_date`` and flags ``first_occasion``,
    ``spell_start`` (it opens an active spell) and ``spell_end`` (it closes one: no purchase
    follows within ``$cd`` days).

    One window pass; ``$cd`` is the churn delay in days (:func:`churn_days`).
    """
    return f"""
        SELECT customer_id, date, amount,
               first_value(date) OVER w AS first_date,
               lag(date) OVER w IS NULL AS first_occasion,
               coalesce(date - lag(date) OVER w >= $cd, TRUE) AS spell_start,
               coalesce(lead(date) OVER w - date >= $cd, TRUE) AS spell_end
        FROM {quote_ident(occasions)}
        WINDOW w AS (PARTITION BY customer_id ORDER BY date)"""


def spell_bounds(log: TransactionLog, cd: int, *,
                 sorted_rows: SortedOccasions | None = None) -> str:
    """The name of a table of the occasions of ``log`` that open or close an active
    spell: :func:`spell_ends_sql`'s rows (without ``amount``) where ``spell_start`` or
    ``spell_end`` holds, for the churn delay ``cd`` in days.

    The one window pass over every occasion that both the landmark tables' outcomes (the spell
    ends) and the KPIs' spells need: built on the first call and kept in ``log.derived``, so
    that a run makes it once (a new log, even of a table of the same name, builds its own).
    About a quarter of the occasions at a million customers (2.2M of 9.4M rows).

    Other Parameters
    ----------------
    sorted_rows : SortedOccasions, optional
        ``log``'s occasions sorted by customer, for the churn delay ``cd``
        (:func:`~clvtools.data.landmark_arrays.sorted_occasions`): the same rows are found from
        them in numpy, without the window pass (its sort of every occasion is 3.3 s of CPU
        at a million customers, the numpy pass and the table's load well under a second).
        A table already built is returned as it is. With amounts, the table has one more
        column, ``year_micro`` (BIGINT, on spell ends, NULL elsewhere): the micro-units
        (:mod:`.money`) spent in the 365 days up to the occasion, its own included, and
        ``log.derived[("spell_bounds_year_micro", cd)]`` is True.
    """
    key = ("spell_bounds", cd)
    if key not in log.derived:
        name = f"_spell_bounds_{uuid.uuid4().hex}"
        if sorted_rows is not None:
            _bounds_from_sorted(log.con, name, sorted_rows, cd)
            # with amounts, each spell end's year of spend comes with it (year_micro)
            log.derived[("spell_bounds_year_micro", cd)] = sorted_rows.micro_sum is not None
        else:
            log.con.execute(f"""
                CREATE {run_scope(log.con)}TABLE {name} AS
                SELECT customer_id, date, first_date, first_occasion, spell_start, spell_end
                FROM ({spell_ends_sql(log.occasions)})
                WHERE spell_start OR spell_end""", {"cd": cd})
        log.derived[key] = name
    return log.derived[key]


def _bounds_from_sorted(con, name: str, occ: SortedOccasions, cd: int) -> None:
    """Create :func:`spell_bounds`' table ``name`` from the sorted occasions: the same rows
    and types as the window pass of :func:`spell_ends_sql` (a gap of ``cd`` days or more
    after an occasion ends a spell, before one opens a spell)."""
    if occ.churn_days != cd:
        raise ValueError(f"The sorted occasions were built for a churn delay of "
                         f"{occ.churn_days} days, not {cd}.")
    counts = np.diff(occ.starts)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.zeros(len(occ.day), dtype=bool)
    first[occ.starts[:-1][counts > 0]] = True
    last = np.zeros(len(occ.day), dtype=bool)
    last[occ.starts[1:][counts > 0] - 1] = True
    gap = np.diff(occ.day) >= cd           # gap[j]: occasion j + 1 comes cd days or more later
    spell_start = first | np.r_[False, gap]
    spell_end = last | np.r_[gap, False]
    keep = np.flatnonzero(spell_start | spell_end)
    owner = owner[keep]
    columns = {}
    if occ.micro_sum is not None:
        # the micro-units spent in the 365 days up to each kept occasion, its own included
        # (exact: a difference of the running sums), read at the spell ends
        since = occ.count_until(owner, occ.day[keep] - 365)
        with np.errstate(over="ignore"):        # modular, as the running sums
            year = occ.micro_sum[keep + 1] - occ.micro_sum[since]
        columns["year_micro"] = pa.array(year, mask=~spell_end[keep])

    def dates(days: np.ndarray) -> pa.Array:
        return pa.array(days.astype(np.int32)).view(pa.date32())
    rows = pa.table({
        "customer_id": occ.arrow_ids.take(owner),
        "date": dates(occ.day[keep]),
        "first_date": dates(occ.day[occ.starts[owner]]),
        "first_occasion": first[keep], "spell_start": spell_start[keep],
        "spell_end": spell_end[keep], **columns})
    # read by a replacement scan of this local name: unlike ``register``, ``execute`` runs
    # even where an earlier query's result was left unfinished on the connection
    _spell_bound_rows = rows  # noqa: F841
    con.execute(f"CREATE {run_scope(con)}TABLE {name} AS SELECT * FROM _spell_bound_rows")


def lifecycle_status(
    log: TransactionLog,
    *,
    churn_after: float,
    at_risk_after: float,
    time_unit: str = "week",
    new_within: float | None = None,
    sorted_rows: SortedOccasions | None = None,
) -> pd.DataFrame:
    """Lifecycle status of every customer at the log's observation end.

    Parameters
    ----------
    log : TransactionLog
        The purchase occasions; their observation end is the status date.
    churn_after : float
        Time units without a purchase after which churn is declared.
    at_risk_after : float
        Time units without a purchase after which an active customer is "at risk"; must be
        less than ``churn_after``.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``, ``at_risk_after``, ``new_within`` and
        ``time_since_last_purchase``.
    new_within : float, optional
        A customer whose first purchase lies within the last ``new_within`` time units
        (``observation_end - first < new_within``, in whole days) is "new". Default: one
        month (30 days, 365.2425 / 12 rounded half up).

    Returns
    -------
    pandas.DataFrame
        One row per customer (n_customers rows), sorted by id: ``customer_id``,
        ``first_purchase``, ``last_purchase`` (datetime64), ``purchases`` (occasions, the first
        included), ``lifetime_spend`` (currency, sum of the amounts; NaN without amounts),
        ``time_since_last_purchase``
        (float, time units), ``declared_at`` (date churn was declared, NaT unless churned)
        and ``lifecycle``, the first that applies of: ``churned``
        (``observation_end - last >= churn_days``), ``at_risk`` (``>= at_risk_days``),
        ``new``, ``active``.

    Other Parameters
    ----------------
    sorted_rows : SortedOccasions, optional
        ``log``'s occasions sorted by customer
        (:func:`~clvtools.data.landmark_arrays.sorted_occasions`): the same rows are computed
        from them in numpy, without a query (the risk step fetches them once for its tables).
    """
    sql, params = lifecycle_query(log, churn_after=churn_after, at_risk_after=at_risk_after,
                                  time_unit=time_unit, new_within=new_within)
    if sorted_rows is None:
        return log.con.execute(sql, params).df()
    return _from_sorted(sorted_rows, params)


#: The lifecycle statuses in :func:`_from_sorted`'s order of precedence.
_LIFECYCLE_LABELS = np.array(["churned", "at_risk", "new", "active"], dtype=object)


def _from_sorted(occ: SortedOccasions, params: dict) -> pd.DataFrame:
    """:func:`lifecycle_query`'s rows from the sorted occasions, the same numbers and types
    (dates as the query's ``datetime64[us]``, money summed exactly in micro-units)."""
    first, last = occ.day[occ.starts[:-1]], occ.day[occ.starts[1:] - 1]
    end = int((np.datetime64(params["end"], "D") - _EPOCH).astype(np.int64))
    idle = end - last
    if params["has_amounts"] and occ.micro_sum is not None:
        spend = customer_money(occ)
    else:
        spend = np.full(len(first), np.nan)
    churned = idle >= params["cd"]
    declared = np.where(churned, last + params["cd"], 0)
    # the four labels looked up (one string object each), not a string made per customer
    lifecycle = _LIFECYCLE_LABELS[np.select(
        [churned, idle >= params["rd"], end - first < params["nd"]], [0, 1, 2], 3)]

    def dates(days):
        return (_EPOCH + days).astype("datetime64[us]")
    # not consolidated (copy=False): the arrays are the frame's alone (the ids are the sorted
    # occasions', never written into), and consolidating copied them all (0.3 s at 1M)
    return pd.DataFrame({
        "customer_id": occ.customer_ids, "first_purchase": dates(first),
        "last_purchase": dates(last), "purchases": np.diff(occ.starts),
        "lifetime_spend": spend, "time_since_last_purchase": idle / params["ud"],
        "declared_at": np.where(churned, dates(declared), np.datetime64("NaT", "us")),
        "lifecycle": lifecycle}, copy=False)


def lifecycle_query(log: TransactionLog, *, churn_after: float, at_risk_after: float,
                    time_unit: str = "week", new_within: float | None = None
                    ) -> tuple[str, dict]:
    """:func:`lifecycle_status`'s query and its named parameters, for SQL over its rows
    without a pandas copy (the chunked run keeps them as a table)."""
    observation_end = check_date(log.observation_end, "observation_end")
    cd = churn_days(churn_after, time_unit)
    rd = to_days(at_risk_after, time_unit, "at_risk_after")
    if rd >= cd:
        raise ClvInputError(f"The 'at_risk_after' parameter ({at_risk_after}) must be less than "
                            f"'churn_after' ({churn_after}).")
    nd = (to_days(1, "month", "new_within") if new_within is None
          else to_days(new_within, time_unit, "new_within"))
    check_occasions(log.con, log.occasions, observation_end)
    sql = f"""
        WITH c AS (SELECT customer_id, min(date) AS first_purchase, max(date) AS last_purchase,
                          count(*) AS purchases,
                          CASE WHEN $has_amounts THEN {money_sum('amount')} END AS lifetime_spend
                   FROM {quote_ident(log.occasions)} GROUP BY customer_id)
        SELECT customer_id, first_purchase, last_purchase, purchases, lifetime_spend,
               ($end - last_purchase) / $ud AS time_since_last_purchase,
               CASE WHEN $end - last_purchase >= $cd THEN last_purchase + $cd END AS declared_at,
               CASE WHEN $end - last_purchase >= $cd THEN 'churned'
                    WHEN $end - last_purchase >= $rd THEN 'at_risk'
                    WHEN $end - first_purchase < $nd THEN 'new'
                    ELSE 'active' END AS lifecycle
        FROM c ORDER BY customer_id"""
    params = {"end": observation_end, "ud": unit_days(time_unit), "cd": cd, "rd": rd, "nd": nd,
              "has_amounts": log.has_amounts}
    return sql, params

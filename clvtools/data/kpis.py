"""Retention KPIs per calendar period and acquisition cohorts, each one SQL query in DuckDB.

Both tables count **active spells**: a spell runs from a customer's first purchase, or a
purchase that reactivates them, to the day churn is declared (last purchase of the spell plus
``churn_days``; see :mod:`clvtools.data.survival_tables` for the rule and its rounding). A
customer is active at a boundary day ``b`` (meaning: at the close of day ``b - 1``) when one
of their spells has ``start < b <= declared``. Spells of one customer never overlap, so each
customer is counted at most once, and per period

    active_end = active_start + new + reactivated - churned

holds exactly: every spell that enters or leaves the active base in a period is counted once
by exactly one of those terms.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ..errors import ClvInputError, format_choices
from .survival_tables import check_date, check_occasions, quote_ident, spell_ends_sql, to_days

__all__ = ["PERIODS", "kpi_table", "cohort_table"]

#: Calendar periods: DuckDB ``date_trunc`` part and step. Weeks start on Monday (ISO).
PERIODS: dict[str, tuple[str, str]] = {
    "week": ("week", "7 days"),
    "month": ("month", "1 month"),
    "quarter": ("quarter", "3 months"),
    "year": ("year", "1 year"),
}

# Period labels: 2024-W09, 2024-03, 2024Q1, 2024.
_LABEL_SQL = """CASE $period
        WHEN 'week' THEN strftime(p.ps, '%G-W%V')
        WHEN 'month' THEN strftime(p.ps, '%Y-%m')
        WHEN 'quarter' THEN strftime(p.ps, '%Y') || 'Q' || quarter(p.ps)
        ELSE strftime(p.ps, '%Y') END"""


def _common_sql(occasions: str) -> str:
    """CTEs ``spells``, ``periods`` and ``active_at`` shared by both tables.

    ``spells(customer_id, first_spell, start, declared)``; ``periods(idx, ps, pe, pe_obs,
    complete)`` with ``pe_obs`` = the period end cut at the day after the observation end;
    ``active_at(idx, kind, customer_id)``: customers active at the start (``kind = 's'``) and
    at the (cut) end (``kind = 'e'``) of each period.
    Parameters: ``$cd``, ``$end``, ``$period``, ``$step``.
    """
    return f"""
        flagged AS ({spell_ends_sql(occasions)}),
        starts AS (SELECT customer_id, date, first_occasion FROM flagged WHERE spell_start),
        ends AS (SELECT customer_id, date FROM flagged WHERE spell_end),
        -- A spell closes at the first spell end on or after its start.
        spells AS (SELECT s.customer_id, s.first_occasion AS first_spell, s.date AS start,
                          e.date + $cd AS declared
                   FROM starts AS s ASOF JOIN ends AS e
                     ON s.customer_id = e.customer_id AND e.date >= s.date),
        periods AS (
            SELECT row_number() OVER (ORDER BY ps) - 1 AS idx, ps, pe,
                   least(pe, $end + 1) AS pe_obs, pe <= $end + 1 AS complete
            FROM (SELECT p::DATE AS ps, (p + $step::INTERVAL)::DATE AS pe
                  FROM generate_series(
                      date_trunc($period, (SELECT min(date) FROM {quote_ident(occasions)}))::TIMESTAMP,
                      date_trunc($period, $end::DATE)::TIMESTAMP, $step::INTERVAL) AS g(p))),
        bounds AS (SELECT idx, 's' AS kind, ps AS b FROM periods
                   UNION ALL SELECT idx, 'e' AS kind, pe_obs AS b FROM periods),
        active_at AS (SELECT b.idx, b.kind, s.customer_id
                      FROM spells AS s JOIN bounds AS b ON s.start < b.b AND s.declared >= b.b)"""


def _params(period: str, churn_after: float, time_unit: str,
            observation_end: dt.date) -> dict:
    if period not in PERIODS:
        raise ClvInputError(f"The 'period' parameter must be {format_choices(list(PERIODS))}. "
                            f"Got {period!r} instead.")
    part, step = PERIODS[period]
    return {"cd": to_days(churn_after, time_unit, "churn_after"), "end": observation_end,
            "period": part, "step": step}


def kpi_table(
    con: duckdb.DuckDBPyConnection,
    occasions: str,
    *,
    observation_end: dt.date,
    churn_after: float,
    time_unit: str = "week",
    period: str = "month",
) -> pd.DataFrame:
    """Retention KPIs per calendar period, from the first purchase's period to the observation end's.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the table.
    occasions : str
        Name of the purchase-occasions table or view (``customer_id``, ``date``, ``amount``).
    observation_end : datetime.date
        Last day observed; the period containing it is cut there.
    churn_after : float
        Time units without a purchase after which churn is declared.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``.
    period : {"week", "month", "quarter", "year"}
        Calendar period of the rows (weeks start on Monday).

    Returns
    -------
    pandas.DataFrame
        One row per period, in order, with columns:

        - ``period`` (first day, datetime64), ``label`` (``2024-W09``, ``2024-03``, ``2024Q1``
          or ``2024``);
        - ``active_start``: customers active at the period's start (not declared churned);
        - ``new``: first purchases in the period; ``reactivated``: purchases in the period
          that start a new spell after a declared churn;
        - ``churned``: churn declarations dated in the period (up to the observation end);
        - ``active_end``: customers active at the period's end (at the observation end for
          the incomplete last period);
        - ``churn_rate`` = churned / active_start and ``retention_rate`` = 1 - churn_rate
          (NaN when active_start is 0);
        - ``stock_retention``: share of the customers active at the start who are active at
          the end (a customer who churned and came back within the period counts as retained);
        - ``growth_rate`` = new / active_start; ``net_change`` = active_end - active_start;
        - ``revenue``: sum of amounts dated in the period (NaN when the data has no amounts);
        - ``complete``: False for the period that the observation end cuts short.
    """
    observation_end = check_date(observation_end, "observation_end")
    params = _params(period, churn_after, time_unit, observation_end)
    params["has_amounts"] = check_occasions(con, occasions, observation_end)
    sql = f"""
        WITH {_common_sql(occasions)},
        moves AS (
            SELECT p.idx,
                   count(*) FILTER (WHERE s.start >= p.ps AND s.start < p.pe AND s.first_spell) AS new,
                   count(*) FILTER (WHERE s.start >= p.ps AND s.start < p.pe
                                    AND NOT s.first_spell) AS reactivated,
                   count(*) FILTER (WHERE s.declared >= p.ps AND s.declared < p.pe_obs) AS churned
            FROM periods AS p JOIN spells AS s
              ON (s.start >= p.ps AND s.start < p.pe) OR (s.declared >= p.ps AND s.declared < p.pe_obs)
            GROUP BY p.idx),
        stock AS (
            SELECT idx, count(*) FILTER (WHERE kind = 's') AS active_start,
                   count(*) FILTER (WHERE kind = 'e') AS active_end
            FROM active_at GROUP BY idx),
        kept AS (
            SELECT idx, count(*) AS retained
            FROM (SELECT idx, customer_id FROM active_at GROUP BY idx, customer_id
                  HAVING count(DISTINCT kind) = 2)
            GROUP BY idx),
        revenue AS (
            SELECT date_trunc($period, date)::DATE AS ps, sum(amount) AS revenue
            FROM {quote_ident(occasions)} GROUP BY ALL)
        SELECT p.ps AS period, {_LABEL_SQL} AS label,
               coalesce(st.active_start, 0) AS active_start,
               coalesce(m.new, 0) AS new, coalesce(m.reactivated, 0) AS reactivated,
               coalesce(m.churned, 0) AS churned,
               coalesce(st.active_end, 0) AS active_end,
               coalesce(m.churned, 0) / nullif(st.active_start, 0) AS churn_rate,
               1 - coalesce(m.churned, 0) / nullif(st.active_start, 0) AS retention_rate,
               coalesce(k.retained, 0) / nullif(st.active_start, 0) AS stock_retention,
               coalesce(m.new, 0) / nullif(st.active_start, 0) AS growth_rate,
               coalesce(st.active_end, 0) - coalesce(st.active_start, 0) AS net_change,
               CASE WHEN $has_amounts THEN coalesce(r.revenue, 0) END AS revenue,
               p.complete
        FROM periods AS p
        LEFT JOIN moves AS m USING (idx) LEFT JOIN stock AS st USING (idx)
        LEFT JOIN kept AS k USING (idx) LEFT JOIN revenue AS r ON r.ps = p.ps
        ORDER BY p.idx"""
    out = con.execute(sql, params).df()
    # Rates are NULL where active_start is 0; pandas shows them as NaN either way.
    for col in ("churn_rate", "retention_rate", "stock_retention", "growth_rate", "revenue"):
        out[col] = out[col].astype("float64")
    return out


def cohort_table(
    con: duckdb.DuckDBPyConnection,
    occasions: str,
    *,
    observation_end: dt.date,
    churn_after: float,
    time_unit: str = "week",
    period: str = "month",
    wide: bool = False,
) -> pd.DataFrame:
    """Retention by acquisition cohort (the period of each customer's first purchase).

    Parameters
    ----------
    con, occasions, observation_end, churn_after, time_unit, period
        As in :func:`kpi_table`.
    wide : bool, default False
        Return one row per cohort with columns ``k0``, ``k1``, ... of the retention share
        (NaN beyond the observed periods) instead of the long table.

    Returns
    -------
    pandas.DataFrame
        Long (default): one row per cohort and k = 0, 1, ... up to the observation end's
        period, with ``cohort`` (first day of the cohort's period, datetime64), ``label``,
        ``size`` (customers acquired), ``k``, ``period`` (first day of period cohort + k),
        ``active`` (cohort members active at the end of that period, or at the observation
        end for the incomplete last one), ``retention`` = active / size and ``complete``.
        Summed over cohorts, ``active`` in a period equals ``active_end`` of
        :func:`kpi_table`. Wide: ``cohort``, ``label``, ``size``, ``k0``, ``k1``, ...
    """
    observation_end = check_date(observation_end, "observation_end")
    params = _params(period, churn_after, time_unit, observation_end)
    check_occasions(con, occasions, observation_end)
    sql = f"""
        WITH {_common_sql(occasions)},
        members AS (
            SELECT s.customer_id, p.idx AS cohort_idx
            FROM spells AS s JOIN periods AS p ON s.start >= p.ps AND s.start < p.pe
            WHERE s.first_spell),
        sizes AS (SELECT cohort_idx, count(*) AS size FROM members GROUP BY cohort_idx),
        counts AS (
            SELECT m.cohort_idx, a.idx, count(*) AS active
            FROM active_at AS a JOIN members AS m USING (customer_id)
            WHERE a.kind = 'e' GROUP BY ALL)
        SELECT p.ps AS cohort, {_LABEL_SQL} AS label, z.size, q.idx - z.cohort_idx AS k,
               q.ps AS period, coalesce(c.active, 0) AS active,
               coalesce(c.active, 0) / z.size AS retention, q.complete
        FROM sizes AS z JOIN periods AS p ON p.idx = z.cohort_idx
        JOIN periods AS q ON q.idx >= z.cohort_idx
        LEFT JOIN counts AS c ON c.cohort_idx = z.cohort_idx AND c.idx = q.idx
        ORDER BY cohort, k"""
    out = con.execute(sql, params).df()
    if not wide:
        return out
    table = out.pivot(index=["cohort", "label", "size"], columns="k", values="retention")
    table.columns = [f"k{k}" for k in table.columns]
    return table.reset_index()

"""Retention KPIs per calendar period and acquisition cohorts, each one SQL query in DuckDB.

Both tables count **active spells**: a spell runs from a customer's first purchase, or a
purchase that reactivates them, to the day churn is declared (last purchase of the spell plus
``churn_days``; see :mod:`clvtools.data.lifecycle` for the rule and its rounding). A
customer is active at a boundary day ``b`` (meaning: at the close of day ``b - 1``) when one
of their spells has ``start < b <= declared``. Spells of one customer never overlap, so each
customer is counted at most once, and per period

    active_end = active_start + new + reactivated - churned

holds exactly: the active base at a boundary is the number of spells opened before it minus
the number declared before it, and every spell that enters or leaves the base in a period is
counted once by exactly one of ``new``, ``reactivated`` and ``churned``.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pandas as pd

from ..errors import ClvInputError, format_choices
from .engine import quote_ident, run_scope
from .lifecycle import churn_days, spell_bounds
from .money import micro_units, money, money_sum
from .schema import check_date, check_occasions
from .transactions import TransactionLog

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


def _common_sql(occasions: str, bounds: str, year_spend: bool = False) -> str:
    """CTEs ``spells`` and ``periods`` shared by both tables, from the spell starts and ends
    of the occasions (``bounds``: the table :func:`~clvtools.data.lifecycle.spell_bounds`).

    ``spells(customer_id, cohort_ps, first_spell, start, declared, start_ps, declared_ps,
    lost_micro)``: one row per active spell, with the periods (first days) of the customer's
    first purchase, of the spell's start and of its declaration (NULL when declared after the
    observation end), and with ``year_spend`` (bounds with ``year_micro``,
    :func:`~clvtools.data.lifecycle.spell_bounds`) the micro-units spent in the 365 days up
    to the spell's last purchase (NULL otherwise). ``periods(idx, ps, pe, pe_obs,
    complete)``: the calendar periods from the first purchase's to the observation end's,
    ``pe_obs`` = the period end cut at the day after the observation end. Parameters:
    ``$cd``, ``$end``, ``$period``, ``$step``.

    Every count below is a count of spell starts and declarations by period, summed
    cumulatively over the (short) list of periods: linear in the number of spells, with no
    join of customers against periods.
    """
    lost = ("CASE WHEN spell_end THEN year_micro "
            "ELSE lead(year_micro) OVER (PARTITION BY customer_id ORDER BY date) END"
            if year_spend else "NULL::BIGINT")
    return f"""
        -- A spell closes at the first spell end on or after its start: the start itself, or
        -- else the customer's next bound (no start comes before that end), so one window
        -- over the bounds pairs them (cheaper than an ASOF join of starts with ends).
        paired AS (
            SELECT customer_id, date, first_date, first_occasion, spell_start,
                   CASE WHEN spell_end THEN date
                        ELSE lead(date) OVER (PARTITION BY customer_id ORDER BY date) END
                       AS end_date,
                   {lost} AS lost_micro
            FROM {quote_ident(bounds)}),
        spells AS (
            SELECT customer_id, date_trunc($period, first_date)::DATE AS cohort_ps,
                   first_occasion AS first_spell, date AS start, end_date + $cd AS declared,
                   date_trunc($period, date)::DATE AS start_ps,
                   CASE WHEN end_date + $cd <= $end
                        THEN date_trunc($period, end_date + $cd)::DATE END AS declared_ps,
                   lost_micro
            FROM paired WHERE spell_start),
        periods AS (
            SELECT row_number() OVER (ORDER BY ps) - 1 AS idx, ps, pe,
                   least(pe, $end + 1) AS pe_obs, pe <= $end + 1 AS complete
            FROM (SELECT p::DATE AS ps, (p + $step::INTERVAL)::DATE AS pe
                  FROM generate_series(
                      date_trunc($period,
                                 (SELECT min(date) FROM {quote_ident(occasions)}))::TIMESTAMP,
                      date_trunc($period, $end::DATE)::TIMESTAMP, $step::INTERVAL) AS g(p)))"""


#: The CTEs ``lost``, ``back``, ``base_lost`` and ``flow`` of :func:`kpi_table`, read from the
#: CTEs ``spells``, ``periods``, ``opened`` and ``closed``: plain SQL that DuckDB and Spark SQL
#: both run (:mod:`clvtools.data.spark_kpis` takes the same text).
FLOW_SQL = """
        -- Base customers whose spell was declared in the period, and how many of them
        -- came back within it (a later spell still running at the period's cut end).
        lost AS (SELECT s.customer_id, s.declared, s.declared_ps AS ps, p.pe_obs
                 FROM spells AS s JOIN periods AS p ON p.ps = s.declared_ps
                 WHERE s.start < s.declared_ps),
        back AS (SELECT l.ps, count(*) AS came_back
                 FROM lost AS l JOIN spells AS s ON s.customer_id = l.customer_id
                  AND s.start >= l.declared AND s.start < l.pe_obs AND s.declared >= l.pe_obs
                 GROUP BY l.ps),
        base_lost AS (SELECT ps, count(*) AS lost FROM lost GROUP BY ps),
        flow AS (
            SELECT p.idx, p.ps, p.complete, coalesce(o.new, 0) AS new,
                   coalesce(o.reactivated, 0) AS reactivated, coalesce(c.churned, 0) AS churned,
                   coalesce(bl.lost, 0) - coalesce(b.came_back, 0) AS left_base
            FROM periods AS p LEFT JOIN opened AS o USING (ps) LEFT JOIN closed AS c USING (ps)
            LEFT JOIN base_lost AS bl USING (ps) LEFT JOIN back AS b USING (ps))"""


def spell_tables(log: TransactionLog, params: dict) -> tuple[str, str]:
    """Tables of the spells and periods of :func:`_common_sql` for ``log`` and
    ``params`` (:func:`_params`), built on the first call and reused after: the KPIs, the
    cohorts and the churn by segment all count the same spells, and building them is one
    window pass over every purchase occasion (the costly part of each table), itself shared
    with the landmark tables (:func:`~clvtools.data.lifecycle.spell_bounds`).

    Returns
    -------
    (str, str)
        The names of the spells and periods tables on ``log.con`` (kept in
        ``log.derived``: a new log, even of a table of the same name, builds its own).
    """
    own = {k: params[k] for k in ("cd", "end", "period", "step")}
    key = ("kpi_spells", *own.values())
    if key not in log.derived:
        suffix = uuid.uuid4().hex
        names = (f"_kpi_spells_{suffix}", f"_kpi_periods_{suffix}")
        bounds = spell_bounds(log, own["cd"])
        common = _common_sql(log.occasions, bounds, _year_spend(log, own["cd"]))
        for table, cte in zip(names, ("spells", "periods"), strict=True):
            log.con.execute(f"CREATE {run_scope(log.con)}TABLE {table} AS WITH {common} "
                            f"SELECT * FROM {cte}",
                            _used(common, own))
        log.derived[key] = names
    return log.derived[key]


def _year_spend(log: TransactionLog, cd: int) -> bool:
    """Whether the run's spell bounds carry each spell end's year of spend (``year_micro``:
    built from the sorted occasions, :func:`~clvtools.data.lifecycle.spell_bounds`)."""
    return bool(log.derived.get(("spell_bounds_year_micro", cd), False))


def _spells_sql(log: TransactionLog, params: dict) -> str:
    """The CTEs ``spells`` and ``periods`` read from :func:`spell_tables`."""
    spells, periods = spell_tables(log, params)
    return f"spells AS (FROM {spells}), periods AS (FROM {periods})"


def _used(sql: str, params: dict) -> dict:
    """The parameters ``sql`` names (DuckDB refuses any other)."""
    names = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in params.items() if k in names}


def _params(period: str, churn_after: float, time_unit: str,
            observation_end: dt.date) -> dict:
    if period not in PERIODS:
        raise ClvInputError(f"The 'period' parameter must be {format_choices(list(PERIODS))}. "
                            f"Got {period!r} instead.")
    part, step = PERIODS[period]
    return {"cd": churn_days(churn_after, time_unit), "end": observation_end,
            "period": part, "step": step}


def _lost_revenue_sql(occasions: str, year_spend: bool) -> str:
    """kpi_table's ``revenue_lost`` per period (``ps``): the spend of the customers declared
    churned in it over the year up to their spell's last purchase (declared - $cd), summed
    exactly in micro-units: the spells' own ``lost_micro`` with ``year_spend`` (the same
    integers, without a join of the spells with every occasion), else from the occasions."""
    if year_spend:
        return f"""SELECT declared_ps AS ps,
                          {money('sum(CAST(lost_micro AS DECIMAL(38, 0)))')} AS revenue_lost
                   FROM spells WHERE declared_ps IS NOT NULL GROUP BY ALL"""
    return f"""SELECT s.declared_ps AS ps, {money_sum('o.amount')} AS revenue_lost
               FROM spells AS s JOIN {quote_ident(occasions)} AS o
                 ON o.customer_id = s.customer_id AND o.date <= s.declared - $cd
                AND o.date > s.declared - $cd - 365
               WHERE s.declared_ps IS NOT NULL GROUP BY ALL"""


def kpi_table(
    log: TransactionLog,
    *,
    churn_after: float,
    time_unit: str = "week",
    period: str = "month",
) -> pd.DataFrame:
    """Retention KPIs per calendar period, from the first purchase's to the observation end's.

    Parameters
    ----------
    log : TransactionLog
        The purchase occasions; the period containing its observation end (the last day
        observed) is cut there.
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
        - ``revenue_lost_to_churn``: what the customers declared churned in the period spent
          in their last 12 months of activity (365 days up to the last purchase of the spell
          that ended), and ``revenue_lost_share``: that over the base's revenue in the 365
          days up to the period's end (NaN without amounts);
        - ``complete``: False for the period that the observation end cuts short.
    """
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    params = _params(period, churn_after, time_unit, observation_end)
    params["has_amounts"] = check_occasions(con, occasions, observation_end)
    sql = f"""
        WITH {_spells_sql(log, params)},
        opened AS (SELECT start_ps AS ps, count(*) FILTER (WHERE first_spell) AS new,
                          count(*) FILTER (WHERE NOT first_spell) AS reactivated
                   FROM spells GROUP BY ALL),
        closed AS (SELECT declared_ps AS ps, count(*) AS churned
                   FROM spells WHERE declared_ps IS NOT NULL GROUP BY ALL),
        {FLOW_SQL},
        -- Active at a period's start = spells opened before it - spells declared before it.
        stock AS (
            SELECT *, coalesce(sum(new + reactivated - churned) OVER (
                       ORDER BY idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::BIGINT
                   AS active_start
            FROM flow),
        -- each day's revenue in exact micro-units (money.py), the one pass over the
        -- occasions that the period's revenue and the trailing year's both sum up
        days AS MATERIALIZED (SELECT date, sum({micro_units('amount')}) AS micro
                              FROM {quote_ident(occasions)} GROUP BY date),
        revenue AS (
            SELECT date_trunc($period, date)::DATE AS ps, {money('sum(micro)')} AS revenue
            FROM days GROUP BY ALL),
        -- what the customers declared churned in a period brought in their last 12 months
        -- of activity (the year up to the spell's last purchase)
        lost_revenue AS ({_lost_revenue_sql(occasions, _year_spend(log, params["cd"]))}),
        -- the base's revenue over the 12 months up to each period's (cut) end, from the
        -- running total of daily revenue, in exact micro-units (money.py)
        daily AS (SELECT date, sum(micro) OVER (ORDER BY date) AS running FROM days),
        upto AS (SELECT p.ps, d.running FROM periods AS p
                 ASOF LEFT JOIN daily AS d ON p.pe_obs > d.date),
        before_year AS (SELECT p.ps, d.running FROM periods AS p
                        ASOF LEFT JOIN daily AS d ON p.pe_obs - 365 > d.date),
        trailing_year AS (SELECT u.ps,
                                 {money('coalesce(u.running, 0) - coalesce(b.running, 0)')}
                                 AS revenue
                     FROM upto AS u JOIN before_year AS b USING (ps))
        SELECT p.ps AS period, {_LABEL_SQL} AS label, p.active_start, p.new, p.reactivated,
               p.churned, p.active_start + p.new + p.reactivated - p.churned AS active_end,
               p.churned / nullif(p.active_start, 0) AS churn_rate,
               1 - p.churned / nullif(p.active_start, 0) AS retention_rate,
               (p.active_start - p.left_base) / nullif(p.active_start, 0) AS stock_retention,
               p.new / nullif(p.active_start, 0) AS growth_rate,
               p.new + p.reactivated - p.churned AS net_change,
               CASE WHEN $has_amounts THEN coalesce(r.revenue, 0) END AS revenue,
               CASE WHEN $has_amounts THEN coalesce(l.revenue_lost, 0) END
                   AS revenue_lost_to_churn,
               CASE WHEN $has_amounts THEN coalesce(l.revenue_lost, 0) / nullif(t.revenue, 0)
                    END AS revenue_lost_share,
               p.complete
        FROM stock AS p LEFT JOIN revenue AS r USING (ps) LEFT JOIN lost_revenue AS l USING (ps)
        LEFT JOIN trailing_year AS t USING (ps)
        ORDER BY p.idx"""
    out = con.execute(sql, _used(sql, params)).df()
    # Rates are NULL where active_start is 0; pandas shows them as NaN either way.
    for col in ("churn_rate", "retention_rate", "stock_retention", "growth_rate", "revenue",
                "revenue_lost_to_churn", "revenue_lost_share"):
        out[col] = out[col].astype("float64")
    return out


def cohort_table(
    log: TransactionLog,
    *,
    churn_after: float,
    time_unit: str = "week",
    period: str = "month",
    wide: bool = False,
) -> pd.DataFrame:
    """Retention by acquisition cohort (the period of each customer's first purchase).

    Parameters
    ----------
    log, churn_after, time_unit, period
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
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    params = _params(period, churn_after, time_unit, observation_end)
    check_occasions(con, occasions, observation_end)
    sql = f"""
        WITH {_spells_sql(log, params)},
        -- +1 when a cohort member's spell opens, -1 when it is declared; the running sum
        -- over periods is the number of members active at each period's (cut) end.
        moves AS (SELECT cohort_ps, start_ps AS ps, count(*) AS n FROM spells GROUP BY ALL
                  UNION ALL
                  SELECT cohort_ps, declared_ps AS ps, -count(*) AS n FROM spells
                  WHERE declared_ps IS NOT NULL GROUP BY ALL),
        net AS (SELECT cohort_ps, ps, sum(n) AS n FROM moves GROUP BY ALL),
        sizes AS (SELECT cohort_ps, count(*) AS size FROM spells WHERE first_spell GROUP BY ALL),
        grid AS (
            SELECT c.idx AS cohort_idx, c.ps AS cohort_ps, z.size, q.idx, q.ps, q.complete,
                   sum(coalesce(n.n, 0)) OVER (PARTITION BY c.idx ORDER BY q.idx) AS active
            FROM sizes AS z JOIN periods AS c ON c.ps = z.cohort_ps
            JOIN periods AS q ON q.idx >= c.idx
            LEFT JOIN net AS n ON n.cohort_ps = c.ps AND n.ps = q.ps)
        SELECT g.cohort_ps AS cohort, {_LABEL_SQL} AS label, g.size, g.idx - g.cohort_idx AS k,
               g.ps AS period, g.active::BIGINT AS active, g.active / g.size AS retention,
               g.complete
        FROM grid AS g JOIN periods AS p ON p.idx = g.cohort_idx
        ORDER BY cohort, k"""
    out = con.execute(sql, _used(sql, params)).df()
    if not wide:
        return out
    table = out.pivot(index=["cohort", "label", "size"], columns="k", values="retention")
    table.columns = [f"k{k}" for k in table.columns]
    return table.reset_index()

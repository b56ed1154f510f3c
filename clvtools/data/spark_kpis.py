"""Retention KPIs per calendar period and acquisition cohorts in Spark SQL:
:func:`clvtools.data.kpis.kpi_table`'s and :func:`~clvtools.data.kpis.cohort_table`'s figures
from a :class:`~clvtools.data.spark_engine.SparkLog`, over one cached view of the active
spells (:func:`spark_spell_views`, also read by :mod:`.spark_kpi_segments`).

The query is DuckDB's, clause by clause (active spells, their starts and declarations counted
by period and summed cumulatively over the short list of periods), with Spark's spelling:
``trunc`` for ``date_trunc``, ``sequence`` for ``generate_series``, a ``min`` over a join for
the ``ASOF JOIN`` that closes a spell, and the trailing year's revenue summed directly over
the daily totals (a few hundred days times a few dozen periods) instead of DuckDB's
difference of running sums. Money is summed as DuckDB sums it, exactly in micro-units
(:mod:`clvtools.data.money`), and rounded to a double once.
"""
from __future__ import annotations

from ..errors import ClvInputError, format_choices
from .kpis import FLOW_SQL
from .lifecycle import churn_days
from .money import micro_units, money, money_sum
from .spark_engine import SparkLog

__all__ = ["SPARK_PERIODS", "spark_cohort_table", "spark_kpi_table", "spark_spell_views"]

#: Calendar periods: Spark's ``trunc`` unit and the step between period starts.
SPARK_PERIODS: dict[str, tuple[str, str]] = {
    "week": ("week", "INTERVAL 7 DAYS"),
    "month": ("month", "INTERVAL 1 MONTH"),
    "quarter": ("quarter", "INTERVAL 3 MONTHS"),
    "year": ("year", "INTERVAL 1 YEAR"),
}

#: Period labels as DuckDB writes them: 2024-W09 (ISO week), 2024-03, 2024Q1, 2024.
_LABELS = {
    "week": "concat(CAST(extract(YEAROFWEEK FROM p.ps) AS STRING), '-W', "
            "lpad(CAST(weekofyear(p.ps) AS STRING), 2, '0'))",
    "month": "date_format(p.ps, 'yyyy-MM')",
    "quarter": "concat(CAST(year(p.ps) AS STRING), 'Q', CAST(quarter(p.ps) AS STRING))",
    "year": "CAST(year(p.ps) AS STRING)",
}


def spark_spell_views(log: SparkLog, *, churn_after: float, time_unit: str,
                      period: str) -> tuple[str, str]:
    """The temporary views of the active spells and the calendar periods that the KPIs, the
    cohorts and the churn by segment count (:func:`clvtools.data.kpis.spell_tables`' two
    tables, in Spark SQL), cached and built on the first call only.

    Returns
    -------
    (str, str)
        ``spells(customer_id, cohort_ps, first_spell, start, declared, start_ps,
        declared_ps)`` and ``periods(idx, ps, pe, pe_obs, complete)``.
    """
    if period not in SPARK_PERIODS:
        raise ClvInputError(f"The 'period' parameter must be "
                            f"{format_choices(list(SPARK_PERIODS))}. Got {period!r} instead.")
    unit, step = SPARK_PERIODS[period]
    cd = churn_days(churn_after, time_unit)
    end = f"DATE '{log.observation_end.isoformat()}'"
    occ = log.occasions
    # the spells are read by several clauses and tables: computed once and cached, as DuckDB
    # materialises a CTE read more than once (Spark would compute it again for each); the
    # names are the log's (its view is unique to its occasions and observation end)
    spells, periods = f"{occ}_spells_{unit}_{cd}", f"{occ}_periods_{unit}_{cd}"
    if log.spark.catalog.tableExists(spells) and log.spark.catalog.tableExists(periods):
        return spells, periods
    log.spark.sql(f"""
        WITH flagged AS (
            SELECT customer_id, date, amount,
                   first_value(date) OVER w AS first_date,
                   lag(date) OVER w IS NULL AS first_occasion,
                   coalesce(datediff(date, lag(date) OVER w) >= {cd}, TRUE) AS spell_start,
                   coalesce(datediff(lead(date) OVER w, date) >= {cd}, TRUE) AS spell_end
            FROM {occ} WINDOW w AS (PARTITION BY customer_id ORDER BY date)),
        starts AS (SELECT customer_id, date, first_date, first_occasion
                   FROM flagged WHERE spell_start),
        ends AS (SELECT customer_id, date FROM flagged WHERE spell_end),
        -- a spell closes at the first spell end on or after its start
        closing AS (SELECT s.customer_id, s.date, min(e.date) AS end_date
                    FROM starts AS s JOIN ends AS e
                      ON s.customer_id = e.customer_id AND e.date >= s.date
                    GROUP BY s.customer_id, s.date),
        spells AS (
            SELECT s.customer_id, trunc(s.first_date, '{unit}') AS cohort_ps,
                   s.first_occasion AS first_spell, s.date AS start,
                   date_add(c.end_date, {cd}) AS declared,
                   trunc(s.date, '{unit}') AS start_ps,
                   CASE WHEN date_add(c.end_date, {cd}) <= {end}
                        THEN trunc(date_add(c.end_date, {cd}), '{unit}') END AS declared_ps
            FROM starts AS s JOIN closing AS c
              ON s.customer_id = c.customer_id AND s.date = c.date)
        SELECT * FROM spells""").cache().createOrReplaceTempView(spells)
    # the periods too (a few dozen rows, read by four clauses): inlined, each reading would
    # scan the occasions for their first date and number the periods on one partition again
    log.spark.sql(f"""
        WITH starts_of_periods AS (
            SELECT explode(sequence(trunc((SELECT min(date) FROM {occ}), '{unit}'),
                                    trunc({end}, '{unit}'), {step})) AS ps)
        SELECT row_number() OVER (ORDER BY ps) - 1 AS idx, ps, ps + {step} AS pe,
               least(ps + {step}, date_add({end}, 1)) AS pe_obs,
               ps + {step} <= date_add({end}, 1) AS complete
        FROM starts_of_periods""").cache().createOrReplaceTempView(periods)
    return spells, periods


def spark_kpi_table(log: SparkLog, *, churn_after: float, time_unit: str = "week",
                    period: str = "month"):
    """Retention KPIs per calendar period, from the first purchase's to the observation end's.

    Parameters
    ----------
    log : SparkLog
    churn_after : float
        Time units without a purchase after which churn is declared.
    time_unit : {"day", "week", "month"}
        Unit of ``churn_after``.
    period : {"week", "month", "quarter", "year"}

    Returns
    -------
    pyspark.sql.DataFrame
        One row per period (a few dozen: collect it), ordered, with the columns of
        :func:`clvtools.data.kpis.kpi_table`: ``period`` (first day), ``label``,
        ``active_start``, ``new``, ``reactivated``, ``churned``, ``active_end``,
        ``churn_rate``, ``retention_rate``, ``stock_retention``, ``growth_rate``,
        ``net_change``, ``revenue``, ``revenue_lost_to_churn``, ``revenue_lost_share``,
        ``complete``.
    """
    spells, periods = spark_spell_views(log, churn_after=churn_after, time_unit=time_unit,
                                        period=period)
    unit, cd, occ = SPARK_PERIODS[period][0], churn_days(churn_after, time_unit), log.occasions
    # without amounts every money column is NULL, as in DuckDB (the format ignores its argument)
    when_amounts = "CAST({} AS DOUBLE)" if log.has_amounts else "CAST(NULL AS DOUBLE)"
    sql = f"""
        WITH spells AS (SELECT * FROM {spells}),
        periods AS (SELECT * FROM {periods}),
        opened AS (SELECT start_ps AS ps, count_if(first_spell) AS new,
                          count_if(NOT first_spell) AS reactivated
                   FROM {spells} GROUP BY start_ps),
        closed AS (SELECT declared_ps AS ps, count(*) AS churned
                   FROM {spells} WHERE declared_ps IS NOT NULL GROUP BY declared_ps),
        {FLOW_SQL},
        stock AS (
            SELECT *, CAST(coalesce(sum(new + reactivated - churned) OVER (
                       ORDER BY idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                       AS BIGINT) AS active_start
            FROM flow),
        revenue AS (SELECT trunc(date, '{unit}') AS ps, {money_sum('amount')} AS revenue
                    FROM {occ} GROUP BY trunc(date, '{unit}')),
        lost_revenue AS (
            SELECT s.declared_ps AS ps, {money_sum('o.amount')} AS revenue_lost
            FROM {spells} AS s JOIN {occ} AS o
              ON o.customer_id = s.customer_id AND o.date <= date_sub(s.declared, {cd})
             AND o.date > date_sub(s.declared, {cd} + 365)
            WHERE s.declared_ps IS NOT NULL GROUP BY s.declared_ps),
        daily AS (SELECT date, sum({micro_units('amount')}) AS micro FROM {occ} GROUP BY date),
        trailing_year AS (
            SELECT p.ps, {money('coalesce(sum(d.micro), 0)')} AS revenue
            FROM periods AS p LEFT JOIN daily AS d
              ON d.date < p.pe_obs AND d.date >= date_sub(p.pe_obs, 365)
            GROUP BY p.ps)
        SELECT p.ps AS period, {_LABELS[period]} AS label, p.active_start, p.new,
               p.reactivated, p.churned,
               p.active_start + p.new + p.reactivated - p.churned AS active_end,
               p.churned / nullif(p.active_start, 0) AS churn_rate,
               1 - p.churned / nullif(p.active_start, 0) AS retention_rate,
               (p.active_start - p.left_base) / nullif(p.active_start, 0) AS stock_retention,
               p.new / nullif(p.active_start, 0) AS growth_rate,
               p.new + p.reactivated - p.churned AS net_change,
               {when_amounts.format('coalesce(r.revenue, 0)')} AS revenue,
               {when_amounts.format('coalesce(l.revenue_lost, 0)')} AS revenue_lost_to_churn,
               {when_amounts.format('coalesce(l.revenue_lost, 0)')}
                   / nullif({when_amounts.format('t.revenue')}, 0) AS revenue_lost_share,
               p.complete
        FROM stock AS p LEFT JOIN revenue AS r USING (ps) LEFT JOIN lost_revenue AS l USING (ps)
        LEFT JOIN trailing_year AS t USING (ps)
        ORDER BY p.idx"""
    return log.spark.sql(sql)


def spark_cohort_table(log: SparkLog, *, churn_after: float, time_unit: str = "week",
                       period: str = "month"):
    """Retention by acquisition cohort in Spark SQL: :func:`clvtools.data.kpis.cohort_table`'s
    long table (its query, clause by clause, over the same spells and periods).

    Parameters
    ----------
    log, churn_after, time_unit, period
        As in :func:`spark_kpi_table`.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per cohort and k (a few hundred: collect it), ordered: ``cohort`` (first day),
        ``label``, ``size``, ``k``, ``period``, ``active``, ``retention``, ``complete``.
    """
    spells, periods = spark_spell_views(log, churn_after=churn_after, time_unit=time_unit,
                                        period=period)
    return log.spark.sql(f"""
        WITH moves AS (SELECT cohort_ps, start_ps AS ps, count(*) AS n FROM {spells}
                       GROUP BY cohort_ps, start_ps
                       UNION ALL
                       SELECT cohort_ps, declared_ps AS ps, -count(*) AS n FROM {spells}
                       WHERE declared_ps IS NOT NULL GROUP BY cohort_ps, declared_ps),
        net AS (SELECT cohort_ps, ps, sum(n) AS n FROM moves GROUP BY cohort_ps, ps),
        sizes AS (SELECT cohort_ps, count(*) AS size FROM {spells} WHERE first_spell
                  GROUP BY cohort_ps),
        grid AS (
            SELECT c.idx AS cohort_idx, c.ps AS cohort_ps, z.size, q.idx, q.ps, q.complete,
                   sum(coalesce(n.n, 0)) OVER (PARTITION BY c.idx ORDER BY q.idx) AS active
            FROM sizes AS z JOIN {periods} AS c ON c.ps = z.cohort_ps
            JOIN {periods} AS q ON q.idx >= c.idx
            LEFT JOIN net AS n ON n.cohort_ps = c.ps AND n.ps = q.ps)
        SELECT g.cohort_ps AS cohort, {_LABELS[period]} AS label, g.size,
               g.idx - g.cohort_idx AS k, g.ps AS period, CAST(g.active AS BIGINT) AS active,
               g.active / g.size AS retention, g.complete
        FROM grid AS g JOIN {periods} AS p ON p.idx = g.cohort_idx
        ORDER BY cohort, k""")

"""The RFM summary and the landmark survival tables in Spark SQL, figure for figure those of
DuckDB (:mod:`clvtools.data.rfm`, :mod:`clvtools.data.survival_tables`).

Each query follows its DuckDB twin clause by clause, with the same column names, windows and
rules; the text differs where Spark SQL has no equivalent: no ``ASOF JOIN`` (the next churn
declaration is the smallest spell end on or after the last purchase, a join and a ``min``),
dates subtract with ``datediff`` and ``date_sub``, and divisions are written in doubles (Spark
would divide an integer by ``7.0`` in DECIMAL). Money is summed by the SQL text DuckDB runs,
exactly (:func:`clvtools.data.money.money_sum`). The tests check on the same log that both
engines give the same counts, dates, durations and money, bit for bit.

The results are Spark DataFrames: they stay on the executors until a caller collects the
(compressed) part it needs.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..errors import ClvInputError
from ..units import unit_days
from .lifecycle import churn_days
from .money import micro_units, money_sum
from .spark_attributes import SparkAttributes
from .spark_engine import SparkLog
from .survival_tables import _check_windows, _covariate_columns, _window_names

__all__ = ["spark_rfm", "spark_landmark_table", "spark_scoring_table", "spark_lifecycle",
           "spark_purchases_by_period", "spark_revenue_by_period"]


def _date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def _double(x: float) -> str:
    """A double literal holding exactly ``x`` (Spark reads ``7.0`` as a DECIMAL)."""
    return f"{float(x)!r}D"


def spark_rfm(log: SparkLog, *, time_unit: str = "week", observation_end: dt.date | None = None):
    """RFM summary (lifetimes' conventions) of a Spark log, one row per customer.

    The query of :func:`clvtools.data.rfm.rfm_query` for day-level occasions: ``frequency``
    repeat days, ``recency`` first to last purchase, ``T`` first purchase to the observation
    end (time units), ``monetary_value`` the mean amount of the repeat days (0 without).

    Parameters
    ----------
    log : SparkLog
    time_unit : {"day", "week", "month"}
    observation_end : datetime.date, optional
        Default the log's; occasions after it are ignored.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id`` (string), ``frequency``, ``recency``, ``T`` (double) and, with
        amounts, ``monetary_value`` (double).
    """
    end = _date(observation_end or log.observation_end)
    unit = f"{_double(unit_days(time_unit))} / {_double(1.0)}"
    # total less the first day's amount, over the repeat days: the total exact and rounded to
    # a double once, the day's amount subtracted in doubles, as DuckDB does
    monetary = (", coalesce((total - first_amount) / nullif(n_periods - 1, 0), 0D) "
                "AS monetary_value" if log.has_amounts else "")
    return log.spark.sql(f"""
        WITH customers AS (
            SELECT customer_id, min(date) AS first_period, max(date) AS last_period,
                   count(*) AS n_periods, {money_sum('amount')} AS total,
                   min_by(amount, date) AS first_amount
            FROM {log.occasions} WHERE date <= {end}
            GROUP BY customer_id)
        SELECT customer_id, CAST(n_periods - 1 AS DOUBLE) AS frequency,
               CAST(datediff(last_period, first_period) AS DOUBLE) / {unit} AS recency,
               CAST(datediff({end}, first_period) AS DOUBLE) / {unit} AS T
               {monetary}
        FROM customers""")


def _covariates_sql(occasions: str, windows: Sequence[float], window_days: Sequence[int],
                    has_amounts: bool) -> str:
    """The covariates of each ``at_risk(customer_id, landmark)`` row from the occasions up to
    its landmark (survival_tables._covariates_sql: the join condition keeps the future out)."""
    short = int(window_days[0])
    parts = []
    for name, d in zip(_window_names(windows), window_days, strict=True):
        parts.append(f"count(*) FILTER (WHERE o.date > date_sub(l.landmark, {int(d)})) "
                     f"AS purchases_last_{name}")
    for name, d in zip(_window_names(windows), window_days, strict=True):
        spend = (f"coalesce({money_sum('o.amount', f'o.date > date_sub(l.landmark, {int(d)})')}"
                 ", 0D)" if has_amounts else "CAST(NULL AS DOUBLE)")
        parts.append(f"{spend} AS spend_last_{name}")
    total = f"coalesce({money_sum('o.amount')}, 0D)" if has_amounts else "CAST(NULL AS DOUBLE)"
    return f"""
        SELECT o.customer_id, l.landmark, count(*) AS n_purchases,
               min(o.date) AS first_purchase, max(o.date) AS last_purchase,
               {', '.join(parts)},
               {total} AS total_spend,
               {money_sum('o.amount')} / count(o.amount) AS average_spend,
               count(*) FILTER (WHERE o.date > date_sub(l.landmark, {short}))
                 - count(*) FILTER (WHERE o.date > date_sub(l.landmark, {2 * short})
                                    AND o.date <= date_sub(l.landmark, {short}))
                 AS purchase_trend
        FROM {occasions} AS o JOIN at_risk AS l
          ON o.customer_id = l.customer_id AND o.date <= l.landmark
        GROUP BY o.customer_id, l.landmark"""


def _covariate_select(windows: Sequence[float], ud: str) -> str:
    names = _window_names(windows)
    cols = (["c.n_purchases", "c.n_purchases - 1 AS frequency",
             f"CAST(datediff(c.landmark, c.first_purchase) AS DOUBLE) / {ud} AS tenure",
             f"CAST(datediff(c.landmark, c.last_purchase) AS DOUBLE) / {ud} "
             "AS time_since_last_purchase"]
            + [f"c.purchases_last_{n}" for n in names] + [f"c.spend_last_{n}" for n in names]
            + ["c.total_spend", "c.average_spend", "c.purchase_trend"])
    return ", ".join(cols)


def _attributes_sql(attributes: SparkAttributes | None, windows: Sequence[float], *,
                    as_of: bool) -> tuple[str, str]:
    """The SELECT items and the JOIN that add the attributes at each row's landmark (as
    survival_tables._attributes; with ``as_of``, rows not yet valid at the landmark give
    the fill)."""
    if attributes is None:
        return "", ""
    clash = sorted(set(attributes.kinds) & {"customer_id", "landmark", "duration", "event",
                                            *_covariate_columns(windows)})
    if clash:
        raise ClvInputError(f"Customer attribute columns {clash} clash with computed columns.",
                            source="customers", advice="Rename those attribute columns.")
    return (attributes.select_sql("a", "c.landmark", as_of=as_of),
            f" LEFT JOIN {attributes.view} AS a ON a.customer_id = c.customer_id")


def _tables_sql(log: SparkLog, marks: Sequence[dt.date], *, churn_after: float, time_unit: str,
                windows: Sequence[float] | None, with_outcome: bool,
                attributes: SparkAttributes | None = None) -> str:
    cd = churn_days(churn_after, time_unit)
    windows, window_days = _check_windows(windows, time_unit)
    # validity dates hold back a row at the landmarks only, as on the single machine
    attr_select, attr_join = _attributes_sql(attributes, windows, as_of=with_outcome)
    ud = _double(unit_days(time_unit))
    occ = log.occasions
    landmarks = ", ".join(f"({_date(m)})" for m in marks)
    common = f"""
        WITH landmarks AS (SELECT * FROM VALUES {landmarks} AS t(landmark)),
        at_risk AS (SELECT DISTINCT o.customer_id, l.landmark
                    FROM {occ} AS o JOIN landmarks AS l
                      ON o.date <= l.landmark AND o.date > date_sub(l.landmark, {cd})),
        cov AS ({_covariates_sql(occ, windows, window_days, log.has_amounts)})"""
    covs = _covariate_select(windows, ud)
    if not with_outcome:
        return (f"{common} SELECT c.customer_id, c.landmark, {covs}{attr_select} "
                f"FROM cov AS c{attr_join}")
    end = _date(log.observation_end)
    # the spell ends (no purchase within churn days after) of the at-risk customers, from
    # the earliest date their last purchase can have; the next declaration after a landmark
    # is the first spell end on or after the last purchase up to it, plus churn days
    return f"""{common},
        tail AS (SELECT customer_id, date,
                        lead(date) OVER (PARTITION BY customer_id ORDER BY date) AS next
                 FROM {occ}
                 WHERE date > date_sub({_date(min(marks))}, {cd})
                   AND customer_id IN (SELECT customer_id FROM at_risk)),
        ends AS (SELECT customer_id, date FROM tail
                 WHERE coalesce(datediff(next, date) >= {cd}, TRUE)),
        out AS (SELECT c.customer_id, c.landmark, date_add(min(e.date), {cd}) AS declared
                FROM cov AS c JOIN ends AS e
                  ON c.customer_id = e.customer_id AND e.date >= c.last_purchase
                GROUP BY c.customer_id, c.landmark)
        SELECT c.customer_id, c.landmark,
               CAST(datediff(least(x.declared, {end}), c.landmark) AS DOUBLE) / {ud}
                   AS duration,
               CAST(x.declared <= {end} AS BIGINT) AS event, {covs}{attr_select}
        FROM cov AS c JOIN out AS x ON x.customer_id = c.customer_id
         AND x.landmark = c.landmark{attr_join}"""


def spark_landmark_table(log: SparkLog, *, landmarks: Sequence[dt.date], churn_after: float,
                         time_unit: str = "week", windows: Sequence[float] | None = None,
                         attributes: SparkAttributes | None = None):
    """The stacked landmark survival table of
    :func:`clvtools.data.survival_tables.landmark_table`, in Spark.

    Parameters
    ----------
    log : SparkLog
        Outcomes are censored at its observation end.
    landmarks : sequence of datetime.date
        Each before the observation end.
    churn_after : float
        Time units without a purchase after which churn is declared.
    time_unit : {"day", "week", "month"}
    windows : sequence of float, optional
        Covariate windows in time units; default ``DEFAULT_WINDOWS[time_unit]``.
    attributes : SparkAttributes, optional
        Joined after the covariates, a date as days from it to the landmark.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per (customer, landmark) at risk, unordered: ``customer_id``, ``landmark``
        (date), ``duration`` (time units), ``event`` (1 = churn declared by the observation
        end), the covariates of ``landmark_table``, in its column order, and the attributes.
    """
    marks = sorted(set(landmarks))
    if not marks:
        raise ClvInputError("The 'landmarks' parameter must list at least one date.")
    late = [m for m in marks if m >= log.observation_end]
    if late:
        raise ClvInputError(f"Landmarks must fall before the observation end "
                            f"{log.observation_end}. Got {[str(m) for m in late]}.")
    return log.spark.sql(_tables_sql(log, marks, churn_after=churn_after, time_unit=time_unit,
                                     windows=windows, with_outcome=True,
                                     attributes=attributes))


def spark_scoring_table(log: SparkLog, *, churn_after: float, time_unit: str = "week",
                        windows: Sequence[float] | None = None,
                        attributes: SparkAttributes | None = None):
    """The covariates (and attributes) at the observation end of every customer not yet
    declared churned (:func:`clvtools.data.survival_tables.scoring_table`), in Spark.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, ``landmark`` (the observation end), the covariates and the
        attributes, unordered.
    """
    return log.spark.sql(_tables_sql(log, [log.observation_end], churn_after=churn_after,
                                     time_unit=time_unit, windows=windows, with_outcome=False,
                                     attributes=attributes))


def spark_lifecycle(log: SparkLog, *, churn_after: float, time_unit: str = "week"):
    """Each customer's purchases, lifetime spend, last purchase and the date churn was
    declared (:func:`clvtools.data.lifecycle.lifecycle_status`'s columns that the win-back
    list carries), in Spark.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id``, ``last_purchase`` (date), ``purchases`` (occasions), ``lifetime_spend``
        (currency, exact; NULL without amounts), ``declared_at`` (date, NULL unless declared
        churned by the observation end), unordered.
    """
    cd = churn_days(churn_after, time_unit)
    end = _date(log.observation_end)
    spend = money_sum("amount") if log.has_amounts else "CAST(NULL AS DOUBLE)"
    return log.spark.sql(f"""
        SELECT customer_id, max(date) AS last_purchase, count(*) AS purchases,
               {spend} AS lifetime_spend,
               CASE WHEN datediff({end}, max(date)) >= {cd} THEN date_add(max(date), {cd})
               END AS declared_at
        FROM {log.occasions} GROUP BY customer_id""")


def spark_purchases_by_period(log: SparkLog, starts: Sequence[dt.date],
                              ends: Sequence[dt.date]) -> list[int]:
    """Purchase occasions dated in each period ``(starts[i], ends[i]]`` (the start day
    excluded, the end day included), in Spark: the ``purchases`` column of
    :func:`clvtools.data.rfm.purchases_by_period`, in period order.

    The occasions are counted per day first (a few thousand rows reach the driver), then
    summed into the periods there.
    """
    days = log.spark.sql(f"SELECT date, count(*) AS n FROM {log.occasions} GROUP BY date"
                         ).collect()
    return [sum(int(n) for day, n in days if start < day <= end)
            for start, end in zip(starts, ends, strict=True)]


def spark_revenue_by_period(log: SparkLog, starts: Sequence[dt.date], ends: Sequence[dt.date],
                            *, customers_acquired_by: dt.date | None = None) -> list[float]:
    """Revenue dated in each period ``(starts[i], ends[i]]``, in Spark: the ``revenue`` column
    of :func:`clvtools.data.rfm.purchases_by_period`, in period order, currency units.

    ``customers_acquired_by``: count only the customers with an occasion on or before that
    day. Each day's micro-units are summed exactly in Spark (a few thousand rows reach the
    driver), then per period in Python integers and converted once, as DuckDB's query does,
    so that both engines give the same doubles. 0.0 throughout for a log without amounts.
    """
    if not log.has_amounts:
        return [0.0] * len(ends)
    acquired = ""
    if customers_acquired_by is not None:
        acquired = (f"LEFT SEMI JOIN (SELECT customer_id FROM {log.occasions} WHERE date <= "
                    f"{_date(customers_acquired_by)}) a ON o.customer_id = a.customer_id")
    days = log.spark.sql(f"SELECT o.date, sum({micro_units('o.amount')}) AS micro "
                         f"FROM {log.occasions} o {acquired} GROUP BY o.date").collect()
    return [float(sum(int(micro) for day, micro in days if start < day <= end)) / 1e6
            for start, end in zip(starts, ends, strict=True)]


def covariate_columns(windows: Sequence[float] | None, time_unit: str) -> list[str]:
    """The covariate columns of :func:`spark_landmark_table`, in order."""
    return _covariate_columns(_check_windows(windows, time_unit)[0])


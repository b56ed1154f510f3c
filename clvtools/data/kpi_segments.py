"""Churn rates per calendar period within segments: value tiers set at each period's start,
the categorical attributes, and, with contracts, the contract ends by end reason.

The spells and periods are :mod:`clvtools.data.kpis`' own. A customer is in the base of a
period when one of their active spells covers its start (``start < period start <=
declared``); they churned in it when that spell is declared within the period (on or before
the observation end). Value tiers are set from the trailing 12 months' revenue at the
period's start, so that today's tiers do not bias the past: the top ``value_share`` of the
base by that revenue (strictly above its quantile) is ``high``, the others ``low``.
"""
from __future__ import annotations

import pandas as pd

from .attributes import CustomerAttributes
from .contracts import Contracts
from .engine import quote_ident
from .kpis import _LABEL_SQL, _common_sql, _params
from .schema import check_date, check_occasions
from .transactions import TransactionLog

__all__ = ["churn_by_segment", "contract_ends_by_reason"]

_COLUMNS = ["period", "label", "by", "segment", "active_start", "churned", "churn_rate"]


def churn_by_segment(log: TransactionLog, *, churn_after: float, time_unit: str = "week",
                     period: str = "month", attributes: CustomerAttributes | None = None,
                     segments=(), value_share: float = 0.2) -> pd.DataFrame:
    """Churn rate per period by value tier and by each categorical attribute.

    Parameters
    ----------
    log, churn_after, time_unit, period
        As in :func:`clvtools.data.kpis.kpi_table`.
    attributes : CustomerAttributes, optional
        The customers' attributes (their current values: a snapshot, not history).
    segments : sequence of str
        Categorical attribute columns to break the rate down by.
    value_share : float
        Share of each period's base in the ``high`` value tier, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per period, breakdown and segment: ``period`` (first day), ``label``, ``by``
        (``value_tier`` or the attribute), ``segment`` (``high``/``low`` or the level),
        ``active_start``, ``churned`` (of those, declared churned in the period) and
        ``churn_rate`` (NaN for an empty base). Revenue is the trailing 365 days' amounts,
        or purchases when the log has no amounts.
    """
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    if not 0 < value_share < 1:
        raise ValueError(f"value_share must be in (0, 1). Got {value_share!r} instead.")
    params = _params(period, churn_after, time_unit, observation_end)
    params["has_amounts"] = check_occasions(con, occasions, observation_end)
    params["quantile"] = 1.0 - value_share
    q = quote_ident(occasions)
    breakdowns = ["""SELECT ps, 'value_tier' AS by,
                            CASE WHEN value > threshold THEN 'high' ELSE 'low' END AS segment,
                            churned FROM tiered"""]
    join = ""
    if attributes is not None and segments:
        join = f"LEFT JOIN {quote_ident(attributes.table)} AS a USING (customer_id)"
        breakdowns += [f"""SELECT ps, '{c.replace("'", "''")}' AS by,
                                  coalesce(CAST({quote_ident(c)} AS VARCHAR), '(missing)')
                                      AS segment, churned FROM base"""
                       for c in segments]
    sql = f"""
        WITH {_common_sql(occasions)},
        running AS (SELECT customer_id, date,
                           sum(CASE WHEN $has_amounts THEN amount ELSE 1 END)
                               OVER (PARTITION BY customer_id ORDER BY date) AS total
                    FROM {q}),
        base AS (SELECT p.idx, p.ps, s.customer_id,
                        coalesce(s.declared_ps = p.ps, FALSE) AS churned{_attribute_list(segments)}
                 FROM spells AS s JOIN periods AS p ON s.start < p.ps AND s.declared >= p.ps
                 {join}),
        upto AS (SELECT b.customer_id, b.ps, r.total FROM base AS b
                 ASOF LEFT JOIN running AS r ON b.customer_id = r.customer_id
                  AND b.ps > r.date),
        year_before AS (SELECT b.customer_id, b.ps, r.total FROM base AS b
                        ASOF LEFT JOIN running AS r ON b.customer_id = r.customer_id
                         AND b.ps - 365 > r.date),
        valued AS (SELECT b.ps, b.churned,
                          coalesce(u.total, 0) - coalesce(y.total, 0) AS value
                   FROM base AS b JOIN upto AS u USING (customer_id, ps)
                   JOIN year_before AS y USING (customer_id, ps)),
        tiered AS (SELECT v.*, quantile_cont(value, $quantile) OVER (PARTITION BY ps)
                              AS threshold FROM valued AS v),
        rows AS ({' UNION ALL '.join(breakdowns)})
        SELECT p.ps AS period, {_LABEL_SQL} AS label, r.by, r.segment,
               count(*) AS active_start, count(*) FILTER (WHERE r.churned) AS churned,
               count(*) FILTER (WHERE r.churned) / count(*) AS churn_rate
        FROM rows AS r JOIN periods AS p USING (ps)
        GROUP BY ALL ORDER BY p.ps, r.by, r.segment"""
    out = con.execute(sql, params).df()
    out["churn_rate"] = out["churn_rate"].astype("float64")
    return out[_COLUMNS]


def _attribute_list(segments) -> str:
    return "".join(f", a.{quote_ident(c)}" for c in segments)


def contract_ends_by_reason(log: TransactionLog, contracts: Contracts, *,
                            period: str = "month") -> pd.DataFrame:
    """Contract ends per period by end reason (voluntary, non-payment, ...): the split of
    churn by type.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``label``, ``by`` (``end_reason``), ``segment`` (the reason;
        ``(unspecified)`` for an end without one), ``active_start`` (contracts running at
        the period's start), ``churned`` (contracts that ended in the period for that
        reason) and ``churn_rate``; columns as :func:`churn_by_segment`.
    """
    observation_end = check_date(log.observation_end, "observation_end")
    params = {k: v for k, v in _params(period, 1, "day", observation_end).items() if k != "cd"}
    c, q = quote_ident(contracts.table), quote_ident(log.occasions)
    sql = f"""
        WITH periods AS (
            SELECT p::DATE AS ps FROM generate_series(
                date_trunc($period, (SELECT least(min(start), (SELECT min(date) FROM {q}))
                                     FROM {c}))::TIMESTAMP,
                date_trunc($period, $end::DATE)::TIMESTAMP, $step::INTERVAL) AS g(p)),
        running AS (SELECT p.ps, count(k.customer_id) AS active_start
                    FROM periods AS p LEFT JOIN {c} AS k
                      ON k.start < p.ps AND (k."end" IS NULL OR k."end" >= p.ps)
                    GROUP BY ALL),
        ended AS (SELECT date_trunc($period, "end")::DATE AS ps,
                         coalesce(end_reason, '(unspecified)') AS segment, count(*) AS churned
                  FROM {c} WHERE "end" IS NOT NULL AND "end" <= $end GROUP BY ALL),
        reasons AS (SELECT DISTINCT segment FROM ended)
        SELECT p.ps AS period, {_LABEL_SQL} AS label, 'end_reason' AS by, r.segment,
               a.active_start, coalesce(e.churned, 0) AS churned,
               coalesce(e.churned, 0) / nullif(a.active_start, 0) AS churn_rate
        FROM periods AS p CROSS JOIN reasons AS r JOIN running AS a USING (ps)
        LEFT JOIN ended AS e ON e.ps = p.ps AND e.segment = r.segment
        ORDER BY p.ps, r.segment"""
    out = log.con.execute(sql, params).df()
    out["churn_rate"] = out["churn_rate"].astype("float64")
    return out[_COLUMNS]

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

import uuid
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from .attributes import CustomerAttributes
from .contracts import Contracts
from .engine import quote_ident, run_scope
from .kpis import _LABEL_SQL, PERIODS, _params, spell_tables
from .schema import check_date, check_occasions
from .transactions import TransactionLog

__all__ = ["churn_by_segment", "contract_ends_by_reason", "segment_table"]

#: Periods in a year: the window of the trailing value.
_PERIODS_PER_YEAR = {"week": 52, "month": 12, "quarter": 4, "year": 1}
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
        ``active_start``, ``churned`` (declared churned in the period) and ``churn_rate`` =
        churned / active_start (NaN for an empty base), as :func:`kpi_table` counts them.
        The value is the revenue of the year of periods before the period (12 months, 52
        weeks, 4 quarters or 1 year), or purchases when the log has no amounts.
    """
    con, occasions = log.con, log.occasions
    observation_end = check_date(log.observation_end, "observation_end")
    if not 0 < value_share < 1:
        raise ValueError(f"value_share must be in (0, 1). Got {value_share!r} instead.")
    base_params = _params(period, churn_after, time_unit, observation_end)
    params = {"period": base_params["period"], "quantile": 1.0 - value_share,
              "has_amounts": check_occasions(con, occasions, observation_end),
              "year": _PERIODS_PER_YEAR[period]}
    # the spells and periods of the KPIs, shared by every breakdown
    sp, pe = spell_tables(log, base_params)
    # tier_spend_from_sorted's tables serve this one read: dropped after it (about 0.1 GB of
    # DuckDB's memory at a million customers, otherwise held to the end of the run)
    sorted_spend = log.derived.pop(("tier_spend", params["period"]), None)
    try:
        frames = [_value_tiers(con, occasions, sp, pe, params, log.n_customers, sorted_spend)]
    finally:
        for table in sorted_spend or ():
            con.execute(f"DROP TABLE IF EXISTS {table}")
    if attributes is not None and segments:
        frames.append(con.execute(_attribute_sql(sp, pe, attributes.table, segments)).df())
    periods = con.execute(f"SELECT p.ps, {_LABEL_SQL} AS label FROM {pe} AS p",
                          {"period": base_params["period"]}).df()
    return segment_table(periods, frames)


def segment_table(periods: pd.DataFrame, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """churn_by_segment's table from the periods' first days and labels (``ps``, ``label``)
    and the counts per period, breakdown and segment (``ps``, ``by``, ``segment``,
    ``active_start``, ``churned``): the rates, the empty rows dropped, the order (shared with
    the Spark engine's :mod:`clvtools.data.spark_kpi_segments`)."""
    counts = pd.concat(frames, ignore_index=True)
    out = periods.merge(counts, on="ps").rename(columns={"ps": "period"})
    out["active_start"] = out["active_start"].astype("int64")
    out["churned"] = out["churned"].astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["churn_rate"] = np.where(out["active_start"] > 0,
                                     out["churned"] / out["active_start"], np.nan)
    out = out[(out["active_start"] > 0) | (out["churned"] > 0)]
    return out.sort_values(["period", "by", "segment"], ignore_index=True)[_COLUMNS]


def tier_spend_from_sorted(log: TransactionLog, occ, period: str) -> None:
    """The spend per customer and ``period`` that :func:`churn_by_segment`'s value tiers
    read, from ``log``'s occasions sorted by customer
    (:func:`~clvtools.data.landmark_arrays.sorted_occasions`, which the risk step holds):
    consecutive runs of one customer's occasions in one period, summed as differences of the
    running micro-unit sums, in numpy, instead of a group-by of every occasion by customer
    and period and a join with the customers' codes (2.5 s of CPU at a million customers).

    Two tables are kept in ``log.derived`` (key ``("tier_spend", period's DuckDB part)``):
    ``(code, idx, spent)`` as :func:`_value_tiers`' query makes them (micro-units, or
    purchases without amounts; ``idx`` counted from the first occasion's period) and the
    codes ``(customer_id, code)``: a customer's position among the sorted ids.
    """
    part = PERIODS[period][0]
    key = ("tier_spend", part)
    if key in log.derived:
        return
    counts = np.diff(occ.starts)
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    # the period of each day counted from the first occasion's, as DuckDB's date_trunc and
    # datediff count them: weeks from Monday (1970-01-01 was a Thursday); months, quarters
    # and years by binary search among the periods' first days (a numpy datetime cast of
    # every occasion costs several times more)
    if part == "week":
        idx = ((occ.day + 3) // 7 - (occ.first_day + 3) // 7).astype(np.int32)
    else:
        months = {"month": 1, "quarter": 3, "year": 12}[part]
        first = np.datetime64(occ.first_day, "D").astype("datetime64[M]").astype(np.int64)
        last = np.datetime64(int(occ.day.max(initial=occ.first_day)), "D").astype(
            "datetime64[M]").astype(np.int64)
        starts = np.arange(first - first % months, last + 1, months).astype(
            "datetime64[M]").astype("datetime64[D]").astype(np.int64)
        idx = (np.searchsorted(starts, occ.day, "right") - 1).astype(np.int32)
    opens = np.r_[0, np.flatnonzero((owner[1:] != owner[:-1]) | (idx[1:] != idx[:-1])) + 1]
    closes = np.r_[opens[1:], len(owner)]
    if occ.micro_sum is not None:
        with np.errstate(over="ignore"):        # modular, as the running sums
            spent = occ.micro_sum[closes] - occ.micro_sum[opens]
    else:
        spent = (closes - opens).astype(np.int64)
    con = log.con
    suffix = uuid.uuid4().hex
    names = (f"_tier_spend_{suffix}", f"_tier_codes_{suffix}")
    # read by replacement scans of these local names (as lifecycle.spell_bounds)
    _tier_spend_rows = pa.table({"code": owner[opens], "idx": idx[opens],  # noqa: F841
                                 "spent": spent})
    _tier_code_rows = pa.table({  # noqa: F841
        "customer_id": occ.arrow_ids,
        "code": np.arange(len(counts), dtype=np.int32)})
    con.execute(f"CREATE {run_scope(con)}TABLE {names[0]} AS FROM _tier_spend_rows")
    con.execute(f"CREATE {run_scope(con)}TABLE {names[1]} AS FROM _tier_code_rows")
    log.derived[key] = names


def _value_tiers(con, occasions: str, spells: str, periods: str, params: dict,
                 customers: int | None = None, sorted_spend: tuple[str, str] | None = None
                 ) -> pd.DataFrame:
    """Base and churners per period by value tier: each base customer's spend over the year
    of periods before the period.

    DuckDB sums each customer's spend per period (in exact integer micro-units, money.py:
    customers tied at the tier's threshold stay tied whatever order the threads add in) and
    lists each spell's first and last base period; numpy then reads a base customer's
    trailing year as the difference of two running totals (one lookup each, no join of
    the base against the purchases) and cuts each period at its quantile. Past
    :data:`TIER_FETCH_CUSTOMERS` customers (``customers``) the rows are kept in
    a DuckDB table and fetched that many customers at a time, so that the fetched arrays
    (about 21 bytes a row, some 7 rows a customer) do not grow with the base.
    ``sorted_spend``: the tables of :func:`tier_spend_from_sorted` (the spend rows and the
    codes), read instead of the group-by of the occasions.

    Returns
    -------
    pandas.DataFrame
        ``ps``, ``by`` (``value_tier``), ``segment`` (``high``/``low``), ``active_start``
        and ``churned``: one row per period and tier with a base customer.
    """
    # micro-units fit a BIGINT up to 9e12 in the currency: a DECIMAL sum is slower
    amount = "CAST(round(o.amount * 1e6) AS BIGINT)" if params["has_amounts"] else "1"
    part = params["period"]         # one of PERIODS' parts: written into the SQL as it is
    # the period's index counted from the first period's first day: arithmetic on the date
    # instead of a join with the periods (weeks: days / 7; the others: boundaries crossed)
    index = ("(date_trunc('week', o.date)::DATE - $first) // 7" if part == "week"
             else f"datediff('{part}', $first, o.date)")
    # customers numbered 0.. (every customer of the log has a spell), spend per period;
    # codes and period indexes as 32-bit integers: the fetched arrays are the KPI step's
    # largest (6.9M rows at a million customers), 21 bytes a row instead of 33
    if sorted_spend is None:
        coded = f"""codes AS MATERIALIZED (
                  SELECT customer_id, (row_number() OVER () - 1)::INTEGER AS code
                       FROM (SELECT DISTINCT customer_id FROM {spells})),
        spent AS (SELECT o.customer_id, ({index})::INTEGER AS idx,
                         coalesce(sum({amount}), 0)::BIGINT AS spent
                  FROM {quote_ident(occasions)} AS o GROUP BY ALL),
        coded AS (SELECT c.code, s.idx, s.spent FROM spent AS s JOIN codes AS c
                  USING (customer_id))"""
    else:   # tier_spend_from_sorted's tables
        coded = f"codes AS (FROM {sorted_spend[1]}), coded AS (FROM {sorted_spend[0]})"
    sql = f"""
        WITH {coded},
        -- the spell is in the base of the periods that start after its start, up to the one
        -- in which it is declared (the last period when declared after the observation end)
        ranges AS (SELECT c.code, (a.idx + 1)::INTEGER AS first,
                          coalesce(d.idx, (SELECT max(idx) FROM {periods}))::INTEGER AS last,
                          d.idx IS NOT NULL AS declared
                   FROM {spells} AS s JOIN codes AS c USING (customer_id)
                   JOIN {periods} AS a ON a.ps = s.start_ps
                   LEFT JOIN {periods} AS d ON d.ps = s.declared_ps)
        -- one array per column, no NULL: kind 0 = spend (n), 1 = a range, 2 = a declared one;
        -- in no order (numpy sorts the spend rows' keys, faster than DuckDB sorts the rows)
        SELECT 0::TINYINT AS kind, code, idx AS a, -1::INTEGER AS b, spent AS n FROM coded
        UNION ALL SELECT 1 + declared::TINYINT, code, first, last, 0 FROM ranges"""
    first = {} if sorted_spend is not None else {
        "first": con.execute(f"SELECT min(ps) FROM {periods}").fetchone()[0]}
    ps = con.execute(f"SELECT ps FROM {periods} ORDER BY idx").df()["ps"]
    if customers is None or customers <= TIER_FETCH_CUSTOMERS:
        return _tier_counts([con.execute(sql, first).fetchnumpy()], ps, params["quantile"],
                            params["year"])
    table = f"_tier_rows_{uuid.uuid4().hex}"
    # sorted by code, so that each range's read skips the others' row groups (zonemaps)
    con.execute(f"CREATE TEMP TABLE {table} AS {sql} ORDER BY code", first)
    try:
        # a customer's spend and spells share its code: each range holds whole customers
        codes = con.execute(f"SELECT max(code) + 1 FROM {table}").fetchone()[0] or 0
        parts = (con.execute(f"SELECT * FROM {table} WHERE code >= ? AND code < ?",
                             [low, low + TIER_FETCH_CUSTOMERS]).fetchnumpy()
                 for low in range(0, codes, TIER_FETCH_CUSTOMERS))
        return _tier_counts(parts, ps, params["quantile"], params["year"])
    finally:
        con.execute(f"DROP TABLE {table}")


#: Customers whose value-tier rows are fetched at a time (:func:`_value_tiers`): below it,
#: all at once.
TIER_FETCH_CUSTOMERS = 1_000_000
#: Cells (customer x period) of the dense tables :func:`_file_base_rows` builds at once: each
#: costs about 10 bytes (running spend as int64, base and churn flags as bytes), so about
#: 40 MB a chunk; a million customers make about 38 million cells at monthly periods over
#: three years (10 chunks), four times as many at weekly ones.
TIER_CHUNK_CELLS = 4_000_000


def _tier_counts(parts: Iterable[dict], ps: pd.Series, quantile: float, year: int
                 ) -> pd.DataFrame:
    """:func:`_value_tiers`' arithmetic on its fetched rows (``parts``: dicts of arrays, each
    the spend per customer and period and the spell ranges of base periods of whole
    customers, in any order) for the periods starting on ``ps`` (in order).

    The customers are taken about :data:`TIER_CHUNK_CELLS` / periods at a time; each chunk
    gets dense tables by period and customer of the running spend (its cumulative sum along
    the periods: a base row's trailing year is the difference of two rows), of the base (a
    running count of spell ranges opened less closed) and of the churn flags; each period's
    base values and flags are then picked out by one mask. The counts do not depend on the
    rows' order: a period's quantile and counts are taken over the set of its base rows."""
    n_periods = len(ps)
    # each period's base values and churn flags, a piece per chunk of customers
    values: list[list[np.ndarray]] = [[] for _ in range(n_periods)]
    lost: list[list[np.ndarray]] = [[] for _ in range(n_periods)]
    for part in parts:
        _file_base_rows(part, n_periods, year, values, lost)
    rows = []
    for i in range(len(ps)):
        if not values[i]:
            continue
        period_values = np.concatenate(values[i])
        period_lost = np.concatenate(lost[i])
        values[i] = lost[i] = []
        # DuckDB's quantile_cont: linear between the order statistics
        high = period_values > np.quantile(period_values.astype(np.float64), quantile)
        for segment, chosen in (("high", high), ("low", ~high)):
            if chosen.any():
                rows.append((ps.iloc[i], "value_tier", segment, int(chosen.sum()),
                             int((period_lost & chosen).sum())))
    out = pd.DataFrame(rows, columns=["ps", "by", "segment", "active_start", "churned"])
    return out.astype({"ps": ps.dtype})


def _by_chunk(code: np.ndarray, low: int, step: int, n_chunks: int) -> tuple:
    """Positions of ``code`` grouped by chunk (``(code - low) // step``) and each chunk's
    bounds in them: a radix sort when the chunk numbers fit 16 bits (linear)."""
    if n_chunks == 1:
        return slice(None), np.array([0, len(code)])
    chunk = (code - low) // step
    chunk = chunk.astype(np.int16 if n_chunks < 2**15 else np.int64)
    order = np.argsort(chunk, kind="stable")
    return order, np.searchsorted(chunk[order], np.arange(n_chunks + 1))


def _file_base_rows(parts: dict, n_periods: int, year: int, values: list, lost: list) -> None:
    """One fetched part's base rows (customer x period) filed by period: each one's trailing
    year's value appended to ``values[period]`` and its churn flag to ``lost[period]``."""
    # each array is taken out of ``parts`` (and freed) once read
    kind = np.asarray(parts.pop("kind"))
    spends = kind == 0
    code = np.asarray(parts.pop("code"))        # 32-bit customer codes and period indexes
    first = np.asarray(parts.pop("a"))
    s_code, s_idx = code[spends], first[spends]
    s_spent = np.asarray(parts.pop("n"), np.int64)[spends]
    # the spell ranges that cover a period (a spell opened in the period it is declared in,
    # or in the last one, covers none): those of one customer are disjoint
    last = np.asarray(parts.pop("b"))
    ranges = ~spends & (first <= last)
    r_code, r_first, r_last = code[ranges], first[ranges], last[ranges]
    r_declared = kind[ranges] == 2
    del code, first, last, kind, spends, ranges
    if not len(r_code):
        return
    # the customers of the part (one without a range that covers a period still has spend)
    low = int(min(r_code.min(), s_code.min(initial=r_code.min())))
    high = int(max(r_code.max(), s_code.max(initial=r_code.max()))) + 1
    step = max(1, TIER_CHUNK_CELLS // (n_periods + 1))
    n_chunks = -(-(high - low) // step)
    s_order, s_bounds = _by_chunk(s_code, low, step, n_chunks)
    r_order, r_bounds = _by_chunk(r_code, low, step, n_chunks)
    # the trailing year's start row of each period: spend in the periods [i - year, i)
    since = np.maximum(np.arange(n_periods) - year, 0)
    for k in range(n_chunks):
        lo = low + k * step
        width = min(step, high - lo)
        mine = s_order[s_bounds[k]:s_bounds[k + 1]] if n_chunks > 1 else slice(None)
        # row i + 1 holds the chunk's customers' spend in period i, then the running sum
        # along the periods makes row i their spend before period i (exact integers)
        running = np.zeros((n_periods + 1, width), dtype=np.int64)
        running[s_idx[mine] + 1, s_code[mine] - lo] = s_spent[mine]
        np.cumsum(running, axis=0, out=running)
        mine = r_order[r_bounds[k]:r_bounds[k + 1]] if n_chunks > 1 else slice(None)
        column = r_code[mine] - lo
        # +1 where a range opens, -1 after it closes (a customer's ranges are disjoint, so
        # no two opens and no two closes share a cell); the running sum is 1 in the base
        base = np.zeros((n_periods + 1, width), dtype=np.int8)
        base[r_first[mine], column] = 1
        closes = r_last[mine] + 1
        base[closes, column] -= 1
        np.cumsum(base, axis=0, out=base)
        churned = np.zeros((n_periods, width), dtype=bool)
        declared = r_declared[mine]
        churned[r_last[mine][declared], column[declared]] = True
        del column, closes, declared
        for i in range(n_periods):
            members = base[i] != 0
            if not members.any():
                continue
            values[i].append((running[i] - running[since[i]])[members])
            lost[i].append(churned[i][members])


def _attribute_sql(spells: str, periods: str, attributes: str, columns) -> str:
    """Base and churners per period by each attribute's level, as kpi_table counts them:
    spells opened before a period's start less those declared before it, and the
    declarations in it; every attribute in one pass (the spells unpivoted by attribute)."""
    names = [f"_by_{i}" for i in range(len(columns))]
    levels = ", ".join(
        f"coalesce(CAST(a.{quote_ident(c)} AS VARCHAR), '(missing)') AS {n}"
        for c, n in zip(columns, names, strict=True))
    label = " ".join(f"WHEN '{n}' THEN '{c.replace(chr(39), chr(39) * 2)}'"
                     for c, n in zip(columns, names, strict=True))
    return f"""
        WITH wide AS (SELECT s.start_ps, s.declared_ps, {levels}
                      FROM {spells} AS s LEFT JOIN {quote_ident(attributes)} AS a
                      USING (customer_id)),
        tagged AS (UNPIVOT wide ON {", ".join(names)} INTO NAME attribute VALUE segment),
        moves AS (SELECT attribute, segment, start_ps AS ps, count(*) AS opened, 0 AS closed
                  FROM tagged GROUP BY ALL
                  UNION ALL
                  SELECT attribute, segment, declared_ps AS ps, 0, count(*) FROM tagged
                  WHERE declared_ps IS NOT NULL GROUP BY ALL),
        levels AS (SELECT DISTINCT attribute, segment FROM tagged),
        flow AS (SELECT p.idx, p.ps, l.attribute, l.segment, coalesce(sum(m.opened), 0) AS opened,
                        coalesce(sum(m.closed), 0) AS churned
                 FROM {periods} AS p CROSS JOIN levels AS l
                 LEFT JOIN moves AS m
                   ON m.ps = p.ps AND m.attribute = l.attribute AND m.segment = l.segment
                 GROUP BY ALL)
        SELECT ps, CASE attribute {label} END AS by, segment,
               coalesce(sum(opened - churned) OVER (PARTITION BY attribute, segment ORDER BY idx
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::BIGINT AS active_start,
               churned
        FROM flow"""


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

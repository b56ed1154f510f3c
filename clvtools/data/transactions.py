"""Reading a transaction log: validation, explicit policies, and purchase occasions.

The result, :class:`~.transaction_log.TransactionLog`, holds the clean log in DuckDB as the table
``occasions`` with one row per customer and day (``customer_id VARCHAR, date DATE,
amount DOUBLE, n_rows INTEGER``): transactions on the same day are one purchase occasion
and their amounts are summed, as in lifetimes. Every row read is either used or counted
under a named reason in :attr:`TransactionLog.quality`.
"""
from __future__ import annotations

import re
from dataclasses import asdict

import duckdb

from ..errors import ClvInputError
from .engine import connect, quote_ident, register_source, run_scope, source_label
from .money import MAX_AMOUNT, micro_units, money_sum
from .plausibility import bounds_from, bounds_sql
from .policies import DataPolicies
from .schema import (
    column_types,
    date_expr,
    has_offset_sql,
    id_expr,
    is_integer_type,
    number_expr,
    padded_id_sql,
    raise_if_rows,
    require_columns,
)
from .transaction_log import FINGERPRINT_DIGEST, TransactionLog, data_fingerprint, parse_date

__all__ = ["DataPolicies", "TransactionLog", "read_transactions", "parse_date", "data_fingerprint"]


def read_transactions(
    source,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    datetime_format: str | None = None,
    observation_end=None,
    policies: DataPolicies | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    summarise: bool = True,
    timezone: str = "UTC",
) -> TransactionLog:
    """Read, validate and summarise a transaction log into purchase occasions.

    Parameters
    ----------
    source : pandas.DataFrame, path, glob or list of paths
        CSV or Parquet file(s), or a DataFrame.
    customer_id_col, datetime_col, monetary_value_col : str
        Column names (lifetimes' names). ``monetary_value_col=None`` reads no amounts.
    datetime_format : str, optional
        strptime format of the date column, e.g. ``"%Y%m%d"``; ISO dates need none.
    observation_end : date-like, optional
        Last day of observation. Default: the last date in the data.
    policies : DataPolicies, optional
        Decisions about returns, zero amounts, duplicates and late rows.
    con : duckdb.DuckDBPyConnection, optional
        Connection to hold the tables; a new one by default.
    summarise : bool
        Build the day-level ``occasions`` table and its statistics (duplicates, same-day
        rows). Without it, ``log.occasions`` names a view of the valid rows (several a day
        possible), enough for an RFM summary, which merges days itself, and faster.
    timezone : str
        IANA time zone whose calendar days count (see :func:`.schema.date_expr`): dates
        with a UTC offset and time-zone-aware columns are converted to it.

    Returns
    -------
    TransactionLog

    Raises
    ------
    ClvInputError
        Missing column, empty file, unparsable date, non-numeric amount, missing id or
        date, rows after the observation end (unless dropped), no rows left.
    """
    policies = policies or DataPolicies()
    con = con or connect()
    label = source_label(source)
    files = register_source(con, source, "tx_source")
    types = column_types(con, "tx_source")
    wanted = {"customer_id_col": customer_id_col, "datetime_col": datetime_col}
    if monetary_value_col:
        wanted["monetary_value_col"] = monetary_value_col
    require_columns(types, wanted, label)

    raw_id = f"CAST({quote_ident(customer_id_col)} AS VARCHAR)"
    ts = date_expr(datetime_col, types[datetime_col], datetime_format, setting="datetime_col",
                   timezone=timezone)
    amount = (
        number_expr(monetary_value_col, types[monetary_value_col]) if monetary_value_col
        else "NULL"
    )
    # _key: the id the summaries group by, its text only where needed (customer_id): an
    # integer id's text is made once per customer instead of once per row
    key, integer_ids = quote_ident(customer_id_col), is_integer_type(types[customer_id_col])

    def parse(strip: bool) -> None:
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW tx_parsed AS
            SELECT _file, _line,
                   {id_expr(customer_id_col, types[customer_id_col], strip=strip)} AS customer_id,
                   {raw_id} AS _raw_id, {ts} AS ts, CAST({amount} AS DOUBLE) AS amount,
                   {key if integer_ids else id_expr(customer_id_col, types[customer_id_col],
                                                    strip=strip)} AS _key,
                   {quote_ident(datetime_col)} AS _raw_date,
                   {quote_ident(monetary_value_col) if monetary_value_col else "NULL"}
                   AS _raw_amount
            FROM tx_source""")

    # One scan for the plausible window, padded ids and the counts that need no bound: ids are
    # stripped (a cost on every later scan) only in a log that has some. The text of an
    # integer id is never blank nor padded: its checks look at the number, not at its text.
    parse(strip=False)
    offsets = (has_offset_sql("trim(CAST(_raw_date AS VARCHAR))")
               if types[datetime_col].upper() == "VARCHAR" and not datetime_format else "FALSE")
    # A blank id sorts before '!': this cheap test also flags ids that merely start with a
    # space or a control character, which the detailed check then lets pass.
    problems = ("_key IS NULL" if integer_ids else "customer_id IS NULL OR customer_id < '!'")
    problems += " OR ts IS NULL" + (" OR amount IS NULL" if monetary_value_col else "")
    # Only whether a row has a problem matters here (the detailed check says which): with
    # integer ids that is a missing value, which count(column) finds from the null masks
    # without evaluating a condition per row.
    any_problem = (f"count(*) * 3 - count(_key) - count(ts) - "
                   f"{'count(amount)' if monetary_value_col else 'count(*)'}"
                   if integer_ids else f"count(*) FILTER (WHERE {problems})")
    # a sign that a policy keeps excludes nothing: its rows are not counted (the zero
    # amounts by default, and both in lifetimes' summaries)
    signs = ", ".join(
        f"count(*) FILTER (WHERE {cond})" if monetary_value_col and policy != "keep" else "0"
        for cond, policy in (("amount < 0", policies.negative_amounts),
                             ("amount = 0", policies.zero_amounts)))
    day_counts, median, largest, padded, rows_read, n_problems, with_offset, *signed = \
        con.execute(
            f"SELECT {bounds_sql(bool(monetary_value_col))}, "
            f"count(*) FILTER (WHERE {'FALSE' if integer_ids else padded_id_sql('customer_id')}),"
            f" count(*), {any_problem}, count(*) FILTER (WHERE {offsets}), "
            f"{signs} FROM (SELECT _key, customer_id, ts, amount, _raw_date FROM tx_parsed "
            "OFFSET 0)").fetchone()
    if padded:
        parse(strip=True)
    bounds = bounds_from(day_counts, median, largest, date_window=policies.date_window,
                         amount_outlier_factor=policies.amount_outlier_factor)
    given_end = None if observation_end is None else parse_date(observation_end, "observation_end")
    implausible = bounds.date_condition("ts::DATE")
    # Exclusion rules in the order they apply: each row is counted under the first that excludes
    # it.
    rules = policies.exclusion_rules(bounds, given_end, has_amounts=bool(monetary_value_col),
                                     day="ts::DATE")
    counts, prior = [], []
    for _name, cond, policy, _problem, _advice in rules:
        counts.append(f"count(*) FILTER (WHERE {' AND '.join(prior + [cond])})")
        if policy != "keep":
            prior.append(f"NOT ({cond})")
    # In a log without padded ids, implausible dates or amounts and a given observation end
    # (most logs), the first scan's counts are the exclusions (the sign rules, disjoint, are
    # all that can apply) and the last plausible day is the last day. Otherwise one more scan
    # counts every problem and every exclusion; the detailed (slower) error queries run only
    # on failure.
    stripped = "customer_id <> _raw_id" if padded else "FALSE"
    if not (padded or bounds.dates_outside or bounds.amounts_above or given_end):
        last_date, ids_trimmed = (max(day_counts) if day_counts else None), 0
        found = [0, 0, *signed, 0] if monetary_value_col else [0, 0]
    else:
        rows_read, n_problems, last_date, ids_trimmed, with_offset, *found = \
            con.execute(f"""SELECT count(*), count(*) FILTER (WHERE {problems}),
            max(ts) FILTER (WHERE NOT {implausible})::DATE,
            count(*) FILTER (WHERE {stripped}), count(*) FILTER (WHERE {offsets}),
            {', '.join(counts)}
        -- OFFSET 0 keeps the parsed columns computed once per row: DuckDB would otherwise parse
        -- the dates and amounts again for each FILTER that names them (three times slower)
        FROM (SELECT _key, customer_id, _raw_id, ts, amount, _raw_date FROM tx_parsed OFFSET 0)
        """).fetchall()[0]
    if rows_read == 0:
        raise ClvInputError(
            "The transaction log has no data rows.", source=label,
            advice="Check the export that wrote it.",
        )
    if n_problems:
        _check_parsed(con, label, customer_id_col, datetime_col, monetary_value_col,
                      datetime_format)
    obs_end = given_end or last_date
    date_col = f"_raw_date AS {quote_ident(datetime_col)}"
    excluded: dict[str, int] = {}
    keep: list[str] = []
    for (name, cond, policy, problem, advice), n in zip(rules, found, strict=True):
        if policy == "error" and n:
            raise_if_rows(
                con, "tx_parsed", " AND ".join(keep + [cond]), problem=problem, source=label,
                column=datetime_col if name.endswith("_dates") or name.startswith("after")
                else monetary_value_col,
                show=["customer_id", date_col] + (["amount"] if monetary_value_col else []),
                advice=advice,
            )
        if policy != "keep":
            excluded[name] = int(n)
            if n:  # a condition no row meets would cost every later scan for nothing
                keep.append(f"NOT ({cond})")

    if monetary_value_col and (largest or 0) >= MAX_AMOUNT:
        # money is summed in micro-units (money.py): a figure this large is an export's slip
        raise_if_rows(
            con, "tx_parsed", " AND ".join(keep + [f"abs(amount) >= {MAX_AMOUNT!r}"]),
            problem=f"Amounts are {MAX_AMOUNT:.0e} or more in absolute value.", source=label,
            column=monetary_value_col, show=["customer_id", date_col, "amount"],
            advice="Correct these amounts, or set amount_outliers = 'drop' to exclude them "
                   "(counted in data_quality.json).")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW tx_kept AS SELECT *, ts::DATE AS date, 1 AS n_rows "
        f"FROM tx_parsed WHERE {' AND '.join(keep) or 'TRUE'}"
    )
    reading = {"ids_stripped": int(ids_trimmed),
               "timezone": {"setting": timezone, "rows_with_utc_offset": int(with_offset)},
               "plausible": bounds.as_dict()}
    if not summarise:
        quality = {"source": label, "files": files, "rows_read": int(rows_read),
                   "excluded_by_reason": excluded, "observation_end": obs_end.isoformat(),
                   **reading}
        return TransactionLog(con, "tx_kept", obs_end, monetary_value_col is not None, quality,
                              one_row_per_day=False)
    # summed exactly in micro-units (money.py): the same day's amounts give the same total in
    # any order, so a run is reproducible to the last bit whatever DuckDB's threads do, and
    # equal to Spark's (spark_engine.py)
    # grouped by _key: an integer id is hashed as a number and made text once per occasion
    con.execute(
        f"""CREATE OR REPLACE {run_scope(con)}TABLE occasions AS
        SELECT CAST(_key AS VARCHAR) AS customer_id, date, amount, n_rows FROM (
            SELECT _key, ts::DATE AS date, {money_sum('amount')} AS amount,
                   count(*)::INTEGER AS n_rows
            FROM tx_kept GROUP BY _key, ts::DATE)"""
    )
    # Exact duplicates share a day, so only the (rare) days with several rows need a closer
    # look; they are matched on _key (the text of an integer id is made for those rows only).
    days_key = (f"CAST(customer_id AS {types[customer_id_col]})" if integer_ids
                else "customer_id")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE duplicate_groups AS
        SELECT customer_id, ts, amount, extra FROM (
            SELECT _key, any_value(customer_id) AS customer_id, ts, amount,
                   count(*) - 1 AS extra FROM tx_kept
            WHERE (_key, ts::DATE) IN (SELECT ({days_key}, date) FROM occasions
                                       WHERE n_rows > 1)
            GROUP BY _key, ts, amount HAVING count(*) > 1)"""
    )
    duplicates = con.execute(
        "SELECT coalesce(sum(extra), 0) FROM duplicate_groups"
    ).fetchall()[0][0]
    if duplicates and policies.duplicate_rows == "error":
        raise_if_rows(
            con, "tx_kept",
            "(customer_id, ts, amount) IN (SELECT (customer_id, ts, amount) FROM duplicate_groups)",
            problem="Some rows are exact duplicates (same customer, time and amount).",
            source=label, column=None, show=["customer_id", date_col, "amount"],
            advice="Set duplicate_rows = 'drop' to keep one of each or 'keep' to count each.",
        )
    if duplicates and policies.duplicate_rows == "drop":
        con.execute(
            # in micro-units, so that the day's total is the exact sum of the rows kept
            f"""UPDATE occasions o
            SET amount = CAST({micro_units('o.amount')} - d.micro AS DOUBLE) / 1e6,
                n_rows = o.n_rows - d.extra
            FROM (SELECT customer_id, ts::DATE AS date, sum({micro_units('amount')} * extra)
                         AS micro, sum(extra)::INTEGER AS extra
                  FROM duplicate_groups GROUP BY ALL) d
            WHERE o.customer_id = d.customer_id AND o.date = d.date"""
        )
    if policies.duplicate_rows == "drop":
        excluded["duplicate_rows"] = int(duplicates)
    # stored in customer order: every later GROUP BY customer_id and ORDER BY customer_id,
    # date over it is cheaper on rows stored in that order (at a million customers the RFM
    # summary 1.0 -> 0.45 s, the sorted occasions' fetch 2.3 -> 1.4 s); sorted from the
    # table, not in its CREATE, which cost 0.6 s more
    con.execute(f"CREATE OR REPLACE {run_scope(con)}TABLE occasions AS "
                "SELECT * FROM occasions ORDER BY customer_id, date")

    # the fingerprint's digest (transaction_log.data_fingerprint) rides on the same scan
    stats = con.execute(
        "SELECT count(*), sum(n_rows), count(DISTINCT customer_id), min(date), max(date), "
        "count(*) FILTER (WHERE n_rows > 1), sum(n_rows - 1), "
        f"{FINGERPRINT_DIGEST} FROM occasions"
    ).fetchall()[0]
    n_occasions, rows_used, n_customers, first, last, multi_days, merged, digest = stats
    rows_used = int(rows_used or 0)
    if n_occasions == 0:
        raise ClvInputError(
            "No transactions are left after filtering "
            f"({', '.join(f'{k}: {v:,}' for k, v in excluded.items() if v) or 'none excluded'}).",
            source=label,
            advice="Check observation_end and the policies for negative and zero amounts.",
        )
    if multi_days and policies.same_day == "error":
        raise_if_rows(
            con, "tx_kept",
            "(customer_id, ts::DATE) IN "
            "(SELECT (customer_id, date) FROM occasions WHERE n_rows > 1)",
            problem="Some customers have several transactions on one day.",
            source=label, column=datetime_col,
            show=["customer_id", f"_raw_date AS {quote_ident(datetime_col)}", "amount"],
            advice="Set same_day = 'combine' to treat them as one purchase occasion "
            "(amounts summed).",
        )
    excluded = {k: int(v) for k, v in excluded.items()}
    lost_customers = _lost_customers(con, keep) if keep and any(excluded.values()) else 0
    # Whatever is neither used nor excluded by a policy would be a silent loss: refuse it.
    assert rows_read == rows_used + sum(excluded.values()), (rows_read, rows_used, excluded)
    quality = {
        "source": label,
        "files": files,
        "columns": {
            "customer_id": customer_id_col, "date": datetime_col, "amount": monetary_value_col
        },
        "rows_read": int(rows_read),
        "rows_used": rows_used,
        "rows_excluded": sum(excluded.values()),
        "excluded_by_reason": excluded,
        "duplicate_rows_found": int(duplicates),
        "duplicate_rows_policy": policies.duplicate_rows,
        "same_day_rows_combined": int(merged or 0),
        "customers": int(n_customers),
        # customers all of whose rows were left out (refunds only, implausible dates, ...)
        "customers_excluded": lost_customers,
        "customers_read": int(n_customers) + lost_customers,
        **reading,
        "purchase_occasions": int(n_occasions),
        "first_date": first.isoformat(),
        "last_date": last.isoformat(),
        "observation_end": obs_end.isoformat(),
        "policies": asdict(policies),
    }
    log = TransactionLog(con, "occasions", obs_end, monetary_value_col is not None, quality)
    log.derived[FINGERPRINT_DIGEST] = digest
    return log


def _lost_customers(con, keep: list[str]) -> int:
    """Customers every row of whom a policy left out (``keep``: the conditions of a kept row)."""
    return int(con.execute(
        f"""SELECT count(*) FROM (SELECT DISTINCT customer_id FROM tx_parsed
                                  WHERE NOT ({' AND '.join(keep)})) AS e
            ANTI JOIN (SELECT DISTINCT customer_id FROM occasions) AS o USING (customer_id)"""
    ).fetchone()[0])


def _check_parsed(con, label, customer_id_col, datetime_col, monetary_value_col, datetime_format):
    """Missing ids and dates, unparsable dates and amounts are errors: the user must decide."""
    cid, dcol = quote_ident(customer_id_col), quote_ident(datetime_col)
    raw = "tx_source"
    raise_if_rows(
        con, "tx_parsed", "customer_id IS NULL OR customer_id = ''",
        problem="Customer ids are missing.", source=label, column=customer_id_col,
        show=[f"_raw_id AS {cid}", f"_raw_date AS {dcol}"],
        advice="Remove these rows or fill in their customer id.",
    )
    raise_if_rows(
        con, raw, f"{dcol} IS NULL",
        problem="Dates are missing.", source=label, column=datetime_col,
        show=[cid, dcol], advice="Remove these rows or fill in their date.",
    )
    fmt_hint = (
        f"Check the dates against datetime_format {datetime_format!r}."
        if datetime_format
        else "Give datetime_format (for example '%Y%m%d' or '%d/%m/%Y') if the dates are not ISO "
        "(2024-12-31 or 2024-12-31 13:45:00)."
    )
    raise_if_rows(
        con, "tx_parsed", "ts IS NULL",
        problem="Dates could not be parsed.", source=label, column=datetime_col,
        show=[f"customer_id AS {cid}", f"_raw_date AS {dcol}"], advice=fmt_hint,
    )
    if monetary_value_col:
        mcol = quote_ident(monetary_value_col)
        raise_if_rows(
            con, "tx_parsed", "amount IS NULL",
            problem="Amounts are missing or not numbers.", source=label, column=monetary_value_col,
            show=[f"customer_id AS {cid}", f"_raw_amount AS {mcol}"],
            advice=_amount_advice(con, mcol),
        )


def _amount_advice(con, mcol: str) -> str:
    """What to do about amounts that are not numbers, from what the first of them look like."""
    values = [str(v).strip() for (v,) in con.execute(
        "SELECT _raw_amount FROM tx_parsed WHERE amount IS NULL AND _raw_amount IS NOT NULL "
        "ORDER BY _file, _line LIMIT 20").fetchall()]
    seen = []
    if any(re.fullmatch(r"-?\d+,\d{1,2}", v) for v in values):
        seen.append("decimal commas (12,50: write 12.50)")
    if any(re.search(r"\d[,.' ]\d{3}([,.]|$)", v) for v in values):
        seen.append("thousands separators (1,250.00: write 1250.00)")
    if any(re.search(r"[^\d.,+\-eE\s]", v) and re.search(r"\d", v) for v in values):
        seen.append("currency signs or units (EUR 12.50 or $12.50: write 12.50)")
    if any(v.lower().lstrip("+-") in ("nan", "inf", "infinity") for v in values):
        seen.append("NaN or infinite values (fix or remove these rows)")
    found = f"The amounts hold {'; '.join(seen)}. " if seen else ""
    return (found + "Amounts must be plain numbers with a point as the decimal mark, such as "
            "12.50 (in Excel: format the column as a number without a currency or thousands "
            "separator before saving as CSV). Fix or remove these rows, or run without an "
            "amount column (monetary_value_col = \"\").")

"""Contracts beside a transaction log: reading them, and their durations with competing end
reasons.

:func:`read_contracts` validates a contracts table (one row per contract) into the DuckDB
table ``contracts`` (``customer_id, start, "end", end_reason``) on the log's connection;
:func:`contract_table` turns it into durations, censored at the log's observation end, for
a competing-risks model.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import ClvInputError
from ..units import unit_days
from .engine import quote_ident, register_source, run_scope, source_label
from .schema import (
    check_date,
    check_table,
    column_types,
    date_expr,
    id_expr,
    match_customers,
    raise_if_no_match,
    raise_if_rows,
    require_columns,
)
from .transactions import TransactionLog

__all__ = ["Contracts", "read_contracts", "contract_table"]


@dataclass(frozen=True)
class Contracts:
    """Validated contracts held in DuckDB.

    Attributes
    ----------
    table : str
        Table on the log's connection with ``customer_id VARCHAR, start DATE, "end" DATE
        NULL, end_reason VARCHAR NULL`` (NULL end: running; NULL reason: not ended), one row
        per contract, sorted by customer_id then start.
    quality : dict
        ``{"source", "rows_read", "contracts", "ended", "reasons": {reason: count},
        "unspecified_reasons": n, "matching": {...}}``; ``matching`` counts the customers
        found in only one of the transactions and the contracts.
    """

    table: str
    quality: dict


def read_contracts(
    log: TransactionLog,
    source,
    *,
    customer_id_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    reason_col: str | None = "end_reason",
    datetime_format: str | None = None,
    timezone: str = "UTC",
) -> Contracts:
    """Read and validate contracts (one row per contract) beside a transaction log.

    A contract without an end is running. An end without a reason gets the reason
    ``"unspecified"`` (counted in the quality summary).

    Parameters
    ----------
    log : TransactionLog
        The transactions: its connection holds the table, its customers are matched.
    source : pandas.DataFrame, path or glob
        The contracts (CSV or Parquet).
    customer_id_col, start_col, end_col : str
        Column names; ends may be empty (running contracts).
    reason_col : str, optional
        Column of end reasons; None when the table has none (every end "unspecified").
    datetime_format : str, optional
        strptime format of the start and end columns; ISO dates need none.
    timezone : str
        Time zone whose calendar days count, as for the transactions.

    Returns
    -------
    Contracts
        The table ``contracts`` and the quality summary (see :class:`Contracts`).

    Raises
    ------
    ClvInputError
        Missing column, empty table, missing id, unparsable start or end, end before start.
    """
    con = log.con
    label = source_label(source)
    register_source(con, source, "contracts_source")
    types = column_types(con, "contracts_source")
    wanted = {"customer_id_col": customer_id_col, "start_col": start_col, "end_col": end_col}
    if reason_col:
        wanted["reason_col"] = reason_col
    require_columns(types, wanted, label)
    n = con.execute("SELECT count(*) FROM contracts_source").fetchall()[0][0]
    if not n:
        raise ClvInputError("The contracts table has no data rows.", source=label,
                            advice="Check the export that wrote it, or run without --contracts.")
    s, e = quote_ident(start_col), quote_ident(end_col)
    key = id_expr(customer_id_col, types[customer_id_col])  # as the transactions' ids
    start = date_expr(start_col, types[start_col], datetime_format, setting="start_col",
                      timezone=timezone)
    end = date_expr(end_col, types[end_col], datetime_format, setting="end_col",
                    timezone=timezone)
    reason = f"CAST({quote_ident(reason_col)} AS VARCHAR)" if reason_col else "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW contracts_parsed AS SELECT _file, _line,
        {key} AS customer_id, {start}::DATE AS start, {end}::DATE AS "end",
        {reason} AS end_reason, {s} AS _raw_start, {e} AS _raw_end FROM contracts_source"""
    )
    hint = f"Check the dates against datetime_format {datetime_format!r}." if datetime_format else (
        "Give datetime_format if the dates are not ISO (2024-12-31).")
    raise_if_rows(con, "contracts_parsed", "customer_id IS NULL OR trim(customer_id) = ''",
                  problem="Customer ids are missing.", source=label, column=customer_id_col,
                  show=["customer_id", f"_raw_start AS {s}"],
                  advice="Remove these rows or fill in the id.")
    raise_if_rows(con, "contracts_parsed", "start IS NULL",
                  problem="Contract starts are missing or could not be parsed.", source=label,
                  column=start_col, show=["customer_id", f"_raw_start AS {s}"], advice=hint)
    raise_if_rows(con, "contracts_parsed",
                  '"end" IS NULL AND _raw_end IS NOT NULL '
                  'AND trim(CAST(_raw_end AS VARCHAR)) <> \'\'',
                  problem="Contract ends could not be parsed.", source=label, column=end_col,
                  show=["customer_id", f"_raw_end AS {e}"],
                  advice=hint + " Leave the end empty for running contracts.")
    raise_if_rows(con, "contracts_parsed", '"end" < start',
                  problem="Contracts end before they start.", source=label, column=end_col,
                  show=["customer_id", f"_raw_start AS {s}", f"_raw_end AS {e}"],
                  advice="Correct the dates, or swap start and end if the columns are mixed up.")
    # checked here, before any model runs, rather than when the durations are computed
    raise_if_rows(con, "contracts_parsed", f"start > DATE '{log.observation_end.isoformat()}'",
                  problem=f"Contracts start after the observation end {log.observation_end}.",
                  source=label, column=start_col, show=["customer_id", f"_raw_start AS {s}"],
                  advice="Drop them, or move the 'observation_end' setting later.")
    con.execute(
        f"""CREATE OR REPLACE {run_scope(con)}TABLE contracts AS SELECT customer_id, start, "end",
        CASE WHEN "end" IS NOT NULL THEN coalesce(nullif(trim(end_reason), ''), 'unspecified') END
            AS end_reason
        FROM contracts_parsed ORDER BY customer_id, start"""
    )
    reasons = dict(con.execute(
        'SELECT end_reason, count(*) FROM contracts WHERE "end" IS NOT NULL GROUP BY 1 ORDER BY 1'
    ).fetchall())
    unspecified = con.execute(
        "SELECT count(*) FROM contracts_parsed WHERE \"end\" IS NOT NULL AND "
        "(end_reason IS NULL OR trim(end_reason) = '')"
    ).fetchall()[0][0]
    quality = {
        "source": label, "rows_read": int(n), "contracts": int(n),
        "ended": int(sum(reasons.values())),
        "reasons": {str(k): int(v) for k, v in reasons.items()},
        "unspecified_reasons": int(unspecified),
        # the key names follow the table's name: only_in_contracts, examples_only_in_contracts
        "matching": match_customers(con, log.customer_ids(), "contracts"),
    }
    raise_if_no_match(quality["matching"], "contracts", label, customer_id_col)
    return Contracts("contracts", quality)


def contract_table(
    log: TransactionLog,
    contracts: Contracts,
    *,
    time_unit: str = "week",
) -> pd.DataFrame:
    """Durations and competing end reasons from contracts.

    Parameters
    ----------
    log : TransactionLog
        Its connection holds the contracts; a contract with no end, or one ending after its
        observation end, is censored there.
    contracts : Contracts
        From :func:`read_contracts`, or any table with ``customer_id VARCHAR, start DATE,
        "end" DATE NULL, end_reason VARCHAR NULL`` (one row per contract) named in
        ``Contracts.table``.
    time_unit : {"day", "week", "month"}
        Unit of ``duration``.

    Returns
    -------
    pandas.DataFrame
        One row per contract, sorted by customer_id then start: ``customer_id``,
        ``start``, ``end`` (as given, datetime64), ``duration`` (float, time units, from start
        to the end or to the observation end), ``event`` (int, 1 = ended on or before the
        observation end), ``event_type`` (int, 0 = censored, 1..k = reason code) and
        ``end_reason`` (NULL when censored; ``"unspecified"`` when an observed end has no
        reason). Reason codes are numbered 1..k in alphabetical order of the reasons; the
        mapping code -> reason is also in ``table.attrs["reason_codes"]`` (a dict; pandas may
        drop ``attrs`` in later operations, the ``end_reason`` column keeps it row by row).
    """
    con, table = log.con, contracts.table
    observation_end = check_date(log.observation_end, "observation_end")
    check_table(con, table, ["customer_id", "start", "end", "end_reason"], "contracts",
                dates=["start", "end"])
    q = quote_ident(table)
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
            # the file the user gave, not the table's name, where the contracts came from one
            raise ClvInputError(problem, source=contracts.quality.get("source", table),
                                column=column, rows=rows, n_rows=n,
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
    out = con.execute(sql, params).df()
    events = out[out["event"] == 1]
    pairs = set(zip(events["event_type"], events["end_reason"], strict=True))
    out.attrs["reason_codes"] = {int(k): str(r) for k, r in sorted(pairs)}
    return out

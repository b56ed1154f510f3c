"""RFM summaries (lifetimes' conventions) as one SQL implementation in DuckDB.

``frequency`` is the number of repeat purchase periods, ``recency`` the time from the first
to the last purchase, ``T`` the time from the first purchase to the observation end, and
``monetary_value`` the mean value of the repeat purchases (0 without repeats), all in the
chosen time unit. A *period* is one day for clvtools' own summaries (so that a week-based
summary has fractional weeks, as the published CDNOW summary does); lifetimes' ``freq``
argument may make it a calendar week or month, and the same SQL then truncates dates.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from ..errors import ClvInputError
from ..units import unit_days
from .engine import fetch_frame
from .money import micro_units, money, money_sum
from .schema import check_date
from .transactions import TransactionLog, parse_date

__all__ = [
    "rfm_summary", "calibration_and_holdout", "purchases_by_period", "revenue_by_customer",
    "rfm_query", "holdout_query",
]

#: Period grains DuckDB's date_trunc understands.
GRAINS = ("day", "week", "month")


def _period(date: dt.date, grain: str) -> str:
    return f"date_trunc('{grain}', DATE '{date.isoformat()}')::DATE"


def rfm_query(
    occasions: str,
    *,
    observation_end: dt.date,
    grain: str = "day",
    days_per_unit: float = 1.0,
    multiplier: float = 1.0,
    include_first_transaction: bool = False,
    with_monetary: bool = True,
    last_day: dt.date | None = None,
    one_row_per_day: bool = False,
) -> str:
    """SQL for the RFM summary of a table of purchases.

    Parameters
    ----------
    occasions : str
        Table with ``customer_id, date, amount``: day-level occasions (see
        :class:`TransactionLog`) or raw rows, several a day.
    observation_end : datetime.date
        Purchases after its period are ignored; ``T`` runs to its period's start.
    grain : {"day", "week", "month"}
        Purchases within one period are one purchase (amounts summed).
    days_per_unit : float
        Length of the output time unit in days (7 for weeks).
    multiplier : float
        lifetimes' ``freq_multiplier``: times are divided by it after the unit conversion
        (two divisions, in lifetimes' order, so that results agree to the last bit).
    include_first_transaction : bool
        As in lifetimes: count the first purchase in ``frequency`` and ``monetary_value``.
    with_monetary : bool
        Add ``monetary_value``.
    last_day : datetime.date, optional
        Also ignore purchases after this day, even within the observation end's period
        (a calibration window ends on its day, as in lifetimes).
    one_row_per_day : bool
        ``occasions`` holds at most one row per customer and day (a summarised log's
        occasions, :attr:`TransactionLog.one_row_per_day`): with ``grain="day"`` each row is
        then a period, and one aggregation with fixed-size states per customer gives the
        summary (about a third of the lists' CPU time on 9.1M occasions of 1M customers, the
        same figures bit for bit).
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, got {grain!r}")
    end = _period(observation_end, grain)
    cut = f" AND date <= DATE '{last_day.isoformat()}'" if last_day else ""
    period = "date" if grain == "day" else f"date_trunc('{grain}', date)::DATE"
    first = "" if include_first_transaction else " - 1"
    unit = f"{float(days_per_unit)!r} / {float(multiplier)!r}"
    if not with_monetary:
        monetary = ""
    elif include_first_transaction:
        monetary = ", total / n_periods AS monetary_value"
    else:
        # Mean over the repeat periods: the total less the first period's amount, over the
        # repeats. When every row is in a period of its own, the first period's amount is that
        # of the row holding the first period; otherwise the first period's rows are summed.
        first_amount = (
            "first_amount" if grain == "day" and one_row_per_day else
            "CASE WHEN n_periods = n_rows THEN amounts[list_position(periods, first_period)] "
            "ELSE list_sum(list_transform(list_filter(amounts, lambda a, i: periods[i] = "
            f"first_period), lambda a: {micro_units('a')})) / 1e6 END")
        monetary = (f", coalesce((total - {first_amount}) / nullif(n_periods - 1, 0), 0) "
                    "AS monetary_value")
    summary = f"""
        SELECT customer_id,
               (n_periods{first})::DOUBLE AS frequency,
               datediff('day', first_period, last_period) / {unit} AS recency,
               datediff('day', first_period, {end}) / {unit} AS T
               {monetary}"""
    if grain == "day" and one_row_per_day:
        # each row a period: one aggregation with fixed-size states per customer (a third of
        # the lists' CPU time on 9.1M occasions of 1M customers, the same figures bit for bit;
        # the days being distinct, the first day's amount is one row's)
        return f"""
        WITH customers AS (
            SELECT customer_id, count(*) AS n_periods, min(date) AS first_period,
                   max(date) AS last_period, {money_sum('amount')} AS total,
                   arg_min(amount, date) AS first_amount
            FROM {occasions}
            WHERE date <= {end}{cut}
            GROUP BY customer_id
        ){summary}
        FROM customers ORDER BY customer_id"""
    # One aggregation per customer, collecting its periods and amounts as two lists, instead of
    # a first aggregation per customer and day: several times faster on logs of millions of
    # rows (1M lists, not 8M groups), and it accepts raw rows and day-level occasions alike.
    # Both lists are filled by the same aggregation from the same rows, so they stay aligned
    # (the CDNOW and 8M-row benchmark comparisons with lifetimes check the monetary values).
    # The row count and the first and last periods come from the lists, not from aggregates of
    # their own (fewer aggregate states: a tenth faster on 8M rows). Distinct periods are
    # counted on the sorted list (a period differing from the one before it), twice as fast
    # in DuckDB as list_distinct, which hashes every list. Amounts are summed exactly, in
    # micro-units (money.py): a plain parallel sum of doubles adds a customer's amounts in
    # whatever order the threads meet them, so that two runs on the same data differed in the
    # last bit (and Gamma-Gamma's flat likelihood turned that into 1e-7 in its variance).
    amounts = (
        ", list(amount) AS amounts"
        if with_monetary and not include_first_transaction else ""
    )
    return f"""
        WITH customers AS (
            SELECT customer_id, list({period}) AS periods{amounts},
                   {money_sum('amount')} AS total
            FROM {occasions}
            WHERE {period} <= {end}{cut}
            GROUP BY customer_id
        ), sorted AS (
            SELECT *, list_sort(periods) AS sorted_periods FROM customers
        ), counted AS (
            SELECT *, len(periods) AS n_rows, sorted_periods[1] AS first_period,
                   sorted_periods[-1] AS last_period,
                   1 + len(list_filter(sorted_periods,
                                       lambda p, i: i > 1 AND p <> sorted_periods[i - 1]))
                   AS n_periods
            FROM sorted
        ){summary}
        FROM counted ORDER BY customer_id"""


def holdout_query(
    occasions: str,
    *,
    calibration_end: dt.date,
    observation_end: dt.date,
    grain: str = "day",
    with_monetary: bool = True,
    with_revenue: bool = False,
    one_row_per_day: bool = False,
) -> str:
    """SQL for the holdout columns: purchase periods and mean transaction value after the cut-off.

    As in lifetimes, ``monetary_value_holdout`` is the mean of the individual transactions
    (not of the purchase periods) in the holdout window; ``occasions.n_rows`` keeps that count.
    ``with_revenue``: and ``revenue_holdout``, :func:`revenue_by_customer`'s sum (DOUBLE).
    ``one_row_per_day`` (as :func:`rfm_query`'s): with ``grain="day"`` the purchase days are
    the rows, counted without DISTINCT's hash set per customer (a third of the query's CPU
    time on the 1M-customer benchmark log's holdout, the same counts).
    """
    periods = ("count(*)" if grain == "day" and one_row_per_day
               else f"count(DISTINCT date_trunc('{grain}', date))")
    monetary = (f", {money_sum('amount')} / sum(n_rows) AS monetary_value_holdout"
                if with_monetary else "")
    if with_revenue:
        monetary += f", {_revenue(with_monetary)}::DOUBLE AS revenue_holdout"
    return f"""
        SELECT customer_id,
               {periods}::DOUBLE AS frequency_holdout
               {monetary}
        FROM {occasions}
        WHERE date > DATE '{calibration_end.isoformat()}'
          AND date <= DATE '{observation_end.isoformat()}'
        GROUP BY customer_id"""


def rfm_summary(
    log: TransactionLog,
    *,
    time_unit: str = "week",
    observation_end=None,
    include_first_transaction: bool = False,
) -> pd.DataFrame:
    """RFM summary of a transaction log, one row per customer.

    Parameters
    ----------
    log : TransactionLog
    time_unit : {"day", "week", "month"}
        Unit of ``recency`` and ``T``. Purchases are whole days; a week is 7 days.
    observation_end : date-like, optional
        Default: the log's observation end. Purchases after it are ignored.
    include_first_transaction : bool
        Count the first purchase too (lifetimes' option).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (str, as given), columns ``frequency``, ``recency``,
        ``T`` (float, time units) and ``monetary_value`` when the log has amounts.
    """
    end = (
        log.observation_end if observation_end is None
        else parse_date(observation_end, "observation_end")
    )
    sql = rfm_query(
        log.occasions,
        observation_end=end,
        days_per_unit=unit_days(time_unit),
        include_first_transaction=include_first_transaction,
        with_monetary=log.has_amounts,
        one_row_per_day=log.one_row_per_day,
    )
    return fetch_frame(log.con, sql)


def calibration_and_holdout(
    log: TransactionLog,
    calibration_end,
    *,
    time_unit: str = "week",
    observation_end=None,
    grain: str = "day",
    days_per_unit: float | None = None,
    multiplier: float = 1.0,
    include_first_transaction: bool = False,
) -> pd.DataFrame:
    """RFM in a calibration window and purchases in the holdout window after it.

    Parameters
    ----------
    log : TransactionLog
    calibration_end : date-like
        Last day of the calibration window.
    time_unit : {"day", "week", "month"}
        Unit of the result (ignored when ``days_per_unit`` is given).
    observation_end : date-like, optional
        Last day of the holdout window; default the log's observation end.
    grain : {"day", "week", "month"}
        Purchase period (lifetimes' ``freq``); clvtools' own summaries use days.
    days_per_unit : float, optional
        Output unit in days, overriding ``time_unit``.
    multiplier : float
        lifetimes' ``freq_multiplier``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``frequency_cal``, ``recency_cal``, ``T_cal``,
        (``monetary_value_cal``), ``frequency_holdout``, (``monetary_value_holdout``),
        ``duration_holdout``, for every customer with a purchase by the cut-off.
    """
    cal_end = parse_date(calibration_end, "calibration_end")
    obs_end = (
        log.observation_end if observation_end is None
        else parse_date(observation_end, "observation_end")
    )
    if cal_end >= obs_end:
        raise ClvInputError(
            f"The calibration end {cal_end} must be before the observation end {obs_end}.",
            advice="Choose a calibration end inside the data, leaving a holdout window after it.",
        )
    days = unit_days(time_unit) if days_per_unit is None else days_per_unit
    con = log.con
    cal = fetch_frame(con, rfm_query(
        log.occasions, observation_end=cal_end, grain=grain, days_per_unit=days,
        multiplier=multiplier, include_first_transaction=include_first_transaction,
        with_monetary=log.has_amounts, last_day=cal_end, one_row_per_day=log.one_row_per_day,
    ))
    if cal.empty:
        raise ClvInputError(
            f"No customer made a purchase by the calibration end {cal_end}.",
            advice="Choose a later calibration end.",
        )
    cal.columns = [c + "_cal" for c in cal.columns]
    hold = fetch_frame(con, holdout_query(
        log.occasions, calibration_end=cal_end, observation_end=obs_end, grain=grain,
        with_monetary=log.has_amounts,
    ))
    if hold.empty:
        raise ClvInputError(
            # lifetimes' phrase, which code written for it may match
            f"There is no data available: no transactions between the calibration end {cal_end} "
            f"and the observation end {obs_end}.",
            advice="Check calibration_end and observation_end against the dates in the data.",
        )
    combined = cal.join(hold, how="left").fillna(0.0)
    n_periods = con.execute(
        f"SELECT datediff('{grain}', {_period(cal_end, grain)}, {_period(obs_end, grain)})"
    ).fetchall()[0][0]
    # n periods of the grain, in the output unit (lifetimes: n / freq_multiplier)
    combined["duration_holdout"] = n_periods * unit_days(grain) / days / multiplier
    return combined


def purchases_by_period(
    log: TransactionLog,
    starts: Sequence[dt.date],
    ends: Sequence[dt.date],
    *,
    customers_acquired_by: dt.date | None = None,
) -> pd.DataFrame:
    """Purchase occasions and revenue in each of k periods, such as the months of a holdout.

    Parameters
    ----------
    log : TransactionLog
    starts, ends : sequence of datetime.date, length k
        Period i holds the occasions dated in ``(starts[i], ends[i]]`` (the start day
        excluded, the end day included). Periods may overlap or leave gaps.
    customers_acquired_by : datetime.date, optional
        Count only the customers with an occasion on or before this day (for a holdout: the
        customers of the calibration window). Default: every customer.

    Returns
    -------
    pandas.DataFrame
        k rows in period order: ``period`` (int, 1..k), ``purchases`` (int, occasions dated
        in the period) and ``revenue`` (float, sum of their amounts; 0 for a period without
        occasions, and throughout when the log has no amounts).
    """
    starts = [check_date(d, "starts") for d in starts]
    ends = [check_date(d, "ends") for d in ends]
    if not starts or len(starts) != len(ends):
        raise ClvInputError(
            f"The 'starts' and 'ends' parameters must list the same number (at least one) of "
            f"dates. Got {len(starts)} and {len(ends)}.")
    params: dict = {"starts": starts, "ends": ends}
    acquired = ""
    if customers_acquired_by is not None:
        params["acquired_by"] = check_date(customers_acquired_by, "customers_acquired_by")
        acquired = (f"WHERE customer_id IN (SELECT customer_id FROM {log.occasions} "
                    "WHERE date <= $acquired_by)")
    # The occasions are counted per day first (a few hundred rows): the join of the periods'
    # bounds then compares days, not every occasion with every period (which took seconds
    # on ten million occasions and three years of months). The bounds are unnested side by
    # side, one row per period; the LEFT JOIN keeps a period without occasions (0 purchases).
    return log.con.execute(
        f"""WITH bounds AS (SELECT unnest($starts::DATE[]) AS start, unnest($ends::DATE[]) AS stop,
                                   unnest(range(1, {len(ends) + 1})) AS period),
        daily AS (SELECT date, count(customer_id) AS purchases,
                         sum({micro_units('amount')}) AS micro
                  FROM {log.occasions} {acquired} GROUP BY date)
        SELECT b.period, coalesce(sum(d.purchases), 0)::BIGINT AS purchases,
               coalesce({money('sum(d.micro)')}, 0) AS revenue
        FROM bounds b LEFT JOIN daily d ON d.date > b.start AND d.date <= b.stop
        GROUP BY b.period ORDER BY b.period""",
        params,
    ).df()


def revenue_by_customer(log: TransactionLog, start: dt.date, end: dt.date) -> pd.Series:
    """Each customer's revenue from the occasions dated in ``(start, end]``.

    Parameters
    ----------
    log : TransactionLog
    start, end : datetime.date
        The start day is excluded, the end day included (as :func:`purchases_by_period`).

    Returns
    -------
    pandas.Series
        Indexed by ``customer_id`` (only customers with an occasion in the window), named
        ``revenue`` (float, currency); without amounts, the number of occasions (a spend of
        1 each, as the value model counts them).
    """
    params = {"start": check_date(start, "start"), "end": check_date(end, "end")}
    frame = log.con.execute(
        f"""SELECT customer_id, {_revenue(log.has_amounts)}::DOUBLE AS revenue FROM {log.occasions}
        WHERE date > $start AND date <= $end GROUP BY customer_id""", params).df()
    return frame.set_index("customer_id")["revenue"]


def _revenue(with_amounts: bool) -> str:
    """SQL: the revenue of a group of occasions, exact (their number without amounts: a
    spend of 1 each, as the value model counts them)."""
    return money_sum("amount") if with_amounts else "count(*)"

"""RFM summaries at any period lifetimes accepts: hours, minutes, seconds and finer, and
multiples such as ``"5D"`` or ``"2h"``, on the transactions' timestamps.

The day, week and month summaries run in SQL on day-level dates (:mod:`clvtools.data.rfm`).
lifetimes 0.11.3 also accepts every ``freq`` that is both a pandas period and a numpy time
unit: a purchase's period starts at ``timestamp.to_period(freq).to_timestamp()`` and times are
period differences divided by ``numpy.timedelta64(1, freq)`` and then by ``freq_multiplier``.
This module reproduces that arithmetic, in the same pandas and numpy operations, so that the
results agree with lifetimes to the last bit (monetary means: to rounding, sums run in another
order).

Two spellings differ from lifetimes, where lifetimes' own behaviour is an accident of pandas
and numpy disagreeing: ``"H"`` means hours (pandas' former alias; numpy rejects it, so
lifetimes raises a TypeError) and ``"m"`` means minutes (numpy's unit, which lifetimes'
docstring points to; pandas reads ``"m"`` as a month, so lifetimes counted month-long periods
in minutes).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .transactions import TransactionLog

__all__ = ["FINE_UNITS", "calibration_and_holdout_at_freq", "parse_freq", "summary_at_freq"]

#: numpy time units lifetimes' ``freq`` may name -> pandas period alias of the same length.
FINE_UNITS = {"W": "W", "D": "D", "h": "h", "m": "min", "s": "s", "ms": "ms", "us": "us",
              "ns": "ns"}
#: Spellings read as another unit (see the module docstring).
_ALIASES = {"H": "h"}


def parse_freq(freq) -> tuple[str, str]:
    """Period alias and numpy unit of a lifetimes ``freq`` such as ``"h"``, ``"H"`` or ``"5D"``.

    Returns
    -------
    period : str
        pandas period alias, multiple included (``"h"``, ``"min"``, ``"5D"``): a timestamp's
        period starts at ``to_period(period).to_timestamp()`` (the unit's start: pandas does
        not group multiples), and periods are counted in it.
    unit : str
        numpy ``timedelta64`` unit, multiple included, that times are counted in (``"5D"``).

    Raises
    ------
    ClvInputError
        ``freq`` names no unit of both pandas and numpy.
    """
    match = re.fullmatch(r"(\d*)([A-Za-z]+)", str(freq))
    name = match and _ALIASES.get(match.group(2), match.group(2))
    if not match or name not in FINE_UNITS or match.group(1) in ("0", "00"):
        raise ClvInputError(
            f"freq must be 'M' or a numpy time unit ({', '.join(map(repr, FINE_UNITS))}, 'H' "
            f"for hours), optionally with a multiple such as '5D'. Got {freq!r} instead.",
            advice="Use freq='h' with freq_multiplier=24 for days counted in hours.")
    return f"{match.group(1)}{FINE_UNITS[name]}", f"{match.group(1)}{name}"


def summary_at_freq(log: TransactionLog, *, freq: str, observation_end=None,
                    datetime_format: str | None = None, multiplier: float = 1.0,
                    include_first_transaction: bool = False,
                    with_monetary: bool = True) -> pd.DataFrame:
    """RFM summary of a raw log (``read_transactions(..., summarise=False)``) at ``freq``.

    Parameters
    ----------
    log : TransactionLog
        Its ``occasions`` view holds the raw rows with their timestamps (column ``ts``).
    freq : str
        A lifetimes ``freq`` (see :func:`parse_freq`).
    observation_end : timestamp-like, optional
        Purchases after its period are ignored; ``T`` runs to its period's start. Default: the
        last timestamp in the log.
    datetime_format : str, optional
        strptime format of ``observation_end`` when it is a string.
    multiplier : float
        lifetimes' ``freq_multiplier``.
    include_first_transaction, with_monetary : bool
        As in :func:`clvtools.data.rfm.rfm_query`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted): ``frequency``, ``recency``, ``T`` (float, in
        periods of ``freq`` divided by ``multiplier``) and, with amounts, ``monetary_value``
        (the mean of the repeat periods' totals, 0 without repeats).
    """
    period, unit = parse_freq(freq)
    rows = _rows(log)
    end = (rows["ts"].max() if observation_end is None
           else pd.to_datetime(observation_end, format=datetime_format))
    return _summary(rows, end, period, unit, multiplier, include_first_transaction,
                    with_monetary)


def calibration_and_holdout_at_freq(log: TransactionLog, *, freq: str, calibration_end,
                                    observation_end=None, datetime_format: str | None = None,
                                    multiplier: float = 1.0,
                                    include_first_transaction: bool = False,
                                    with_monetary: bool = True) -> pd.DataFrame:
    """Calibration RFM summary and holdout purchases at ``freq`` (lifetimes' arithmetic).

    Parameters
    ----------
    log, freq, datetime_format, multiplier, include_first_transaction, with_monetary
        As in :func:`summary_at_freq`.
    calibration_end, observation_end : timestamp-like
        The calibration covers purchases up to ``calibration_end``, the holdout those after it
        up to ``observation_end`` (default: the last timestamp), both to the timestamp.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (the calibration's customers): the summary's columns with
        ``_cal`` appended, ``frequency_holdout`` (holdout periods with a purchase),
        ``monetary_value_holdout`` (the mean holdout transaction, as in lifetimes) and
        ``duration_holdout`` (periods of ``freq`` from the calibration end's period to the
        observation end's, divided by ``multiplier``).

    Raises
    ------
    ClvInputError
        No purchase in the calibration period, or none in the holdout period.
    """
    period, unit = parse_freq(freq)
    rows = _rows(log)
    cal_end = pd.to_datetime(calibration_end, format=datetime_format)
    obs_end = (rows["ts"].max() if observation_end is None
               else pd.to_datetime(observation_end, format=datetime_format))
    early = rows[rows["ts"] <= cal_end]
    late = rows[(rows["ts"] > cal_end) & (rows["ts"] <= obs_end)]
    for part, what in ((early, f"by the calibration end {cal_end}"),
                       (late, f"between the calibration end {cal_end} and the observation end "
                              f"{obs_end}")):
        if part.empty:
            raise ClvInputError(
                f"There is no data available: no transaction {what}.",  # lifetimes' phrase
                advice="Check calibration_period_end and observation_period_end against the "
                       "dates in the data.")
    cal = _summary(early, cal_end, period, unit, multiplier, include_first_transaction,
                   with_monetary)
    cal.columns = [c + "_cal" for c in cal.columns]
    starts = _period_starts(late["ts"], period)
    hold = pd.DataFrame({"frequency_holdout": late.assign(start=starts).groupby(
        "customer_id")["start"].nunique().astype(float)})
    if with_monetary:
        hold["monetary_value_holdout"] = late.groupby("customer_id")["amount"].mean()
    out = cal.join(hold, how="left").fillna(0.0)
    out["duration_holdout"] = (obs_end.to_period(period) - cal_end.to_period(period)).n / multiplier
    return out


def _rows(log: TransactionLog) -> pd.DataFrame:
    """The log's raw rows: ``customer_id``, ``ts`` (timestamp), ``amount``."""
    return log.con.execute(f"SELECT customer_id, ts, amount FROM {log.occasions}").df()


def _period_starts(ts: pd.Series, period: str) -> pd.Series:
    """Start of each timestamp's period (lifetimes: ``to_period(freq).to_timestamp()``)."""
    return pd.Series(pd.DatetimeIndex(ts).to_period(period).to_timestamp(), index=ts.index)


def _summary(rows, end, period, unit, multiplier, include_first_transaction, with_monetary):
    """The RFM summary of ``rows`` to the period of ``end`` (see :func:`summary_at_freq`)."""
    end = end.to_period(period).to_timestamp()
    rows = rows.assign(start=_period_starts(rows["ts"], period))
    rows = rows[rows["start"] <= end]
    # one purchase per customer and period, its amounts summed (lifetimes' period groupby)
    periods = rows.groupby(["customer_id", "start"], sort=True)["amount"].sum().reset_index()
    first = ~periods["customer_id"].duplicated()     # sorted: each customer's first period
    customers = periods.groupby("customer_id", sort=True)["start"].agg(["min", "max", "count"])
    tick = np.timedelta64(1, unit)
    out = pd.DataFrame(index=customers.index)
    out["frequency"] = customers["count"] - (0 if include_first_transaction else 1)
    out["recency"] = (customers["max"] - customers["min"]) / tick / multiplier
    out["T"] = (end - customers["min"]) / tick / multiplier
    if with_monetary:
        amounts = periods["amount"].where(include_first_transaction | ~first)
        out["monetary_value"] = amounts.groupby(periods["customer_id"]).mean().fillna(0)
    return out.astype(float)

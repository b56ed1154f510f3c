"""A validated transaction log held in DuckDB, and what is derived from it alone.

:class:`TransactionLog` holds the clean log as the table ``occasions`` with one row per
customer and day (``customer_id VARCHAR, date DATE, amount DOUBLE, n_rows INTEGER``);
:func:`.transactions.read_transactions` builds it.
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ..errors import ClvInputError
from .engine import quote_ident

__all__ = ["TransactionLog", "parse_date", "data_fingerprint"]


@dataclass
class TransactionLog:
    """A validated transaction log held in DuckDB.

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that holds the tables.
    occasions : str
        Table of purchase occasions: ``customer_id, date, amount, n_rows``.
    observation_end : datetime.date
        The last day of observation; every occasion is on or before it.
    has_amounts : bool
        False when the log has no amount column (``amount`` is then NULL).
    quality : dict
        Rows read, used and excluded by reason; see :meth:`quality_report`.
    derived : dict
        Temporary tables derived from this log's occasions, built once and reused (the
        spells that the KPI tables share) and the occasions' digest found while reading, by
        what they were built with; the data layer's.
    one_row_per_day : bool
        ``occasions`` holds at most one row per customer and day (a summarised log); False
        for the valid rows of a log read without its occasions table.
    """

    con: duckdb.DuckDBPyConnection
    occasions: str
    observation_end: dt.date
    has_amounts: bool
    quality: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict, repr=False, compare=False)
    one_row_per_day: bool = True

    @property
    def n_customers(self) -> int:
        """Customers with at least one occasion in the log."""
        if "customers" in self.quality and "until" not in self.quality:
            return self.quality["customers"]
        return self.con.execute(
            f"SELECT count(DISTINCT customer_id) FROM {self.occasions}").fetchone()[0]

    @property
    def first_date(self) -> dt.date:
        """Day of the first purchase in the log."""
        # A truncated log (until) starts on the same day: until() refuses dates before it.
        if "first_date" in self.quality:
            return dt.date.fromisoformat(self.quality["first_date"])
        first = self.con.execute(f"SELECT min(date) FROM {self.occasions}").fetchone()[0]
        if first is None:
            raise ClvInputError("The transaction log has no purchase occasions.",
                                source=self.quality.get("source", self.occasions))
        return first

    def customer_ids(self) -> str:
        """Name of a temporary table of the log's customer ids, one row each (built once).

        Matching another table's customers, and completing its rows, each needed a DISTINCT
        over every occasion (about 0.6 s at 9.4M occasions); they share this table instead.

        Returns
        -------
        str
            ``<occasions>_customer_ids``, one column ``customer_id VARCHAR``.
        """
        key = ("customer_ids", self.occasions)
        if key not in self.derived:
            table = f"{self.occasions}_customer_ids"
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS "
                f"SELECT DISTINCT customer_id FROM {quote_ident(self.occasions)}")
            self.derived[key] = table
        return quote_ident(self.derived[key])

    def until(self, date) -> TransactionLog:
        """The log as it stood at an earlier date: the occasions dated on or before ``date``.

        Use it to build a table that must not see past ``date`` (outcomes included), such as
        the training table of an out-of-time validation.

        Parameters
        ----------
        date : date-like
            The new observation end, from the log's first purchase to its observation end.

        Returns
        -------
        TransactionLog
            On the same connection: ``occasions`` names the temporary view
            ``<occasions>_until_<yyyymmdd>`` (created or replaced; the name depends only on the
            two arguments), ``observation_end`` is ``date``, ``has_amounts`` is unchanged and
            ``quality`` is a copy of this log's with ``"until": "<iso date>"`` added (its
            counts remain those of the whole log).

        Raises
        ------
        ClvInputError
            ``date`` is after the observation end or before the first purchase.
        """
        end = parse_date(date, "until")
        if end > self.observation_end:
            raise ClvInputError(
                f"The log cannot be cut at {end}: it ends on {self.observation_end}.",
                advice="Give a date on or before the observation end.")
        if end < self.first_date:
            raise ClvInputError(
                f"The log cannot be cut at {end}: its first purchase is on {self.first_date}.",
                advice="Give a date on or after the first purchase.")
        view = f"{self.occasions}_until_{end:%Y%m%d}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS "
            f"SELECT * FROM {quote_ident(self.occasions)} WHERE date <= DATE '{end.isoformat()}'")
        quality = {**copy.deepcopy(self.quality), "until": end.isoformat()}
        return TransactionLog(self.con, view, end, self.has_amounts, quality,
                              one_row_per_day=self.one_row_per_day)

    def to_frame(self) -> pd.DataFrame:
        """The occasions as a pandas DataFrame (customer_id, date, amount, n_rows)."""
        return self.con.execute(f"SELECT * FROM {self.occasions} ORDER BY customer_id, date").df()


def parse_date(value, setting: str, datetime_format: str | None = None) -> dt.date:
    """Parse a date setting (string, date or timestamp) to :class:`datetime.date`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.to_datetime(value, format=datetime_format).date()
    except (ValueError, TypeError):
        raise ClvInputError(
            f"The {setting!r} setting must be a date such as 2024-12-31. Got {value!r} instead."
        ) from None


#: SQL aggregate of the occasions' order-independent digest (:func:`data_fingerprint`).
FINGERPRINT_DIGEST = "bit_xor(hash(customer_id, date, amount))"


def data_fingerprint(log: TransactionLog) -> dict:
    """An order-independent fingerprint of the purchase occasions, stored with fitted models.

    Two logs with the same occasions (customer, day, amount) have the same fingerprint,
    whatever their file format or row order.
    """
    q = log.quality
    if FINGERPRINT_DIGEST in log.derived and "until" not in q:   # found while reading
        n, customers = q["purchase_occasions"], q["customers"]
        digest = log.derived[FINGERPRINT_DIGEST]
    else:
        n, customers, digest = log.con.execute(
            f"SELECT count(*), count(DISTINCT customer_id), {FINGERPRINT_DIGEST} "
            f"FROM {log.occasions}").fetchall()[0]
    return {"occasions": int(n), "customers": int(customers), "hash": f"{int(digest or 0):016x}",
            "first_date": log.quality.get("first_date"),
            "observation_end": log.observation_end.isoformat()}

"""Each customer attribute typed before any model sees it: the rules that keep a bad column
from breaking a run.

A column of the customers file is one of

- ``"numeric"``: every value casts to a number (booleans excepted). Used as it is, unless it
  holds a single value (dropped: ``"dropped_constant"``);
- ``"date"``: a DATE or TIMESTAMP column, or text that casts to a date or timestamp in every
  row. It becomes a duration, days since that date (``"duration_days"``): at the
  observation end for the value model's static covariates and the scoring table, at each
  landmark in the landmark survival tables. A column with a single date is dropped;
- ``"categorical"``: anything else, booleans included. A column with more than
  :data:`FREE_TEXT_MIN_LEVELS` levels that are also more than :data:`FREE_TEXT_MIN_SHARE` of
  the customers is left out of the models (``"dropped_id_like"`` when every customer has a
  level of their own, ``"dropped_free_text"`` otherwise); levels held by fewer than
  :data:`RARE_MIN_CUSTOMERS` customers or fewer than :data:`RARE_MIN_SHARE` of them are
  pooled into :data:`OTHER_LEVEL`; a column left with one level is dropped.

The counting runs in DuckDB (one GROUP BY per column), so that a column of a million ids
costs a scan, never a model with a million levels.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..encoding import MAX_LEVELS
from .engine import quote_ident

__all__ = ["FREE_TEXT_MIN_LEVELS", "FREE_TEXT_MIN_SHARE", "OTHER_LEVEL", "RARE_MIN_CUSTOMERS",
           "RARE_MIN_SHARE", "TypedColumn", "pooled_categories", "type_column"]

#: A categorical column with more levels than this ... (a model with more dummies than this
#: is slow to fit and a segment chart with more bars unreadable; the covariate encoder refuses
#: more, so a used column keeps at most this many levels, "(other)" included) ...
FREE_TEXT_MIN_LEVELS = MAX_LEVELS
#: ... and more levels than this share of the customers (on average fewer than 20 customers
#: a level: too few to estimate one coefficient each) is an id or free text, left out.
FREE_TEXT_MIN_SHARE = 0.05
#: A level held by fewer customers than this is pooled: ~30 events are the least for a stable
#: hazard ratio, and a level with fewer customers has fewer events still.
RARE_MIN_CUSTOMERS = 30
#: A level held by less than this share of the customers is pooled too, so that a column never
#: keeps more than 100 levels however large the base.
RARE_MIN_SHARE = 0.01
#: The level the rare levels of a categorical column are pooled into.
OTHER_LEVEL = "(other)"

_DATE_TYPES = ("DATE", "TIMESTAMP")
_NUMBER = "TRY_CAST({q} AS DOUBLE)"
_DATE = "CAST(TRY_CAST({q} AS TIMESTAMP) AS DATE)"


@dataclass(frozen=True)
class TypedColumn:
    """How one attribute column enters the models.

    Attributes
    ----------
    name : str
    kind : {"numeric", "date", "categorical"}
        What the column holds.
    action : {"used", "duration_days", "dropped_id_like", "dropped_free_text", \
"dropped_constant"}
        What the models get: the column, days since its date, or nothing.
    levels : int
        Distinct values in the customers file (distinct days for a date).
    pooled_levels, pooled_customers : int
        Rare levels pooled into :data:`OTHER_LEVEL` and the customers who held them.
    kept_levels : tuple of str
        The levels of a used categorical column that were not pooled.
    """

    name: str
    kind: str
    action: str
    levels: int
    pooled_levels: int = 0
    pooled_customers: int = 0
    kept_levels: tuple[str, ...] = ()

    @property
    def used(self) -> bool:
        """Whether the models get the column."""
        return not self.action.startswith("dropped")

    def sql(self, source_type: str) -> str:
        """The typed value of a used column from the source table: DOUBLE, DATE, or VARCHAR
        with the rare levels pooled."""
        q = quote_ident(self.name)
        if self.kind == "numeric":
            return f"CAST({q} AS DOUBLE)"
        if self.kind == "date":
            return f"CAST({q} AS DATE)" if _is_date_type(source_type) else _DATE.format(q=q)
        if not self.pooled_levels:
            return f"CAST({q} AS VARCHAR)"
        kept = ", ".join("'" + level.replace("'", "''") + "'" for level in self.kept_levels)
        return (f"CASE WHEN CAST({q} AS VARCHAR) IN ({kept or 'NULL'}) THEN CAST({q} AS VARCHAR) "
                f"ELSE '{OTHER_LEVEL}' END")

    def as_dict(self) -> dict:
        """The column's entry in data_quality.json (``customers.typed``)."""
        return {"kind": self.kind, "action": self.action, "levels": self.levels,
                "pooled_levels": self.pooled_levels, "pooled_customers": self.pooled_customers}

    def note(self) -> str | None:
        """One line for the console when the column was changed or dropped, else None."""
        if self.action == "duration_days":
            return (f"Attribute {self.name!r}: dates, used as days since the date "
                    "(at each landmark in the churn model, at the observation end elsewhere).")
        if self.action == "dropped_id_like":
            return (f"Attribute {self.name!r} left out of the models: one level per customer "
                    f"({self.levels:,} levels), an id rather than an attribute.")
        if self.action == "dropped_free_text":
            return (f"Attribute {self.name!r} left out of the models: {self.levels:,} levels "
                    f"(more than {FREE_TEXT_MIN_LEVELS} and more than "
                    f"{FREE_TEXT_MIN_SHARE:.0%} of the customers), free text rather than "
                    "categories.")
        pooled = (f"; {self.pooled_levels:,} rare levels ({self.pooled_customers:,} customers) "
                  f"pooled into '{OTHER_LEVEL}'" if self.pooled_levels else "")
        if self.action == "dropped_constant":
            return f"Attribute {self.name!r} left out of the models: a single value{pooled}."
        if self.pooled_levels:
            return f"Attribute {self.name!r}: {self.levels:,} levels{pooled}."
        return None


def _is_date_type(col_type: str) -> bool:
    return col_type.upper().startswith(_DATE_TYPES)


def _code_like(con: duckdb.DuckDBPyConnection, src: str, q: str, col_type: str) -> bool:
    """Whether a column of numbers is a code or an id: text with a leading zero (zip codes,
    account numbers), or whole numbers, one per customer, in a base of more than
    FREE_TEXT_MIN_LEVELS. Such a column is typed as categories (and so left out as an id)."""
    number = _NUMBER.format(q=q)
    leading_zero = (f"count(*) FILTER (WHERE regexp_matches(trim({q}), '^[+-]?0[0-9]'))"
                    if col_type == "VARCHAR" else "0")
    zeros, n, distinct, fractional = con.execute(
        f"SELECT {leading_zero}, count(*), count(DISTINCT {number}), "
        f"count(*) FILTER (WHERE {number} <> round({number})) FROM {src}").fetchall()[0]
    return zeros > 0 or (n > FREE_TEXT_MIN_LEVELS and distinct == n and fractional == 0)


def type_column(con: duckdb.DuckDBPyConnection, source: str, column: str,
                col_type: str) -> TypedColumn:
    """Type one attribute column of the table ``source`` (no missing values) by the rules of
    this module.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    source : str
        Table of the customers file, one row per customer.
    column : str
        The attribute column.
    col_type : str
        Its DuckDB type in ``source`` (CSV columns are read as VARCHAR).

    Returns
    -------
    TypedColumn
    """
    q, src = quote_ident(column), quote_ident(source)

    def all_cast(template: str) -> bool:
        bad = con.execute(f"SELECT count(*) FROM {src} WHERE {template.format(q=q)} IS NULL")
        return bad.fetchall()[0][0] == 0

    def distinct(expr: str) -> int:
        return con.execute(f"SELECT count(DISTINCT {expr}) FROM {src}").fetchall()[0][0]

    upper = col_type.upper()
    if upper != "BOOLEAN" and not _is_date_type(upper) and all_cast(_NUMBER) \
            and not _code_like(con, src, q, upper):
        levels = distinct(f"CAST({q} AS DOUBLE)")
        return TypedColumn(column, "numeric", "used" if levels > 1 else "dropped_constant",
                           levels)
    if _is_date_type(upper) or (upper == "VARCHAR" and all_cast(_DATE)):
        levels = distinct(f"CAST({q} AS DATE)" if _is_date_type(upper) else _DATE.format(q=q))
        return TypedColumn(column, "date", "duration_days" if levels > 1 else "dropped_constant",
                           levels)
    counts = con.execute(
        f"SELECT CAST({q} AS VARCHAR) AS level, count(*) AS n FROM {src} GROUP BY ALL "
        "ORDER BY n DESC, level").fetchall()
    n = sum(c for _, c in counts)
    levels = len(counts)
    if levels > FREE_TEXT_MIN_LEVELS and levels > FREE_TEXT_MIN_SHARE * n:
        action = "dropped_id_like" if levels == n else "dropped_free_text"
        return TypedColumn(column, "categorical", action, levels)
    return pooled_categories(column, counts)


def pooled_categories(column: str, counts: list[tuple[str, int]]) -> TypedColumn:
    """A categorical column with few enough levels to keep: its rare levels pooled into
    :data:`OTHER_LEVEL`, or dropped when one level would remain.

    Parameters
    ----------
    column : str
    counts : list of (str, int)
        Each level and its customers, most frequent first, ties by level.

    Returns
    -------
    TypedColumn
    """
    n = sum(c for _, c in counts)
    levels = len(counts)
    floor = max(RARE_MIN_CUSTOMERS, RARE_MIN_SHARE * n)
    # the most frequent levels first; beyond MAX_LEVELS - 1 of them the rest joins "(other)"
    kept = tuple(level for level, c in counts if c >= floor)[:MAX_LEVELS - 1]
    rare = [c for level, c in counts if level not in set(kept)]
    remaining = len(kept) + (1 if rare else 0)
    return TypedColumn(column, "categorical", "used" if remaining > 1 else "dropped_constant",
                       levels, pooled_levels=len(rare), pooled_customers=sum(rare),
                       kept_levels=kept)

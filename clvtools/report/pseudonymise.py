"""Customer ids and free text replaced by stable keyed hashes, for the files that travel.

With the ``pseudonymise`` setting on, report.html and forecast.xlsx show each customer id and
each free-text attribute value as an HMAC-SHA256 of it under a secret key (the CSV files keep
the real ids: a CRM imports them). The same key gives the same pseudonym in every run and in
every table, so that a list can be compared with last month's and two sheets joined; without
the key, a pseudonym cannot be traced back to the id (nor confirmed by hashing guessed ids,
as a plain hash of an id could).

The key comes from the environment variable :data:`KEY_VARIABLE`, never from a file of the
run (config.toml and the model files are shared with the outputs, and a key beside them would
undo the point). A generated key kept in the user's home folder was considered and rejected:
a colleague on another machine, or a scheduled job, would get other pseudonyms without a word;
an environment variable is what a scheduler or CI passes as a secret. Pseudonymising without a
key is an error that says how to make one.

Which text is free text: the id column, and each text column from the data that holds a value
shared by fewer than :data:`MIN_GROUP` customers of the base, a value that could single one out
(a name, an e-mail, a comment). The levels of the categorical attributes that the models use
are held by at least that many (rarer levels are pooled into ``(other)``), so segments such as
``channel = online`` stay readable; clvtools' own columns (action, cell, reasons, ...) are never
touched.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

import pandas as pd

from ..data.attribute_types import OTHER_LEVEL
from ..data.attributes import MISSING_LEVEL
from ..errors import ClvInputError

__all__ = ["KEY_VARIABLE", "MIN_GROUP", "MIN_KEY_LENGTH", "OWN_TEXT_COLUMNS",
           "identifying_columns", "pseudonym_key", "pseudonymise_frame"]

#: Environment variable holding the secret key.
KEY_VARIABLE = "CLVTOOLS_PSEUDONYM_KEY"
#: Shortest key accepted, in characters: 32 hex digits are 128 bits, out of reach of a search.
MIN_KEY_LENGTH = 32
#: A text value held by fewer customers than this may single one out (the attributes' rule for
#: pooling a rare level: ``clvtools.data.attribute_types.RARE_MIN_CUSTOMERS``).
MIN_GROUP = 30
#: Hex digits of a pseudonym: 64 bits, so that a million ids collide with odds of about 3e-8.
DIGITS = 16
#: Text columns that clvtools writes itself (never data: never pseudonymised).
OWN_TEXT_COLUMNS = frozenset({
    "action", "cell", "group", "lifecycle", "churn_model", "best_offer", "segment", "month",
    "label", "reason_1", "reason_2", "reason_3", "driver_1", "driver_2", "scope",
    "seasonality", "ranking", "model", "measure", "constraint", "solver", "offer",
    "value_axis", "involuntary_reasons", "status",
})


def pseudonym_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The secret key from the environment variable :data:`KEY_VARIABLE`.

    Raises
    ------
    ClvInputError
        When the variable is unset, or shorter than :data:`MIN_KEY_LENGTH` characters.
    """
    value = (os.environ if environ is None else environ).get(KEY_VARIABLE, "")
    advice = (f"Make a key once and keep it (the same key gives the same pseudonyms in every "
              f"run): export {KEY_VARIABLE}=$(python -c \"import secrets; "
              f"print(secrets.token_hex(32))\"); or turn pseudonymise off.")
    if not value:
        raise ClvInputError(f"The 'pseudonymise' setting is on but {KEY_VARIABLE} is not set: "
                            "customer ids are pseudonymised with a secret key.", advice=advice)
    if len(value) < MIN_KEY_LENGTH:
        raise ClvInputError(f"{KEY_VARIABLE} is {len(value)} characters long: a pseudonym key "
                            f"needs at least {MIN_KEY_LENGTH}, or the ids can be found by trying "
                            "keys.", advice=advice)
    return value.encode("utf-8")


def _pseudonyms(values: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """One HMAC per distinct value (a list holds each id once, attributes few values)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    base = hmac.new(key, digestmod=hashlib.sha256)
    hashed = []
    for value in uniques:
        mac = base.copy()
        mac.update(str(value).encode("utf-8"))
        hashed.append(prefix + mac.hexdigest()[:DIGITS])
    lookup = pd.Series(hashed + [None], dtype=object)
    return pd.Series(lookup.to_numpy()[codes], index=values.index, dtype=object)


def pseudonymise_frame(frame: pd.DataFrame, columns: Iterable[str], key: bytes, *,
                       id_column: str = "customer_id") -> pd.DataFrame:
    """A copy of ``frame`` with the values of ``columns`` replaced by keyed hashes.

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : iterable of str
        The columns to replace (see :func:`identifying_columns`); absent ones are skipped.
    key : bytes
        The secret key (:func:`pseudonym_key`).
    id_column : str
        The customer id column: its pseudonyms read ``id-`` and 16 hex digits; other columns'
        ``tx-`` and 16 hex digits. A value is hashed as text, so the id ``42`` and ``"42"``
        get one pseudonym, in every table and every run under one key.

    Returns
    -------
    pandas.DataFrame
        Same shape and index; the replaced columns are text, missing values stay missing.
    """
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = _pseudonyms(out[column], key, "id-" if column == id_column else "tx-")
    return out


def _is_text(column: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def identifying_columns(frame: pd.DataFrame, *, population: pd.DataFrame | None = None,
                        id_column: str = "customer_id",
                        own_columns: Iterable[str] = OWN_TEXT_COLUMNS,
                        min_group: int = MIN_GROUP) -> list[str]:
    """The columns of ``frame`` to pseudonymise: the id, and the free text from the data.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to be shown (a contact list, a win-back list, ...).
    population : pandas.DataFrame, optional
        The whole base the table comes from (``customers.csv``'s table), whose counts decide
        whether a value is rare: a list of 200 customers says little about how common a value
        is. Default: ``frame`` itself.
    id_column : str
    own_columns : iterable of str
        Text columns that clvtools writes itself, never pseudonymised.
    min_group : int
        A text column with a value held by fewer than this many rows of ``population`` is
        free text (missing values and the labels ``(other)`` and ``(missing)`` aside). A
        column absent from ``population`` is judged in ``frame``.

    Returns
    -------
    list of str
        The id column (when present) first, then the free-text columns in ``frame``'s order.
    """
    population = frame if population is None else population
    own = set(own_columns)
    found = [id_column] if id_column in frame.columns else []
    for column in frame.columns:
        if column == id_column or column in own or not _is_text(frame[column]):
            continue
        source = population[column] if column in population.columns else frame[column]
        # the labels of pooled and missing values name nobody
        counts = source.value_counts(dropna=True).drop([OTHER_LEVEL, MISSING_LEVEL],
                                                       errors="ignore")
        if len(counts) and int(counts.min()) < min_group:
            found.append(column)
    return found

"""``datetime_format`` on Spark: the strptime codes the single-machine engine reads (DuckDB's
``strptime``) written as Spark's datetime pattern, so that both engines read the same dates.

Each code maps to the Spark letters that parse the same field (``%Y`` -> ``y``, ``%m`` ->
``M``, ...). A number is read with one letter, which takes one digit or more as strptime
does (``5/1/2024`` and ``05/01/2024`` alike), except where another field touches it without
a separator (``%Y%m%d``): there only the fixed width tells the fields apart, and the number
takes its full width (``yyyyMMdd``). The text between the codes is quoted, so a letter in it
(the ``T`` of ``%Y-%m-%dT%H:%M``) is a literal as in strptime. A code with no Spark
equivalent (a two-digit year, a weekday or time-zone name, a week number) is an error that
names it, never a pattern that reads other dates.
"""
from __future__ import annotations

import re

from ..errors import ClvInputError

__all__ = ["spark_datetime_pattern"]

#: strptime code -> Spark's letters for the field: between separators, and touching another
#: field. Not mapped: ``%y`` (Spark's two-digit years run from
#: 2000, strptime's from 1969), ``%a``/``%A`` (Spark parses no weekday), ``%j``, ``%Z``,
#: week numbers.
_CODES = {
    "Y": ("y", "yyyy"), "m": ("M", "MM"), "d": ("d", "dd"), "H": ("H", "HH"),
    "I": ("h", "hh"), "M": ("m", "mm"), "S": ("s", "ss"), "f": ("SSSSSS", "SSSSSS"),
    "p": ("a", "a"), "b": ("MMM", "MMM"), "B": ("MMMM", "MMMM"),
    # an offset written +02:00, +0200 or +02 (DuckDB's %z reads the three, not Z)
    "z": ("[xxx][x]", "[xxx][x]"),
}
#: Codes of numbers: only these need a fixed width where they touch each other.
_NUMERIC = set("YmdHIMSf")
_TOKEN = re.compile(r"%(-?.)|([^%]+)|(%$)")


def spark_datetime_pattern(datetime_format: str) -> str:
    """Spark's datetime pattern for a strptime format.

    Parameters
    ----------
    datetime_format : str
        strptime codes and literal text (``"%d/%m/%Y %H:%M"``, ``"%Y%m%d"``).

    Returns
    -------
    str
        The pattern for Spark's ``to_timestamp`` (``"d'/'M'/'y' 'H':'m"``, ``"yyyyMMdd"``).

    Raises
    ------
    ClvInputError
        A code Spark cannot read, or a ``%`` that ends the format.
    """
    tokens = []      # ("code", letter) or ("text", literal)
    for code, text, lone in _TOKEN.findall(datetime_format):
        if lone:
            raise ClvInputError(f"datetime_format {datetime_format!r} ends with a lone %.",
                                source="settings", advice="Write a literal % as %%.")
        if code == "%" or text:
            # one quoted run per stretch of text: two runs side by side ('a''b') would
            # read as a quote between them
            if tokens and tokens[-1][0] == "text":
                tokens[-1] = ("text", tokens[-1][1] + (text or "%"))
            else:
                tokens.append(("text", text or "%"))
        elif code in _CODES:
            tokens.append(("code", code))
        elif code[:1] == "-" and code[1:] in _NUMERIC:
            # DuckDB's unpadded %-d, %-m, ...: the one-letter form, which reads any width
            tokens.append(("unpadded", code[1:]))
        else:
            raise ClvInputError(
                f"datetime_format {datetime_format!r} holds %{code}, which the Spark engine "
                "cannot read.", source="settings",
                advice=f"Use the codes {' '.join('%' + c for c in _CODES)} (and %-d, %-m, "
                       "... for unpadded numbers), or run the "
                       "single-machine engine (--engine duckdb).")
    pieces = []
    for i, (kind, value) in enumerate(tokens):
        if kind == "text":
            pieces.append("'" + value.replace("'", "''") + "'")
        elif kind == "unpadded":
            pieces.append(_CODES[value][0])
        else:
            # a fixed width only between two numbers: text (a month name, AM/PM, an offset)
            # ends a number by itself (5Jan2024, 5PM)
            adjacent = value in _NUMERIC and any(
                0 <= j < len(tokens) and tokens[j][0] != "text" and tokens[j][1] in _NUMERIC
                for j in (i - 1, i + 1))
            pieces.append(_CODES[value][adjacent])
    return "".join(pieces)

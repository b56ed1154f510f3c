"""``datetime_format`` on Spark: the strptime codes the single-machine engine reads (DuckDB's
``strptime``) written as Spark's datetime pattern, so that both engines read the same dates.

Each code maps to the Spark letters that parse the same field (``%Y`` -> ``yyyy``, ``%m`` ->
``MM``, ...); the text between the codes is quoted, so a letter in it (the ``T`` of
``%Y-%m-%dT%H:%M``) is a literal as in strptime. A code with no Spark equivalent (a time-zone
name, a week number) is an error that names it, never a pattern that reads other dates.
"""
from __future__ import annotations

import re

from ..errors import ClvInputError

__all__ = ["spark_datetime_pattern"]

#: strptime code -> Spark's pattern letters for the same field.
#: Not mapped: ``%y`` (Spark's two-digit years run from 2000, strptime's from 1969), the
#: weekday names ``%a``/``%A`` (Spark reads no weekday), ``%j``, ``%Z``, week numbers.
_CODES = {
    "Y": "yyyy", "m": "MM", "d": "dd", "H": "HH", "I": "hh", "M": "mm", "S": "ss",
    "f": "SSSSSS", "p": "a", "b": "MMM", "B": "MMMM", "z": "Z",
}
_CODE = re.compile(r"%(.)")


def spark_datetime_pattern(datetime_format: str) -> str:
    """Spark's datetime pattern for a strptime format.

    Parameters
    ----------
    datetime_format : str
        strptime codes and literal text (``"%d/%m/%Y %H:%M"``, ``"%Y%m%d"``).

    Returns
    -------
    str
        The pattern for Spark's ``to_timestamp`` (``"dd/MM/yyyy HH:mm"``, ``"yyyyMMdd"``).

    Raises
    ------
    ClvInputError
        A code Spark cannot read, or a ``%`` that ends the format.
    """
    pieces, literal, at = [], [], 0
    for found in _CODE.finditer(datetime_format):
        literal.append(datetime_format[at:found.start()])
        at = found.end()
        code = found.group(1)
        if code == "%":
            literal.append("%")
            continue
        if code not in _CODES:
            raise ClvInputError(
                f"datetime_format {datetime_format!r} holds %{code}, which the Spark engine "
                "cannot read.", source="settings",
                advice=f"Use the codes {' '.join('%' + c for c in _CODES)}, or run the "
                       "single-machine engine (--engine duckdb).")
        pieces.append(_quoted("".join(literal)))
        literal = []
        pieces.append(_CODES[code])
    literal.append(datetime_format[at:])
    if datetime_format.endswith("%") and not datetime_format.endswith("%%"):
        raise ClvInputError(f"datetime_format {datetime_format!r} ends with a lone %.",
                            source="settings", advice="Write a literal % as %%.")
    pieces.append(_quoted("".join(literal)))
    return "".join(pieces)


def _quoted(text: str) -> str:
    """Literal text in a Spark pattern: quoted (a quote doubled), so that no letter in it is
    read as a field."""
    return "" if not text else "'" + text.replace("'", "''") + "'"

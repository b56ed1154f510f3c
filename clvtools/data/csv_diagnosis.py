"""What is wrong with a CSV file that DuckDB could not read, said in the user's terms.

DuckDB's own messages come cut short for a user ("CSV Error on Line: 2" for a Latin-1 file,
"Line: 1" for an oversized field on line 12) and count records, not lines: a quoted field
that spans lines, or a blank line, moves every later number. The functions here look at the
file's bytes themselves, on the error path only, to name the real line and what to do.
"""
from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Iterator

from ..errors import ClvInputError

__all__ = ["explain_read_error", "open_bytes", "physical_lines", "single_column_problem"]

#: How far into a file the checks read before giving up, in bytes.
SCAN_LIMIT = 2**31
#: Bytes of an offending line shown in a message.
SHOWN = 60


def open_bytes(path: str):
    """The file as bytes, decompressed when it ends in ``.gz``."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, bytes) of the file, up to :data:`SCAN_LIMIT` bytes."""
    read = 0
    with open_bytes(path) as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line
            read += len(line)
            if read > SCAN_LIMIT:
                return


def physical_lines(path: str, records: Iterable[int]) -> dict[int, int]:
    """Map DuckDB's record numbers (the header is 1, the first data row 2) to file lines.

    A record starts on the first line that is not blank outside quotes; a line with an odd
    number of double quotes opens or closes a quoted field that spans lines (``""``, an
    escaped quote, counts twice and changes nothing).
    """
    wanted = set(records)
    out: dict[int, int] = {}
    record, quoted = 0, False
    for number, line in _lines(path):
        if not quoted:
            if not line.strip(b"\r\n"):
                continue  # DuckDB skips blank lines
            record += 1
            if record in wanted:
                out[record] = number
                if len(out) == len(wanted):
                    break
        if line.count(b'"') % 2:
            quoted = not quoted
    return out


def _first_non_utf8(path: str) -> tuple[int, bytes] | None:
    for number, line in _lines(path):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return number, line[exc.start:exc.start + 1]
    return None


def _first_long_line(path: str, limit: int) -> tuple[int, int] | None:
    for number, line in _lines(path):
        if len(line) > limit:
            return number, len(line)
    return None


def explain_read_error(path: str, message: str) -> ClvInputError:
    """A :class:`ClvInputError` for DuckDB's error ``message`` on reading the CSV ``path``."""
    if "unicode" in message.lower() or "utf-8" in message.lower():
        found = _first_non_utf8(path)
        where = ""
        if found:
            number, byte = found
            where = (f" Line {number} holds the byte 0x{byte.hex().upper()} "
                     f"({byte.decode('latin-1')!r} in Latin-1 or Windows-1252).")
        return ClvInputError(
            "The file is not UTF-8 text: it was probably saved as Latin-1 or Windows-1252 (as "
            f"Excel does for 'CSV' on Windows).{where}", source=path,
            advice="Save it as UTF-8 and run again: in Excel, Save As 'CSV UTF-8'; on the "
                   "command line, iconv -f latin1 -t utf-8 old.csv > new.csv.")
    if "maximum line size" in message.lower():
        limit = 2_000_000
        found = _first_long_line(path, limit)
        where = (f" Line {found[0]} is {found[1]:,} bytes long." if found
                 else " A quoted field probably never closes, so that the rest of the file "
                      "reads as one value.")
        return ClvInputError(
            f"A line of the file is longer than {limit:,} bytes.{where}", source=path,
            advice="Check that line in a text editor: a field pasted by mistake, or a quote "
                   "character (\") that opens a field and is never closed.")
    first = message.splitlines()[0] if message else "unknown error"
    return ClvInputError(
        f"The file could not be read as CSV: {first.removeprefix('Invalid Input Error: ')}",
        source=path, advice="Check that it is a CSV file with a header row (delimiter comma, "
                            "semicolon, tab or |) and the same number of fields on every line.")


def single_column_problem(path: str, header: str) -> ClvInputError | None:
    """Why a CSV file read as one column whose name holds a delimiter, if a line says so.

    DuckDB falls back to a single column when no delimiter fits every line: the usual cause
    is a line with more or fewer fields than the header.
    """
    delimiter = next((d for d in (",", ";", "\t", "|") if d in header), None)
    if delimiter is None:
        return None
    expected = len(next(csv.reader([header], delimiter=delimiter)))
    with open_bytes(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        for fields in reader:
            if fields and len(fields) != expected:
                return ClvInputError(
                    f"Line {reader.line_num} has {len(fields)} fields where the header has "
                    f"{expected} (delimiter {delimiter!r}), so the file cannot be split into "
                    "columns.", source=path,
                    advice="Quote the fields that contain the delimiter, or remove the extra "
                           "fields of that line.")
    return None

"""The DuckDB engine: one in-memory database per analysis, and sources registered into it.

Every summary in clvtools is a SQL query run here, whatever the input was: a pandas
DataFrame, a CSV file or a Parquet file (one file, a glob, or a list of files).

The tables a run reads in several steps (the sources, the occasions, the attributes, the
contracts, the spells) are ordinary tables of the run's database, not TEMP ones: a step run in
a second thread queries them through its own :func:`cursor` (a connection serves one thread at
a time), and a TEMP table is seen only by the connection that made it. Each run has a database
of its own (``connect``), so the same names in two runs never meet. On a connection the caller
made and passed in (``read_transactions(..., con=...)``), the same tables stay TEMP
(:func:`run_scope`): they must never replace the caller's tables nor be saved in its file.
"""
from __future__ import annotations

import glob as _glob
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..errors import ClvInputError
from .csv_diagnosis import explain_read_error, open_bytes, single_column_problem

__all__ = ["connect", "cursor", "process_exists", "quote_ident", "register_source", "run_scope",
           "source_label", "fetch_frame", "Source"]

Source = "pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike]"


def connect(
    threads: int | None = None, memory_limit: str | None = None,
    temp_directory: str | os.PathLike | None = None,
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection, set up for clvtools.

    Timestamps are read in UTC so that results never depend on the machine's time zone.
    DuckDB spills to disk when a summary does not fit in ``memory_limit``: into a folder of
    its own, ``clvtools-duckdb-PID-XXXXXXXX``, made in ``temp_directory`` (default: the
    system's temporary folder, never the working directory, DuckDB's own default). The folder
    is removed when the connection is garbage-collected or Python exits, after a failed run
    too; one left by a killed process is removed by the next connection.

    Parameters
    ----------
    threads : int, optional
        DuckDB's threads (default: one per core).
    memory_limit : str, optional
        DuckDB's ``memory_limit``, such as ``"4GB"`` or ``"50%"`` (default: 80 % of RAM).
    temp_directory : path, optional
        Where the spill folder is made.
    """
    con = duckdb.connect(":memory:")
    _RUN_CONNECTIONS.add(con)
    _session(con)
    # DuckDB's allocator keeps the memory its queries freed until it is asked for again
    # (about 0.45 GB after reading a log of a million customers, while its tables hold
    # 0.27 GB); with its background threads it returns it to the system within seconds,
    # for the run's arrays to use: the main job's peak at a million customers fell from
    # 3.43 to 3.20 GB (four runs each), its time unchanged. The setting is DuckDB's, for
    # the whole process (one allocator).
    con.execute("SET allocator_background_threads = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        try:
            con.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as exc:
            raise ClvInputError(
                f"The 'memory_limit' setting is not a size DuckDB understands: "
                f"{str(exc).splitlines()[0]}", advice="Give a size such as '4GB' or '50%'.",
            ) from None
    con.execute("SET temp_directory = ?", [_spill_folder(temp_directory)])
    spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    weakref.finalize(con, shutil.rmtree, spill, True)
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to the database of ``con``, for a step run in another thread.

    It sees the run's ordinary tables and views (not ``con``'s TEMP ones), shares the
    database's threads, ``memory_limit`` and spill folder, and has clvtools' session settings
    (time zone UTC, no progress bar), which DuckDB keeps per connection. Close it when the
    step ends: the TEMP tables it made go with it.
    """
    second = con.cursor()
    if con in _RUN_CONNECTIONS:
        _RUN_CONNECTIONS.add(second)
    _session(second)
    return second


#: The connections of clvtools' own databases (:func:`connect`, and their :func:`cursor`\ s).
_RUN_CONNECTIONS: weakref.WeakSet = weakref.WeakSet()


def run_scope(con: duckdb.DuckDBPyConnection) -> str:
    """How to create a table that the run's steps share: ``""`` (an ordinary table, which a
    second thread's cursor sees) on a connection of a database clvtools made itself, and
    ``"TEMP "`` on a caller's own connection, whose tables it must not replace nor save."""
    return "" if con in _RUN_CONNECTIONS else "TEMP "


def _session(con: duckdb.DuckDBPyConnection) -> None:
    """clvtools' settings of one connection (DuckDB keeps them per connection, a cursor too)."""
    con.execute("SET TimeZone = 'UTC'")
    # clvtools reports progress itself; DuckDB's own bar would write into stdout. In Jupyter,
    # DuckDB refuses to touch the setting without ipywidgets (and draws no text bar there).
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass


#: Name of a spill folder: the process id tells a live run's folder from a killed one's.
_SPILL = re.compile(r"clvtools-duckdb-(\d+)-\w+")


def _spill_folder(parent: str | os.PathLike | None) -> str:
    """A fresh spill folder in ``parent`` (default: the system's temporary folder), after
    removing those of processes that no longer run."""
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for entry in parent.iterdir():
            match = _SPILL.fullmatch(entry.name)
            if match and not process_exists(int(match.group(1))) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
        return tempfile.mkdtemp(prefix=f"clvtools-duckdb-{os.getpid()}-", dir=parent)
    except OSError as exc:
        raise ClvInputError(
            f"The folder for DuckDB's temporary files cannot be written: "
            f"{exc.strerror or exc}.", source=str(parent),
            advice="Set temp_directory to a folder you may write to, on a disk with space.",
        ) from None


def process_exists(pid: int) -> bool:
    """Whether the process ``pid`` runs (the owner of a working folder named after it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # it exists, under another user
        return True
    return True


def fetch_frame(
    con: duckdb.DuckDBPyConnection, sql: str, index: str = "customer_id"
) -> pd.DataFrame:
    """Run ``sql`` and return its rows as a DataFrame indexed by the column ``index``.

    Built from DuckDB's numpy arrays directly: a fifth faster than ``.df().set_index()`` on
    a million customers, which copies every column once more. NULLs become NaN (numbers)
    or NaT (dates).
    """
    columns = con.execute(sql).fetchnumpy()
    index_values = pd.Index(columns.pop(index), name=index)
    return pd.DataFrame(
        {name: pd.Series(values).to_numpy() if np.ma.isMaskedArray(values) else values
         for name, values in columns.items()},
        index=index_values,
    )


def quote_ident(name: str) -> str:
    """Quote a column name for SQL (user column names may hold spaces or quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def _expand(paths: Sequence[str | os.PathLike]) -> list[str]:
    files: list[str] = []
    for p in paths:
        p = os.fspath(p)
        matched = sorted(_glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
        if not matched:
            raise ClvInputError(
                "No file matches the pattern.", source=p,
                advice="Check the path and the glob pattern.",
            )
        files.extend(matched)
    for f in files:
        if not os.path.exists(f):
            raise ClvInputError("File not found.", source=f, advice="Check the path.")
        if os.path.isdir(f):
            raise ClvInputError(
                "Expected a file, got a folder.",
                source=f,
                advice="Give a file, or a glob such as 'folder/*.parquet'.",
            )
    return files


def source_label(source) -> str:
    """How a source is named in messages and in data_quality.json."""
    if isinstance(source, pd.DataFrame):
        return "DataFrame"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return ", ".join(os.fspath(s) for s in source)


def register_source(con: duckdb.DuckDBPyConnection, source, name: str) -> list[str]:
    """Make ``source`` queryable in ``con`` as the view ``name``.

    CSV files are read with every column as text, so that clvtools, not the CSV sniffer,
    decides what is a bad date or amount (and can say which rows), and so that customer
    ids keep their leading zeros. Parquet and DataFrame columns keep their types.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    source : pandas.DataFrame, path, glob or list of paths
        ``.csv``/``.txt``/``.tsv`` (optionally ``.gz``) or ``.parquet`` files.
    name : str
        Name of the view to create.

    Returns
    -------
    list of str
        The files read (empty for a DataFrame). The view has a ``_file`` column naming
        the file each row came from and a ``_line`` column with its line in that file
        (data rows of a CSV with a header start at line 2; Parquet rows count from 1).
    """
    # a source read before under this name may be a table (a DataFrame) or a view (files):
    # DuckDB will not replace the one with the other
    for (kind,) in con.execute("SELECT table_type FROM information_schema.tables "
                               "WHERE table_name = ?", [name]).fetchall():
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")
    if isinstance(source, pd.DataFrame):
        df = source
        con.register(f"{name}_df", df)
        con.execute(
            f"CREATE OR REPLACE {run_scope(con)}TABLE {name} AS SELECT *, 'DataFrame' AS _file, "
            f"(row_number() OVER ())::BIGINT AS _line FROM {name}_df"
        )
        con.unregister(f"{name}_df")
        return []
    paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not paths:
        raise ClvInputError("No input file was given.", advice="Give a CSV or Parquet file.")
    files = _expand(paths)
    kinds = {_kind(f) for f in files}
    if len(kinds) > 1:
        raise ClvInputError(
            "Mixed file types.", source=", ".join(files),
            advice="Give only CSV or only Parquet files.",
        )
    kind = kinds.pop()
    for f in files:
        if os.path.getsize(f) == 0:
            raise ClvInputError(
                "The file is empty.", source=f, advice="Check the export that wrote it."
            )
    # Views cannot hold prepared parameters, so the file list goes in as a quoted literal.
    files_sql = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    # several files are matched by column name; for one, that option would only cost a
    # second sniffing pass (a third of the reading time of a small file)
    union = ", union_by_name = true" if len(files) > 1 else ""
    if kind == "parquet":
        reader = (
            f"read_parquet({files_sql}, filename = true, file_row_number = true{union})"
        )
        line = "file_row_number + 1"
    else:
        reader = (
            # skip = 0: the sniffer would otherwise skip, silently, lines before one that
            # has the most fields
            f"read_csv({files_sql}, all_varchar = true, header = true, skip = 0, "
            f"filename = true{union})"
        )
        line = None
    try:
        if line is None:
            # A materialised table keeps insertion order, so rowid orders rows as in the files.
            con.execute(
                f"CREATE OR REPLACE {run_scope(con)}TABLE {name}_raw AS SELECT * FROM {reader}"
            )
            con.execute(
                f"CREATE OR REPLACE {run_scope(con)}VIEW {name} AS SELECT * EXCLUDE (filename), "
                "filename AS _file, "
                "(rowid - min(rowid) OVER (PARTITION BY filename) + 2)::BIGINT AS _line "
                f"FROM {name}_raw"
            )
        else:
            con.execute(
                f"CREATE OR REPLACE {run_scope(con)}VIEW {name} AS "
                "SELECT * EXCLUDE (filename, file_row_number), "
                f"filename AS _file, ({line})::BIGINT AS _line FROM {reader}"
            )
    except duckdb.Error as exc:
        if kind == "csv":
            named = [f for f in files if f"file = {f}\n" in str(exc) + "\n"]
            raise explain_read_error((named or files)[0], str(exc)) from None
        raise ClvInputError(
            f"The file could not be read as {kind.upper()}: {str(exc).splitlines()[0]}",
            source=", ".join(files),
            advice="Check that it is a valid file of that type (CSV with a header row).",
        ) from None
    if kind == "csv":
        _check_header(con, name, files)
    return files


def _check_header(con: duckdb.DuckDBPyConnection, name: str, files: list[str]) -> None:
    """Refuse a CSV header that names a column twice (DuckDB would rename the second
    ``amount_1`` and the first would be used silently), or that could not be split."""
    columns = [c for (c, *_) in con.execute(f"DESCRIBE {name}").fetchall()
               if c not in ("_file", "_line")]
    for f in files:
        with open_bytes(f) as fh:
            header = fh.readline().decode("utf-8", errors="replace").lstrip("\ufeff").strip()
        if len(columns) == 1:
            problem = single_column_problem(f, header)
            if problem is not None:
                raise problem
        split = next((header.split(d) for d in (",", ";", "\t", "|")
                      if len(header.split(d)) == len(columns)), [])
        names = [c.strip().strip('"') for c in split]
        doubled = sorted({c for c in names if names.count(c) > 1})
        if doubled:
            raise ClvInputError(
                f"The header names the column(s) {', '.join(map(repr, doubled))} more than "
                "once.", source=f, column=doubled[0],
                advice="Rename or remove the duplicate columns, so that each name says which "
                       "column to read.")


def _kind(path: str) -> str:
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if suffixes and suffixes[-1] in (".csv", ".txt", ".tsv"):
        return "csv"
    raise ClvInputError(
        "Unknown file type.", source=path, advice="Give a .csv, .tsv, .txt or .parquet file."
    )

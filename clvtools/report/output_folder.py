"""The output folder: whose files it holds, and its atomic replacement.

A run never deletes what it did not write. A folder is the tool's own when it holds
:data:`OWNERSHIP_FILE` (written by every run, listing the files that run wrote) or, for a
folder written before that file existed, the kind's marker (``data_quality.json``,
``evaluation.json``) and only names of the tool's manifest. A folder that holds anything else,
or an input of the run, is refused before the work starts (:func:`check_output_folder`).

The new files are written into a fresh hidden sibling ``.DIR.clvtools-PID-XXXXXXXX`` which is
then swapped with ``DIR`` in one atomic step (:func:`exchange`: Linux's ``renameat2`` with
``RENAME_EXCHANGE``), so that at every instant ``DIR`` holds either the complete previous
results or the complete new ones. Where the platform or the file system lacks the exchange
(macOS, Windows, some network and FUSE file systems), two renames replace the folder and
``DIR`` is absent for the instant between them; a failure of the second rename puts the old
folder back. A sibling left by a killed run (its process no longer exists) is removed by the
next run into the same folder.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import gc
import glob
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..data.engine import process_exists
from ..errors import ClvInputError

__all__ = ["OWNERSHIP_FILE", "check_output_folder", "exchange", "remove_leftovers", "write_folder"]

#: Written last into every output folder: proves the folder is the tool's and lists its files.
OWNERSHIP_FILE = ".clvtools-output.json"

#: Prefix of the hidden working folder beside ``DIR`` (then the writer's process id).
_WORK_TAG = "clvtools-"
#: Errors of ``renameat2`` that mean "not supported here", not "failed": take the fallback.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}
#: Foreign entries named in a refusal (the rest are counted).
_SHOWN = 5


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Swap the paths ``a`` and ``b`` (both must exist) in one atomic step.

    Linux's ``renameat2(..., RENAME_EXCHANGE)`` through ctypes (glibc 2.28 or later; the
    kernel since 3.15, on ext4, xfs, btrfs, tmpfs and most local file systems).

    Raises
    ------
    OSError
        With ``errno.ENOSYS`` where the C library has no ``renameat2`` (macOS, Windows, musl
        before 1.2.5), ``EINVAL`` or ``EOPNOTSUPP`` where the file system cannot exchange;
        anything else is a real failure.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        raise OSError(errno.ENOSYS, "renameat2 is not available on this platform") from None
    at_fdcwd, rename_exchange = -100, 2   # <fcntl.h>, <linux/fs.h>
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def _entries(folder: Path) -> list[str]:
    """Every file, link and folder under ``folder``, as relative POSIX paths (links are not
    followed)."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [(rel / name).as_posix() for name in dirs + files]
    return out


def _recorded(folder: Path) -> set[str]:
    """The files that the run which wrote ``folder`` listed in its ownership file."""
    try:
        return set(json.loads((folder / OWNERSHIP_FILE).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _with_parents(names: Iterable[str]) -> set[str]:
    """``names`` and every folder above them (``models/value.json`` -> ``models``)."""
    out = set()
    for name in names:
        path = Path(name)
        out.add(path.as_posix())
        out.update(p.as_posix() for p in path.parents if p.as_posix() != ".")
    return out


def _input_paths(inputs: Iterable) -> list[Path]:
    """The files among ``inputs`` (paths, globs, lists of them; DataFrames and None skipped)."""
    out: list[Path] = []
    for item in inputs:
        if isinstance(item, (list, tuple)):
            out += _input_paths(item)
        elif isinstance(item, (str, os.PathLike)):
            text = os.fspath(item)
            out += ([Path(p) for p in glob.glob(text)] if any(c in text for c in "*?[")
                    else [Path(text)])
    return out


def _refuse(problem: str, out: Path, advice: str) -> ClvInputError:
    return ClvInputError(problem, source=str(out), advice=advice)


def check_output_folder(out: str | os.PathLike, names: Iterable[str] = (), *,
                        marker: str = "data_quality.json", inputs: Iterable = ()) -> Path:
    """Refuse, before any work, an output folder that the run could not replace safely.

    Parameters
    ----------
    out : path
        The output folder (need not exist).
    names : iterable of str
        The names the writer may write (its manifest): the files of a folder written before
        :data:`OWNERSHIP_FILE` existed count as the tool's when every one is among them.
    marker : str
        The file that every folder of this kind holds (``data_quality.json`` for analyze).
    inputs : iterable
        The run's input files (paths or globs; DataFrames are skipped): none may lie inside
        ``out``, whose whole content the run replaces.

    Returns
    -------
    pathlib.Path
        ``out``, resolved.

    Raises
    ------
    ClvInputError
        ``out`` is a file, holds an input of the run or anything the tool did not write, or
        cannot be written.
    """
    out = Path(out).resolve()
    for path in _input_paths(inputs):
        if path.resolve().is_relative_to(out):
            raise _refuse(f"The output folder holds an input of this run ({path}): the run "
                          "replaces the whole folder.", out,
                          "Choose another --out folder, for example a new one beside it.")
    if out.exists() and not out.is_dir():
        raise _refuse("The output folder is a file.", out, "Give a folder for --out.")
    if out.is_dir():
        present = _entries(out)
        recorded = _recorded(out)
        own = _with_parents({*names, *recorded, OWNERSHIP_FILE})
        if present and not (recorded or (out / marker).is_file()):
            raise _refuse("The output folder exists and is not a clvtools output of this "
                          "kind.", out, "Choose another --out folder, or empty this one.")
        # a recorded folder (a Spark run's Parquet dataset) holds what its writer put there
        datasets = [name for name in recorded if (out / name).is_dir()]
        foreign = sorted(p for p in present if p not in own
                         and not any(p.startswith(d + "/") for d in datasets))
        if foreign:
            shown = ", ".join(foreign[:_SHOWN]) + (
                f" and {len(foreign) - _SHOWN:,} more" if len(foreign) > _SHOWN else "")
            raise _refuse(f"The output folder holds files that clvtools did not write: "
                          f"{shown}. A run replaces only its own files.", out,
                          "Move those files elsewhere, or choose another --out folder.")
    _check_writable(out)
    return out


def _check_writable(out: Path) -> None:
    """Create (and remove) a working folder beside ``out``: what the writing will need."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(_work_folder(out))
        if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "its files cannot be removed")
    except OSError as exc:
        raise _refuse(f"The output folder cannot be written: {exc.strerror or exc}.", out,
                      "Choose a folder you may write to (--out), on a disk with free "
                      "space.") from None


def _work_folder(out: Path) -> Path:
    """A fresh hidden folder beside ``out``, named after this process."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{_WORK_TAG}{os.getpid()}-",
                                 dir=out.parent))


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the working folders that killed runs left beside ``out``; returns them.

    Only folders named as this module names them and whose process no longer runs (a run
    into the same folder at the same time keeps its own), and the ``.DIR.old`` of versions
    before the atomic exchange.
    """
    pattern = re.compile(rf"\.{re.escape(out.name)}\.{_WORK_TAG}(\d+)-[A-Za-z0-9_]+")
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        stale = (match is not None and not process_exists(int(match.group(1)))
                 or entry.name == f".{out.name}.old")
        if stale and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _replace(new: Path, out: Path) -> None:
    """Put the folder ``new`` at ``out``; the previous ``out`` (if any) is removed."""
    if not out.exists():
        os.rename(new, out)
        return
    try:
        exchange(new, out)
        old = new   # the exchange left the previous results there
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        old = _work_folder(out)
        os.rmdir(old)   # a fresh name: rename() onto a folder fails on some platforms
        os.rename(out, old)
        try:
            os.rename(new, out)
        except OSError:
            os.rename(old, out)
            raise
    shutil.rmtree(old, ignore_errors=True)


def _write_files(files: Mapping[str, Callable[[], object]], new: Path, marker: str,
                 write: Callable[[str, object, Path], None],
                 background: Collection[str]) -> list[str]:
    """Write ``files`` into the working folder ``new`` (:func:`write_folder`'s rules: the
    ``background`` names on a worker thread, ``marker`` last); returns the names written."""
    stop = threading.Event()
    queue = collections.deque(n for n in files if n in background and n != marker)

    def queued() -> Iterator[str]:
        while queue:
            try:
                yield queue.popleft()   # atomic: each name goes to one thread
            except IndexError:
                return

    def write_all(names: Iterable[str]) -> list[str]:
        done = []
        for name in names:
            if stop.is_set():   # the other thread failed: the folder is being removed
                break
            content = files[name]()
            if content is not None:
                write(name, content, new / name)
                done.append(name)
        return done

    here = [n for n in files if n not in background and n != marker]
    # the worker's exit is awaited however this thread leaves: the folder is removed after
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clvtools-write") as pool:
        worker = pool.submit(write_all, queued()) if queue else None
        try:
            # this thread's own files, then the worker's that are left, if any
            written = write_all(itertools.chain(here, queued()))
        except BaseException:
            stop.set()
            raise
        if worker is not None:
            written += worker.result()
    return written + write_all([marker] if marker in files else [])


@contextlib.contextmanager
def _existing_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist before the writing (the run's results: hundreds of
    thousands that the garbage collector tracks) out of its passes until the writing ends
    (:func:`gc.freeze`): the figures and the workbook make enough objects for three full
    passes, each of which scanned the whole run again under the interpreter's lock (at 1M
    customers the writing's collections took 0.48 CPU-s, 0.13 with the run frozen). Not done
    when something else froze objects already: unfreezing them is not ours to do."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def write_folder(files: Mapping[str, Callable[[], object]], out: str | os.PathLike,
                 marker: str = "data_quality.json", *,
                 write: Callable[[str, object, Path], None], inputs: Iterable = (),
                 background: Collection[str] = ()) -> Path:
    """Write ``files`` into ``out`` atomically: per name in the folder, a function giving the
    content (None: not written), called one at a time on each thread so that one content per
    thread is held at once.

    Parameters
    ----------
    files : mapping of str to callable
        Relative path in the folder -> content function.
    out : path
        The folder, replaced as a whole (the module's docstring says how).
    marker : str
        The file every folder of this kind holds (:func:`check_output_folder`).
    write : callable
        ``write(name, content, path)`` writes one content (``path`` = the working folder /
        ``name``).
    inputs : iterable
        The run's input files, refused inside ``out``.
    background : collection of str
        Names whose content and writing run, in their order, on one worker thread while this
        thread writes the others (and then takes the worker's next ones, if any are left):
        writers that release the GIL (pyarrow's CSV and Parquet) then overlap with those that
        hold it (figures, the workbook). ``marker``, if written at all, is written last, once
        both threads have finished.

    Raises
    ------
    ClvInputError
        The folder is refused (:func:`check_output_folder`), or writing failed (a full disk):
        the previous results are then untouched.
    """
    out = check_output_folder(out, files, marker=marker, inputs=inputs)
    remove_leftovers(out)
    try:
        new = _work_folder(out)
    except OSError as exc:
        raise _refuse(f"The output folder cannot be written: {exc.strerror or exc}.", out,
                      "Choose a folder you may write to (--out).") from None
    try:
        with _existing_objects_frozen():
            written = _write_files(files, new, marker, write, background)
        (new / OWNERSHIP_FILE).write_text(
            json.dumps({"written_by": "clvtools", "files": sorted(written)}, indent=1) + "\n",
            encoding="utf-8")
        _replace(new, out)
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise _refuse(f"The output files could not be written: {exc}. The previous "
                      "content of the folder is unchanged.", out,
                      "Check the free space and the permissions of the disk.") from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return out

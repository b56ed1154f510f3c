"""Two independent pieces of a step on the machine's two cores: one in a second thread while
the caller runs the other.

numpy's and scipy's array loops (the likelihoods, the quadratures, the gamma functions)
release the interpreter's lock, so two model fits on different customers overlap for most of
their time. Each piece computes exactly what it computes alone: only the wall time changes.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..btyd._optimise import single_threaded_blas

__all__ = ["OVERLAP", "alongside_thread"]

#: Run the second piece in a thread beside the first (True), or after it in the caller's
#: thread (False): one piece's memory at a time (the two pieces' arrays together cost about
#: 0.4 GB more at the peak with a million customers and three attributes), both pieces' time.
OVERLAP = True


@contextlib.contextmanager
def alongside_thread(work: Callable | None, *args):
    """Run ``work(*args)`` in a second thread during the ``with`` block.

    Yields a :class:`concurrent.futures.Future` whose ``result()`` is ``work``'s return
    value (or re-raises its exception); on leaving the block the thread has finished. BLAS is
    held to one thread over the whole block: both pieces' fits ask for that, and limits set
    and restored by two threads in an interleaved order would leave it at the wrong count.
    Without ``work``, the future holds None; with :data:`OVERLAP` off, ``work`` runs on
    leaving the block, in the caller's thread. At most one of the two pieces may run SQL on
    the run's DuckDB connection: a connection serves one thread at a time, and refuses a
    second caller (``ResourceInUseException``) rather than waiting. The other piece may query
    through a cursor of its own (:func:`clvtools.data.engine.cursor`), which sees the run's
    ordinary tables but not the connection's TEMP ones.
    """
    if work is None or not OVERLAP:
        done: Future = Future()
        yield done
        try:  # after the block, in this thread
            done.set_result(None if work is None else work(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller by result()
            done.set_exception(exc)
        return
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=1) as pool:
        # in the caller's context: numpy's error state (np.errstate) is a context variable
        future = pool.submit(contextvars.copy_context().run, work, *args)
        yield future
        future.exception()  # wait for it here, inside the BLAS limit

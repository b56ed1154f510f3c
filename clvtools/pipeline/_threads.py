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

from ..btyd.base import _single_threaded_blas

__all__ = ["alongside_thread"]


@contextlib.contextmanager
def alongside_thread(work: Callable | None, *args):
    """Run ``work(*args)`` in a second thread during the ``with`` block.

    Yields a :class:`concurrent.futures.Future` whose ``result()`` is ``work``'s return
    value (or re-raises its exception); on leaving the block the thread has finished. BLAS is
    held to one thread over the whole block: both pieces' fits ask for that, and limits set
    and restored by two threads in an interleaved order would leave it at the wrong count.
    Without ``work``, the future holds None.
    """
    if work is None:
        done: Future = Future()
        done.set_result(None)
        yield done
        return
    with _single_threaded_blas(), ThreadPoolExecutor(max_workers=1) as pool:
        # in the caller's context: numpy's error state (np.errstate) is a context variable
        future = pool.submit(contextvars.copy_context().run, work, *args)
        yield future
        future.exception()  # wait for it here, inside the BLAS limit

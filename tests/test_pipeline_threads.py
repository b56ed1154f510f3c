"""clvtools.pipeline._threads: the second thread's work returns its result or its error."""
from __future__ import annotations

import threading

import pytest

from clvtools.pipeline._threads import alongside_thread


def test_the_work_runs_in_another_thread_and_returns_its_result():
    caller = threading.get_ident()
    with alongside_thread(lambda x: (threading.get_ident(), x * 2), 21) as beside:
        pass
    thread, value = beside.result()
    assert value == 42
    assert thread != caller


def test_an_error_of_the_work_reaches_the_caller():
    def fails():
        raise ValueError("did not converge")

    with alongside_thread(fails) as beside:
        pass
    with pytest.raises(ValueError, match="did not converge"):
        beside.result()


def test_without_work_the_result_is_none():
    with alongside_thread(None) as beside:
        pass
    assert beside.result() is None


def test_the_work_sees_the_callers_numpy_error_state():
    import numpy as np

    with np.errstate(divide="raise"):
        with alongside_thread(lambda: np.geterr()["divide"]) as beside:
            pass
    assert beside.result() == "raise"


def test_without_overlap_the_work_runs_after_the_block_in_the_callers_thread(monkeypatch):
    from clvtools.pipeline import _threads

    monkeypatch.setattr(_threads, "OVERLAP", False)
    order = []
    with alongside_thread(lambda: order.append("work") or threading.get_ident()) as beside:
        order.append("block")
    assert order == ["block", "work"]
    assert beside.result() == threading.get_ident()

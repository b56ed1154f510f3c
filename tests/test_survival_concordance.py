"""Harrell's C counted group by group of tied durations: equal to lifelines' count."""
from __future__ import annotations

import numpy as np
import pytest
from lifelines.utils import concordance_index as lifelines_concordance_index

from clvtools.survival import concordance
from clvtools.survival.concordance import concordance_index


@pytest.mark.parametrize("seed", range(8))
def test_equals_lifelines_with_ties_in_durations_and_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 4000))
    durations = rng.integers(0, int(rng.integers(2, 80)), n) / 7   # whole days in weeks
    scores = np.round(rng.normal(size=n), seed % 3)                # ties in the scores too
    events = rng.random(n) < rng.uniform(0.05, 0.95)
    assert concordance_index(durations, scores, events) == \
        lifelines_concordance_index(durations, scores, events)


def test_equals_lifelines_on_a_cox_like_ranking():
    """Scores that rank the durations well (C far from 1/2), all events observed by default."""
    rng = np.random.default_rng(11)
    risk = rng.normal(size=5000)
    durations = np.ceil(rng.exponential(np.exp(-risk)) * 20)
    ours = concordance_index(durations, -risk)
    assert ours == lifelines_concordance_index(durations, -risk) and ours > 0.7


def test_many_distinct_durations_are_left_to_lifelines(monkeypatch):
    rng = np.random.default_rng(3)
    durations, scores = rng.exponential(size=300), rng.normal(size=300)
    events = rng.random(300) < 0.5
    expected = lifelines_concordance_index(durations, scores, events)
    monkeypatch.setattr(concordance, "MAX_GROUPS", 10)
    called = []
    monkeypatch.setattr(concordance, "lifelines_concordance_index",
                        lambda *a: called.append(1) or lifelines_concordance_index(*a))
    assert concordance_index(durations, scores, events) == expected and called


def test_no_comparable_pair_and_bad_values_raise_as_lifelines_does():
    with pytest.raises(ZeroDivisionError):
        concordance_index([1.0, 2.0], [0.5, 0.3], [0, 0])       # no event: nothing to compare
    with pytest.raises(ValueError):
        concordance_index([1.0, np.nan], [0.5, 0.3], [1, 1])


# ---------------------------------------------------------------- Uno's IPCW concordance
def _surv(event, time):
    from sksurv.util import Surv
    return Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ipcw_equals_scikit_survival_with_ties_in_times_and_scores(seed):
    from sksurv.metrics import concordance_index_ipcw
    rng = np.random.default_rng(seed)
    train = _surv(rng.random(400) < 0.6, rng.integers(1, 40, 400))
    n = 600
    # whole-number times (many ties, censored and events at the same time), scores drawn from
    # few values (ties in risk), some 1e-9 apart (within the tolerance, not equal)
    time = rng.integers(1, 30, n).astype(float)
    event = rng.random(n) < 0.5
    risk = rng.integers(0, 12, n) / 4 + np.where(rng.random(n) < 0.2, 1e-9, 0.0)
    tau = 20.0
    ours = concordance.ipcw_concordance_index(train, _surv(event, time), risk, tau)
    theirs = concordance_index_ipcw(train, _surv(event, time), risk, tau=tau)[0]
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)


def test_ipcw_equals_scikit_survival_on_continuous_scores():
    from sksurv.metrics import concordance_index_ipcw
    rng = np.random.default_rng(5)
    train = _surv(rng.random(300) < 0.7, rng.exponential(10, 300))
    risk = rng.normal(size=500)
    time = np.round(rng.exponential(np.exp(-risk) * 10), 1) + 0.1
    event = rng.random(500) < 0.8
    ours = concordance.ipcw_concordance_index(train, _surv(event, time), risk, 8.0)
    theirs = concordance_index_ipcw(train, _surv(event, time), risk, tau=8.0)[0]
    assert ours == pytest.approx(theirs, rel=1e-12, abs=0)
    assert ours > 0.6   # a real ranking, not a degenerate 0.5


def test_ipcw_bad_input_raises_as_scikit_survival_does():
    from sksurv.exceptions import NoComparablePairException
    train = _surv([True, False, True], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):      # all censored
        concordance.ipcw_concordance_index(train, _surv([False, False], [1.0, 2.0]),
                                           [0.1, 0.2], 2.5)
    with pytest.raises(NoComparablePairException):   # one event, nothing exits after it
        concordance.ipcw_concordance_index(train, _surv([False, True], [1.0, 2.0]),
                                           [0.1, 0.2], 2.5)

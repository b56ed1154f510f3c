"""Sums by month and segment, intervals of totals, the delta method and the churners."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clvtools.forecast import (
    ALL_MONTHS,
    TOTAL,
    bernoulli_variance,
    declared_at_date,
    declared_by_month,
    delta_variance,
    monthly_forecast,
    segment_sums,
    size_sample,
    stratified_sample,
)

MONTHS = pd.DataFrame({"month": ["2025-01", "2025-02"], "days": [20, 28],
                       "partial": [True, False]})


def test_segment_sums_by_segment_then_total():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = segment_sums(values, np.array([0, 1, 0]), 3)
    np.testing.assert_allclose(out, [[6, 8], [3, 4], [0, 0], [9, 12]])


def test_a_totals_interval_comes_from_its_own_variance():
    """The total's interval is mean +- z sqrt(var of the total), not the parts' bounds added."""
    mean = np.array([[10.0, 20.0, 30.0], [5.0, 5.0, 10.0], [15.0, 25.0, 40.0]])
    var = np.array([[4.0, 9.0, 13.0], [1.0, 1.0, 2.0], [5.0, 10.0, 15.0]])
    table = monthly_forecast({"expected_revenue": (mean, var)}, np.array([3, 2, 5]),
                             ["a", "b"], MONTHS)
    total = table[(table["month"] == ALL_MONTHS) & (table["segment"] == TOTAL)].iloc[0]
    z = stats.norm.ppf(0.975)
    assert total["expected_revenue"] == 40.0
    assert total["expected_revenue_hi95"] == pytest.approx(40.0 + z * np.sqrt(15.0))
    parts = table[(table["month"] == ALL_MONTHS) & (table["segment"] != TOTAL)]
    assert total["expected_revenue_hi95"] < parts["expected_revenue_hi95"].sum()
    assert list(table.columns[:6]) == ["month", "segment", "expected_revenue",
                                       "expected_revenue_lo80", "expected_revenue_hi80",
                                       "expected_revenue_lo95"]
    assert list(table["month"].unique()) == ["2025-01", "2025-02", ALL_MONTHS]
    assert list(table["segment"].unique()) == ["a", "b", TOTAL]
    assert table.loc[table["month"] == ALL_MONTHS, "days"].unique().tolist() == [48]
    assert table["customers"].tolist()[:3] == [3, 2, 5]
    # lower bounds never negative
    assert (table.filter(like="_lo").to_numpy() >= 0).all()


def test_delta_variance_of_a_linear_map_is_exact():
    a = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    cov = np.array([[0.5, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.3]])
    out = delta_variance(lambda th: {"y": a @ th}, np.array([1.0, 2.0, 3.0]), cov)
    np.testing.assert_allclose(out["y"], np.diag(a @ cov @ a.T), rtol=1e-6)


def test_delta_variance_without_a_finite_covariance_is_zero():
    out = delta_variance(lambda th: {"y": th * 2}, np.array([1.0]), np.array([[np.nan]]))
    assert out["y"].tolist() == [0.0]


def test_stratified_sample_weights_add_up_to_each_stratum():
    codes = np.repeat([0, 1, 2], [10, 1000, 50])
    value = np.random.default_rng(0).gamma(1.0, 1.0, len(codes))
    rows, weights = stratified_sample(codes, value, 100)
    for c, size in ((0, 10), (1, 1000), (2, 50)):
        assert weights[codes[rows] == c].sum() == pytest.approx(size)
    assert len(np.unique(rows)) == len(rows) == 10 + 100 + 50
    # spread along the value: the weighted mean is close to the stratum's mean
    big = codes[rows] == 1
    assert value[rows][big].mean() == pytest.approx(value[codes == 1].mean(), rel=0.05)


def test_declarations_by_month_from_a_survival_curve():
    survival = np.array([[0.9, 0.7, 0.7], [1.0, 1.0, 0.2]])
    by_month = declared_by_month(survival)
    np.testing.assert_allclose(by_month, [[0.1, 0.2, 0.0], [0.0, 0.0, 0.8]])
    var = bernoulli_variance(by_month)
    np.testing.assert_allclose(var[:, -1], [0.3 * 0.7, 0.8 * 0.2])


def test_declared_at_date_places_the_probability_in_its_month():
    out = declared_at_date(np.array([0.4, 0.5, np.nan]), np.array([1.5, 9.0, 1.0]),
                           np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(out, [[0, 0.4, 0], [0, 0, 0], [0, 0, 0]])


def test_size_sample_is_unbiased_and_takes_the_largest_with_certainty():
    """Inclusion in proportion to size: the weighted sample sums a quantity that its size
    tracks closely, the largest sizes are taken with weight 1, and each stratum's expected
    size is the sample asked for."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, 30_000)
    size = rng.pareto(1.5, len(codes)) + 0.01          # heavy-tailed, like big spenders
    quantity = size * rng.uniform(0.8, 1.2, len(codes))
    rows, weights = size_sample(codes, size, 400)
    assert len(np.unique(rows)) == len(rows)
    for code in range(3):
        mine = codes[rows] == code
        assert abs(mine.sum() - 400) <= 1
        truth = quantity[codes == code].sum()
        estimate = np.sum(quantity[rows[mine]] * weights[mine])
        assert abs(estimate / truth - 1) < 0.02, (code, estimate / truth)
        largest = np.flatnonzero(codes == code)[np.argmax(size[codes == code])]
        assert largest in rows and weights[rows == largest][0] == 1.0
    # a stratum no larger than the sample is taken whole
    rows, weights = size_sample(np.zeros(50, dtype=int), np.ones(50), 400)
    assert sorted(rows) == list(range(50)) and np.all(weights == 1.0)

"""The forecast step: forecast.csv from a run, against customers.csv and its own rules."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools import analyze
from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.forecast import ALL_MONTHS, MEASURES, TOTAL
from clvtools.pipeline.forecasting import SCOPE, SEGMENTS, seasonal_index
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.timeline import build_timeline

#: The module's fixtures are built once: its tests on one worker (a module-scoped fixture is
#: otherwise built again on each worker that runs one of them)
pytestmark = pytest.mark.xdist_group("pipeline_forecast")


@pytest.fixture(scope="module")
def base():
    return generate_customer_base(1500, seed=2)


@pytest.fixture(scope="module")
def undiscounted(base):
    return analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                   config=Settings(horizon=26, discount_rate=0.0)).analysis


def _cell(table, month, segment):
    return table[(table["month"] == month) & (table["segment"] == segment)].iloc[0]


def test_columns_follow_the_design(undiscounted):
    table = undiscounted.forecast.table
    fixed = ["month", "segment"]
    for measure in (*MEASURES, "saved_by_plan"):
        fixed += [measure] + [f"{measure}_{b}" for b in ("lo80", "hi80", "lo95", "hi95")]
    assert list(table.columns[:len(fixed)]) == fixed
    assert list(table.columns[len(fixed):]) == ["customers", "days", "partial", "scope",
                                                "seasonality"]
    assert set(table["segment"]) == {*SEGMENTS, TOTAL}
    assert (table["scope"] == SCOPE).all()


def test_months_are_calendar_months_from_the_day_after_the_end(undiscounted):
    table = undiscounted.forecast.table
    months = undiscounted.timeline.forecast_months
    assert list(table["month"].unique()) == [*months["month"], ALL_MONTHS]
    first = undiscounted.timeline.observation_end + dt.timedelta(days=1)
    assert months["month"].iloc[0] == f"{first:%Y-%m}"
    assert months["days"].sum() == 26 * 7
    # the first month starts mid-month (the log ends 2024-12-30) and says so
    assert bool(_cell(table, months["month"].iloc[0], TOTAL)["partial"])


def test_undiscounted_forecast_equals_customers_csv(undiscounted):
    """At a discount rate of 0, forecast.csv's horizon totals are customers.csv's sums."""
    table, customers = undiscounted.forecast.table, undiscounted.targets.customers
    total = _cell(table, ALL_MONTHS, TOTAL)
    for column in ("expected_revenue", "revenue_if_retained"):
        assert total[column] == pytest.approx(customers[column].sum(), rel=1e-9)
    assert total["expected_loss"] == pytest.approx(customers["revenue_at_risk"].sum(), rel=1e-9)
    # the plan's saved revenue, over the horizon, is the targets' saved revenue
    saved = undiscounted.targets.targets["saved_revenue"].sum()
    assert total["saved_by_plan"] == pytest.approx(saved, rel=1e-9)
    # by cell too
    for cell in SEGMENTS:
        mine = customers.loc[customers["cell"] == cell, "expected_revenue"].sum()
        assert _cell(table, ALL_MONTHS, cell)["expected_revenue"] == pytest.approx(mine,
                                                                                  rel=1e-9)


def test_months_add_up_to_all_and_segments_to_total(undiscounted):
    table = undiscounted.forecast.table
    months = table[table["month"] != ALL_MONTHS]
    for measure in (*MEASURES, "saved_by_plan"):
        by_month = months.groupby("segment")[measure].sum()
        whole = table[table["month"] == ALL_MONTHS].set_index("segment")[measure]
        np.testing.assert_allclose(by_month.reindex(whole.index), whole, rtol=1e-9, atol=1e-9)
        parts = table[table["segment"] != TOTAL].groupby("month", sort=False)[measure].sum()
        totals = table[table["segment"] == TOTAL].set_index("month")[measure]
        np.testing.assert_allclose(parts.reindex(totals.index), totals, rtol=1e-9, atol=1e-9)


def test_intervals_bracket_the_mean_and_the_churners_match_the_churn_model(undiscounted):
    table = undiscounted.forecast.table
    for measure in (*MEASURES, "saved_by_plan"):
        lo95, lo80, hi80, hi95 = (table[f"{measure}_{b}"] for b in ("lo95", "lo80", "hi80",
                                                                     "hi95"))
        assert (lo95 <= lo80 + 1e-9).all() and (lo80 <= table[measure] + 1e-9).all()
        assert (table[measure] <= hi80 + 1e-9).all() and (hi80 <= hi95 + 1e-9).all()
    total = _cell(table, ALL_MONTHS, TOTAL)
    assert total["expected_revenue_hi95"] > total["expected_revenue"] > \
        total["expected_revenue_lo95"] > 0
    customers = undiscounted.targets.customers
    # one declaration at most per live customer: the horizon's churners are the Cox model's
    # churn probabilities summed (the horizon is 26 weeks = 182 days exactly)
    assert total["expected_churners"] == pytest.approx(customers["churn_probability"].sum(),
                                                       rel=1e-9)
    churned = table[table["segment"] == "churned"]
    assert (churned["expected_churners"] == 0).all()
    assert (churned["expected_churners_hi95"] == 0).all()


def test_data_quality_says_what_the_forecast_covers(undiscounted):
    quality = undiscounted.data_quality()
    assert any("exist at the observation end" in n for n in quality["forecast_notes"])
    assert quality["seasonal_index"] is None  # 23 complete months only
    assert any("No seasonality" in n for n in quality["forecast_notes"])


def _seasonal_log(base):
    """The generated log thinned to a third in June to August: a summer dip."""
    tx = base.transactions
    month = pd.to_datetime(tx["date"]).dt.month
    rng = np.random.default_rng(0)
    drop = month.isin([6, 7, 8]).to_numpy() & (rng.random(len(tx)) < 2 / 3)
    # a customer's first purchase stays (acquisition dates are the generator's)
    first = ~tx.duplicated("customer_id")
    return tx[~drop | first.to_numpy()]


def test_seasonal_index_finds_a_summer_dip(base):
    s = Settings(horizon=26, observation_end="2024-12-31")
    inputs = read_inputs(_seasonal_log(base), None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    index = seasonal_index(inputs, timeline).set_index("month_of_year")["index"]
    assert index.mean() == pytest.approx(1.0)
    assert index.loc[[6, 7, 8]].max() < 0.7 < 0.9 < index.drop([6, 7, 8]).min()


def test_seasonality_spreads_the_months_but_keeps_the_totals(base):
    result = analyze(_seasonal_log(base), config=Settings(horizon=52, discount_rate=0.0,
                                                          observation_end="2024-12-31"))
    table, customers = result.analysis.forecast.table, result.analysis.targets.customers
    assert (table["seasonality"] == "observed_index").all()
    total = _cell(table, ALL_MONTHS, TOTAL)
    assert total["expected_revenue"] == pytest.approx(customers["expected_revenue"].sum(),
                                                      rel=1e-9)
    per_day = table[(table["segment"] == TOTAL) & (table["month"] != ALL_MONTHS)]
    per_day = per_day.set_index("month")["expected_revenue"] / per_day.set_index("month")["days"]
    summer = per_day[per_day.index.str[5:].isin(["06", "07", "08"])].mean()
    spring = per_day[per_day.index.str[5:].isin(["03", "04", "05"])].mean()
    assert summer < 0.8 * spring
    assert result.analysis.data_quality()["seasonal_index"] is not None


def test_backtest_compares_forecast_and_actual_month_by_month(undiscounted):
    table = undiscounted.backtest.table
    assert table is not None
    origins = sorted(table["origin"].unique())
    end = undiscounted.timeline.observation_end
    horizon = dt.timedelta(days=undiscounted.timeline.horizon_days)
    assert origins[-1] == end - horizon and len(origins) <= 2
    for _, one in table.groupby("origin"):
        months = one[one["month"] != ALL_MONTHS]
        whole = one[one["month"] == ALL_MONTHS].iloc[0]
        assert months["days"].sum() == horizon.days == whole["days"]
        assert months["actual_revenue"].sum() == pytest.approx(whole["actual_revenue"])
        assert months["expected_revenue"].sum() == pytest.approx(whole["expected_revenue"])
        np.testing.assert_allclose(months["error"],
                                   months["actual_revenue"] - months["expected_revenue"])
        assert ((months["expected_revenue_lo95"] <= months["expected_revenue"])
                & (months["expected_revenue"] <= months["expected_revenue_hi95"])).all()
    # the last origin's months are the value step's holdout window: same actual revenue
    holdout = undiscounted.value.holdout["holdout_summary"].iloc[0]
    last = table[(table["origin"] == origins[-1]) & (table["month"] == ALL_MONTHS)].iloc[0]
    assert last["actual_revenue"] == pytest.approx(holdout["actual_revenue"], rel=1e-9)
    assert any("backtest" in n for n in undiscounted.data_quality()["forecast_notes"])


def test_backtest_reuses_the_holdout_fit_at_its_origin(undiscounted):
    """The backtest's first origin is the holdout's calibration end: the value step's fit
    there is taken, and gives the table a refit gives (same customers, model, covariates)."""
    from clvtools.pipeline.backtest import _one_origin

    analysis = undiscounted
    rfm, models = analysis.value.holdout_fit
    origin = analysis.timeline.holdout_start
    assert len(rfm) == int(analysis.value.holdout["holdout_summary"]["customers"].iloc[-1])
    covariates = analysis.inputs.attributes.frame()
    chosen = analysis.value.choice.chosen
    reused = _one_origin(analysis.inputs, analysis.timeline, origin, covariates, chosen,
                         (rfm, models))
    refitted = _one_origin(analysis.inputs, analysis.timeline, origin, covariates, chosen)
    pd.testing.assert_frame_equal(reused, refitted, rtol=1e-9)
    table = analysis.backtest.table
    pd.testing.assert_frame_equal(table[table["origin"] == origin].reset_index(drop=True),
                                  reused, rtol=1e-9)


def test_customer_variance_on_a_sample_estimates_the_full_sum(undiscounted, monkeypatch):
    """Above VARIANCE_SAMPLE_PER_SEGMENT customers in a segment, the sums of the customers'
    own variances come from a sample drawn in proportion to a proxy of each one's variance:
    here samples of 150 per segment (a tenth to a fifth of each) with 10 seeds against every
    customer, with a plan that saves a share of the revenue of one customer in seven. The
    error of the intervals' half-widths over the horizon, root mean square over the seeds,
    stays under 4 % in every segment (a sample spread evenly along expected revenue missed
    by 4 %, and the plan's saved revenue by 25 %, here)."""
    from functools import partial

    from clvtools.forecast import size_sample
    from clvtools.pipeline import forecasting

    r = undiscounted
    ends = r.timeline.forecast_month_ends()
    customers = r.targets.customers.set_index("customer_id").reindex(r.value.rfm.index)
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    share = np.where(np.arange(len(codes)) % 7 == 0, 0.2, 0.0)
    exact = forecasting.revenue_totals(r.value, ends, share, None, codes,
                                       sample_per_segment=None)
    assert np.bincount(codes).max() > 150
    measures = ("expected_revenue", "revenue_if_retained", "expected_loss", "saved_by_plan")
    errors = {m: [] for m in measures}
    for seed in range(10):
        monkeypatch.setattr(forecasting, "size_sample", partial(size_sample, seed=seed))
        sampled = forecasting.revenue_totals(r.value, ends, share, None, codes,
                                             sample_per_segment=150)
        for measure in measures:
            np.testing.assert_array_equal(sampled[measure][0], exact[measure][0])  # means
            var, ref = sampled[measure][1], exact[measure][1]
            errors[measure].append(np.sqrt(var[:, -1] / ref[:, -1]) - 1)
    for measure, error in errors.items():
        rms = np.sqrt(np.mean(np.square(error), axis=0))
        assert np.all(rms < 0.04), (measure, rms)      # measured: 3.1 % at most


def test_delta_method_moves_only_the_customers_a_coefficient_touches(undiscounted,
                                                                      monkeypatch):
    """At the step of an attribute's coefficient only the customers with that attribute are
    evaluated again; the variances equal those of evaluating every customer at every step."""
    from clvtools.pipeline import forecasting
    from clvtools.pipeline.value_models import BoundCovariates

    r = undiscounted
    purchases = r.value.models.purchases
    assert isinstance(purchases, BoundCovariates)
    names = list(purchases.params_.index)
    coefficient = next(i for i, n in enumerate(names) if n.startswith("purchase:"))
    moved = purchases.rows_moved_by([coefficient])
    assert 0 < len(moved) < len(r.value.rfm)        # a proper subset of the customers
    assert purchases.rows_moved_by([0]) is None     # r moves everyone
    ends = r.timeline.forecast_month_ends()
    customers = r.targets.customers.set_index("customer_id").reindex(r.value.rfm.index)
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    share = np.full(len(codes), 0.1)
    order_by = r.value.scores["expected_revenue"].to_numpy(float)

    def variance():
        return forecasting._value_parameter_variance(r.value, ends, share, None, codes,
                                                     order_by, [])

    restricted = variance()
    monkeypatch.setattr(BoundCovariates, "rows_moved_by", lambda self, positions: None)
    every = variance()
    for measure, values in every.items():
        assert np.all(values[:, -1] > 0), measure
        # the moved customers' linear predictors come from a smaller matrix product, whose
        # rounding may differ in the last place; a forward difference (step 1e-4) magnifies
        # that to about 1e-11 of the variance, far below the step's own truncation error
        np.testing.assert_allclose(restricted[measure], values, rtol=1e-9, atol=0)

"""Step 6, the forecast for finance: revenue and churn per calendar month, with intervals.

``forecast.csv`` (DESIGN.md fixes its columns): per calendar month of the horizon (from the
day after the observation end; the first and last months may be partial, ``days`` and
``partial`` say so) and for the whole horizon (``all``), per matrix cell, for the declared-
churned group and in total:

* ``expected_revenue``: the value model's expected purchases of each month times expected
  spend (the value step's per-customer x month arrays, :attr:`ValueResult.months`), nominal
  (undiscounted, as finance books it; customers.csv stays discounted and equals it at a
  discount rate of 0);
* ``revenue_if_retained``: the same at the purchase rate given alive;
* ``expected_loss``: their difference (the revenue at risk of customers.csv, by month);
* ``expected_churners``: the expected number of live customers declared churned in the month,
  from the churn model's survival curve read at the month ends (the Cox model of the risk
  step with each customer's covariates at the observation end), or, where no Cox model
  could be fitted, 1 - P(alive) placed on each customer's current declaration date;
* ``saved_by_plan`` (scenario): the revenue the chosen push/pull plan is expected to save,
  each customer's saved revenue (targets step) spread over the months like their expected
  loss.

Intervals (80 % and 95 %, normal approximation of each total, computed for that total):

* expected revenue, revenue if retained, loss and saved: each customer's own randomness
  (purchases and spend, :mod:`clvtools.forecast.moments`) plus the uncertainty of the value
  model's and the spend model's parameters (delta method on a stratified sample);
* expected churners: each live customer's Bernoulli declaration plus the Cox coefficients'
  uncertainty (delta method; the baseline hazard is taken as known); with the value model's
  fallback, the customers' randomness only.

It covers the customers who exist at the observation end (``scope``): no new customers.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..btyd.clv import revenue_by_month
from ..config import Settings
from ..data.rfm import purchases_by_period
from ..forecast import (
    MEASURES,
    SCENARIOS,
    bernoulli_variance,
    declared_at_date,
    declared_by_month,
    delta_variance,
    monthly_forecast,
    purchase_posterior,
    revenue_variance,
    segment_sums,
    spend_moments,
    stratified_sample,
    window_moments,
)
from ..targeting.matrix import CELLS, CHURNED
from .inputs import Inputs
from .risk import COX, RiskResult
from .targets import TargetsResult
from .timeline import Timeline
from .value import BoundCovariates, ValueResult, _expected_spend

__all__ = ["ForecastResult", "forecast_step", "money_totals", "seasonal_index", "SCOPE",
           "SEGMENTS"]

#: Segments of the forecast, in the order of the table (then ``total``).
SEGMENTS = [*CELLS.values(), CHURNED]
#: What the forecast covers (the ``scope`` column).
SCOPE = "customers_at_observation_end"
#: Customers per segment in the stratified sample of the delta method.
SAMPLE_PER_SEGMENT = 2000
#: History needed for a seasonal index: two years of complete calendar months.
SEASONAL_MONTHS = 24


@dataclass
class ForecastResult:
    """What the forecast step computed.

    Attributes
    ----------
    table : pandas.DataFrame
        ``forecast.csv`` (:func:`clvtools.forecast.monthly_forecast`'s columns, then
        ``scope`` and ``seasonality``).
    seasonal_index : pandas.DataFrame or None
        ``month_of_year`` (1-12) and ``index`` (mean 1) when seasonality was applied.
    notes : list of str
    """

    table: pd.DataFrame
    seasonal_index: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def forecast_step(value: ValueResult, risk: RiskResult, targets: TargetsResult,
                  inputs: Inputs, timeline: Timeline, settings: Settings) -> ForecastResult:
    """Revenue, loss, churners and the plan's savings per month and segment, with intervals."""
    s = settings
    months = timeline.forecast_months
    ends = timeline.forecast_month_ends()
    n_months = len(ends)
    rfm = value.rfm
    customers = targets.customers.set_index("customer_id").reindex(rfm.index)
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    notes = [f"forecast.csv covers the {len(rfm):,} customers who exist at the observation "
             "end (scope): customers acquired later are not in it.",
             "forecast.csv's money is nominal (undiscounted); customers.csv's is discounted."]

    season, factors = None, (None, None)
    season = seasonal_index(inputs, timeline)
    if season is None:
        notes.append("No seasonality applied in forecast.csv: the history holds fewer than "
                     f"{SEASONAL_MONTHS} complete calendar months.")
    else:
        notes.append("forecast.csv spreads each customer's expected purchases over the months "
                     "by the observed seasonal index of purchases (seasonal_index in "
                     "data_quality.json); each customer's total over the horizon stays the "
                     "value model's.")
        moy = pd.PeriodIndex(months["month"], freq="M").month.to_numpy()
        weights = season.set_index("month_of_year")["index"].reindex(moy).to_numpy()
        factors = (_seasonal_factors(value.months.expected_purchases, weights),
                   _seasonal_factors(value.months.purchases_if_retained, weights))

    saved_share = _saved_share(customers, targets)
    totals = money_totals(value, ends, codes, saved_share=saved_share, factors=factors,
                          notes=notes)
    churn_mean, churn_var, churn_param = _churner_totals(risk, customers, codes, ends, s,
                                                         timeline, notes)
    totals["expected_churners"] = (churn_mean, churn_var + churn_param)
    counts = np.append(np.bincount(codes, minlength=len(SEGMENTS)), len(codes))
    ordered = {m: totals[m] for m in (*MEASURES, *SCENARIOS)}
    table = monthly_forecast(ordered, counts, SEGMENTS, months)
    table["scope"] = SCOPE
    table["seasonality"] = "observed_index" if season is not None else "none"
    assert n_months + 1 == table["month"].nunique()
    return ForecastResult(table, season, notes)


def seasonal_index(inputs: Inputs, timeline: Timeline) -> pd.DataFrame | None:
    """The observed seasonal index of purchases by month of the year, or None.

    Purchases per day in each complete calendar month of the history, divided by their
    centred 12-month moving average (2 x 12, so that a growing or shrinking base does not
    read as a season); the ratios averaged by month of the year and scaled to a mean of 1.
    Needs :data:`SEASONAL_MONTHS` complete months.
    """
    first = pd.Timestamp(timeline.first_date)
    end = pd.Timestamp(timeline.observation_end)
    periods = pd.period_range(first, end, freq="M")
    periods = [p for p in periods if p.start_time >= first and p.end_time.normalize() <= end]
    if len(periods) < SEASONAL_MONTHS:
        return None
    starts = [(p.start_time - pd.Timedelta(days=1)).date() for p in periods]
    ends = [p.end_time.normalize().date() for p in periods]
    counts = purchases_by_period(inputs.log, starts, ends)["purchases"].to_numpy(float)
    rate = pd.Series(counts / np.array([p.days_in_month for p in periods], float))
    trend = rate.rolling(12, center=True).mean().rolling(2).mean().shift(-1)
    ratio = (rate / trend).replace([np.inf, -np.inf], np.nan)
    by_month = ratio.groupby([p.month for p in periods]).mean().reindex(range(1, 13))
    if by_month.isna().any() or not np.isfinite(by_month).all() or by_month.mean() <= 0:
        return None
    return pd.DataFrame({"month_of_year": range(1, 13),
                         "index": (by_month / by_month.mean()).to_numpy()})


def _seasonal_factors(by_month: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per customer and month, the factor that spreads the row by ``weights`` and keeps its
    sum: ``w_m / (sum_k x_k w_k / sum_k x_k)``; 1 for an all-zero row."""
    total = by_month.sum(axis=1, keepdims=True)
    weighted = by_month @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(total[:, 0] > 0, weighted / total[:, 0], 1.0)
    return weights[None, :] / level[:, None]


def _saved_share(customers: pd.DataFrame, targets: TargetsResult) -> np.ndarray:
    """Each customer's saved revenue under the plan as a share of their revenue at risk."""
    saved = pd.Series(0.0, index=customers.index)
    if targets.targets is not None and len(targets.targets):
        chosen = targets.targets.set_index("customer_id")["saved_revenue"]
        saved.loc[chosen.index] = chosen.to_numpy(float)
    at_risk = customers["revenue_at_risk"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(at_risk > 0, saved.to_numpy() / at_risk, 0.0)


def money_totals(value: ValueResult, ends: np.ndarray, codes: np.ndarray, *,
                 saved_share: np.ndarray | None = None, factors=(None, None),
                 notes: list[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Means and variances of the money measures' totals by segment, month and horizon.

    Parameters
    ----------
    value : ValueResult
        With ``months`` computed at ``ends`` (the value step's).
    ends : numpy.ndarray, shape (M,)
        Month ends, time units after the observation end.
    codes : numpy.ndarray of int, shape (n,)
        Each customer's position in :data:`SEGMENTS`.
    saved_share : numpy.ndarray, shape (n,), optional
        Saved revenue under the plan as a share of the revenue at risk (default 0).
    factors : (numpy.ndarray, numpy.ndarray) or (None, None)
        Seasonal factors (n, M) of expected purchases and of purchases if retained.
    notes : list of str, optional
        Appended to when the parameter covariance is unusable.

    Returns
    -------
    dict of (numpy.ndarray, numpy.ndarray)
        Per money measure, the mean and the variance (customers' randomness plus the value
        and spend models' parameter uncertainty) of each total, shape
        (len(SEGMENTS) + 1, M + 1): :func:`clvtools.forecast.monthly_forecast`'s input.
    """
    n = len(value.rfm)
    share = np.zeros(n) if saved_share is None else saved_share
    starts = np.concatenate([[0.0], ends[:-1]])
    spend = value.scores["expected_average_spend"].to_numpy(float)
    totals = _revenue_totals(value, starts, ends, spend, share, factors, codes)
    param = _value_parameter_variance(value, ends, share, factors, codes,
                                      value.scores["expected_revenue"].to_numpy(float),
                                      notes if notes is not None else [])
    return {m: (mean, var + param[m]) for m, (mean, var) in totals.items()}


def _with_whole(by_month: np.ndarray) -> np.ndarray:
    """Months, then their sum (the whole horizon)."""
    return np.hstack([by_month, by_month.sum(axis=1, keepdims=True)])


def _revenue_totals(value, starts, ends, spend, saved_share, factors, codes):
    """Means and customer-level variances of the money measures, summed by segment."""
    n_seg = len(SEGMENTS)
    e_factor, v_factor = factors
    expected = value.months.expected_purchases * spend[:, None]
    retained = value.months.purchases_if_retained * spend[:, None]
    if e_factor is not None:
        expected, retained = expected * e_factor, retained * v_factor
    loss = retained - expected
    x, tx, age = (value.rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    purchases = value.models.purchases
    post = purchase_posterior(getattr(purchases, "model", purchases), x, tx, age,
                              getattr(purchases, "covariates", None))
    mo = window_moments(post, np.append(starts, 0.0), np.append(ends, ends[-1]))
    monetary = value.rfm["monetary_value"].to_numpy(float) if "monetary_value" in value.rfm \
        else np.zeros(len(x))
    sm = spend_moments(value.models.spend, x, monetary, spend)
    scale = None
    if e_factor is not None:
        scale = np.hstack([e_factor, np.ones((len(x), 1))])
    var_e = revenue_variance(mo.n1, mo.n2, sm, scale)
    var_v = revenue_variance(mo.y1, mo.y2, sm, scale)
    # the purchases lost are those Y - N that the retained customer makes after dropping out
    var_l = revenue_variance(mo.y1 - mo.n1, mo.y2 - 2 * mo.yn + mo.n2, sm, scale)
    share = saved_share[:, None]
    out = {}
    for name, mean, var in (("expected_revenue", expected, var_e),
                            ("revenue_if_retained", retained, var_v),
                            ("expected_loss", loss, var_l),
                            ("saved_by_plan", share * loss, share**2 * var_l)):
        out[name] = (segment_sums(_with_whole(mean), codes, n_seg),
                     segment_sums(var, codes, n_seg))
    return out


def _with_params(model, values):
    """A copy of a fitted model with other parameter values (a bound covariate model keeps
    its customers' covariates)."""
    if isinstance(model, BoundCovariates):
        return BoundCovariates(_with_params(model.model, values), model.covariates)
    new = copy.copy(model)
    new.params_ = pd.Series(values, index=model.params_.index)
    return new


def _value_parameter_variance(value, ends, saved_share, factors, codes, order_by, notes):
    """Delta-method variance of the money totals from the value and spend models."""
    models = value.models
    purchases = models.purchases
    fitter = getattr(purchases, "model", purchases)
    k = len(fitter.params_)
    theta = [fitter.params_.to_numpy(float)]
    blocks = [fitter.variance_matrix_.to_numpy(float)]
    if models.spend is not None:
        theta.append(models.spend.params_.to_numpy(float))
        blocks.append(models.spend.variance_matrix_.to_numpy(float))
    theta = np.concatenate(theta)
    cov = np.zeros((len(theta), len(theta)))
    at = 0
    for block in blocks:  # the two models are fitted separately: independent estimates
        cov[at:at + len(block), at:at + len(block)] = block
        at += len(block)
    if not np.all(np.isfinite(cov)):
        notes.append("The value or spend model's parameter covariance is not finite: the "
                     "forecast's money intervals carry the customers' randomness only.")
    rows, weights = stratified_sample(codes, order_by, SAMPLE_PER_SEGMENT)
    sample = value.rfm.iloc[rows]
    if isinstance(purchases, BoundCovariates):
        purchases = BoundCovariates(purchases.model, purchases.covariates.iloc[rows])
    x, tx, age = (sample[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    e_factor, v_factor = (None if f is None else f[rows] for f in factors)
    share, sample_codes = saved_share[rows, None], codes[rows]
    unit = 1.0  # the ends are already in time units

    def evaluate(th):
        model = _with_params(purchases, th[:k])
        spend_model = models.spend if models.spend is None else _with_params(models.spend,
                                                                             th[k:])
        spend = _expected_spend(replace(models, purchases=model, spend=spend_model), sample)
        m = revenue_by_month(model, x, tx, age, spend, ends[-1], unit, 0.0, period_ends=ends)
        expected, retained = m.expected_revenue, m.revenue_if_retained
        if e_factor is not None:
            expected, retained = expected * e_factor, retained * v_factor
        loss = retained - expected
        out = {}
        for name, arr in (("expected_revenue", expected), ("revenue_if_retained", retained),
                          ("expected_loss", loss), ("saved_by_plan", share * loss)):
            out[name] = segment_sums(_with_whole(arr) * weights[:, None], sample_codes,
                                     len(SEGMENTS))
        return out

    return delta_variance(evaluate, theta, cov)


def _churner_totals(risk, customers, codes, ends, s, timeline, notes):
    """Expected churners per month: means, customer-level and parameter variances."""
    n_seg = len(SEGMENTS)
    n = len(customers)
    by_month = np.zeros((n, len(ends)))
    param = np.zeros((n_seg + 1, len(ends) + 1))
    live = risk.scoring is not None and risk.model is not None
    if live:
        scoring = risk.scoring.set_index("customer_id")
        position = customers.index.get_indexer(scoring.index)
        cox = customers["churn_model"].to_numpy()[position] == COX
        scoring, position = scoring[cox], position[cox]
        by_month[position] = declared_by_month(
            risk.model.survival_function(scoring, ends, source="scoring table").to_numpy())
        rows, weights = stratified_sample(
            codes[position], customers["churn_probability"].to_numpy(float)[position],
            SAMPLE_PER_SEGMENT)
        sample, sample_codes = scoring.iloc[rows], codes[position][rows]

        def evaluate(beta):
            model = copy.copy(risk.model)
            model.params_ = pd.Series(beta, index=risk.model.params_.index)
            p = declared_by_month(model.survival_function(sample, ends,
                                                          source="scoring table").to_numpy())
            return {"c": segment_sums(_with_whole(p) * weights[:, None], sample_codes, n_seg)}

        param = delta_variance(evaluate, risk.model.params_.to_numpy(float),
                               risk.model.variance_matrix_.to_numpy(float))["c"]
        notes.append("Expected churners per month: the Cox churn model's survival curve of "
                     "each live customer read at the month ends; intervals with the "
                     "coefficients' uncertainty (the baseline hazard taken as known).")
    else:
        lifecycle = risk.lifecycle.set_index("customer_id").reindex(customers.index)
        declaration = s.churn_after - lifecycle["time_since_last_purchase"].to_numpy(float)
        by_month = declared_at_date(customers["churn_probability"].to_numpy(float),
                                    declaration, ends)
        notes.append("Expected churners per month: no Cox model, so 1 - P(alive) of each live "
                     "customer placed on their current declaration date; intervals with the "
                     "customers' randomness only.")
    mean = segment_sums(_with_whole(by_month), codes, n_seg)
    var = segment_sums(bernoulli_variance(by_month), codes, n_seg)
    return mean, var, param

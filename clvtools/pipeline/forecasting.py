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
  uncertainty (delta method, exact over every live customer) and the baseline hazard's
  (Breslow's variance, kept in the model file); with the value model's
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
    declared_at_date,
    delta_variance,
    grouped_revenue_variance,
    monthly_forecast,
    purchase_posterior,
    segment_indicator,
    segment_sums,
    spend_moments,
    stratified_sample,
)
from ..targeting.matrix import CELLS, CHURNED
from .inputs import Inputs
from .risk import COX, RiskResult
from .targets import TargetsResult
from .timeline import Timeline
from .value import BoundCovariates, ValueResult
from .value_models import expected_spend, models_at, parameters

__all__ = ["ForecastResult", "forecast_step", "money_totals", "seasonal_index", "SCOPE",
           "SEGMENTS"]

#: Segments of the forecast, in the order of the table (then ``total``).
SEGMENTS = [*CELLS.values(), CHURNED]
#: What the forecast covers (the ``scope`` column).
SCOPE = "customers_at_observation_end"
#: Customers per segment in the stratified sample of the delta method.
SAMPLE_PER_SEGMENT = 500
#: Customers per segment above which the customers' own variance is summed over a stratified
#: sample (spread along expected revenue) rather than over every customer.
VARIANCE_SAMPLE_PER_SEGMENT = 10_000
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
    rfm = value.rfm
    customers = targets.customers.set_index("customer_id").reindex(rfm.index)
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    notes = [f"forecast.csv covers the {len(rfm):,} customers who exist at the observation "
             "end (scope): customers acquired later are not in it.",
             "forecast.csv's money is nominal (undiscounted); customers.csv's is discounted."]

    spread = None
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
        spread = Spread(weights, _seasonal_levels(value.months.expected_purchases, weights),
                        _seasonal_levels(value.months.purchases_if_retained, weights))

    saved_share = _saved_share(customers, targets)
    totals = money_totals(value, ends, codes, saved_share=saved_share, spread=spread,
                          notes=notes)
    churn_mean, churn_var, churn_param = _churner_totals(risk, customers, codes, ends, s,
                                                         timeline, notes)
    totals["expected_churners"] = (churn_mean, churn_var + churn_param)
    counts = np.append(np.bincount(codes, minlength=len(SEGMENTS)), len(codes))
    ordered = {m: totals[m] for m in (*MEASURES, *SCENARIOS)}
    table = monthly_forecast(ordered, counts, SEGMENTS, months)
    table["scope"] = SCOPE
    table["seasonality"] = "observed_index" if season is not None else "none"
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


@dataclass(frozen=True)
class Spread:
    """The seasonal spread: customer i's purchases in month m are multiplied by
    ``month_weight[m] * expected_scale[i]`` (``retained_scale[i]`` for purchases if
    retained), which keeps each customer's total over the horizon."""

    month_weight: np.ndarray
    expected_scale: np.ndarray
    retained_scale: np.ndarray


def _seasonal_levels(by_month: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per customer, the scale that keeps the row's sum when month m is weighted by
    ``weights[m]``: ``sum_k x_k / sum_k x_k w_k`` (1 for an all-zero row)."""
    total = by_month.sum(axis=1)
    weighted = by_month @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total > 0) & (weighted > 0), total / weighted, 1.0)


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
                 saved_share: np.ndarray | None = None, spread: Spread | None = None,
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
    spread : Spread, optional
        The seasonal spread of the months.
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
    spend = value.models.spend
    if notes is not None and spend is not None and float(spend.params_["q"]) <= 2.1:
        notes.append(f"Gamma-Gamma's q = {float(spend.params_['q']):.3g}: the spend of "
                     "customers without repeat purchases has no finite variance; their "
                     "spend's second moment is taken at q' = 2.1 in the intervals.")
    totals = _revenue_totals(value, ends, share, spread, codes)
    param = _value_parameter_variance(value, ends, share, spread, codes,
                                      value.scores["expected_revenue"].to_numpy(float),
                                      notes if notes is not None else [])
    return {m: (mean, var + param[m]) for m, (mean, var) in totals.items()}


def _with_whole(by_month: np.ndarray) -> np.ndarray:
    """Months, then their sum (the whole horizon)."""
    return np.hstack([by_month, by_month.sum(axis=1, keepdims=True)])


def _revenue_totals(value, ends, saved_share, spread, codes):
    """Means and customer-level variances of the money measures, summed by segment."""
    n_seg = len(SEGMENTS)
    spend = value.scores["expected_average_spend"].to_numpy(float)
    indicator = segment_indicator(codes, n_seg)
    scale_e = spend if spread is None else spend * spread.expected_scale
    scale_v = spend if spread is None else spend * spread.retained_scale
    weight = np.ones(len(ends)) if spread is None else spread.month_weight
    # segment sums of per-customer x month revenue: the customer's factors go into the
    # indicator (segments x customers), the month's after the product
    expected = (indicator * scale_e) @ value.months.expected_purchases * weight
    retained = (indicator * scale_v) @ value.months.purchases_if_retained * weight
    saved = ((indicator * (saved_share * scale_v)) @ value.months.purchases_if_retained
             - (indicator * (saved_share * scale_e)) @ value.months.expected_purchases) * weight

    extra = {"saved": saved_share**2}
    rfm, covariates, sample = value.rfm, getattr(value.models.purchases, "covariates", None), {}
    if np.bincount(codes).max() > VARIANCE_SAMPLE_PER_SEGMENT:
        # a million distinct posteriors (covariates) cost seconds: the sums of the customers'
        # variances are estimated on a sample spread along expected revenue, with its
        # expansion weights (its error in the intervals: tests/test_pipeline_forecast.py)
        rows, weight = stratified_sample(codes, value.scores["expected_revenue"].to_numpy(float),
                                         VARIANCE_SAMPLE_PER_SEGMENT)
        rfm, spend, codes = rfm.iloc[rows], spend[rows], codes[rows]
        covariates = None if covariates is None else covariates.iloc[rows]
        extra = {"saved": saved_share[rows] ** 2}
        sample = {"sample_weight": weight}
        if spread is not None:
            spread = replace(spread, expected_scale=spread.expected_scale[rows],
                             retained_scale=spread.retained_scale[rows])
    x, tx, age = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    purchases = value.models.purchases
    post = purchase_posterior(getattr(purchases, "model", purchases), x, tx, age, covariates)
    monetary = rfm["monetary_value"].to_numpy(float) if "monetary_value" in rfm \
        else np.zeros(len(x))
    sm = spend_moments(value.models.spend, x, monetary, spend)
    starts = np.concatenate([[0.0], ends[:-1]])
    if spread is None:
        var = grouped_revenue_variance(post, np.append(starts, 0.0), np.append(ends, ends[-1]),
                                       sm, codes, n_seg, weights=extra, **sample)
    else:  # the months spread, the horizon's total not
        by_month = grouped_revenue_variance(post, starts, ends, sm, codes, n_seg,
                                            customer_scale=spread.expected_scale,
                                            window_scale=spread.month_weight, weights=extra,
                                            **sample)
        whole = grouped_revenue_variance(post, [0.0], ends[-1:], sm, codes, n_seg,
                                         weights=extra, **sample)
        var = {k: np.hstack([by_month[k], whole[k]]) for k in by_month}
    return {"expected_revenue": (_with_whole(expected), var["expected"]),
            "revenue_if_retained": (_with_whole(retained), var["retained"]),
            "expected_loss": (_with_whole(retained - expected), var["loss"]),
            "saved_by_plan": (_with_whole(saved), var["saved"])}


def _value_parameter_variance(value, ends, saved_share, spread, codes, order_by, notes):
    """Delta-method variance of the money totals from the value and spend models."""
    models = value.models
    purchases = models.purchases
    theta, cov, k = parameters(models)
    if not np.all(np.isfinite(cov)):
        notes.append("The value or spend model's parameter covariance is not finite: the "
                     "forecast's money intervals carry the customers' randomness only.")
    rows, weights = stratified_sample(codes, order_by, SAMPLE_PER_SEGMENT)
    sample = value.rfm.iloc[rows]
    if isinstance(purchases, BoundCovariates):
        purchases = BoundCovariates(purchases.model, purchases.covariates.iloc[rows])
    x, tx, age = (sample[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    e_factor = v_factor = None
    if spread is not None:
        e_factor = spread.month_weight[None, :] * spread.expected_scale[rows, None]
        v_factor = spread.month_weight[None, :] * spread.retained_scale[rows, None]
    share, sample_codes = saved_share[rows, None], codes[rows]
    unit = 1.0  # the ends are already in time units

    base_purchases = {}

    def evaluate(th):
        moved = models_at(replace(models, purchases=purchases), th, k)
        model = moved.purchases
        spend = expected_spend(moved, sample)
        key = th[:k].tobytes()
        if key not in base_purchases:  # the spend's steps leave the purchases as they are
            m = revenue_by_month(model, x, tx, age, 1.0, ends[-1], unit, 0.0,
                                 period_ends=ends)
            base_purchases.clear()
            base_purchases[key] = (m.expected_purchases, m.purchases_if_retained)
        purchased, if_retained = base_purchases[key]
        expected, retained = purchased * spend[:, None], if_retained * spend[:, None]
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


def _stratum_codes(strata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's baseline stratum (codes) and the position of one row per stratum."""
    if strata.shape[1] == 0:
        return np.zeros(len(strata), dtype=np.intp), np.zeros(1, dtype=np.intp)
    codes = strata.groupby(list(strata.columns), dropna=False, sort=False).ngroup().to_numpy()
    first = np.full(codes.max() + 1, len(codes), dtype=np.intp)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.intp))
    return codes.astype(np.intp), first


def _churners_by_month(model, scoring: pd.DataFrame, rows: np.ndarray,
                       probability: np.ndarray, times: np.ndarray, horizon: float
                       ) -> np.ndarray:
    """P(declared in each month) of each customer, from their churn probability at the
    horizon: ``S(t) = exp(-H_0s(t) e^eta) = (1 - p)^(H_0s(t) / H_0s(h))`` within baseline
    stratum s, so the scoring table's design is not transformed again (a million rows); the
    baselines' ratios come from one row per stratum. ``rows`` are the customers' positions
    in ``scoring`` (in ``probability``'s order); shape (n, len(times))."""
    codes, first = _stratum_codes(scoring[list(model.strata or [])].iloc[rows])
    representative = scoring.iloc[rows[first]]
    hazard = model.cumulative_hazard(representative, [*times, horizon], source="scoring table")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(hazard[:, -1:] > 0, hazard[:, :-1] / hazard[:, -1:], 0.0)
        # a step baseline read at sorted times never decreases
        ratio = np.maximum.accumulate(ratio, axis=1)
        log_stay = np.log1p(-np.clip(probability, 0.0, 1.0))
        survival = np.exp(log_stay[:, None] * ratio[codes])
    survival[np.isnan(survival)] = 1.0  # p = 1 with a zero ratio: nothing declared yet
    by_month = survival
    by_month[:, 1:] = survival[:, :-1] - survival[:, 1:]
    by_month[:, 0] = 1.0 - by_month[:, 0]
    return by_month


def _survival_slopes(by_month: np.ndarray) -> np.ndarray:
    """``S log S`` at each month end, from the probabilities of a declaration in each month:
    the derivative of a customer's survival with respect to their log cumulative hazard."""
    survival = 1.0 - np.cumsum(by_month, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(survival > 0, survival * np.log(survival), 0.0)


def _month_gradients(summed: np.ndarray) -> np.ndarray:
    """From sums of ``d S(t_m)`` (shape (..., M)) to the derivatives of each month's churners
    ``S(t_{m-1}) - S(t_m)`` and of the horizon's ``1 - S(t_M)``, shape (..., M + 1)."""
    before = np.concatenate([np.zeros_like(summed[..., :1]), summed[..., :-1]], axis=-1)
    return np.concatenate([before - summed, -summed[..., -1:]], axis=-1)


def _cox_parameter_variance(model, rows: pd.DataFrame, slopes: np.ndarray,
                            codes: np.ndarray) -> np.ndarray:
    """Delta-method variance of the churner totals from the Cox coefficients, over every live
    customer.

    With ``S_i(t) = exp(-H_0s(t) exp(c_i beta))``, c_i the centred covariates (the
    contributions of a copy whose coefficients are all 1), the gradient is analytic:
    ``dS_i(t) / dbeta = S_i(t) log S_i(t) c_i``; a total's gradient is the sum of its
    customers', one matrix product per segment. (A sample would not do: the centred
    covariates' contributions cancel in the sums, and a sample of a few hundred moved the
    total's interval by 15 %.)

    Parameters
    ----------
    rows : pandas.DataFrame, shape (n, ...)
        The live customers' scoring rows.
    slopes : numpy.ndarray, shape (n, M)
        Their ``S log S`` at the month ends (:func:`_survival_slopes`).
    codes : numpy.ndarray of int, shape (n,)
        Their segments.

    Returns
    -------
    numpy.ndarray, shape (len(SEGMENTS) + 1, M + 1)
    """
    unit = copy.copy(model)
    unit.params_ = pd.Series(1.0, index=model.params_.index)
    centred = unit.contributions(rows, source="scoring table").to_numpy(float)
    n_seg, months = len(SEGMENTS), slopes.shape[1]
    summed = np.zeros((n_seg + 1, centred.shape[1], months))
    for code in range(n_seg):
        mine = codes == code
        if mine.any():
            summed[code] = centred[mine].T @ slopes[mine]                      # (P, M)
    summed[n_seg] = summed[:n_seg].sum(axis=0)
    grads = _month_gradients(summed)                                            # (G, P, M+1)
    covariance = model.variance_matrix_.to_numpy(float)
    if not np.all(np.isfinite(covariance)):
        return np.zeros((n_seg + 1, months + 1))
    return np.maximum(np.einsum("gjm,jk,gkm->gm", grads, covariance, grads), 0.0)


def _baseline_variance(model, rows: pd.DataFrame, slopes: np.ndarray, codes: np.ndarray,
                       times: np.ndarray) -> np.ndarray:
    """Variance of the churner totals from the baseline hazard's estimation error.

    Within a stratum every customer's hazard is the stratum's baseline times their own
    factor, so an error ``e(t)`` in the baseline's log moves all their survivals together,
    ``dS_i(t) = S_i(t) log S_i(t) e(t)``, with ``Var e(t) = Var H_0(t) / H_0(t)^2`` and, the
    Breslow estimator's increments being independent, ``Cov(e(s), e(t)) = Var H_0(s) /
    (H_0(s) H_0(t))`` for s <= t. Strata are estimated separately (independent).

    Returns
    -------
    numpy.ndarray, shape (len(SEGMENTS) + 1, M + 1)
    """
    strata, hazard, variance = model.baseline_variance(rows, times, source="scoring table")
    n_seg, months = len(SEGMENTS), len(times)
    with np.errstate(divide="ignore", invalid="ignore"):
        # covariance of the relative errors at the month ends (and none at time 0)
        earlier = np.minimum.outer(np.arange(months), np.arange(months))
        relative = np.where(hazard[:, :, None] * hazard[:, None, :] > 0,
                            variance[:, earlier] / (hazard[:, :, None] * hazard[:, None, :]),
                            0.0)                                                # (S, M, M)
    out = np.zeros((n_seg + 1, months + 1))
    for s in range(len(hazard)):
        mine = strata == s
        summed = np.zeros((n_seg + 1, months))
        mine_codes, mine_slopes = codes[mine], slopes[mine]
        for m in range(months):
            summed[:n_seg, m] = np.bincount(mine_codes, weights=mine_slopes[:, m],
                                            minlength=n_seg)[:n_seg]
        summed[n_seg] = summed[:n_seg].sum(axis=0)
        # the churners' derivatives with respect to e(t_m), month by month and for the horizon
        weights = np.zeros((n_seg + 1, months + 1, months))
        for m in range(months):
            weights[:, m, m] = -summed[:, m]
            if m:
                weights[:, m, m - 1] = summed[:, m - 1]
        weights[:, months, months - 1] = -summed[:, months - 1]
        out += np.einsum("gma,ab,gmb->gm", weights, relative[s], weights)
    return np.maximum(out, 0.0)


def _churner_totals(risk, customers, codes, ends, s, timeline, notes):
    """Expected churners per month: means, customer-level and parameter variances."""
    n_seg = len(SEGMENTS)
    param = np.zeros((n_seg + 1, len(ends) + 1))
    live = risk.scoring is not None and risk.model is not None
    if live:
        scoring = risk.scoring              # indexed by customer_id
        ids = scoring.index.to_numpy()
        scored = np.flatnonzero(customers["churn_model"].to_numpy() == COX)
        if len(ids) == len(scored) and np.array_equal(ids, customers.index.to_numpy()[scored]):
            position, kept = scored, np.arange(len(ids))  # the usual case: the same order
        else:
            position = customers.index.get_indexer(ids)
            kept = np.flatnonzero(customers["churn_model"].to_numpy()[position] == COX)
            position = position[kept]
        probability = customers["churn_probability"].to_numpy(float)[position]
        by_month = _churners_by_month(risk.model, scoring, kept, probability, ends, s.horizon)
        live_codes = codes[position]
        rows, slopes = scoring.iloc[kept], _survival_slopes(by_month)
        param = (_cox_parameter_variance(risk.model, rows, slopes, live_codes)
                 + _baseline_variance(risk.model, rows, slopes, live_codes, ends))
        if not np.all(np.isfinite(risk.model.variance_matrix_.to_numpy(float))):
            notes.append("The Cox coefficients' covariance is not finite: the churner "
                         "intervals carry the customers' randomness only.")
        notes.append("Expected churners per month: the Cox churn model's survival curve of "
                     "each live customer read at the month ends; intervals with the "
                     "coefficients' and the baseline hazard's estimation error.")
    else:
        lifecycle = risk.lifecycle.set_index("customer_id").reindex(customers.index)
        declaration = s.churn_after - lifecycle["time_since_last_purchase"].to_numpy(float)
        by_month = declared_at_date(customers["churn_probability"].to_numpy(float),
                                    declaration, ends)
        live_codes = codes
        notes.append("Expected churners per month: no Cox model, so 1 - P(alive) of each live "
                     "customer placed on their current declaration date; intervals with the "
                     "customers' randomness only.")
    indicator = segment_indicator(live_codes, n_seg)
    mean = segment_sums(by_month, live_codes, n_seg, indicator)
    whole = by_month.sum(axis=1)
    var = segment_sums(by_month * (1.0 - by_month), live_codes, n_seg, indicator)
    whole_var = indicator @ (whole * (1.0 - whole))
    return _with_whole(mean), np.hstack([var, whole_var[:, None]]), param

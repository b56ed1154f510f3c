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

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..btyd.clv import revenue_by_month
from ..config import Settings
from ..forecast import (
    MEASURES,
    SCENARIOS,
    delta_variance,
    grouped_revenue_variance,
    monthly_forecast,
    purchase_posterior,
    segment_indicator,
    segment_sums,
    size_sample,
    spend_moments,
    stratified_sample,
    with_whole,
)
from ..targeting.matrix import CELLS, CHURNED
from ._threads import alongside_thread
from .churner_forecast import churner_totals
from .inputs import Inputs
from .risk import RiskResult
from .seasonality import (
    Spread,
    seasonal_index,
    seasonal_spread,
    seasonality_note,
)
from .targets import TargetsResult
from .timeline import Timeline
from .value import BoundCovariates, ValueResult
from .value_models import ValueModels, expected_spend, models_at, parameters, with_params

__all__ = ["ForecastResult", "forecast_step", "money_totals", "seasonal_index", "SCOPE",
           "SEGMENTS", "Spread", "seasonal_spread", "revenue_totals",
           "sample_parameter_variance", "forecast_table", "forecast_notes", "spend_notes",
           "seasonality_note"]

#: Segments of the forecast, in the order of the table (then ``total``).
SEGMENTS = [*CELLS.values(), CHURNED]
#: What the forecast covers (the ``scope`` column).
SCOPE = "customers_at_observation_end"
#: Customers per segment in the stratified sample of the delta method.
SAMPLE_PER_SEGMENT = 500
#: Customers per segment above which the customers' own variance is summed over a sample
#: (drawn in proportion to a proxy of each one's variance) rather than over every customer.
#: On 1M customers with attributes (benchmarks/bench_forecast.py's base) the intervals'
#: half-widths came within 2 % of those over every customer (the customers' variance is
#: 64-98 % of the total's); a sample of 10,000 spread along expected revenue had missed by
#: 3 % and, for the plan's saved revenue, by 17 %.
VARIANCE_SAMPLE_PER_SEGMENT = 5_000
#: The per-customer columns of the targets step the forecast reads.
_CUSTOMER_COLUMNS = ["cell", "revenue_at_risk", "churn_model", "churn_probability"]


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
    # the columns the forecast reads, in the value step's order (a copy of four, not forty)
    customers = targets.customers[["customer_id", *_CUSTOMER_COLUMNS]]
    if np.array_equal(customers["customer_id"].to_numpy(), rfm.index.to_numpy()):
        customers = customers.set_axis(rfm.index)  # the value step's index, already hashed
    else:
        customers = customers.set_index("customer_id").reindex(rfm.index)
    codes = pd.Categorical(customers["cell"], categories=SEGMENTS).codes.astype(np.intp)
    notes = forecast_notes(len(rfm))

    # the churners (numpy, no season needed) are forecast in a second thread while DuckDB
    # computes the seasonal index and numpy the money: both mostly release the GIL
    churner_notes: list[str] = []
    with alongside_thread(churner_totals, risk, customers, codes, ends, s, churner_notes,
                          len(SEGMENTS)) as churners:
        season = seasonal_index(inputs, timeline)
        totals = _money_forecast(value, targets, customers, codes, months, ends, season, notes)
    churn_mean, churn_var, churn_param = churners.result()
    notes.extend(churner_notes)
    totals["expected_churners"] = (churn_mean, churn_var + churn_param)
    counts = np.append(np.bincount(codes, minlength=len(SEGMENTS)), len(codes))
    return ForecastResult(forecast_table(totals, counts, months, season), season, notes)


def forecast_notes(customers: int) -> list[str]:
    """The forecast's first notes: its scope (``customers`` at the observation end) and its
    money."""
    return [f"forecast.csv covers the {customers:,} customers who exist at the observation "
            "end (scope): customers acquired later are not in it.",
            "forecast.csv's money is nominal (undiscounted); customers.csv's is discounted."]


def forecast_table(totals: dict[str, tuple[np.ndarray, np.ndarray]], counts: np.ndarray,
                   months: pd.DataFrame, season: pd.DataFrame | None) -> pd.DataFrame:
    """forecast.csv from the totals' means and variances (every measure and scenario, shape
    (len(SEGMENTS) + 1, M + 1) each) and the customers per segment (then in total)."""
    ordered = {m: totals[m] for m in (*MEASURES, *SCENARIOS)}
    table = monthly_forecast(ordered, counts, SEGMENTS, months)
    table["scope"] = SCOPE
    table["seasonality"] = "observed_index" if season is not None else "none"
    return table


def _money_forecast(value, targets, customers, codes, months, ends, season, notes):
    """:func:`money_totals` with the plan's savings and the seasonal spread, if any."""
    notes.append(seasonality_note(season))
    spread = seasonal_spread(value.months, season, months)
    return money_totals(value, ends, codes, saved_share=_saved_share(customers, targets),
                        spread=spread, notes=notes)


def _saved_share(customers: pd.DataFrame, targets: TargetsResult) -> np.ndarray:
    """Each customer's saved revenue under the plan as a share of their revenue at risk."""
    saved = np.zeros(len(customers))
    if targets.targets is not None and len(targets.targets):
        position = customers.index.get_indexer(targets.targets["customer_id"])
        if (position < 0).any():  # the plan's customers are the scored ones, always
            raise ValueError("targets holds customers that the customers table does not.")
        saved[position] = targets.targets["saved_revenue"].to_numpy(float)
    at_risk = customers["revenue_at_risk"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(at_risk > 0, saved / at_risk, 0.0)


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
    if notes is not None:
        notes.extend(spend_notes(value.models.spend))
    totals = revenue_totals(value, ends, share, spread, codes)
    param = _value_parameter_variance(value, ends, share, spread, codes,
                                      value.scores["expected_revenue"].to_numpy(float),
                                      notes if notes is not None else [])
    return {m: (mean, var + param[m]) for m, (mean, var) in totals.items()}


def spend_notes(spend) -> list[str]:
    """What the money intervals must say about the Gamma-Gamma spend model ``spend`` (or
    None)."""
    if spend is None or float(spend.params_["q"]) > 2.1:
        return []
    return [f"Gamma-Gamma's q = {float(spend.params_['q']):.3g}: the spend of customers "
            "without repeat purchases has no finite variance; their spend's second moment is "
            "taken at q' = 2.1 in the intervals."]


def revenue_totals(value: ValueResult, ends: np.ndarray, saved_share: np.ndarray,
                   spread: Spread | None, codes: np.ndarray, *,
                   sample_per_segment: int | None = VARIANCE_SAMPLE_PER_SEGMENT
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Means and customer-level variances of the money measures, summed by segment (shapes
    (len(SEGMENTS) + 1, M + 1)): sums over the customers, which add over chunks of them.

    ``sample_per_segment``: past this many customers in a segment, the variances are summed
    over a sample of them (:data:`VARIANCE_SAMPLE_PER_SEGMENT`); None: over every one.
    """
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
    purchases, rfm, sample = value.models.purchases, value.rfm, {}
    if sample_per_segment is not None and np.bincount(codes).max() > sample_per_segment:
        # a million distinct posteriors (covariates) cost seconds: the sums of the customers'
        # variances are estimated on a sample drawn in proportion to a proxy of each one's
        # variance, the big spenders that dominate them taken with certainty (its error in
        # the intervals: tests/test_pipeline_forecast.py)
        rows, weight = size_sample(codes, _variance_proxy(value, spend, saved_share),
                                   sample_per_segment)
        rfm, spend, codes = rfm.iloc[rows], spend[rows], codes[rows]
        if isinstance(purchases, BoundCovariates):
            purchases = purchases.take(rows)
        extra = {"saved": saved_share[rows] ** 2}
        sample = {"sample_weight": weight}
        if spread is not None:
            spread = replace(spread, expected_scale=spread.expected_scale[rows],
                             retained_scale=spread.retained_scale[rows])
    x, tx, age = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    post = purchase_posterior(getattr(purchases, "model", purchases), x, tx, age,
                              getattr(purchases, "encoded", None))
    monetary = rfm["monetary_value"].to_numpy(float) if "monetary_value" in rfm \
        else np.zeros(len(x))
    sm = spend_moments(value.models.spend, x, monetary, spend)
    starts = np.concatenate([[0.0], ends[:-1]])
    if spread is None:
        var = grouped_revenue_variance(post, np.append(starts, 0.0), np.append(ends, ends[-1]),
                                       sm, codes, n_seg, weights=extra, **sample)
    else:  # the months spread, the horizon's total not
        var = grouped_revenue_variance(post, np.append(starts, 0.0), np.append(ends, ends[-1]),
                                       sm, codes, n_seg, customer_scale=spread.expected_scale,
                                       window_scale=np.append(spread.month_weight, 1.0),
                                       unscaled=np.append(np.zeros(len(ends), bool), True),
                                       weights=extra, **sample)
    return {"expected_revenue": (with_whole(expected), var["expected"]),
            "revenue_if_retained": (with_whole(retained), var["retained"]),
            "expected_loss": (with_whole(retained - expected), var["loss"]),
            "saved_by_plan": (with_whole(saved), var["saved"])}


def _variance_proxy(value, spend, saved_share):
    """A customer's share of the revenue variance, roughly: spend^2 (Y + Y^2) with Y the
    purchases if retained over the horizon (a Poisson count's second moment), each
    measure's normalised proxy summed so that the plan's saved revenue, on its targeted
    customers only, is sampled as well as the rest."""
    retained = value.months.purchases_if_retained.sum(axis=1)
    proxy = spend**2 * retained * (1.0 + retained)
    saved = proxy * saved_share**2
    total = proxy / max(proxy.sum(), np.finfo(float).tiny)
    return total + (saved / saved.sum() if saved.sum() > 0 else 0.0)


def _value_parameter_variance(value, ends, saved_share, spread, codes, order_by, notes):
    """Delta-method variance of the money totals from the value and spend models, on a
    stratified sample along ``order_by`` (:func:`sample_parameter_variance`)."""
    rows, weights = stratified_sample(codes, order_by, SAMPLE_PER_SEGMENT)
    models = value.models
    if isinstance(models.purchases, BoundCovariates):
        models = replace(models, purchases=models.purchases.take(rows))
    if spread is not None:
        spread = replace(spread, expected_scale=spread.expected_scale[rows],
                         retained_scale=spread.retained_scale[rows])
    return sample_parameter_variance(models, value.rfm.iloc[rows], weights, codes[rows],
                                     saved_share[rows], spread, ends, notes)


def sample_parameter_variance(models: ValueModels, sample: pd.DataFrame, weights: np.ndarray,
                              sample_codes: np.ndarray, saved_share: np.ndarray,
                              spread: Spread | None, ends: np.ndarray, notes: list[str]
                              ) -> dict[str, np.ndarray]:
    """Delta-method variance of the money totals from the value and spend models, on a sample
    of customers.

    Parameters
    ----------
    models : ValueModels
        A covariate purchase model bound to the sample's customers.
    sample : pandas.DataFrame, shape (n, 3 or 4)
        The sample's RFM rows.
    weights : numpy.ndarray, shape (n,)
        Customers each sampled one stands for (:func:`clvtools.forecast.stratified_sample`).
    sample_codes : numpy.ndarray of int, shape (n,)
        Their segments.
    saved_share : numpy.ndarray, shape (n,)
        Their saved revenue under the plan as a share of their revenue at risk.
    spread : Spread, optional
        The seasonal spread, its scales the sample's.
    ends : numpy.ndarray, shape (M,)
    notes : list of str
        Appended to when the parameter covariance is unusable.

    Returns
    -------
    dict of numpy.ndarray
        Per money measure, the variance of each total, shape (len(SEGMENTS) + 1, M + 1).
    """
    purchases = models.purchases
    theta, cov, k = parameters(models)
    if not np.all(np.isfinite(cov)):
        notes.append("The value or spend model's parameter covariance is not finite: the "
                     "forecast's money intervals carry the customers' randomness only.")
    x, tx, age = (sample[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    e_factor = v_factor = None
    if spread is not None:
        e_factor = spread.month_weight[None, :] * spread.expected_scale[:, None]
        v_factor = spread.month_weight[None, :] * spread.retained_scale[:, None]
    share = saved_share[:, None]
    unit = 1.0  # the ends are already in time units

    def months_of(model, rows=slice(None)):
        # the purchases alone: the revenue arrays would be built and thrown away
        m = revenue_by_month(model, x[rows], tx[rows], age[rows], 1.0, ends[-1], unit, 0.0,
                             period_ends=ends, per_month_revenue=False)
        return m.expected_purchases, m.purchases_if_retained

    at_estimates = months_of(purchases)

    def purchases_at(th):
        """Expected purchases and purchases if retained of the sample at ``th``. A step of
        the spend model leaves them as they are; at a coefficient's step only the customers
        with that attribute move, the others keep the estimates' values."""
        changed = np.flatnonzero(th[:k] != theta[:k])
        if len(changed) == 0:
            return at_estimates
        model = with_params(purchases, th[:k])
        moved = model.rows_moved_by(changed) if isinstance(model, BoundCovariates) else None
        if moved is None:
            return months_of(model)
        months = tuple(whole.copy() for whole in at_estimates)
        if len(moved):
            months[0][moved], months[1][moved] = months_of(model.take(moved), moved)
        return months

    def evaluate(th):
        spend = expected_spend(models_at(models, th, k), sample)
        purchased, if_retained = purchases_at(th)
        expected, retained = purchased * spend[:, None], if_retained * spend[:, None]
        if e_factor is not None:
            expected, retained = expected * e_factor, retained * v_factor
        loss = retained - expected
        out = {}
        for name, arr in (("expected_revenue", expected), ("revenue_if_retained", retained),
                          ("expected_loss", loss), ("saved_by_plan", share * loss)):
            out[name] = segment_sums(with_whole(arr) * weights[:, None], sample_codes,
                                     len(SEGMENTS))
        return out

    return delta_variance(evaluate, theta, cov)

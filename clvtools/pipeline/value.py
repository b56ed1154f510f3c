"""Step 3, the value axis: fit the chosen BTYD model and Gamma-Gamma, score every customer,
and validate on a holdout window.

Orchestration over the fitters; the arithmetic of revenue if retained (V) and expected
revenue (E) lives in :mod:`clvtools.btyd.clv`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..btyd.base import InfiniteMeanWarning
from ..btyd.bgnbd import BetaGeoFitter
from ..btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from ..btyd.clv import RevenueByMonth, revenue_by_month
from ..btyd.gamma_gamma import GammaGammaFitter
from ..btyd.mbgnbd import ModifiedBetaGeoFitter
from ..btyd.pareto_nbd import ParetoNBDFitter
from ..btyd.pareto_nbd_covariates import ParetoNBDCovariatesFitter
from ..btyd.validation import calibration_vs_holdout_purchases
from ..config import Settings
from ..data.rfm import (
    calibration_and_holdout,
    purchases_by_period,
    revenue_by_customer,
    rfm_summary,
)
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from .inputs import Inputs
from .timeline import Timeline

__all__ = [
    "VALUE_MODELS", "ValueModels", "ValueResult", "value_step", "fit_value_models",
    "score_customers", "score_customers_by_month", "holdout_validation",
]

#: ``value_model`` setting -> purchase-process fitter.
VALUE_MODELS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pnbd": ParetoNBDFitter}
#: ``value_model`` setting -> fitter with customer covariates (where one exists).
COVARIATE_MODELS = {"bgnbd": BetaGeoCovariatesFitter, "pnbd": ParetoNBDCovariatesFitter}


class BoundCovariates:
    """A covariate fitter with the customers' covariates bound, so that it answers the
    frequency/recency/T signature of the plain fitters (row i of ``covariates`` is customer i).
    """

    def __init__(self, model, covariates: pd.DataFrame):
        self.model = model
        self.covariates = covariates

    def __getattr__(self, name):
        # everything else (params_, summary, save_model, ...) is the fitter's
        if name in ("model", "covariates"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def conditional_probability_alive(self, frequency, recency, T):
        return self.model.conditional_probability_alive(frequency, recency, T, self.covariates)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        return self.model.conditional_expected_number_of_purchases_up_to_time(
            t, frequency, recency, T, self.covariates)

    def purchase_rate_if_alive(self, frequency, recency, T):
        return self.model.purchase_rate_if_alive(frequency, recency, T, self.covariates)

    def expected_purchases_by_horizon(self, horizons, frequency, recency, T):
        return self.model.expected_purchases_by_horizon(horizons, frequency, recency, T,
                                                        self.covariates)


@dataclass
class ValueModels:
    """The fitted purchase model and, when the log has amounts, the spend model.

    Attributes
    ----------
    purchases : BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter or BoundCovariates
        With covariates, the covariate fitter bound to the customers' attributes
        (``purchases.model`` is the fitter).
    spend : GammaGammaFitter or None
        None when the log has no amounts (revenue is then counted in purchases, a spend of
        1 each) or when Gamma-Gamma could not be fitted (``observed_spend``).
    observed_spend : bool
        Expected spend is the observed mean repeat spend (Gamma-Gamma could not be fitted).
    notes : list of str
        What a reader of the output should know (e.g. "no amounts").
    """

    purchases: object
    spend: GammaGammaFitter | None
    notes: list[str]
    observed_spend: bool = False


def fit_value_models(rfm: pd.DataFrame, value_model: str = "bgnbd",
                     covariates: pd.DataFrame | None = None) -> ValueModels:
    """Fit the purchase model on every customer and Gamma-Gamma on the repeat buyers.

    Parameters
    ----------
    rfm : pandas.DataFrame
        ``frequency``, ``recency``, ``T`` and optionally ``monetary_value``, one row per customer.
    value_model : {"bgnbd", "mbgnbd", "pnbd"}
    covariates : pandas.DataFrame, optional
        Customer attributes indexed like ``rfm``, used on both the purchase and the dropout
        process (CLVTools' static covariates). MBG/NBD has no covariate version: it is then
        fitted without, and the notes say so.

    Returns
    -------
    ValueModels
    """
    if value_model not in VALUE_MODELS:
        raise ClvInputError(f"The 'value_model' setting must be one of {sorted(VALUE_MODELS)}. "
                            f"Got {value_model!r} instead.")
    notes: list[str] = []
    x, tx, age = rfm["frequency"], rfm["recency"], rfm["T"]
    if covariates is not None:
        # attributes are typed on the whole customers file; among the customers of this fit
        # (the holdout's calibration window sees only the earlier ones) a column may hold one
        # value, which no model can estimate: left out of this fit, and said so
        covariates = covariates.loc[rfm.index]
        constant = [c for c in covariates.columns if covariates[c].nunique(dropna=False) < 2]
        if constant:
            notes.append(f"Attributes with a single value among these {len(rfm):,} customers, "
                         f"left out of this fit: {', '.join(constant)}.")
            covariates = covariates.drop(columns=constant)
    if covariates is not None and covariates.shape[1] and value_model in COVARIATE_MODELS:
        columns = list(covariates.columns)
        model = COVARIATE_MODELS[value_model]().fit(
            x, tx, age, covariates=covariates, purchase_covariates=columns,
            dropout_covariates=columns)
        purchases = BoundCovariates(model, covariates)
        notes.append("Value model with covariates on purchase and dropout: "
                     f"{', '.join(covariates.columns)}.")
    else:
        if covariates is not None and covariates.shape[1]:
            notes.append(f"{value_model} has no covariate version: fitted without the attributes.")
        purchases = VALUE_MODELS[value_model]().fit(x, tx, age)
    if "monetary_value" not in rfm:
        notes.append("The log has no amounts: revenue figures count purchases (a spend of 1 each).")
        return ValueModels(purchases, None, notes)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    excluded = int((rfm["frequency"] > 0).sum() - len(repeat))
    if excluded:
        notes.append(f"{excluded:,} repeat buyers with a mean repeat spend <= 0 (returns) were "
                     "left out of the Gamma-Gamma fit; they get the population mean spend.")
    try:
        with warnings.catch_warnings():
            # q <= 1 is refitted below with the constraint, and said in the notes
            warnings.simplefilter("ignore", InfiniteMeanWarning)
            spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        if spend.params_["q"] <= 1:
            notes.append(f"Gamma-Gamma gave q = {spend.params_['q']:.3g} <= 1 (infinite mean "
                         "spend); refitted with q >= 1.")
            spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"],
                                           q_constraint=True)
    except (ConvergenceError, ClvInputError) as exc:
        # e.g. too few repeat buyers, or spend that does not vary within customers: value the
        # customers on observed spend rather than stop the whole analysis
        notes.append(f"No Gamma-Gamma spend model ({str(exc).splitlines()[0]}); expected spend is "
                     "each repeat buyer's mean repeat spend, and the mean of those for the others.")
        return ValueModels(purchases, None, notes, observed_spend=True)
    return ValueModels(purchases, spend, notes)


def _expected_spend(models: ValueModels, rfm: pd.DataFrame) -> np.ndarray:
    if models.observed_spend:
        monetary = rfm["monetary_value"].to_numpy(dtype=float)
        repeat = (rfm["frequency"].to_numpy() > 0) & (monetary > 0)
        return np.where(repeat, monetary, monetary[repeat].mean() if repeat.any() else 0.0)
    if models.spend is None:
        return np.ones(len(rfm))
    # customers without a usable repeat spend (no repeats, or net returns) get the population mean
    monetary = rfm["monetary_value"].clip(lower=0).to_numpy(dtype=float)
    frequency = np.where(monetary > 0, rfm["frequency"].to_numpy(dtype=float), 0.0)
    return np.asarray(
        models.spend.conditional_expected_average_profit(frequency, monetary), dtype=float
    )


def score_customers(models: ValueModels, rfm: pd.DataFrame, *, horizon: float,
                    time_unit_days: float, discount_rate: float,
                    period_ends: np.ndarray | None = None) -> pd.DataFrame:
    """Per-customer value over the horizon (the concepts page, docs/concepts.rst, defines V and E).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``rfm``: ``p_alive``, ``expected_purchases`` (over the horizon),
        ``expected_average_spend`` (currency per purchase), ``revenue_if_retained`` (V) and
        ``expected_revenue`` (E), both discounted, currency.
    """
    return score_customers_by_month(models, rfm, horizon=horizon, time_unit_days=time_unit_days,
                                    discount_rate=discount_rate, period_ends=period_ends)[0]


def score_customers_by_month(models: ValueModels, rfm: pd.DataFrame, *, horizon: float,
                             time_unit_days: float, discount_rate: float,
                             period_ends: np.ndarray | None = None
                             ) -> tuple[pd.DataFrame, RevenueByMonth]:
    """:func:`score_customers` and the per-customer x month arrays it sums.

    Parameters
    ----------
    period_ends : numpy.ndarray, shape (M,), optional
        Month ends in time units after the observation end (the forecast's calendar months,
        :meth:`Timeline.forecast_month_ends`); default calendar-average months over
        ``horizon``.

    Returns
    -------
    (pandas.DataFrame, RevenueByMonth)
        The scores, and the months: purchases per customer and month (undiscounted) and
        revenue (discounted), which the forecast sums.
    """
    x, tx, age = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    model = models.purchases
    spend = _expected_spend(models, rfm)
    months = revenue_by_month(model, x, tx, age, spend, horizon, time_unit_days, discount_rate,
                              period_ends=period_ends)
    scores = pd.DataFrame(
        {
            "p_alive": np.asarray(model.conditional_probability_alive(x, tx, age), dtype=float),
            "expected_purchases": months.expected_purchases.sum(axis=1),
            "expected_average_spend": spend,
            "revenue_if_retained": months.revenue_if_retained.sum(axis=1),
            "expected_revenue": months.expected_revenue.sum(axis=1),
        },
        index=rfm.index,
    )
    return scores, months


@dataclass
class ValueResult:
    """What the value step computed.

    Attributes
    ----------
    rfm : pandas.DataFrame
        One row per customer (index ``customer_id``): frequency, recency, T, monetary_value.
    models : ValueModels
        The fitted purchase and spend models.
    scores : pandas.DataFrame
        Indexed like ``rfm``: p_alive, expected_purchases, expected_average_spend,
        revenue_if_retained, expected_revenue (see :func:`score_customers`).
    holdout : dict of pandas.DataFrame
        ``holdout_by_frequency``, ``holdout_by_month``, ``holdout_summary`` and
        ``holdout_customers`` (see :func:`holdout_validation`); empty when the history is too
        short for a holdout.
    notes : list of str
        What a reader of data_quality.json should know about the value model.
    months : RevenueByMonth or None
        The per-customer x calendar-month arrays of the horizon that ``scores`` sums
        (purchases undiscounted; revenue discounted), rows as ``rfm``: the forecast's input.
    """

    rfm: pd.DataFrame
    models: ValueModels
    scores: pd.DataFrame
    holdout: dict[str, pd.DataFrame]
    notes: list[str]
    months: RevenueByMonth | None = None


def value_step(inputs: Inputs, timeline: Timeline, settings: Settings,
               step=lambda _msg: None) -> ValueResult:
    """RFM summary, value models fitted and scored, and their holdout validation."""
    s = settings
    step("Summarising purchases (RFM)")
    rfm = rfm_summary(inputs.log, time_unit=s.time_unit)
    step(f"Fitting the value model ({s.value_model} and Gamma-Gamma)")
    covariates = None
    if inputs.attributes is not None and s.value_covariates:
        covariates = inputs.attributes.frame()
    models = fit_value_models(rfm, s.value_model, covariates)
    # the forecast's calendar months: customers.csv's value is their sum, discounted
    scores, months = score_customers_by_month(
        models, rfm, horizon=s.horizon, time_unit_days=timeline.unit_days,
        discount_rate=s.discount_rate, period_ends=timeline.forecast_month_ends())
    notes = list(models.notes)
    holdout = {}
    if timeline.holdout_start is None:
        notes.append("No holdout validation: the history before the holdout window is shorter "
                     "than half the horizon.")
    else:
        step("Validating the value model on a holdout window")
        holdout, holdout_notes = holdout_validation(
            inputs.log, timeline, value_model=s.value_model, horizon=s.horizon,
            covariates=covariates)
        notes += [f"Holdout fit: {note}" for note in holdout_notes
                  if note not in models.notes]
    return ValueResult(rfm, models, scores, holdout, notes, months)


def holdout_validation(log: TransactionLog, timeline: Timeline, *, value_model: str,
                       horizon: float, covariates: pd.DataFrame | None = None
                       ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Refit on data up to the holdout start (one horizon before the end) and compare with
    what followed.

    Returns
    -------
    (dict of pandas.DataFrame, list of str)
        ``holdout_by_frequency``: mean actual versus expected holdout purchases by calibration
        frequency; ``holdout_by_month``: actual versus expected purchases and revenue per
        month of the holdout (undiscounted, customers acquired in the calibration window);
        ``holdout_summary``: totals and errors; ``holdout_customers`` (not a file): per
        customer of the calibration window, ``p_alive``, ``revenue_if_retained`` and
        ``expected_revenue`` at the holdout start (undiscounted, currency) and the
        ``realised_revenue`` of the holdout. Then the notes of the refitted models.
    """
    cal_end = timeline.holdout_start
    cal = calibration_and_holdout(log, cal_end, time_unit=timeline.time_unit)
    rfm_cal = cal.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency",
                                  "T_cal": "T", "monetary_value_cal": "monetary_value"})
    models = fit_value_models(rfm_cal, value_model, covariates)
    by_frequency = calibration_vs_holdout_purchases(models.purchases, cal, n=10).reset_index()

    spend = _expected_spend(models, rfm_cal)
    x, tx, age = (rfm_cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    months = revenue_by_month(models.purchases, x, tx, age, spend, horizon, timeline.unit_days,
                              0.0)
    starts, ends = (list(d) for d in zip(*timeline.holdout_months, strict=True))
    actual = purchases_by_period(log, starts, ends, customers_acquired_by=cal_end)
    by_month = pd.DataFrame({
        "month": np.arange(1, len(ends) + 1),
        "start": starts,
        "end": ends,
        "actual_purchases": actual["purchases"].to_numpy(float),
        "expected_purchases": months.expected_purchases.sum(axis=0),
        "actual_revenue": actual["revenue"].to_numpy(float),
        "expected_revenue": months.expected_revenue.sum(axis=0),
    })
    per_customer_error = (
        np.asarray(models.purchases.conditional_expected_number_of_purchases_up_to_time(
            cal["duration_holdout"].iloc[0], cal["frequency_cal"], cal["recency_cal"],
            cal["T_cal"]), float)
        - cal["frequency_holdout"].to_numpy(float)
    )
    summary = pd.DataFrame([{
        "calibration_end": cal_end, "observation_end": log.observation_end,
        "customers": len(cal), "actual_purchases": by_month["actual_purchases"].sum(),
        "expected_purchases": by_month["expected_purchases"].sum(),
        "actual_revenue": by_month["actual_revenue"].sum(),
        "expected_revenue": by_month["expected_revenue"].sum(),
        "purchases_mae_per_customer": float(np.mean(np.abs(per_customer_error))),
    }])
    # per customer, for the targeting evaluation (clvtools.pipeline.evaluation): the value at
    # the holdout start, undiscounted like the revenue that followed
    customers = pd.DataFrame({
        "p_alive": np.asarray(models.purchases.conditional_probability_alive(x, tx, age), float),
        "revenue_if_retained": months.revenue_if_retained.sum(axis=1),
        "expected_revenue": months.expected_revenue.sum(axis=1),
    }, index=rfm_cal.index)
    customers["realised_revenue"] = revenue_by_customer(
        log, cal_end, log.observation_end).reindex(customers.index, fill_value=0.0).to_numpy()
    tables = {"holdout_by_frequency": by_frequency, "holdout_by_month": by_month,
              "holdout_summary": summary, "holdout_customers": customers}
    return tables, models.notes

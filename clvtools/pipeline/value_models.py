"""The value axis's models: the purchase model (BTYD, with the attributes where a covariate
version exists) and Gamma-Gamma, fitted and scored per customer.

Orchestration over the fitters (the step that chooses and validates them is
:mod:`clvtools.pipeline.value`); the arithmetic of revenue if retained (V) and expected
revenue (E) lives in :mod:`clvtools.btyd.clv`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..btyd.bgnbd import BetaGeoFitter
from ..btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from ..btyd.clv import RevenueByMonth, revenue_by_month
from ..btyd.gamma_gamma import GammaGammaFitter
from ..btyd.mbgnbd import ModifiedBetaGeoFitter
from ..btyd.pareto_nbd import ParetoNBDFitter
from ..btyd.pareto_nbd_covariates import ParetoNBDCovariatesFitter
from ..errors import ClvInputError, ConvergenceError

__all__ = [
    "VALUE_MODELS", "COVARIATE_MODELS", "BoundCovariates", "ValueModels", "fit_value_models",
    "fit_purchase_model", "fit_spend_model", "usable_covariates", "expected_spend",
    "score_customers", "rows_of",
]

#: ``value_model`` setting -> purchase-process fitter.
VALUE_MODELS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pnbd": ParetoNBDFitter}
#: ``value_model`` setting -> fitter with customer covariates (where one exists).
COVARIATE_MODELS = {"bgnbd": BetaGeoCovariatesFitter, "pnbd": ParetoNBDCovariatesFitter}


class BoundCovariates:
    """A covariate fitter with the customers' covariates bound, so that it answers the
    frequency/recency/T signature of the plain fitters (row i of ``covariates`` is customer i).
    """

    def __init__(self, model, covariates: pd.DataFrame, encoded=None):
        self.model = model
        self.covariates = covariates
        # encoded on first use, once: every prediction reads the same customers' attributes
        self._encoded = encoded

    def __getattr__(self, name):
        # everything else (params_, summary, save_model, ...) is the fitter's
        if name in ("model", "covariates", "_encoded"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def encoded(self):
        """The covariates encoded by the model's encoders (:class:`EncodedCovariates`)."""
        if self._encoded is None:
            self._encoded = self.model.encode(self.covariates)
        return self._encoded

    def take(self, rows) -> BoundCovariates:
        """The same model bound to the customers at positions ``rows`` only (a sample)."""
        return BoundCovariates(self.model, self.covariates.iloc[rows],
                               None if self._encoded is None else self._encoded.take(rows))

    def rows_moved_by(self, positions) -> np.ndarray | None:
        """Positions of the customers whose predictions depend on the parameters at
        ``positions`` of ``params_``, or None when every customer's does (a parameter of the
        base model). A coefficient moves only the customers whose design column is not zero:
        for the others its term is an exact 0, so their predictions stay bit for bit."""
        names = list(self.model.params_.index)
        moved = np.zeros(len(self.encoded), dtype=bool)
        for position in np.atleast_1d(positions):
            process = names[position].partition(":")[0]
            if process not in ("purchase", "dropout"):
                return None
            column = [n for n in names if n.startswith(process + ":")].index(names[position])
            moved |= getattr(self.encoded, process)[:, column] != 0
        return np.flatnonzero(moved)

    def conditional_probability_alive(self, frequency, recency, T):
        return self.model.conditional_probability_alive(frequency, recency, T, self.encoded)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        return self.model.conditional_expected_number_of_purchases_up_to_time(
            t, frequency, recency, T, self.encoded)

    def purchase_rate_if_alive(self, frequency, recency, T):
        return self.model.purchase_rate_if_alive(frequency, recency, T, self.encoded)

    def expected_purchases_by_horizon(self, horizons, frequency, recency, T):
        return self.model.expected_purchases_by_horizon(horizons, frequency, recency, T,
                                                        self.encoded)

    def alive_and_expected_by_horizon(self, horizons, frequency, recency, T):
        return self.model.alive_and_expected_by_horizon(horizons, frequency, recency, T,
                                                        self.encoded)


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
    purchases, notes = fit_purchase_model(rfm, value_model, covariates)
    return fit_spend_model(rfm, purchases, notes)


def fit_purchase_model(rfm: pd.DataFrame, value_model: str,
                       covariates: pd.DataFrame | None = None,
                       weights=None) -> tuple[object, list[str]]:
    """The purchase model of :func:`fit_value_models` alone, and its notes.

    ``weights`` (shape (n,), customers per row of ``rfm``) fits on compressed statistics,
    as a Spark job collects them; without covariates only.
    """
    if value_model not in VALUE_MODELS:
        raise ClvInputError(f"The 'value_model' setting must be one of {sorted(VALUE_MODELS)}. "
                            f"Got {value_model!r} instead.")
    notes: list[str] = []
    x, tx, age = rfm["frequency"], rfm["recency"], rfm["T"]
    covariates = usable_covariates(rfm, covariates, notes)
    if covariates is not None and value_model in COVARIATE_MODELS:
        columns = list(covariates.columns)
        model = COVARIATE_MODELS[value_model]().fit(
            x, tx, age, covariates=covariates, purchase_covariates=columns,
            dropout_covariates=columns)
        notes.append("Value model with covariates on purchase and dropout: "
                     f"{', '.join(covariates.columns)}.")
        return BoundCovariates(model, covariates, model.encoded_), notes
    if covariates is not None:
        notes.append(f"{value_model} has no covariate version: fitted without the attributes.")
    return VALUE_MODELS[value_model]().fit(x, tx, age, weights=weights), notes


def usable_covariates(rfm: pd.DataFrame, covariates: pd.DataFrame | None,
                      notes: list[str]) -> pd.DataFrame | None:
    """The attributes of ``rfm``'s customers that vary among them (None if none do)."""
    if covariates is None:
        return None
    # attributes are typed on the whole customers file; among the customers of this fit
    # (the holdout's calibration window sees only the earlier ones) a column may hold one
    # value, which no model can estimate: left out of this fit, and said so
    covariates = rows_of(covariates, rfm.index)
    constant = [c for c in covariates.columns if covariates[c].nunique(dropna=False) < 2]
    if constant:
        notes.append(f"Attributes with a single value among these {len(rfm):,} customers, "
                     f"left out of this fit: {', '.join(constant)}.")
        covariates = covariates.drop(columns=constant)
    return covariates if covariates.shape[1] else None


def rows_of(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """``frame.loc[index]``, or ``frame`` itself when its index is already ``index`` (the
    value step aligns the attributes with the RFM once: each look-up of a million text ids
    cost about a second and a half, and every fit, the window and the sample made one)."""
    return frame if frame.index.equals(index) else frame.loc[index]


def fit_spend_model(rfm: pd.DataFrame, purchases, notes: list[str],
                    weights=None) -> ValueModels:
    """Gamma-Gamma on the repeat buyers of ``rfm`` beside a fitted purchase model
    (``weights``: customers per row, for compressed statistics)."""
    notes = list(notes)
    weights = pd.Series(1.0 if weights is None else np.asarray(weights, dtype=float),
                        index=rfm.index)
    if "monetary_value" not in rfm:
        notes.append("The log has no amounts: revenue figures count purchases (a spend of 1 each).")
        return ValueModels(purchases, None, notes)
    kept = (rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)
    repeat, repeat_weights = rfm[kept], weights[kept].to_numpy()
    excluded = int(weights[rfm["frequency"] > 0].sum() - repeat_weights.sum())
    if excluded:
        notes.append(f"{excluded:,} repeat buyers with a mean repeat spend <= 0 (returns) were "
                     "left out of the Gamma-Gamma fit; they get the population mean spend.")
    try:
        # q <= 1 is refitted below with the constraint, and said in the notes: no warning
        # (asked of the fitter, not by warnings.catch_warnings, whose save and restore of the
        # process-wide filters is unsafe when two threads fit: pipeline/_threads.py)
        spend = GammaGammaFitter()
        spend.warn_infinite_mean = False
        spend.fit(repeat["frequency"], repeat["monetary_value"], weights=repeat_weights)
        if spend.params_["q"] <= 1:
            notes.append(f"Gamma-Gamma gave q = {spend.params_['q']:.3g} <= 1 (infinite mean "
                         "spend); refitted with q >= 1.")
            spend = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"],
                                           weights=repeat_weights, q_constraint=True)
    except (ConvergenceError, ClvInputError) as exc:
        # e.g. too few repeat buyers, or spend that does not vary within customers: value the
        # customers on observed spend rather than stop the whole analysis
        notes.append(f"No Gamma-Gamma spend model ({str(exc).splitlines()[0]}); expected spend is "
                     "each repeat buyer's mean repeat spend, and the mean of those for the others.")
        return ValueModels(purchases, None, notes, observed_spend=True)
    return ValueModels(purchases, spend, notes)


def expected_spend(models: ValueModels, rfm: pd.DataFrame) -> np.ndarray:
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
        The scores, and the months: purchases per customer and month (undiscounted), which
        the forecast sums; their revenue per month is summed into the scores, not kept (None).
    """
    x, tx, age = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    model = models.purchases
    spend = expected_spend(models, rfm)
    months = revenue_by_month(model, x, tx, age, spend, horizon, time_unit_days, discount_rate,
                              period_ends=period_ends, per_month_revenue=False)
    scores = pd.DataFrame(
        {
            "p_alive": months.alive(model, x, tx, age),
            "expected_purchases": months.expected_purchases.sum(axis=1),
            "expected_average_spend": spend,
            "revenue_if_retained": months.revenue_if_retained_total,
            "expected_revenue": months.expected_revenue_total,
        },
        # the arrays as they are (two are the months' totals too): none is written into,
        # and consolidating copied them into new memory (about 0.2 s a million customers)
        index=rfm.index, copy=False,
    )
    return scores, months


def with_params(model, values):
    """A copy of a fitted model with other parameter values (a bound covariate model keeps
    its customers' covariates)."""
    if isinstance(model, BoundCovariates):
        # the copy keeps the fitter's encoders, so the encoding stays valid
        return BoundCovariates(with_params(model.model, values), model.covariates,
                               model.encoded)
    new = copy.copy(model)
    new.params_ = pd.Series(values, index=model.params_.index)
    return new


def parameters(models: ValueModels) -> tuple[np.ndarray, np.ndarray, int]:
    """The purchase and spend models' parameters stacked, their covariance (block diagonal:
    the two are fitted separately) and the number of purchase-model parameters."""
    fitter = getattr(models.purchases, "model", models.purchases)
    theta, blocks = [fitter.params_.to_numpy(float)], [fitter.variance_matrix_.to_numpy(float)]
    if models.spend is not None:
        theta.append(models.spend.params_.to_numpy(float))
        blocks.append(models.spend.variance_matrix_.to_numpy(float))
    theta = np.concatenate(theta)
    cov = np.zeros((len(theta), len(theta)))
    at = 0
    for block in blocks:
        cov[at:at + len(block), at:at + len(block)] = block
        at += len(block)
    return theta, cov, len(fitter.params_)


def models_at(models: ValueModels, theta: np.ndarray, k: int) -> ValueModels:
    """The value models with the parameters ``theta`` (purchase model's first ``k``)."""
    spend = None if models.spend is None else with_params(models.spend, theta[k:])
    return replace(models, purchases=with_params(models.purchases, theta[:k]), spend=spend)

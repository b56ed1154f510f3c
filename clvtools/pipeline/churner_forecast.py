"""The forecast's expected churners per month (``forecast.csv``'s ``expected_churners``).

Each live customer's survival curve from the Cox churn model of the risk step, read at the
month ends, gives their probability of a declaration in each month; the totals' intervals add
to the customers' Bernoulli randomness the coefficients' estimation error (an analytic delta
method over every live customer) and the Breslow baseline's (its variance is kept in the model
file). Without a Cox model, 1 - P(alive) of each live customer is placed on their current
declaration date, with the customers' randomness only.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..forecast import declared_at_date, segment_indicator, segment_sums, with_whole
from .risk import COX, RiskResult

__all__ = ["ChurnerSums", "churner_notes", "churner_sums", "churner_totals",
           "churner_variance"]


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
                       ) -> tuple[np.ndarray, np.ndarray]:
    """P(declared in each month) of each customer, from their churn probability at the
    horizon: ``S(t) = exp(-H_0s(t) e^eta) = (1 - p)^(H_0s(t) / H_0s(h))`` within baseline
    stratum s, so the scoring table's design is not transformed again (a million rows); the
    baselines' ratios come from one row per stratum. ``rows`` are the customers' positions
    in ``scoring`` (in ``probability``'s order).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray), each shape (n, len(times))
        The probabilities of a declaration in each month, and ``S log S`` at each month end:
        the derivative of a customer's survival with respect to their log cumulative hazard
        (the delta method's), from the same logarithms.
    """
    codes, first = _stratum_codes(scoring[list(model.strata or [])].iloc[rows])
    representative = scoring.iloc[rows[first]]
    hazard = model.cumulative_hazard(representative, [*times, horizon], source="scoring table")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(hazard[:, -1:] > 0, hazard[:, :-1] / hazard[:, -1:], 0.0)
        # a step baseline read at sorted times never decreases
        ratio = np.maximum.accumulate(ratio, axis=1)
        log_stay = np.log1p(-np.clip(probability, 0.0, 1.0))
        log_survival = log_stay[:, None] * ratio[codes]
    # p = 1 with a zero ratio (nan): nothing declared yet; p = 1 otherwise (-inf): S = 0
    log_survival[np.isnan(log_survival)] = 0.0
    survival = np.exp(log_survival)
    with np.errstate(invalid="ignore"):  # 0 * -inf where S = 0, replaced by 0
        slopes = np.where(survival > 0, survival * log_survival, 0.0)
    by_month = survival
    by_month[:, 1:] = survival[:, :-1] - survival[:, 1:]
    by_month[:, 0] = 1.0 - by_month[:, 0]
    return by_month, slopes


def _month_gradients(summed: np.ndarray) -> np.ndarray:
    """From sums of ``d S(t_m)`` (shape (..., M)) to the derivatives of each month's churners
    ``S(t_{m-1}) - S(t_m)`` and of the horizon's ``1 - S(t_M)``, shape (..., M + 1)."""
    before = np.concatenate([np.zeros_like(summed[..., :1]), summed[..., :-1]], axis=-1)
    return np.concatenate([before - summed, -summed[..., -1:]], axis=-1)


def _cox_gradient_sums(model, rows: pd.DataFrame, slopes: np.ndarray, codes: np.ndarray,
                       n_seg: int) -> np.ndarray:
    """Sums by segment (then in total) of the customers' ``dS_i(t_m) / dbeta``, shape
    (n_seg + 1, P, M): the Cox coefficients' delta method (:func:`_cox_parameter_variance`)
    needs only these sums, which add over chunks of customers.

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
        Their ``S log S`` at the month ends (:func:`_churners_by_month`).
    codes : numpy.ndarray of int, shape (n,)
        Their segments, in ``range(n_seg)``.
    """
    unit = copy.copy(model)
    unit.params_ = pd.Series(1.0, index=model.params_.index)
    centred = unit.contributions(rows, source="scoring table").to_numpy(float)
    summed = np.zeros((n_seg + 1, centred.shape[1], slopes.shape[1]))
    for code in range(n_seg):
        mine = codes == code
        if mine.any():
            summed[code] = centred[mine].T @ slopes[mine]                      # (P, M)
    summed[n_seg] = summed[:n_seg].sum(axis=0)
    return summed


def _cox_parameter_variance(model, summed: np.ndarray) -> np.ndarray:
    """Delta-method variance of the churner totals from the Cox coefficients, over every live
    customer, from their gradients' sums (:func:`_cox_gradient_sums`).

    Returns
    -------
    numpy.ndarray, shape (n_seg + 1, M + 1)
    """
    grads = _month_gradients(summed)                                            # (G, P, M+1)
    covariance = model.variance_matrix_.to_numpy(float)
    if not np.all(np.isfinite(covariance)):
        return np.zeros((summed.shape[0], summed.shape[2] + 1))
    return np.maximum(np.einsum("gjm,jk,gkm->gm", grads, covariance, grads), 0.0)


def _baseline_slope_sums(model, rows: pd.DataFrame, slopes: np.ndarray, codes: np.ndarray,
                         times: np.ndarray, n_seg: int) -> dict:
    """Per baseline stratum (keyed by its strata columns' values), the sums by segment (then
    in total) of the customers' ``S log S`` at the month ends, shape (n_seg + 1, M), with
    the stratum's baseline cumulative hazard and its variance at the month ends: what
    :func:`_baseline_variance` needs, added over chunks of customers by key."""
    strata, hazard, variance = model.baseline_variance(rows, times, source="scoring table")
    columns = list(model.strata or [])
    months = len(times)
    out = {}
    for s in range(len(hazard)):
        mine = strata == s
        if not mine.any():
            continue
        key = tuple(rows[columns].iloc[int(np.argmax(mine))]) if columns else ()
        summed = np.zeros((n_seg + 1, months))
        mine_codes, mine_slopes = codes[mine], slopes[mine]
        for m in range(months):
            summed[:n_seg, m] = np.bincount(mine_codes, weights=mine_slopes[:, m],
                                            minlength=n_seg)[:n_seg]
        summed[n_seg] = summed[:n_seg].sum(axis=0)
        out[key] = (summed, hazard[s], variance[s])
    return out


def _baseline_variance(by_stratum: dict, n_seg: int, months: int) -> np.ndarray:
    """Variance of the churner totals from the baseline hazard's estimation error, from the
    slopes' sums per stratum (:func:`_baseline_slope_sums`).

    Within a stratum every customer's hazard is the stratum's baseline times their own
    factor, so an error ``e(t)`` in the baseline's log moves all their survivals together,
    ``dS_i(t) = S_i(t) log S_i(t) e(t)``, with ``Var e(t) = Var H_0(t) / H_0(t)^2`` and, the
    Breslow estimator's increments being independent, ``Cov(e(s), e(t)) = Var H_0(s) /
    (H_0(s) H_0(t))`` for s <= t. Strata are estimated separately (independent).

    Returns
    -------
    numpy.ndarray, shape (n_seg + 1, M + 1)
    """
    earlier = np.minimum.outer(np.arange(months), np.arange(months))
    out = np.zeros((n_seg + 1, months + 1))
    for summed, hazard, variance in by_stratum.values():
        with np.errstate(divide="ignore", invalid="ignore"):
            # covariance of the relative errors at the month ends (and none at time 0)
            relative = np.where(hazard[:, None] * hazard[None, :] > 0,
                                variance[earlier] / (hazard[:, None] * hazard[None, :]),
                                0.0)                                            # (M, M)
        # the churners' derivatives with respect to e(t_m), month by month and for the horizon
        weights = np.zeros((n_seg + 1, months + 1, months))
        for m in range(months):
            weights[:, m, m] = -summed[:, m]
            if m:
                weights[:, m, m - 1] = summed[:, m - 1]
        weights[:, months, months - 1] = -summed[:, months - 1]
        out += np.einsum("gma,ab,gmb->gm", weights, relative, weights)
    return np.maximum(out, 0.0)


@dataclass
class ChurnerSums:
    """The churner forecast's sums over customers, which add over chunks of them
    (``a + b``); :func:`churner_variance` turns them into the parameter variance.

    Attributes
    ----------
    mean, variance : numpy.ndarray, shape (n_seg + 1, M + 1)
        Expected churners and their Bernoulli variance, by segment (then in total), by month
        (then for the horizon).
    gradients : numpy.ndarray or None, shape (n_seg + 1, P, M)
        The Cox coefficients' gradient sums (:func:`_cox_gradient_sums`); None without a Cox
        model.
    baseline : dict
        Per baseline stratum, :func:`_baseline_slope_sums`'s entry.
    """

    mean: np.ndarray
    variance: np.ndarray
    gradients: np.ndarray | None = None
    baseline: dict = field(default_factory=dict)

    def __add__(self, other: ChurnerSums) -> ChurnerSums:
        baseline = dict(self.baseline)
        for key, (summed, hazard, variance) in other.baseline.items():
            if key in baseline:
                summed = baseline[key][0] + summed
            baseline[key] = (summed, hazard, variance)
        gradients = (self.gradients if other.gradients is None else other.gradients
                     if self.gradients is None else self.gradients + other.gradients)
        return ChurnerSums(self.mean + other.mean, self.variance + other.variance, gradients,
                           baseline)


def churner_sums(model, scoring: pd.DataFrame | None, lifecycle: pd.DataFrame | None,
                 customers: pd.DataFrame, codes: np.ndarray, ends: np.ndarray, *,
                 horizon: float, churn_after: float | None, n_segments: int) -> ChurnerSums:
    """:class:`ChurnerSums` of ``customers`` (the whole base, or a chunk of it).

    Parameters
    ----------
    model : ChurnModel or None
        The Cox churn model; None: 1 - P(alive) placed on each live customer's current
        declaration date.
    scoring : pandas.DataFrame or None
        The live customers' scoring rows (as the churn model scores them), indexed by
        customer id.
    lifecycle : pandas.DataFrame or None
        Without a Cox model: ``customer_id`` and ``time_since_last_purchase``.
    customers : pandas.DataFrame, shape (n, k)
        ``churn_model`` and ``churn_probability``, indexed by customer id.
    codes : numpy.ndarray of int, shape (n,)
        Each customer's segment, in ``range(n_segments)``.
    ends : numpy.ndarray, shape (M,)
        Month ends, time units after the observation end.
    horizon, churn_after : float
        Time units (``churn_after`` read only without a Cox model).
    n_segments : int
    """
    n_seg = n_segments
    sums = ChurnerSums(np.zeros(0), np.zeros(0))
    if scoring is not None and model is not None:
        ids = scoring.index.to_numpy()
        scored = np.flatnonzero(customers["churn_model"].to_numpy() == COX)
        if len(ids) == len(scored) and np.array_equal(ids, customers.index.to_numpy()[scored]):
            position, kept = scored, np.arange(len(ids))  # the usual case: the same order
        else:
            position = customers.index.get_indexer(ids)
            kept = np.flatnonzero(customers["churn_model"].to_numpy()[position] == COX)
            position = position[kept]
        probability = customers["churn_probability"].to_numpy(float)[position]
        by_month, slopes = _churners_by_month(model, scoring, kept, probability, ends, horizon)
        live_codes = codes[position]
        rows = scoring.iloc[kept]
        sums.gradients = _cox_gradient_sums(model, rows, slopes, live_codes, n_seg)
        sums.baseline = _baseline_slope_sums(model, rows, slopes, live_codes, ends, n_seg)
    else:
        lifecycle = lifecycle.set_index("customer_id").reindex(customers.index)
        declaration = churn_after - lifecycle["time_since_last_purchase"].to_numpy(float)
        by_month = declared_at_date(customers["churn_probability"].to_numpy(float),
                                    declaration, ends)
        live_codes = codes
    indicator = segment_indicator(live_codes, n_seg)
    mean = segment_sums(by_month, live_codes, n_seg, indicator)
    whole = by_month.sum(axis=1)
    var = segment_sums(by_month * (1.0 - by_month), live_codes, n_seg, indicator)
    whole_var = indicator @ (whole * (1.0 - whole))
    sums.mean, sums.variance = with_whole(mean), np.hstack([var, whole_var[:, None]])
    return sums


def churner_variance(model, sums: ChurnerSums) -> np.ndarray:
    """The parameter variance of the churner totals (the Cox coefficients' and the baseline
    hazard's) from their sums, shape (n_seg + 1, M + 1); zero without a Cox model."""
    n_seg, windows = sums.mean.shape[0] - 1, sums.mean.shape[1]
    if sums.gradients is None:
        return np.zeros((n_seg + 1, windows))
    return (_cox_parameter_variance(model, sums.gradients)
            + _baseline_variance(sums.baseline, n_seg, windows - 1))


def churner_notes(model, cox: bool) -> list[str]:
    """How the churners were forecast (``cox``: from the Cox model ``model``)."""
    if not cox:
        return ["Expected churners per month: no Cox model, so 1 - P(alive) of each live "
                "customer placed on their current declaration date; intervals with the "
                "customers' randomness only."]
    notes = []
    if not np.all(np.isfinite(model.variance_matrix_.to_numpy(float))):
        notes.append("The Cox coefficients' covariance is not finite: the churner "
                     "intervals carry the customers' randomness only.")
    notes.append("Expected churners per month: the Cox churn model's survival curve of "
                 "each live customer read at the month ends; intervals with the "
                 "coefficients' and the baseline hazard's estimation error.")
    return notes


def churner_totals(risk: RiskResult, customers: pd.DataFrame, codes: np.ndarray,
                   ends: np.ndarray, settings, notes: list[str], n_segments: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected churners per month and segment: means, customer-level and parameter
    variances.

    Parameters
    ----------
    risk : RiskResult
        The churn model and its scoring table (or, without a Cox model, the lifecycle).
    customers, codes, ends
        As :func:`churner_sums` takes them.
    settings : Settings
        ``horizon`` and ``churn_after``.
    notes : list of str
        Appended to: how the churners were forecast.
    n_segments : int

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray), each shape (n_segments + 1, M + 1)
        The means, the customers' Bernoulli variance and the models' (coefficients and
        baseline hazard), by segment then in total, by month then for the horizon.
    """
    cox = risk.scoring is not None and risk.model is not None
    sums = churner_sums(risk.model if cox else None, risk.scoring if cox else None,
                        risk.lifecycle, customers, codes, ends, horizon=settings.horizon,
                        churn_after=None if cox else settings.churn_after,
                        n_segments=n_segments)
    notes.extend(churner_notes(risk.model, cox))
    return sums.mean, sums.variance, churner_variance(risk.model, sums)

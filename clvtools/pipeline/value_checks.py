"""Checks of the value model's assumptions and fit, for data_quality.json and value_checks.csv.

* **Gamma-Gamma's independence.** Gamma-Gamma assumes that a customer's spend per purchase
  does not depend on how often they buy; the Pearson correlation of ``frequency`` and
  ``monetary_value`` among the repeat buyers should be near 0 (Fader & Hardie 2013). Above
  :data:`SPEND_CORRELATION_WARNING` in absolute value the run warns.
* **The purchase model's fit.** Expected versus observed number of customers with 0, 1, ...
  repeat purchases, each customer at its own age ``T`` and,
  with covariates, its own rates; the expected counts are averaged over draws from the fitted
  model (:mod:`clvtools.btyd.simulate`: no closed form covers every model with covariates),
  enough draws that their noise is small beside the counts' own. Pearson's chi-square test
  on bins pooled from the top until each expects at least 5 customers, with
  ``df = bins - 1 - parameters``. On hundreds of thousands of customers any model is
  rejected; the table shows where it misses.
* **P(alive)'s ranking** on the holdout (computed by :mod:`clvtools.pipeline.holdout`): the
  AUC of P(alive) at the calibration end against "bought in the holdout", the proxy for
  being alive that real data offer (a customer alive may not buy within the holdout).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..btyd.bgnbd import BetaGeoFitter
from ..btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from ..btyd.covariates import CovariateBTYDFitter
from ..btyd.mbgnbd import ModifiedBetaGeoFitter
from ..btyd.simulate import (
    simulate_bgnbd,
    simulate_mbgnbd,
    simulate_pareto_nbd,
    simulate_rfm_with_covariates,
)

__all__ = ["SPEND_CORRELATION_WARNING", "spend_frequency_correlation", "frequency_fit",
           "covariate_linear_predictors", "value_checks", "checks_table"]

#: Absolute Pearson correlation of frequency and mean repeat spend above which Gamma-Gamma
#: is flagged.
SPEND_CORRELATION_WARNING = 0.3
#: Customers drawn from the fitted model for the expected counts (customers x replications):
#: at least _MIN_DRAWS and _REPLICATIONS per customer, at most _DRAWS. The draws' noise adds
#: about customers / draws to the variance of observed minus expected counts: 5 % up to
#: 50,000 customers, more above (20 % at 200,000), where the test rejects any model anyway.
_DRAWS, _MIN_DRAWS, _REPLICATIONS = 1_000_000, 200_000, 20
#: Smallest expected count of a bin of the chi-square test.
_MIN_EXPECTED = 5.0


def spend_frequency_correlation(rfm: pd.DataFrame) -> dict | None:
    """Pearson correlation of ``frequency`` and ``monetary_value`` among the repeat buyers
    with a positive mean repeat spend; None without amounts or with fewer than 3 of them.

    Returns
    -------
    dict
        ``pearson_r``, ``p_value``, ``repeat_buyers``, ``warning`` (bool,
        |r| > :data:`SPEND_CORRELATION_WARNING`).
    """
    if "monetary_value" not in rfm:
        return None
    frequency = rfm["frequency"].to_numpy(float)
    spend = rfm["monetary_value"].to_numpy(float)
    repeat = (frequency > 0) & (spend > 0)  # NaN is neither: the two columns have no NaN here
    frequency, spend = frequency[repeat], spend[repeat]
    # a column of one value has no correlation (tested by comparison: counting the distinct
    # values of a million amounts hashed them all)
    if len(frequency) < 3 or not ((frequency != frequency[0]).any()
                                  and (spend != spend[0]).any()):
        return None
    r, p = stats.pearsonr(frequency, spend)
    return {"pearson_r": float(r), "p_value": float(p), "repeat_buyers": len(frequency),
            "warning": bool(abs(r) > SPEND_CORRELATION_WARNING)}


def covariate_linear_predictors(bound) -> tuple[np.ndarray, np.ndarray]:
    """The purchase and dropout linear predictors of the customers a covariate fitter is
    bound to (:class:`~clvtools.pipeline.value_models.BoundCovariates`).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray), each shape (customers,)
        ``eta_purchase`` and ``eta_dropout``, rows as the bound customers.
    """
    n = len(bound.covariates)
    _, eta_p, eta_d, *_ = bound.model._predict_inputs({"T": np.zeros(n)}, bound.encoded,
                                                      "frequency_fit")
    return eta_p, eta_d


def _simulated_frequencies(purchases, T: np.ndarray, rows: np.ndarray, seed: int,
                           linear_predictors=None) -> np.ndarray:
    """Repeat purchases of the customers ``rows`` (repeated), drawn from the fitted model."""
    model = getattr(purchases, "model", purchases)
    if linear_predictors is None and model is not purchases:
        # a covariate fitter bound to the customers' attributes
        linear_predictors = covariate_linear_predictors(purchases)
    if linear_predictors is None and isinstance(model, CovariateBTYDFitter):
        raise ValueError("A covariate purchase model's fit is checked with its customers' "
                         "linear predictors: bind it to their attributes or pass them.")
    if linear_predictors is not None:
        eta_p, eta_d = linear_predictors
        kind = "bgnbd" if isinstance(model, BetaGeoCovariatesFitter) else "pnbd"
        sim = simulate_rfm_with_covariates(kind, model.params_.to_numpy()[:4],
                                           eta_p[rows], eta_d[rows], T[rows], seed=seed)
    elif isinstance(model, ModifiedBetaGeoFitter):
        sim = simulate_mbgnbd(model, len(rows), T[rows], seed=seed)
    elif isinstance(model, BetaGeoFitter):
        sim = simulate_bgnbd(model, len(rows), T[rows], seed=seed)
    else:
        sim = simulate_pareto_nbd(model, len(rows), T[rows], seed=seed)
    return sim["frequency"].to_numpy()


def frequency_fit(purchases, rfm: pd.DataFrame, *, seed: int = 0,
                  linear_predictors=None) -> tuple[pd.DataFrame, dict]:
    """Expected versus observed customers per repeat-purchase count, and the chi-square test.

    Parameters
    ----------
    purchases : fitted purchase model (or a covariate fitter bound to ``rfm``'s customers)
    rfm : pandas.DataFrame
        The customers it was fitted on: ``frequency``, ``T`` (time units).
    seed : int
    linear_predictors : (numpy.ndarray, numpy.ndarray), optional
        A covariate fitter's purchase and dropout linear predictors, each shape
        (customers,), rows as ``rfm`` (:func:`covariate_linear_predictors`), when
        ``purchases`` is not bound to the customers (a chunked run computes them a chunk
        at a time).

    Returns
    -------
    (pandas.DataFrame, dict)
        The table: ``frequency`` (``"0"``, ``"1"``, ... and ``"k+"``, the bins of the
        test), ``observed`` and ``expected`` customers; and the test: ``chi_square``,
        ``df``, ``p_value`` (on ``df = bins - 1 - parameters``), ``p_value_upper`` (on
        ``bins - 1``), ``bins`` (after pooling), ``parameters``, ``draws``.
    """
    T = rfm["T"].to_numpy(float)
    n = len(T)
    rng = np.random.default_rng(seed)
    # whole replications of every customer up to about `draws`; a base above _DRAWS
    # customers is represented by a random subset of _DRAWS of them
    draws = min(_DRAWS, max(_MIN_DRAWS, _REPLICATIONS * n))
    rows = (np.tile(np.arange(n), max(1, draws // n)) if n <= draws
            else rng.choice(n, draws, replace=False))
    simulated = _simulated_frequencies(purchases, T, rows, seed, linear_predictors)
    top = int(max(rfm["frequency"].max(), simulated.max())) + 1
    observed = np.bincount(rfm["frequency"].to_numpy(int), minlength=top).astype(float)
    expected = n * np.bincount(simulated.astype(int), minlength=top) / len(rows)
    # bins 0, 1, ... while each expects at least 5 customers; the rest pooled into one bin
    # ("k+"), moved down until it too expects at least 5
    small = np.flatnonzero(expected < _MIN_EXPECTED)
    k = int(small[0]) if small.size else top
    while k > 1 and expected[k:].sum() < _MIN_EXPECTED:
        k -= 1
    labels = [str(b) for b in range(k)] + ([f"{k}+"] if k < top else [])
    obs = [*observed[:k], *([observed[k:].sum()] if k < top else [])]
    exp = [*expected[:k], *([expected[k:].sum()] if k < top else [])]
    table = pd.DataFrame({"frequency": labels, "observed": obs, "expected": exp})
    obs_a, exp_a = np.array(obs), np.array(exp)
    keep = exp_a > 0
    chi2 = float((((obs_a - exp_a) ** 2)[keep] / exp_a[keep]).sum())
    k = len(getattr(purchases, "model", purchases).params_)
    df = int(keep.sum()) - 1 - k
    # with the parameters estimated from the ungrouped data, the statistic's law lies between
    # chi-square(df) and chi-square(bins - 1) (Chernoff & Lehmann 1954): both p-values
    test = {"chi_square": chi2, "df": df,
            "p_value": float(stats.chi2.sf(chi2, df)) if df > 0 else None,
            "p_value_upper": (float(stats.chi2.sf(chi2, int(keep.sum()) - 1))
                              if keep.sum() > 1 else None),
            "bins": int(keep.sum()), "parameters": k, "draws": len(rows)}
    return table, test


def value_checks(purchases, rfm: pd.DataFrame, holdout_summary: pd.DataFrame | None,
                 model: str, *, seed: int, linear_predictors=None) -> tuple[dict, list[str]]:
    """The value model's checks (data_quality.json's ``value_checks``) and the warnings the
    console must show.

    Parameters
    ----------
    purchases : fitted purchase model (or a covariate fitter bound to ``rfm``'s customers)
    rfm : pandas.DataFrame, shape (customers, 2 or 3)
        Every customer it was fitted on, sorted by customer: ``frequency``, ``T`` (time
        units) and, with amounts, ``monetary_value``.
    holdout_summary : pandas.DataFrame or None
        holdout_summary.csv's rows (``chosen``, ``p_alive_auc``); None without a holdout.
    model : str
        The purchase model's name.
    seed : int
    linear_predictors : (numpy.ndarray, numpy.ndarray), optional
        As :func:`frequency_fit` takes them.

    Returns
    -------
    (dict, list of str)
        ``p_alive_auc_holdout`` (when finite), ``spend_frequency_correlation`` (with amounts
        and at least 3 repeat buyers) and ``frequency_fit`` (the test, ``model`` and its
        ``table`` as records); the warnings.
    """
    checks: dict = {}
    warnings: list[str] = []
    if holdout_summary is not None:
        area = float(holdout_summary[holdout_summary["chosen"]].iloc[-1]
                     .get("p_alive_auc", np.nan))
        # NaN (no one, or everyone, bought in the holdout) is left out: JSON has no NaN
        if np.isfinite(area):
            checks["p_alive_auc_holdout"] = area
    spend = spend_frequency_correlation(rfm)
    if spend is not None:
        checks["spend_frequency_correlation"] = spend
        if spend["warning"]:
            warnings.append(
                f"Frequency and mean repeat spend correlate (Pearson r = "
                f"{spend['pearson_r']:.2f}, |r| > {SPEND_CORRELATION_WARNING}): Gamma-Gamma "
                "assumes spend independent of frequency; read expected spend with care.")
    table, test = frequency_fit(purchases, rfm, seed=seed, linear_predictors=linear_predictors)
    checks["frequency_fit"] = {**test, "model": model, "table": table.to_dict(orient="records")}
    return checks, warnings


def checks_table(checks: dict, model: str) -> pd.DataFrame | None:
    """``value_checks.csv`` from :func:`value_checks`' dict: one row per check (statistic,
    value, df, p-value, flag); None without any check. ``model``: the purchase model's
    name."""
    rows = []
    auc = checks.get("p_alive_auc_holdout")
    if auc is not None:
        rows.append({"check": "p_alive_auc_holdout", "statistic": "AUC", "value": auc,
                     "note": "P(alive) at the calibration end against a purchase in the "
                             "holdout (the proxy for alive in real data)"})
    spend = checks.get("spend_frequency_correlation")
    if spend is not None:
        rows.append({"check": "spend_frequency_correlation", "statistic": "pearson_r",
                     "value": spend["pearson_r"], "p_value": spend["p_value"],
                     "flagged": spend["warning"],
                     "note": f"Gamma-Gamma assumes spend independent of frequency; "
                             f"flagged above |r| = {SPEND_CORRELATION_WARNING}"})
    fit = checks.get("frequency_fit")
    if fit is not None:
        rows.append({"check": "frequency_fit", "statistic": "chi_square",
                     "value": fit["chi_square"], "df": fit["df"], "p_value": fit["p_value"],
                     "flagged": fit["p_value"] is not None and fit["p_value"] < 0.05,
                     "note": "expected vs observed customers per repeat-purchase count; "
                             "flagged at p < 0.05; the p-value on bins - 1 df: "
                             f"{fit['p_value_upper']}"})
    if not rows:
        return None
    columns = ["check", "model", "statistic", "value", "df", "p_value", "flagged", "note"]
    return pd.DataFrame(rows).assign(model=model).reindex(columns=columns)

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
from ..btyd.mbgnbd import ModifiedBetaGeoFitter
from ..btyd.simulate import (
    simulate_bgnbd,
    simulate_mbgnbd,
    simulate_pareto_nbd,
    simulate_rfm_with_covariates,
)

__all__ = ["SPEND_CORRELATION_WARNING", "spend_frequency_correlation", "frequency_fit"]

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
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    if len(repeat) < 3 or min(repeat["frequency"].nunique(),
                              repeat["monetary_value"].nunique()) < 2:
        return None
    r, p = stats.pearsonr(repeat["frequency"].to_numpy(float),
                          repeat["monetary_value"].to_numpy(float))
    return {"pearson_r": float(r), "p_value": float(p), "repeat_buyers": len(repeat),
            "warning": bool(abs(r) > SPEND_CORRELATION_WARNING)}


def _simulated_frequencies(purchases, T: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    """Repeat purchases of the customers ``rows`` (repeated), drawn from the fitted model."""
    model = getattr(purchases, "model", purchases)
    if model is not purchases:  # a covariate fitter bound to the customers' attributes
        _, eta_p, eta_d, *_ = model._predict_inputs({"T": T}, purchases.encoded,
                                                    "frequency_fit")
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


def frequency_fit(purchases, rfm: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Expected versus observed customers per repeat-purchase count, and the chi-square test.

    Parameters
    ----------
    purchases : fitted purchase model (or a covariate fitter bound to ``rfm``'s customers)
    rfm : pandas.DataFrame
        The customers it was fitted on: ``frequency``, ``T`` (time units).
    seed : int

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
    simulated = _simulated_frequencies(purchases, T, rows, seed)
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

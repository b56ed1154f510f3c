"""Gamma-Gamma spend model [FHL05g]_, lifetimes' ``GammaGammaFitter`` API.

Each transaction value z ~ Gamma(p, nu), nu ~ Gamma(q, v) across customers; a customer's mean
spend is p / nu, whose population mean p v / (q - 1) is finite only for q > 1.

References
----------
.. [FHL05g] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "The Gamma-Gamma Model of
   Monetary Value", http://www.brucehardie.com/notes/025/
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from ..errors import ClvInputError
from .base import BTYDFitter, InfiniteMeanWarning, _rows
from .prediction import prediction
from .utils import _customer_lifetime_value

__all__ = ["GammaGammaFitter"]


class GammaGammaFitter(BTYDFitter):
    """Gamma-Gamma model of the mean transaction value, parameters ``p``, ``q``, ``v``.

    Fit it on repeat buyers only (frequency > 0), with ``monetary_value`` the mean value of
    their repeat purchases, as in lifetimes. It assumes spend is independent of frequency.
    """

    _param_names = ("p", "q", "v")
    _fit_columns = ("frequency", "monetary_value")
    #: Warn (InfiniteMeanWarning) when the fit gives q <= 1; a caller that refits with the
    #: constraint then sets it to False on its instance.
    warn_infinite_mean: bool = True

    def fit(self, frequency, monetary_value, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, q_constraint=False, **kwargs):
        """Fit the model.

        Parameters
        ----------
        frequency : array_like, shape (n,)
            Repeat purchases x >= 1 (filter out x = 0 first, as with lifetimes).
        monetary_value : array_like, shape (n,)
            Mean value of the repeat purchases (currency), > 0.
        weights, initial_params, verbose, tol, index, **kwargs
            As in :meth:`BetaGeoFitter.fit` (3 log-parameters: log p, log q, log v).
        q_constraint : bool, default False
            Constrain q >= 1 (lifetimes' option); q <= 1 means an infinite mean spend.

        Returns
        -------
        self
        """
        bounds = [(None, None), (0.0, None), (None, None)] if q_constraint else None
        self.q_constraint = bool(q_constraint)
        return self._fit({"frequency": frequency, "monetary_value": monetary_value}, weights,
                         initial_params, verbose, tol, index, bounds=bounds, **kwargs)

    def _settings(self):
        return {**super()._settings(), "q_constraint": bool(getattr(self, "q_constraint", False))}

    def _check_data(self, data, index=None):
        x, m = data["frequency"], data["monetary_value"]
        if len(x) != len(m):
            raise ClvInputError(
                f"'frequency' and 'monetary_value' must have the same length. Got {len(x)} "
                f"and {len(m)} instead."
            )
        if len(x) == 0:
            raise ClvInputError("There are no repeat buyers to fit the Gamma-Gamma model on.",
                                advice="the spend model needs customers with frequency > 0.")
        for bad, col, what, advice in [
            (~np.isfinite(x) | (x != np.round(x)), "frequency",
             "must hold whole numbers", "rebuild the RFM summary."),
            (x <= 0, "frequency",
             "must be positive: the Gamma-Gamma model is fitted on repeat buyers only",
             "select them first, e.g. df[df['frequency'] > 0]."),
            (~np.isfinite(m) | (m <= 0), "monetary_value",
             "must be positive and finite (mean value of the repeat purchases)",
             "drop refunds and zero-value purchases, or customers with frequency 0."),
        ]:
            if bad.any():
                raise ClvInputError(f"The {col!r} column {what}.", column=col,
                                    rows=_rows(bad, data, index), n_rows=int(bad.sum()),
                                    advice=advice)

    def _initial_params(self, data, weights):
        # method of moments would need q > 2; a start with q = 2 and the observed mean spend
        # (p v / (q-1) = mean) is safe and close enough.
        mean = np.sum(weights * data["monetary_value"]) / np.sum(weights)
        return np.array([1.0, 2.0, mean])

    def _prepare_data(self, data, weights):
        """Per-fit constants of the likelihood (:meth:`_loglik_and_grad`).

        The gamma functions of eq. (4) depend on a row only through its frequency x, a few
        dozen distinct values against hundreds of thousands of rows (mean spends are
        continuous and hardly collapse): they are evaluated once per distinct x, and the
        terms linear in p and q are summed over the rows once per fit. What is left per row
        and evaluation is log(x m + v) and 1 / (x m + v).
        """
        x, m = data["frequency"], data["monetary_value"]
        w = np.asarray(weights, dtype=float)
        xs, group = np.unique(x, return_inverse=True)
        log_m, log_x = np.log(m), np.log(x)
        return {**data, "xm": x * m, "w": w, "wx": w * x, "xs": xs,
                "w_by_x": np.bincount(group.reshape(-1), w, minlength=len(xs)),
                "n": float(w.sum()), "sum_w_log_m": float(w @ log_m),
                "sum_wx_log_mx": float((w * x) @ (log_m + log_x))}

    def _loglik_and_grad(self, params, data, weights):
        """[FHL05g] eq. (4): likelihood of the mean spend m of x purchases, and its gradient.

        Per row, log L = lgamma(px + q) - lgamma(px) - lgamma(q) + q log v + (px - 1) log m
        + px log x - (px + q) log(xm + v); summed with the weights, by distinct x for the
        gamma functions (``data`` from :meth:`_prepare_data`).
        """
        p, q, v = params
        xs, w_by_x, n = data["xs"], data["w_by_x"], data["n"]
        pxs = p * xs
        lxmv = np.log(data["xm"] + v)
        inv = 1.0 / (data["xm"] + v)
        sum_wx_l, sum_w_l = data["wx"] @ lxmv, data["w"] @ lxmv
        psi = special.digamma(pxs + q)
        ll = (w_by_x @ (special.gammaln(pxs + q) - special.gammaln(pxs)) - n * special.gammaln(q)
              + n * q * np.log(v) + p * data["sum_wx_log_mx"] - data["sum_w_log_m"]
              - p * sum_wx_l - q * sum_w_l)
        g = np.array([
            (w_by_x * xs) @ (psi - special.digamma(pxs)) + data["sum_wx_log_mx"] - sum_wx_l,
            w_by_x @ psi - n * special.digamma(q) + n * np.log(v) - sum_w_l,
            n * q / v - p * (data["wx"] @ inv) - q * (data["w"] @ inv),
        ])
        return float(ll), g

    def _after_fit(self):
        q = float(self.params_["q"])
        if q <= 1 and self.warn_infinite_mean:
            warnings.warn(
                f"GammaGammaFitter: q = {q:.4g} <= 1, so the mean spend p v / (q - 1) is "
                "infinite and conditional_expected_average_profit and customer_lifetime_value "
                "will raise. Refit with q_constraint=True, or check the monetary values for "
                "extreme outliers.",
                InfiniteMeanWarning,
                stacklevel=3,
            )

    def _check_finite_mean(self):
        p, q, v = self._unload_params("p", "q", "v")
        if q <= 1:
            raise ClvInputError(
                f"The fitted Gamma-Gamma q = {q:.4g} <= 1 implies an infinite mean spend, so "
                "expected spend (and CLV) is undefined.",
                advice="refit with fit(..., q_constraint=True), or remove extreme monetary values.",
            )
        return p, q, v

    def conditional_expected_average_profit(self, frequency=None, monetary_value=None):
        """E[mean spend | x, m], a weighted average of m and the population mean ([FHL05g] eq. 5).

        ``(1 - w) p v / (q - 1) + w m`` with ``w = p x / (p x + q - 1)``.

        Parameters
        ----------
        frequency, monetary_value : scalar, array_like or Series, shape (n,), optional
            Default: the fitted ``data``.

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Expected spend per purchase (currency).

        Raises
        ------
        ClvInputError
            If q <= 1 (infinite mean spend); lifetimes returns negative or infinite values.
        """
        if monetary_value is None:
            monetary_value = self.data["monetary_value"]
        if frequency is None:
            frequency = self.data["frequency"]
        return self._expected_spend(frequency, monetary_value)

    @prediction
    def _expected_spend(self, frequency, monetary_value):
        p, q, v = self._check_finite_mean()
        w = p * frequency / (p * frequency + q - 1)
        return (1 - w) * (p * v / (q - 1)) + w * monetary_value

    def customer_lifetime_value(self, transaction_prediction_model, frequency, recency, T,
                                monetary_value, time=12, discount_rate=0.01, freq="D"):
        """lifetimes' discrete CLV: monthly expected purchases x expected spend, discounted.

        Parameters
        ----------
        transaction_prediction_model : fitted BG/NBD, MBG/NBD or Pareto/NBD fitter
        frequency, recency, T : array_like or Series, shape (n,)
            In the time unit given by ``freq``.
        monetary_value : array_like or Series, shape (n,)
            Observed mean spend; replaced by its Gamma-Gamma expectation.
        time : int, default 12
            Horizon in months.
        discount_rate : float, default 0.01
            MONTHLY discount rate.
        freq : {"D", "W", "M", "H"}
            The time unit of the data (30 days per month, 4.345 weeks, as lifetimes).

        Returns
        -------
        pandas.Series, shape (n,)
            Discounted CLV (currency), named ``clv``.
        """
        spend = self.conditional_expected_average_profit(frequency, monetary_value)
        return _customer_lifetime_value(transaction_prediction_model, frequency, recency, T,
                                        spend, time, discount_rate, freq=freq)

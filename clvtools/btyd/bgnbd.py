"""BG/NBD model [FHL05]_, lifetimes' ``BetaGeoFitter`` API; P(alive) as in [H21]_.

References
----------
.. [FHL05] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the
   Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24 (2), 275-284.
.. [H21] Hardie, B. G. S., "Computing P(alive) Using the BG/NBD Model", note 021.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

from ._distinct_rows import (
    _by_period_on_distinct_pairs,
    _distinct,
    _on_distinct_pairs,
    _on_distinct_pairs_by_horizon,
)
from .base import BTYDFitter
from .prediction import ByHorizon, by_horizon_inputs, prediction

__all__ = ["BetaGeoFitter"]


def _frequency_groups(data: dict, weights: np.ndarray) -> dict:
    """Precompute the row maps that make the likelihood cheap on hundreds of thousands of rows.

    Terms that depend on the frequency alone (gamma and beta functions) are computed once per
    distinct frequency (``ux``, a few hundred), and logarithms of alpha + T and alpha + t_x
    once per distinct T / t_x (``uT``, ``utx``; with whole days, a few hundred each) and then
    gathered: a gather costs a fraction of a ``log``. Most of the fit's speed comes from this.
    """
    x, tx, T = data["frequency"], data["recency"], data["T"]
    out = dict(data)
    out["ux"], out["inv"] = _distinct(x)
    out["wx"] = np.bincount(out["inv"], weights=weights, minlength=len(out["ux"]))
    out["uT"], out["iT"] = _distinct(T)
    out["utx"], out["itx"] = _distinct(tx)
    pos = x > 0
    out["pos"] = pos
    # customers without repeat purchases contribute -r log(alpha + T) only (BG/NBD): by T
    out["w0T"] = np.bincount(out["iT"][~pos], weights=weights[~pos], minlength=len(out["uT"]))
    for key in ("frequency", "inv", "iT", "itx"):
        out[key + "_pos"] = out[key][pos]
    out["w_pos"] = weights[pos]
    # sum_i w_i (r + x_i) f(T_i) over the repeat buyers = (r wT + wxT) @ f(uT): by T
    out["wT_pos"] = np.bincount(out["iT_pos"], weights=out["w_pos"], minlength=len(out["uT"]))
    out["wxT_pos"] = np.bincount(out["iT_pos"], weights=out["w_pos"] * out["frequency_pos"],
                                 minlength=len(out["uT"]))
    return out


def _softplus_sigmoid(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log(1 + e^d), 1 / (1 + e^-d))`` with one ``exp`` and one ``log1p``, overflow-free.

    (np.logaddexp was 3-4 times slower than this on 300k rows.) ``|d|`` is capped at 40 inside
    the exponential: exp(-40) = 4e-18 is below double precision next to max(d, 0) >= 40, and
    the cap keeps ``exp`` away from denormal numbers, which are several times slower.
    """
    e = np.abs(d)
    np.minimum(e, 40.0, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    softplus = np.log1p(e)
    softplus += np.maximum(d, 0.0)
    sigmoid = np.where(d >= 0, 1.0, e)
    e += 1.0
    sigmoid /= e
    return softplus, sigmoid


def _one_minus_scaled(log_scale: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """``1 - exp(log_scale) * hyp``, without cancellation when the product is near 1.

    ``hyp`` is a hypergeometric value; it turns negative when its third parameter
    a + b + x - 1 is negative (a + b < 1 and no repeat purchase), and the product's
    logarithm then does not exist. The result is then at least 1, with nothing to cancel.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        near_one = -np.expm1(log_scale + np.log(hyp))
    return np.where(hyp > 0, near_one, 1.0 - np.exp(log_scale) * hyp)


class BetaGeoFitter(ByHorizon, BTYDFitter):
    """BG/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) while alive; after each
    repeat purchase the customer drops out with probability p ~ Beta(a, b).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters added to the mean negative log-likelihood.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha`` (time units), ``a``, ``b``.
    data : pandas.DataFrame
        frequency, recency, T and weights as given to ``fit``.
    log_likelihood_, AIC_, BIC_ : float
        Total log-likelihood on the user's time scale and the information criteria.
    variance_matrix_, standard_errors_, confidence_intervals_, summary
        Inference from the inverse Hessian of the negative log-likelihood.
    """

    _param_names = ("r", "alpha", "a", "b")
    _time_params = ("alpha",)

    def fit(self, frequency, recency, T, weights=None, initial_params=None, verbose=False,
            tol=1e-7, index=None, **kwargs):
        """Fit the model to an RFM summary.

        Parameters
        ----------
        frequency : array_like, shape (n,)
            Repeat purchase occasions x (whole numbers >= 0).
        recency : array_like, shape (n,)
            Time from first to last purchase t_x, in time units (0 if x = 0).
        T : array_like, shape (n,)
            Time from first purchase to the observation end, in the same unit.
        weights : array_like, shape (n,), optional
            Number of customers per row. Identical rows are merged automatically anyway.
        initial_params : array_like, shape (4,), optional
            Starting LOG-parameters (log r, log alpha, log a, log b), as in lifetimes.
        verbose : bool
            Print the optimiser's result.
        tol : float
            Gradient tolerance of L-BFGS-B on the mean log-likelihood per customer.
        index : array_like, optional
            Index of ``data`` (default: the index of the first Series given).
        **kwargs
            Options for ``scipy.optimize.minimize`` (e.g. ``maxiter``).

        Returns
        -------
        self
        """
        return self._fit({"frequency": frequency, "recency": recency, "T": T}, weights,
                         initial_params, verbose, tol, index, **kwargs)

    # ---- likelihood ----------------------------------------------------------------------
    def _prepare_data(self, data, weights):
        return _frequency_groups(data, weights)

    def _initial_params(self, data, weights):
        # r = 1, alpha such that r/alpha is the mean purchase rate of the repeat buyers, a and b
        # moderate: a start near the usual optimum region whatever the time unit.
        rate = np.sum(weights * data["frequency"]) / max(np.sum(weights * data["T"]), 1e-12)
        return np.array([1.0, 1.0 / max(rate, 1e-12), 1.0, 1.0])

    def _loglik_and_grad(self, params, data, weights):
        """Eq. (6) of [FHL05] in log space, and its gradient (natural parameters)."""
        r, alpha, a, b = params
        ux, wx = data["ux"], data["wx"]
        # per distinct frequency: log B(a, b+x)/B(a, b) + log Gamma(r+x)/Gamma(r) + r log alpha
        c = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
             + special.betaln(a, b + ux) - special.betaln(a, b))
        ll = np.sum(wx * c)
        psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + ux)
        g = np.array([
            np.sum(wx * (special.digamma(r + ux) - special.digamma(r) + np.log(alpha))),
            np.sum(wx) * r / alpha,
            np.sum(wx * (psi_ab - psi_abx)),
            np.sum(wx * (psi_ab + special.digamma(b + ux) - special.digamma(b) - psi_abx)),
        ])
        lTu, ltxu = np.log(alpha + data["uT"]), np.log(alpha + data["utx"])
        iaTu, iatxu = 1.0 / (alpha + data["uT"]), 1.0 / (alpha + data["utx"])
        # the terms in (alpha+T) alone, by distinct T: x = 0 gives L = (alpha+T)^-r, x > 0
        # the factor (alpha+T)^-(r+x) taken out below
        wT = data["w0T"] * r + data["wT_pos"] * r + data["wxT_pos"]  # sum of w (r + x) by T
        ll -= wT @ lTu
        g[0] -= (data["w0T"] + data["wT_pos"]) @ lTu
        g[1] -= wT @ iaTu
        # x > 0: log[(alpha+T)^-(r+x) + a/(b+x-1) (alpha+t_x)^-(r+x)] = A3 + softplus(A4 - A3)
        # with A3 = -(r+x) log(alpha+T) (above) and
        # A4 - A3 = (r+x) log((alpha+T)/(alpha+t_x)) + log(a/(b+x-1))
        x, w = data["frequency_pos"], data["w_pos"]
        iT, itx, inv = data["iT_pos"], data["itx_pos"], data["inv_pos"]
        inv_safe = 1.0 / np.where(ux > 0, b + ux - 1, 1.0)
        diff = lTu[iT]
        diff -= ltxu[itx]  # log((alpha+T)/(alpha+t_x)) >= 0
        rx = x + r
        d = rx * diff
        d += (np.log(a) + np.log(inv_safe))[inv]
        sp, ww4 = _softplus_sigmoid(d)
        ll += w @ sp
        ww4 *= w
        d_alpha = iaTu[iT]  # d(A4 - A3)/d alpha = (r+x) (1/(alpha+T) - 1/(alpha+t_x))
        d_alpha -= iatxu[itx]
        d_alpha *= rx
        g += np.array([ww4 @ diff, ww4 @ d_alpha, ww4.sum() / a, -(ww4 @ inv_safe[inv])])
        return float(ll), g

    def _loglik_hessian(self, params, data, weights):
        """Hessian of :meth:`_loglik_and_grad`'s total log-likelihood, natural parameters.

        With d = A4 - A3 (above), sigma = sigmoid(d), v = sigma (1 - sigma), a repeat buyer's
        term A3 + softplus(d) has Hessian A3'' + sigma d'' + v d' d'^T, where
        d' = (D, (r+x) E, 1/a, -1/(b+x-1)), D = log((alpha+T)/(alpha+t_x)),
        E = 1/(alpha+T) - 1/(alpha+t_x).
        """
        r, alpha, a, b = params
        ux, wx = data["ux"], data["wx"]
        tg = special.polygamma(1, [r, a + b, b])
        t_ab, t_abx = tg[1], special.polygamma(1, a + b + ux)
        H = np.zeros((4, 4))
        # per distinct frequency: lgamma(r+x) - lgamma(r) + r log alpha + log B(a,b+x)/B(a,b)
        H[0, 0] = wx @ (special.polygamma(1, r + ux) - tg[0])
        H[0, 1] = wx.sum() / alpha
        H[1, 1] = -wx.sum() * r / alpha**2
        H[2, 2] = H[2, 3] = wx @ (t_ab - t_abx)
        H[3, 3] = wx @ (t_ab + special.polygamma(1, b + ux) - tg[2] - t_abx)
        # the (alpha+T) terms: -sum w (r+x) log(alpha+T)
        iaTu, iatxu = 1.0 / (alpha + data["uT"]), 1.0 / (alpha + data["utx"])
        wT = data["w0T"] * r + data["wT_pos"] * r + data["wxT_pos"]
        H[0, 1] -= (data["w0T"] + data["wT_pos"]) @ iaTu
        H[1, 1] += wT @ iaTu**2
        # repeat buyers: sigma d'' + v d' d'^T
        x, w = data["frequency_pos"], data["w_pos"]
        iT, itx, inv = data["iT_pos"], data["itx_pos"], data["inv_pos"]
        inv_safe = 1.0 / np.where(ux > 0, b + ux - 1, 1.0)
        diff = np.log(alpha + data["uT"])[iT] - np.log(alpha + data["utx"])[itx]
        rx = x + r
        d = rx * diff
        d += (np.log(a) + np.log(inv_safe))[inv]
        _, sig = _softplus_sigmoid(d)
        ws = w * sig
        wv = ws * (1.0 - sig)
        E = iaTu[iT] - iatxu[itx]
        s_x = inv_safe[inv]
        dd = {0: diff, 1: rx * E, 3: -s_x}  # d' by row (d/da = 1/a is the same for all)
        for i, j in ((0, 0), (0, 1), (0, 3), (1, 1), (1, 3), (3, 3)):
            H[i, j] += wv @ (dd[i] * dd[j])
        for i in (0, 1, 3):
            H[min(i, 2), max(i, 2)] += (wv @ dd[i]) / a
        H[2, 2] += wv.sum() / a**2
        # sigma d'': d_r d_alpha = E, d_alpha^2 = -(r+x)(1/(alpha+T)^2 - 1/(alpha+t_x)^2),
        # d_a^2 = -1/a^2, d_b^2 = 1/(b+x-1)^2
        H[0, 1] += ws @ E
        H[1, 1] -= ws @ (rx * (iaTu[iT] ** 2 - iatxu[itx] ** 2))
        H[2, 2] -= ws.sum() / a**2
        H[3, 3] += ws @ (s_x * s_x)
        return np.triu(H) + np.triu(H, 1).T

    # ---- predictions -----------------------------------------------------------------------
    def _log_odds_dead(self, x, tx, T):
        """log[P(dead)/P(alive)] = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)) for x > 0."""
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        pos = x > 0
        lr = np.log(a) - np.log(np.where(pos, b + x - 1, 1.0))
        val = lr + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(pos, val, -np.inf)

    @prediction
    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive at T | x, t_x, T), [H21] eq. (2), as 1 / (1 + exp(log-odds)), never NaN.

        Parameters
        ----------
        frequency, recency, T : scalar, array_like or Series, shape (n,)

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Probabilities in [0, 1].
        """
        return special.expit(-self._log_odds_dead(frequency, recency, T))

    @prediction
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T], [FHL05] eq. (10).

        Computed as P(alive) x (a+b+x-1)/(a-1) x [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)]
        with z = t/(alpha+T+t): Euler's transformation of the paper's 2F1(r+x, b+x; a+b+x-1; z),
        whose series stays bounded for heavy buyers (large x), where lifetimes' form overflows.

        Parameters
        ----------
        t : scalar or array_like
            Length of the future period, in time units.
        frequency, recency, T : scalar, array_like or Series, shape (n,)

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Expected repeat purchases in (T, T + t].
        """
        p_alive = special.expit(-self._log_odds_dead(frequency, recency, T))
        return p_alive * _on_distinct_pairs(self._expected_if_alive, frequency, t, T)

    def _expected_if_alive(self, x, t, T):
        """E[X(T, T+t) | alive at T, x, T]: the conditional expectation without its P(alive)
        factor. It depends on (x, t, T) only (not on t_x): see :func:`_on_distinct_pairs`."""
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        c = a + b + x - 1
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(a + b - 1 - r, a - 1, c, z)
        return c / (a - 1) * _one_minus_scaled((a - 1) * np.log1p(-z), hyp)

    def _by_horizon_plain(self, horizons, x, tx, T):
        """P(alive) once, the rest once per distinct (x, T) pair (:class:`ByHorizon`)."""
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        return p_alive[:, None] * _on_distinct_pairs_by_horizon(self._expected_if_alive, x,
                                                                horizons, T)

    def alive_and_purchases_by_period(self, period_ends, frequency, recency, T):
        """P(alive) and the expected purchases in each period (0, e_1], (e_1, e_2], ...: the
        increments of :meth:`expected_purchases_by_horizon` at the period ends, in one pass
        (:func:`_by_period_on_distinct_pairs`).

        Parameters
        ----------
        period_ends : array_like, shape (k,)
            Ends of the periods after T (time units), positive.
        frequency, recency, T : array_like or Series, shape (n,)

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            P(alive) at T, shape (n,) (:meth:`conditional_probability_alive`, bit for bit),
            and the expected purchases per customer and period, shape (n, k).
        """
        self._check_fitted()
        ends, (x, tx, age), _ = by_horizon_inputs(period_ends, frequency, recency, T)
        p_alive = special.expit(-self._log_odds_dead(x, tx, age))
        return p_alive, _by_period_on_distinct_pairs(self._expected_if_alive, x, ends, age,
                                                     p_alive)

    def predict(self, t, frequency, recency, T):
        """Alias of ``conditional_expected_number_of_purchases_up_to_time`` (as lifetimes)."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)

    @prediction
    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] for a new customer, [FHL05] eq. (9).

        Parameters
        ----------
        t : scalar or array_like
            Time since the first purchase, in time units.
        """
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        z = t / (alpha + t)
        hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
        log1mz = np.log(alpha) - np.log(alpha + t)
        return (a + b - 1) / (a - 1) * _one_minus_scaled((a - 1) * log1mz, hyp)

    @prediction
    def purchase_rate_if_alive(self, frequency, recency, T):
        """E[lambda | alive, x, t_x, T] = (r + x) / (alpha + T), purchases per time unit.

        The posterior of lambda given the history and survival to T is Gamma(r + x, alpha + T)
        (see [FHL05] section 4); ``recency`` does not enter but is taken for a uniform API.
        """
        r, alpha = self._unload_params("r", "alpha")
        return (r + frequency) / (alpha + T) + 0 * recency

    def _first_and_rest_weights(self, n):
        """Log of the two beta-function ratios of eq. (8):
        B(a, b+n)/B(a,b), B(a+1, b+n-1)/B(a,b)."""
        a, b = self._unload_params("a", "b")
        first = special.betaln(a, b + n) - special.betaln(a, b)
        rest = special.betaln(a + 1, b + np.maximum(n, 1) - 1) - special.betaln(a, b)
        return first, np.where(n > 0, rest, -np.inf)

    @prediction
    def probability_of_n_purchases_up_to_time(self, t, n):
        """P(X(t) = n) for a new customer, [FHL05] eq. (8), via the NBD pmf and tail.

        Parameters
        ----------
        t : scalar or array_like
            Time since the first purchase, in time units.
        n : int or array_like
            Number of repeat purchases.
        """
        r, alpha = self._unload_params("r", "alpha")
        p = alpha / (alpha + t)
        log_first, log_rest = self._first_and_rest_weights(n)
        pmf = stats.nbinom.logpmf(n, r, p)
        tail = stats.nbinom.logsf(n - 1, r, p)  # P(NBD count >= n)
        return np.exp(log_first + pmf) + np.exp(log_rest + tail)

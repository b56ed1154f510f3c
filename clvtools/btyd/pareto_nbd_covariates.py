"""Pareto/NBD with static customer covariates, as in R's CLVTools.

Customer i with purchase covariates z_i and dropout covariates w_i has

    lambda_i ~ Gamma(r, alpha_i), alpha_i = alpha exp(-gamma_p' z_i) (purchase rate x e^{gamma_p'z})
    mu_i     ~ Gamma(s, beta_i),  beta_i  = beta  exp(-gamma_d' w_i) (dropout rate x e^{gamma_d'w})

exactly as :func:`clvtools.data.generator.generate_customer_base` simulates it
(``model="pnbd"``) and as CLVTools' ``pnbd(..., data = static covariates)`` estimates it
(Bachmann, Meierer & Naef 2021). Given the covariates, each customer is a Pareto/NBD customer
with parameters (r, alpha_i, s, beta_i), so the likelihood is eq. (18) of Fader & Hardie
(2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions" (note 009), with
per-row alpha_i and beta_i; the predictions are eqs. (36)-(37) and (41) of the same note.

The series evaluation of the hypergeometric part is that of
:mod:`clvtools.btyd._pareto_nbd_series` (its coefficients and sums are reused); here rows are
grouped by (frequency, alpha_i >= beta_i), the only things the series coefficients depend on,
and z, the derivatives with respect to alpha_i and beta_i and the weights are per row.
Gradients with respect to the coefficients follow by the chain rule:
d ll / d gamma_p = -sum_i z_i alpha_i d ll_i / d alpha_i (likewise for beta).
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from . import _pareto_nbd_math as pm
from . import _pareto_nbd_series as series
from .covariates import CovariateBTYDFitter
from .pareto_nbd import ParetoNBDFitter

__all__ = ["ParetoNBDCovariatesFitter", "pnbd_rows"]


def _sums_distinct(coefs, z):
    """Series sums (Horner, coefficients shared by the rows) on the distinct values of z.

    z depends on the row only through (alpha_i, beta_i, u): with categorical covariates and
    whole-day times many rows share it (every customer without repeat purchases of one
    attribute profile has the same z at u = t_x = 0), and the series, up to hundreds of
    terms when alpha and beta differ much, is the costliest part of the likelihood.
    """
    uz, inv = np.unique(z, return_inverse=True)
    if len(uz) < 0.7 * len(z):
        return [v[inv.reshape(-1)] for v in series._horner_trimmed(coefs, uz)]
    return series._horner_trimmed(coefs, z)


def _unit(r, s, a, alpha, beta, tx, T, coefs, grad):
    """log E, log M and (if grad) d log M / d(r, alpha_i, s, beta_i) for one unit of rows.

    Notation of :mod:`clvtools.btyd._pareto_nbd_series`: M = E + s I,
    E = (alpha+T)^-(r+x) (beta+T)^-s, I = F(t_x) - F(T).
    """
    n = len(tx)
    big = alpha >= beta
    m = np.where(big, alpha, beta)
    mn = np.where(big, beta, alpha)
    lat, lbt = np.log(alpha + T), np.log(beta + T)
    logE = -a * lat - s * lbt
    u = np.concatenate((tx, T))
    m2, mn2, big2 = np.concatenate((m, m)), np.concatenate((mn, mn)), np.concatenate((big, big))
    z = (m2 - mn2) / (m2 + u)
    b = s + 1.0
    a2 = np.concatenate((a, a)) if np.ndim(a) else a
    p = np.where(big2, a2, b)
    q = np.where(big2, b, a2)
    if coefs is None:
        sums = series._series_rows(p, q, z, grad)
    else:
        s_tx, s_T = _sums_distinct(coefs, z[:n]), _sums_distinct(coefs, z[n:])
        sums = tuple(np.concatenate((v, w)) for v, w in zip(s_tx, s_T, strict=True))
    G, dG = series._log_F_sums(u, p, q, m2, mn2, sums, grad)
    G_tx, G_T = G[:n], G[n:]
    diff = np.minimum(G_T - G_tx, 0.0)
    with np.errstate(divide="ignore"):
        logsI = np.log(s) + G_tx + np.log(-np.expm1(diff))  # -inf where t_x == T
    logM = np.logaddexp(logE, logsI)
    if not grad:
        return logE, logM, None
    d_p, d_q, d_m, d_mn = dG
    d_a, d_b = np.where(big2, d_p, d_q), np.where(big2, d_q, d_p)
    d_al, d_be = np.where(big2, d_m, d_mn), np.where(big2, d_mn, d_m)
    wE = np.exp(logE - logM)
    ls = np.log(s)
    w_tx = np.exp(ls + G_tx - logM)
    w_T = np.exp(ls + G_T - logM)

    def dI(d):
        return w_tx * d[:n] - w_T * d[n:]

    g_r = -wE * lat + dI(d_a)
    g_alpha = -wE * a / (alpha + T) + dI(d_al)
    g_s = -wE * lbt + np.exp(logsI - logM) / s + dI(d_b)
    g_beta = -wE * s / (beta + T) + dI(d_be)
    return logE, logM, (g_r, g_alpha, g_s, g_beta)


def _log_e_m(r, s, alpha, beta, x, tx, T, grad):
    """Per-row log E, log M and derivatives of log M (see :func:`_unit`), all rows."""
    n = len(x)
    logE, logM = np.empty(n), np.empty(n)
    gs = [np.empty(n) for _ in range(4)] if grad else None
    big = alpha >= beta
    keys, order, bounds = series._group_rows(2.0 * x + big)
    pooled = []
    m = np.where(big, alpha, beta)
    mn = np.where(big, beta, alpha)

    def run(idx, a, coefs):
        e, mm, g = _unit(r, s, a, alpha[idx], beta[idx], tx[idx], T[idx], coefs, grad)
        logE[idx], logM[idx] = e, mm
        if grad:
            for dst, src in zip(gs, g, strict=True):
                dst[idx] = src

    for g in range(len(keys)):
        idx = order[bounds[g]: bounds[g + 1]]
        if len(idx) < series._SMALL:
            pooled.append(idx)
            continue
        a = r + x[idx[0]]
        p, q = (a, s + 1.0) if big[idx[0]] else (s + 1.0, a)
        zmax = float(np.max((m[idx] - mn[idx]) / (m[idx] + tx[idx])))
        coefs = series._coefficients(p, q, zmax, grad)
        for c0 in range(0, len(idx), series._CH):
            sub = idx[c0: c0 + series._CH]
            run(sub, a, coefs)
    if pooled:
        pooled = np.concatenate(pooled)
        for c0 in range(0, len(pooled), series._CH):
            sub = pooled[c0: c0 + series._CH]
            run(sub, r + x[sub], None)
    return logE, logM, gs


def pnbd_rows(params, alpha, beta, x, tx, T, grad=True):
    """Per-customer Pareto/NBD log-likelihood with per-row alpha_i and beta_i, eq. (18) of [FH05].

    Parameters
    ----------
    params : sequence of 4 floats
        (r, alpha, s, beta); only r and s are read (alpha, beta come per row).
    alpha, beta : numpy.ndarray, shape (n,)
        Per-customer alpha_i and beta_i (time units).
    x, tx, T : numpy.ndarray, shape (n,)
        Frequency, recency and age (time units).
    grad : bool
        Also return the per-row derivatives.

    Returns
    -------
    ll : numpy.ndarray, shape (n,)
        log L_i.
    g : tuple of four numpy.ndarray, shape (n,), only if ``grad``
        d log L_i / d log r, d log alpha_i, d log s, d log beta_i.
    """
    r, s = float(params[0]), float(params[2])
    _, logM, gs = _log_e_m(r, s, alpha, beta, x, tx, T, grad)
    la, lb = np.log(alpha), np.log(beta)
    ll = gammaln(r + x) - gammaln(r) + r * la + s * lb + logM
    if not grad:
        return ll
    g_r, g_al, g_s, g_be = gs
    return ll, (r * (digamma(r + x) - digamma(r) + la + g_r), r + alpha * g_al,
                s * (lb + g_s), s + beta * g_be)


class ParetoNBDCovariatesFitter(CovariateBTYDFitter):
    """Pareto/NBD with static covariates on the purchase and on the dropout process.

    alpha_i = alpha exp(-gamma_p' z_i), beta_i = beta exp(-gamma_d' w_i): a coefficient is the
    log-multiplier of the purchase rate (``purchase:<name>``) or of the dropout rate
    (``dropout:<name>``) relative to the reference level, as in R's CLVTools.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on (r, alpha, s, beta) and the coefficients, added to the mean negative
        log-likelihood per customer.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha`` (time units), ``s``, ``beta`` (time units), then
        ``purchase:<name>`` and ``dropout:<name>`` (log-multipliers, no unit); the base
        parameters are those of a customer whose covariates are all 0 (reference levels).
    variance_matrix_, standard_errors_, confidence_intervals_, summary
        Inverse Hessian of the total negative log-likelihood and 95 % Wald intervals.
    log_likelihood_, AIC_, BIC_ : float
        Total log-likelihood (user's time scale) and information criteria.
    purchase_encoder_, dropout_encoder_ : CovariateEncoder
        The covariate encodings (levels, reference levels).

    Examples
    --------
    >>> from clvtools.data.generator import generate_customer_base      # doctest: +SKIP
    >>> m = ParetoNBDCovariatesFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"],
    ...     covariates=attrs, purchase_covariates=["region"],
    ...     dropout_covariates=["channel", "plan"])                     # doctest: +SKIP
    """

    _param_names = ("r", "alpha", "s", "beta")
    _time_params = ("alpha", "beta")
    _base_fitter = ParetoNBDFitter
    # a row costs about twenty of BG/NBD's (a 2F1 series with the row's own parameters): the
    # subset that starts a large fit is a quarter of the size, which needs a Newton step or
    # two more on all rows and saves more (on a 50,000-customer sample with three attributes:
    # 3.6 s against 4.4 s, the same optimum)
    _subset_share = 0.25

    def _prepare(self, data):
        return data

    def _rows(self, params, eta_p, eta_d, data, grad):
        alpha, beta = params[1], params[3]
        n = len(data["frequency"])
        a_i = np.broadcast_to(alpha * np.exp(-eta_p), (n,))
        b_i = np.broadcast_to(beta * np.exp(-eta_d), (n,))
        try:
            ll, (g_r, g_a, g_s, g_b) = pnbd_rows(params, np.ascontiguousarray(a_i),
                                                 np.ascontiguousarray(b_i), data["frequency"],
                                                 data["recency"], data["T"], True)
        except pm.SeriesTooLongError:  # absurd trial point: the optimiser backs off
            nan = np.full(n, np.nan)
            return nan, np.vstack([nan] * 4), nan, nan
        return ll, np.vstack([g_r, g_a, g_s, g_b]), -g_a, -g_b

    def _per_customer(self, eta_p, eta_d):
        r, alpha, s, beta = self.params_.to_numpy()[:4]
        return r, alpha * np.exp(-eta_p), s, beta * np.exp(-eta_d)

    # ---- predictions ------------------------------------------------------------------------
    def _p_alive(self, x, tx, T, eta_p, eta_d):
        r, a_i, s, b_i = self._per_customer(eta_p, eta_d)
        a_i, b_i = np.broadcast_to(a_i, x.shape).copy(), np.broadcast_to(b_i, x.shape).copy()
        logE, logM, _ = _log_e_m(r, s, a_i, b_i, x, tx, T, False)
        return np.exp(np.minimum(logE - logM, 0.0)), r, a_i, s, b_i

    def conditional_probability_alive(self, frequency, recency, T, covariates=None):
        """P(alive at T | x, t_x, T, covariates), eqs. (36)-(37) of [FH05] with alpha_i, beta_i.

        Parameters
        ----------
        frequency, recency, T : scalar, array_like or Series, shape (n,)
        covariates : pandas.DataFrame, shape (n, ...) or (1, ...), optional
            The customers' attributes (needed when the model has covariates).

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Probabilities in (0, 1].
        """
        (x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "conditional_probability_alive")
        p, *_ = self._p_alive(x, tx, TT, ep, ed)
        return self._out(p, index, scalar, shape, "conditional_probability_alive")

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T,
                                                            covariates=None):
        """E[X(T, T+t) | x, t_x, T, covariates], eq. (41) of [FH05] with alpha_i, beta_i.

        P(alive) (r+x)(beta_i+T) / ((alpha_i+T)(s-1)) [1 - ((beta_i+T)/(beta_i+T+t))^(s-1)].

        Parameters
        ----------
        t : scalar or array_like
            Length of the period (time units).
        frequency, recency, T : scalar, array_like or Series, shape (n,)
        covariates : pandas.DataFrame, optional

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Expected repeat purchases in (T, T + t].
        """
        (t, x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"t": t, "frequency": frequency, "recency": recency, "T": T}, covariates,
            "conditional_expected_number_of_purchases_up_to_time")
        p, r, a_i, s, b_i = self._p_alive(x, tx, TT, ep, ed)
        bT = b_i + TT
        out = p * (r + x) / (a_i + TT) * bT * _one_minus_pow_over(s - 1.0, np.log1p(t / bT))
        return self._out(out, index, scalar, shape,
                         "conditional_expected_number_of_purchases_up_to_time")

    def _by_horizon(self, horizons, x, tx, T, ep, ed):
        # P(alive), the costly part, once; then eq. (41)'s closed form per horizon
        p, r, a_i, s, b_i = self._p_alive(x, tx, T, ep, ed)
        bT = (b_i + T)[:, None]
        return p, (p * (r + x) / (a_i + T))[:, None] * bT * _one_minus_pow_over(
            s - 1.0, np.log1p(horizons[None, :] / bT))

    def predict(self, t, frequency, recency, T, covariates=None):
        """Alias of :meth:`conditional_expected_number_of_purchases_up_to_time`."""
        return self.conditional_expected_number_of_purchases_up_to_time(
            t, frequency, recency, T, covariates)

    def expected_number_of_purchases_up_to_time(self, t, covariates=None):
        """E[X(t)] of a new customer with the given covariates, eq. (27) of [FH05]:
        r beta_i / (alpha_i (s-1)) [1 - (beta_i/(beta_i+t))^(s-1)].

        Parameters
        ----------
        t : scalar or array_like
            Time since acquisition (time units).
        covariates : pandas.DataFrame, optional
            One row per value of ``t`` (or one row for all).
        """
        (t,), ep, ed, index, scalar, shape = self._predict_inputs(
            {"t": t}, covariates, "expected_number_of_purchases_up_to_time")
        r, a_i, s, b_i = self._per_customer(ep, ed)
        out = r * b_i / a_i * _one_minus_pow_over(s - 1.0, np.log1p(t / b_i))
        return self._out(out, index, scalar, shape, "expected_number_of_purchases_up_to_time")

    def purchase_rate_if_alive(self, frequency, recency, T, covariates=None):
        """E[lambda | alive, x, t_x, T, covariates] = (r + x) / (alpha_i + T), per time unit."""
        (x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "purchase_rate_if_alive")
        r, a_i, _, _ = self._per_customer(ep, ed)
        return self._out((r + x) / (a_i + TT) + 0 * tx, index, scalar, shape,
                         "purchase_rate_if_alive")


def _one_minus_pow_over(k: float, y):
    """(1 - exp(-k y)) / k for y >= 0 and a scalar k, with its limit y at k = 0."""
    return pm._one_minus_pow_over(k, y)

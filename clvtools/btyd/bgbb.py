"""BG/BB model for discrete purchase opportunities (Fader, Hardie & Shang 2010 [FHS10]_),
lifetimes' ``BetaGeoBetaBinomFitter`` API.

At each of n opportunities an alive customer buys with probability p ~ Beta(alpha, beta), and
before each opportunity may drop out with probability theta ~ Beta(gamma, delta).

References
----------
.. [FHS10] Fader, P. S., Hardie, B. G. S. and Shang, J. (2010), "Customer-Base Analysis in a
   Discrete-Time Noncontractual Setting", Marketing Science 29 (6), 1086-1108.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from .base import BTYDFitter, check_rfm
from .prediction import prediction

__all__ = ["BetaGeoBetaBinomFitter"]


def _dbeta(a, b):
    """Partial derivatives of log B(a, b): (psi(a) - psi(a+b), psi(b) - psi(a+b))."""
    s = special.digamma(a + b)
    return special.digamma(a) - s, special.digamma(b) - s


class BetaGeoBetaBinomFitter(BTYDFitter):
    """BG/BB with parameters ``alpha``, ``beta`` (purchase) and ``gamma``, ``delta`` (dropout).

    Data are (frequency x, recency t_x, n_periods n) in whole opportunities.
    """

    _param_names = ("alpha", "beta", "gamma", "delta")
    _fit_columns = ("frequency", "recency", "n_periods")

    def fit(self, frequency, recency, n_periods, weights=None, initial_params=None,
            verbose=False, tol=1e-7, index=None, **kwargs):
        """Fit the model.

        Parameters
        ----------
        frequency : array_like, shape (n,)
            Number of opportunities with a transaction (after the first), x.
        recency : array_like, shape (n,)
            Opportunity of the last transaction, t_x (0 if x = 0).
        n_periods : array_like, shape (n,)
            Number of transaction opportunities, n.
        weights, initial_params, verbose, tol, index, **kwargs
            As in :meth:`BetaGeoFitter.fit` (log alpha, log beta, log gamma, log delta).

        Returns
        -------
        self
        """
        return self._fit({"frequency": frequency, "recency": recency, "n_periods": n_periods},
                         weights, initial_params, verbose, tol, index, **kwargs)

    def _check_data(self, data, index=None):
        check_rfm(data, index=index, age="n_periods", integer_recency=True)

    def _initial_params(self, data, weights):
        return np.array([1.0, 1.0, 1.0, 1.0])

    @staticmethod
    def _terms(params, x, tx, n, grad=True):
        """log L minus the common part, as an online log-sum-exp over the [FHS10] eq. (5) terms.

        Term 0 is alive throughout: B(a+x, b+n-x) B(g, d+n); term i (i = 0..n-t_x-1) dropped
        after opportunity t_x + i: B(a+x, b+t_x-x+i) B(g+1, d+t_x+i). Returns the log-sum and,
        if ``grad``, the softmax-weighted derivatives (4 arrays) of the terms.
        """
        a, b, g, d = params
        u = special.betaln(a + x, b + n - x) + special.betaln(g, d + n)
        m, s = u.copy(), np.ones_like(u)
        if grad:
            da, db = _dbeta(a + x, b + n - x)
            dg, dd = _dbeta(g, d + n)
            G = [da, db, dg, dd]
        span = n - tx - 1
        for i in range(int(span.max()) + 1 if span.size else 0):
            on = span >= i
            ui = np.where(on, special.betaln(a + x, b + tx - x + i)
                          + special.betaln(g + 1, d + tx + i), -np.inf)
            m_new = np.maximum(m, ui)
            scale, e = np.exp(m - m_new), np.exp(ui - m_new)
            s = s * scale + e
            if grad:
                da, db = _dbeta(a + x, b + tx - x + i)
                dg, dd = _dbeta(g + 1, d + tx + i)
                G = [Gk * scale + e * dk for Gk, dk in zip(G, (da, db, dg, dd), strict=True)]
            m = m_new
        logsum = m + np.log(s)
        return (logsum, [Gk / s for Gk in G]) if grad else (logsum, None)

    def _loglik_and_grad(self, params, data, weights):
        """[FHS10] eq. (5) in log space and its gradient (natural parameters)."""
        a, b, g, d = params
        x, tx, n = data["frequency"], data["recency"], data["n_periods"]
        logsum, G = self._terms(params, x, tx, n)
        W = np.sum(weights)
        ll = np.sum(weights * logsum) - W * (special.betaln(a, b) + special.betaln(g, d))
        dab, dgd = _dbeta(a, b), _dbeta(g, d)
        grad = np.array([
            np.sum(weights * G[0]) - W * dab[0],
            np.sum(weights * G[1]) - W * dab[1],
            np.sum(weights * G[2]) - W * dgd[0],
            np.sum(weights * G[3]) - W * dgd[1],
        ])
        return float(ll), grad

    def _log_lik_rows(self, x, tx, n):
        a, b, g, d = params = self._unload_params("alpha", "beta", "gamma", "delta")
        logsum, _ = self._terms(params, x, tx, n, grad=False)
        return logsum - special.betaln(a, b) - special.betaln(g, d)

    @prediction
    def conditional_probability_alive(self, m_periods_in_future, frequency, recency, n_periods):
        """P(alive at opportunity n + m | x, t_x, n), [FHS10] eq. (11).

        Parameters
        ----------
        m_periods_in_future : scalar or array_like
            Opportunities after n (0 = now).
        frequency, recency, n_periods : scalar, array_like or Series, shape (n,)
        """
        a, b, g, d = self._unload_params("alpha", "beta", "gamma", "delta")
        x, n = frequency, n_periods
        num = (special.betaln(a + x, b + n - x) - special.betaln(a, b)
               + special.betaln(g, d + n + m_periods_in_future) - special.betaln(g, d))
        return np.exp(num - self._log_lik_rows(x, recency, n))

    @prediction
    def conditional_expected_number_of_purchases_up_to_time(self, m_periods_in_future, frequency,
                                                            recency, n_periods):
        """E[X(n, n + m) | x, t_x, n], [FHS10] eq. (13), in log space.

        Parameters
        ----------
        m_periods_in_future : scalar or array_like
            Number of future opportunities m.
        frequency, recency, n_periods : scalar, array_like or Series, shape (n,)
        """
        a, b, g, d = self._unload_params("alpha", "beta", "gamma", "delta")
        x, n, m = frequency, n_periods, m_periods_in_future
        g1 = special.gammaln(1 + d + n) - special.gammaln(g + d + n)
        g2 = special.gammaln(1 + d + n + m) - special.gammaln(g + d + n + m)
        # [g1 - g2 terms] / (g - 1) > 0 for g != 1: take logs of absolute values.
        log_diff = np.maximum(g1, g2) + np.log(-np.expm1(-np.abs(g1 - g2)))
        log_val = (special.betaln(a + x + 1, b + n - x) - special.betaln(a, b)
                   + np.log(d) - np.log(abs(g - 1))
                   + special.gammaln(g + d) - special.gammaln(1 + d)
                   + log_diff - self._log_lik_rows(x, recency, n))
        return np.where(m > 0, np.exp(log_val), 0.0)

    @prediction
    def purchase_rate_if_alive(self, frequency, recency, n_periods):
        """E[p | alive, x, n] = (alpha + x) / (alpha + beta + n), purchases per opportunity."""
        a, b = self._unload_params("alpha", "beta")
        return (a + frequency) / (a + b + n_periods) + 0 * recency

    def expected_number_of_transactions_in_first_n_periods(self, n):
        """Expected number of customers with x = 0..n transactions in the first n opportunities.

        [FHS10] eq. (7) times the number of customers fitted. Indexed by the frequencies seen
        in ``data``, as lifetimes. (lifetimes sums eq. (7)'s second part from
        ``min(x) + position`` rather than from x, which equals it only when the observed
        frequencies are consecutive from their minimum; we sum from x.)

        Returns
        -------
        pandas.DataFrame
            Column ``model``, index ``frequency``.
        """
        a, b, g, d = self._unload_params("alpha", "beta", "gamma", "delta")
        counts = self.data.groupby("frequency")["weights"].sum()
        x = counts.index.to_numpy(dtype=float)
        log_first = (np.log(special.binom(n, x)) + special.betaln(a + x, b + n - x)
                     + special.betaln(g, d + n))
        i = np.arange(n, dtype=float)[None, :]
        xx = x[:, None]
        with np.errstate(divide="ignore"):
            log_rest = np.where(i >= xx, np.log(special.binom(i, xx))
                                + special.betaln(a + xx, b + i - xx)
                                + special.betaln(g + 1, d + i), -np.inf)
        log_all = np.logaddexp(log_first, special.logsumexp(log_rest, axis=1))
        prob = np.exp(log_all - special.betaln(a, b) - special.betaln(g, d))
        return pd.DataFrame({"model": prob * counts.sum()},
                            index=pd.Index(counts.index, name="frequency"))

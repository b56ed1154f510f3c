"""MBG/NBD model [BDF07]_ with the erratum [WH08]_, lifetimes' ``ModifiedBetaGeoFitter`` API.

Same as BG/NBD except that a customer may also drop out right after the first purchase, so
customers without repeat purchases are not certainly alive.

References
----------
.. [BDF07] Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and
   comparison of models for customer base analysis", IJRM 24 (3), 201-209.
.. [WH08] Wagner, U. and Hoppe, D. (2008), "Erratum on the MBG/NBD Model", IJRM 25 (3), 225-226.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from ._distinct_rows import _on_distinct_pairs
from .base import BTYDFitter
from .bgnbd import BetaGeoFitter, _one_minus_scaled, _softplus_sigmoid
from .prediction import prediction

__all__ = ["ModifiedBetaGeoFitter"]


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """MBG/NBD with parameters ``r``, ``alpha`` (time units), ``a``, ``b``.

    ``fit`` and every prediction method take the arguments of :class:`BetaGeoFitter`.
    """

    _loglik_hessian = BTYDFitter._loglik_hessian  # BG/NBD's is not this likelihood's

    def _loglik_and_grad(self, params, data, weights):
        """[BDF07] likelihood with the [WH08] correction, in log space, and its gradient."""
        r, alpha, a, b = params
        ux, inv, wx = data["ux"], data["inv"], data["wx"]
        x, iT, itx = data["frequency"], data["iT"], data["itx"]
        # per distinct frequency: log Gamma(r+x)/Gamma(r) + r log alpha + log B(a, b+x+1)/B(a, b)
        c = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
             + special.betaln(a, b + ux + 1) - special.betaln(a, b))
        ll = np.sum(wx * c)
        psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + ux + 1)
        g = np.array([
            np.sum(wx * (special.digamma(r + ux) - special.digamma(r) + np.log(alpha))),
            np.sum(wx) * r / alpha,
            np.sum(wx * (psi_ab - psi_abx)),
            np.sum(wx * (psi_ab + special.digamma(b + ux + 1) - special.digamma(b) - psi_abx)),
        ])
        # per row: -(r+x) log(alpha+T) + softplus(log(a/(b+x)) + (r+x) log((alpha+T)/(alpha+t_x)))
        lTu, ltxu = np.log(alpha + data["uT"]), np.log(alpha + data["utx"])
        iaTu, iatxu = 1.0 / (alpha + data["uT"]), 1.0 / (alpha + data["utx"])
        lT, ltx = lTu[iT], ltxu[itx]
        rx = r + x
        d = (np.log(a) - np.log(b + ux))[inv] + rx * (lT - ltx)
        sp, s = _softplus_sigmoid(d)
        ll += np.sum(weights * (sp - rx * lT))
        ws = weights * s
        g += np.array([
            -np.sum(weights * lT) + np.sum(ws * (lT - ltx)),
            -np.sum(weights * rx * iaTu[iT]) + np.sum(ws * rx * (iaTu[iT] - iatxu[itx])),
            np.sum(ws) / a,
            -np.sum(ws * (1.0 / (b + ux))[inv]),
        ])
        return float(ll), g

    def _log_odds_dead(self, x, tx, T):
        """log[P(dead)/P(alive)] = log(a/(b+x)) + (r+x) log((alpha+T)/(alpha+t_x)), every x."""
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))

    @prediction
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T] ([BDF07] eq. 13 with [WH08]).

        Computed as P(alive) (a+b+x)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z)],
        z = t/(alpha+T+t): Euler's transformation of 2F1(r+x, b+x+1; a+b+x; z), bounded for
        heavy buyers.

        Parameters
        ----------
        t : scalar or array_like
            Length of the future period, in time units.
        frequency, recency, T : scalar, array_like or Series, shape (n,)
        """
        p_alive = special.expit(-self._log_odds_dead(frequency, recency, T))
        return p_alive * _on_distinct_pairs(self._expected_if_alive, frequency, t, T)

    def _expected_if_alive(self, x, t, T):
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        c = a + b + x
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(a + b - r, a - 1, c, z)
        return c / (a - 1) * _one_minus_scaled((a - 1) * np.log1p(-z), hyp)

    @prediction
    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] for a new customer: b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; z)].

        Parameters
        ----------
        t : scalar or array_like
            Time since the first purchase, in time units.
        """
        r, alpha, a, b = self._unload_params("r", "alpha", "a", "b")
        z = t / (alpha + t)
        hyp = special.hyp2f1(a + b - r, a - 1, a + b, z)  # Euler transform, as above
        log1mz = np.log(alpha) - np.log(alpha + t)
        return b / (a - 1) * _one_minus_scaled((a - 1) * log1mz, hyp)

    def _first_and_rest_weights(self, n):
        """MBG/NBD: B(a, b+n+1)/B(a,b) for 'still alive', B(a+1, b+n)/B(a,b) for 'dropped'."""
        a, b = self._unload_params("a", "b")
        first = special.betaln(a, b + n + 1) - special.betaln(a, b)
        rest = special.betaln(a + 1, b + n) - special.betaln(a, b)
        return first, rest

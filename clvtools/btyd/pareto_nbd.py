"""Pareto/NBD model [SMC87]_, lifetimes' ``ParetoNBDFitter`` API.

The maths (likelihood, analytic gradient, closed forms, a stable evaluation of the Gauss
hypergeometric function) lives in :mod:`clvtools.btyd._pareto_nbd_math`; this class declares
the model to :class:`~clvtools.btyd.base.BTYDFitter`, which collapses identical rows, runs
L-BFGS-B on log-parameters and computes standard errors, ``summary`` and JSON persistence.
The closed forms follow [FH05]_ and [H28]_; [FHL05]_ gives the CDNOW estimates.

References
----------
.. [SMC87] Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your
   Customers: Who Are They and What Will They Do Next?", Management Science 33 (1), 1-24.
.. [FH05] Fader, P. S. and Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD Model
   and Related Expressions", http://brucehardie.com/notes/009/.
.. [H28] Fader, P. S. and Hardie, B. G. S., "The Pareto/NBD Conditional PMF", note 028,
   http://www.brucehardie.com/notes/028/.
.. [FHL05] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value
   Curves for Customer Base Analysis", JMR 42 (4): CDNOW estimates r = 0.553, alpha = 10.578,
   s = 0.606, beta = 11.669, LL = -9595.0.

Differences from lifetimes 0.11.3
---------------------------------
* ``log_likelihood_`` is the TOTAL log-likelihood on the user's time scale (CDNOW: -9595.0).
  lifetimes keeps only ``_negative_log_likelihood_``, the MEAN negative log-likelihood on a time
  axis rescaled to max(T) = 10, so its value is not comparable with the papers'.
* Optimisation is L-BFGS-B on log-parameters with the analytic gradient (lifetimes:
  Nelder-Mead on the parameters, numerical, ``tol=1e-4``); ``tol`` is the gradient tolerance
  on the mean log-likelihood, default 1e-7 (as in the other clvtools fitters).
* ``initial_params`` are LOG-parameters on the user's time scale (lifetimes: parameters on
  its rescaled time axis).
* Predictions stay finite for heavy buyers where lifetimes returns NaN or inf (e.g.
  conditional expectations for x >= 132 at t_x = T = 200 with the CDNOW parameters).
* Standard errors and confidence intervals come from the Hessian (lifetimes has none).
"""
from __future__ import annotations

import copy

import numpy as np

from ..errors import ClvInputError, ConvergenceError
from . import _pareto_nbd_math as pm
from . import _pareto_nbd_series as series
from .base import BTYDFitter
from .prediction import ByHorizon, prediction

__all__ = ["ParetoNBDFitter"]


class ParetoNBDFitter(ByHorizon, BTYDFitter):
    """Pareto/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) while alive, and an
    exponential lifetime at rate mu ~ Gamma(s, beta), independent of lambda.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty ``penalizer_coef * sum(params ** 2)`` added to the mean negative
        log-likelihood (lifetimes' convention, here on the user's time scale).

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha`` (time units), ``s``, ``beta`` (time units).
    data : pandas.DataFrame
        frequency, recency, T and weights as given to ``fit``.
    log_likelihood_ : float
        TOTAL log-likelihood (lifetimes stores a mean, on a rescaled time axis).
    AIC_, BIC_ : float
    variance_matrix_, standard_errors_, confidence_intervals_, summary
        Inference from the inverse Hessian of the total negative log-likelihood.

    Examples
    --------
    >>> from lifetimes.datasets import load_cdnow_summary        # doctest: +SKIP
    >>> d = load_cdnow_summary(index_col=[0])                    # doctest: +SKIP
    >>> m = ParetoNBDFitter().fit(d["frequency"], d["recency"], d["T"])  # doctest: +SKIP
    >>> m.params_.round(3).tolist()                              # doctest: +SKIP
    [0.553, 10.578, 0.606, 11.669]
    """

    _param_names = ("r", "alpha", "s", "beta")
    _time_params = ("alpha", "beta")

    # ---- fitting ---------------------------------------------------------------------------
    def fit(self, frequency, recency, T, weights=None, iterative_fitting=1, initial_params=None,
            verbose=False, tol=1e-7, index=None, fit_method=None, maxiter=2000, **kwargs):
        """Fit the Pareto/NBD model to an RFM summary.

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
        iterative_fitting : int, default 1
            Number of fits; the first starts at ``initial_params`` (or the default start),
            the others at seeded random perturbations of it; the best optimum is kept.
        initial_params : array_like, shape (4,), optional
            Starting LOG-parameters (log r, log alpha, log s, log beta), user's time scale.
        verbose : bool
            Print the optimiser's result.
        tol : float, default 1e-7
            Gradient tolerance of L-BFGS-B on the mean log-likelihood per customer.
        index : array_like, optional
            Index of ``data`` (default: the index of the first Series given).
        fit_method : None or "L-BFGS-B"
            Accepted for lifetimes compatibility; only L-BFGS-B (with the analytic gradient)
            is available.
        maxiter : int, default 2000
            Maximum L-BFGS-B iterations.
        **kwargs
            Other options for ``scipy.optimize.minimize``.

        Returns
        -------
        self
        """
        if fit_method not in (None, "L-BFGS-B"):
            raise ClvInputError(
                f"The 'fit_method' parameter of ParetoNBDFitter.fit must be None or "
                f"'L-BFGS-B'. Got {fit_method!r} instead.",
                advice="drop the argument: clvtools fits with L-BFGS-B and the analytic "
                "gradient, which reaches lifetimes' Nelder-Mead optimum (or a better one).",
            )
        if not (isinstance(iterative_fitting, (int, np.integer)) and iterative_fitting >= 1):
            raise ClvInputError(
                "The 'iterative_fitting' parameter of ParetoNBDFitter.fit must be a positive "
                f"integer. Got {iterative_fitting!r} instead."
            )
        columns = {"frequency": frequency, "recency": recency, "T": T}
        kwargs["maxiter"] = maxiter
        # (the base class itself finishes a warm-started fit whose full-data gradient is not small)
        self._fit(columns, weights, initial_params, verbose, tol, index, **kwargs)
        if iterative_fitting > 1:
            rng = np.random.default_rng(0)
            start = np.log(self.params_.to_numpy())
            best = copy.copy(self.__dict__)
            for _ in range(iterative_fitting - 1):
                trial = start + rng.normal(0.0, 0.5, size=4)
                try:
                    self._fit(columns, weights, trial, verbose, tol, index, **kwargs)
                except ConvergenceError:
                    continue
                if self.log_likelihood_ > best["log_likelihood_"]:
                    best = copy.copy(self.__dict__)
            self.__dict__.update(best)
        return self

    def _initial_params(self, data, weights):
        # r = s = 1; alpha such that r / alpha is the mean purchase rate, beta the mean age
        # (a mean lifetime of the order of the observation window): scale-free in time units.
        wsum = weights.sum()
        rate = np.sum(weights * data["frequency"]) / max(np.sum(weights * data["T"]), 1e-12)
        mean_T = max(np.sum(weights * data["T"]) / wsum, 1e-12)
        return np.array([1.0, 1.0 / max(rate, 1e-12), 1.0, mean_T])

    def _prepare_data(self, data, weights):
        # rows sorted by frequency once per fit: the series coefficients depend on x only,
        # and within a frequency the sums on t_x and T only (see series.distinct_times)
        groups = series._group_rows(data["frequency"])
        return {**data, "groups": groups,
                "distinct": series.distinct_times(data["recency"], data["T"], groups)}

    def _loglik_and_grad(self, params, data, weights):
        ll, g_log = pm.loglik_and_grad(params, data["frequency"], data["recency"], data["T"],
                                       weights, groups=data.get("groups"),
                                       distinct=data.get("distinct"))
        return ll, g_log / np.asarray(params, dtype=float)

    def _params(self):
        return self._unload_params("r", "alpha", "s", "beta")

    # ---- predictions -----------------------------------------------------------------------
    @prediction
    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive at T | frequency, recency, T), eqs. (36)-(37) of [FH05].

        Parameters
        ----------
        frequency, recency, T : float, array_like or Series
            Repeat purchases x, recency t_x and age T (time units).

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Probabilities in (0, 1].
        """
        return pm.conditional_probability_alive(self._params(), frequency, recency, T)

    @prediction
    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """Expected repeat purchases in (T, T + t] given the history, eq. (41) of [FH05].

        Parameters
        ----------
        t : float or array_like
            Length of the prediction period (time units).
        frequency, recency, T : float, array_like or Series

        Returns
        -------
        float, numpy.ndarray or pandas.Series
            Expected number of purchases.
        """
        return pm.conditional_expected_number_of_purchases_up_to_time(
            self._params(), t, frequency, recency, T)

    def _by_horizon_plain(self, horizons, x, tx, T):
        """P(alive) once per customer (:class:`~clvtools.btyd.prediction.ByHorizon`)."""
        return pm.expected_purchases_by_horizon(self._params(), horizons, x, tx, T)

    def predict(self, t, frequency, recency, T):
        """Alias of :meth:`conditional_expected_number_of_purchases_up_to_time` (lifetimes)."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)

    @prediction
    def expected_number_of_purchases_up_to_time(self, t):
        """Expected repeat purchases in (0, t] of a new customer, eq. (27) of [FH05].

        r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)].
        """
        return pm.expected_number_of_purchases_up_to_time(self._params(), t)

    @prediction
    def purchase_rate_if_alive(self, frequency, recency, T):
        """Purchases per time unit if alive: E[lambda | history, alive] = (r + x) / (alpha + T)."""
        return pm.purchase_rate_if_alive(self._params(), frequency, recency, T)

    @prediction
    def conditional_probability_of_n_purchases_up_to_time(self, n, t, frequency, recency, T):
        """P(exactly n repeat purchases in (T, T + t] | history), Hardie's note 028 [H28].

        Parameters
        ----------
        n : int or array_like
            Number of purchases (>= 0).
        t : float or array_like
            Length of the period (time units); 0 for t <= 0 and n > 0 (1 for n = 0).
        frequency, recency, T : float, array_like or Series

        Returns
        -------
        float, numpy.ndarray or pandas.Series
        """
        return pm.conditional_probability_of_n_purchases_up_to_time(
            self._params(), n, t, frequency, recency, T)

    def generate_new_data(self, size=1, seed=None):
        """Simulate ``size`` customers per row of ``data`` with the fitted parameters.

        Returns
        -------
        pandas.DataFrame
            ``frequency``, ``recency``, ``T`` (and the latent ``lambda``, ``mu``, ``alive``).
        """
        self._check_fitted()
        T = np.repeat(self.data["T"].to_numpy(dtype=float), size)
        return pm.simulate_rfm(self.params_, len(T), T, seed=seed)

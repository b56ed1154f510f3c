"""Shared orchestration for every BTYD fitter: validation, collapsing, optimisation, inference.

A model declares; this base class does the rest (the lifelines pattern). ``BTYDFitter``
validates the user's columns, collapses identical rows into weights (sufficient statistics,
so fitting cost does not grow with the number of customers), maximises the weighted
log-likelihood with L-BFGS-B on log-parameters using the model's ANALYTIC gradient,
computes the covariance from the Hessian (forward differences of the analytic gradient),
and provides ``summary``, ``print_summary()``, AIC/BIC and JSON model files (``save_model``/
``load_model``, ``to_dict``/``from_dict``: :mod:`clvtools.btyd.model_file`).
With more than 40,000 distinct rows the full fit starts from a fit on a 22,000-row subset and
runs L-BFGS-B in coordinates whitened by that fit's Hessian (``BTYDFitter._precondition``):
a handful of iterations on all rows instead of about twenty; the optimum is the same.

Subclass contract (stable; ``ParetoNBDFitter`` and the models of this package follow it)
----------------------------------------------------------------------------------------
Class attributes
    ``_param_names : tuple[str, ...]``
        Names of the parameters, in the order of every parameter vector, e.g.
        ``("r", "alpha", "a", "b")``. They become the index of ``params_``.
    ``_fit_columns : tuple[str, ...]``
        Names of the data columns, in the order ``fit`` receives them, default
        ``("frequency", "recency", "T")``. They become the columns of ``data``.
    ``_time_params : tuple[str, ...]``
        Parameters measured in time units (``("alpha",)`` for BG/NBD, ``("alpha", "beta")``
        for Pareto/NBD); informative only (printed in the summary), default ``()``.

Methods the subclass must implement
    ``_initial_params(self, data: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray``
        A starting point on the natural (positive) scale, shape ``(k,)``. ``data`` holds the
        COLLAPSED columns (distinct rows, float64, keys = ``_fit_columns``) and ``weights``
        the number of customers per row.
    ``_loglik_and_grad(self, params, data, weights) -> tuple[float, np.ndarray]``
        ``params``, ``weights``: np.ndarray; ``data``: dict[str, np.ndarray]. The TOTAL
        weighted log-likelihood ``sum_i w_i log L_i`` (a float) and its gradient with respect
        to the NATURAL parameters (shape ``(k,)``), at ``params`` (shape ``(k,)``, all > 0).
        Must be finite for every valid row; it may return ``-inf``/``nan`` for absurd
        parameter values, which the optimiser then avoids. The base class takes
        care of log-parameters, the mean scaling and the penalizer.

Optional hooks
    ``_prepare_data(self, data: dict[str, np.ndarray], weights) -> dict``
        Called once per fit on the collapsed data before optimisation; return the dict passed
        to ``_loglik_and_grad`` (e.g. with values precomputed on the distinct frequencies).
        Default: returns ``data`` unchanged.
    ``_check_data(self, data: dict[str, np.ndarray], index=None) -> None``
        Extra model-specific validation raising ``ClvInputError`` (the base already checks
        frequency/recency/T, see :func:`check_rfm`). Default: :func:`check_rfm` on the
        columns ``frequency``, ``recency`` and ``T`` (or the column named third).
    ``_after_fit(self) -> None``
        Called at the end of ``fit`` (e.g. to flag an infinite mean spend).
    ``_loglik_hessian(self, params, data, weights) -> np.ndarray | None``
        The Hessian of the total log-likelihood w.r.t. the natural parameters, shape (k, k),
        for the Newton steps that polish the optimum (about one evaluation's cost instead of
        k + 1 gradients). Default: None (forward differences of the gradient). The
        covariance keeps the forward differences, so that its figures stay what they were.

Prediction methods
    Public prediction methods take scalars, arrays or Series; decorate them with
    :func:`prediction` and write their body for float64 numpy arrays: a scalar in gives a
    float out, a Series in keeps its index. Frequency/recency/T models should provide
    ``conditional_probability_alive(frequency, recency, T)``,
    ``conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)``,
    ``expected_number_of_purchases_up_to_time(t)`` and
    ``purchase_rate_if_alive(frequency, recency, T)`` (used by :mod:`clvtools.btyd.clv`);
    ``conditional_probability_alive_matrix`` is provided here. Use ``self._unload_params``.

Differences from lifetimes 0.11.3 (documented on purpose)
    * ``log_likelihood_`` is the TOTAL log-likelihood on the user's time scale (without the
      penalty). lifetimes stores ``_negative_log_likelihood_``, the penalised MEAN negative
      log-likelihood computed on a rescaled time axis (T / max T), which differs from the
      total by the factor n and by ``n * r * log(scale)``-type terms; we also keep
      ``_negative_log_likelihood_`` as the penalised mean on the user's time scale.
    * The penalizer ``penalizer_coef * sum(params ** 2)`` is added to the mean negative
      log-likelihood, as in lifetimes, but on the user's time scale (lifetimes penalises the
      rescaled ``alpha``), so penalised fits differ from lifetimes' for time parameters.
    * ``variance_matrix_`` is the inverse Hessian of the total negative log-likelihood. lifetimes
      multiplies the inverse Hessian in log-parameters by ``params ** 2`` column-wise, which
      gives the right diagonal but wrong off-diagonal covariances.
    * ``save_model``/``load_model`` write/read JSON, never pickle.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize

from ..errors import ClvInputError, ConvergenceError
from . import _curvature, _optimise
from ._optimise import forward_hessian
from ._optimise import single_threaded_blas as _single_threaded_blas
from .model_file import _REGISTRY, ModelFileMixin, load_model
from .utils import _check_weights, _rows, _to_float_array, check_rfm, collapse  # noqa: F401

# check_rfm and collapse live in utils (beside lifetimes' model-based utilities) and are
# re-exported here, where the subclass contract documents them.
__all__ = ["BTYDFitter", "InfiniteMeanWarning", "check_rfm", "collapse", "load_model"]


class InfiniteMeanWarning(UserWarning):
    """A fitted parameter implies an infinite mean (e.g. Gamma-Gamma q <= 1)."""


class BTYDFitter(ModelFileMixin):
    """Base class of the BTYD fitters; see the module docstring for the subclass contract.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        Coefficient of an L2 penalty ``penalizer_coef * sum(params ** 2)`` added to the mean
        negative log-likelihood per customer (lifetimes' convention, on the user's time scale).
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _fit_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _time_params: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._param_names:
            _REGISTRY[cls.__name__] = cls

    def __init__(self, penalizer_coef: float = 0.0):
        self.penalizer_coef = penalizer_coef

    # ---- the subclass's part -------------------------------------------------------------
    def _initial_params(self, data: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _loglik_and_grad(self, params, data, weights) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def _prepare_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> dict:
        return data

    def _check_data(self, data: dict[str, np.ndarray], index: Any = None) -> None:
        f, r, t = self._fit_columns[:3]
        check_rfm(data, index=index, frequency=f, recency=r, age=t)

    def _after_fit(self) -> None:
        pass

    # ---- fitting ---------------------------------------------------------------------------
    def _validate_settings(self, tol: float) -> None:
        pen = self.penalizer_coef
        if not (isinstance(pen, (int, float, np.floating)) and np.isfinite(pen) and pen >= 0):
            raise ClvInputError(
                f"The 'penalizer_coef' parameter of {type(self).__name__} must be a "
                f"non-negative number. Got {pen!r} instead."
            )
        if not (isinstance(tol, (int, float, np.floating)) and 0 < tol < 1):
            raise ClvInputError(
                f"The 'tol' parameter of {type(self).__name__}.fit must be a number in (0, 1). "
                f"Got {tol!r} instead."
            )

    def _fit(self, *args, **kwargs):
        """Validate, collapse, optimise and compute inference. Subclasses' ``fit`` calls this.

        Arguments are those of ``_fit_impl``.
        """
        with _single_threaded_blas():
            return self._fit_impl(*args, **kwargs)

    def _fit_impl(
        self,
        columns: dict[str, Any],
        weights: Any = None,
        initial_params: Any = None,
        verbose: bool = False,
        tol: float = 1e-7,
        index: Any = None,
        bounds: list | None = None,
        **kwargs,
    ):
        """The body of ``_fit``.

        ``bounds`` are on the log-parameters (as lifetimes' ``q_constraint`` uses them).
        ``kwargs`` go to ``scipy.optimize.minimize`` as options (e.g. ``maxiter``).
        """
        self._validate_settings(tol)
        if index is None:
            index = next((v.index for v in columns.values() if isinstance(v, pd.Series)), None)
        arrays = {k: _to_float_array(v, k).reshape(-1) for k, v in columns.items()}
        self._check_data(arrays, index)
        w = _check_weights(weights, len(next(iter(arrays.values()))))
        distinct, counts = collapse(arrays, w)
        prepared = self._prepare_data(distinct, counts)
        n_total = counts.sum()
        k = len(self._param_names)
        pen = float(self.penalizer_coef)

        if initial_params is None:
            x0 = np.log(np.asarray(self._initial_params(distinct, counts), dtype=float))
        else:
            # lifetimes passes initial_params on the log scale to its optimiser.
            x0 = np.asarray(initial_params, dtype=float).reshape(-1)
            if x0.shape != (k,) or not np.all(np.isfinite(x0)):
                raise ClvInputError(
                    f"'initial_params' must hold {k} finite log-parameters "
                    f"({', '.join(self._param_names)}). Got {initial_params!r} instead."
                )

        def make_objective(prep, cnt):
            n_cnt = cnt.sum()

            def objective(theta):
                with np.errstate(all="ignore"):  # absurd trial points give inf; caught below
                    p = np.exp(theta)
                    ll, g = self._loglik_and_grad(p, prep, cnt)
                    f = -ll / n_cnt + pen * np.sum(p**2)
                    grad = -np.asarray(g) * p / n_cnt + 2 * pen * p**2
                if not np.isfinite(f) or not np.all(np.isfinite(grad)):
                    return np.inf, np.zeros(k)
                return f, grad

            return objective

        objective = make_objective(prepared, counts)
        # maxcor = 5 is more history than 3-4 parameters need, and scipy 1.17's L-BFGS-B spends
        # ~3 ms per iteration with the default 10 (BLAS threads on its 20x20 matrices) against
        # 0.3 ms with 5: a third of the whole fit time on 1M customers.
        options = {"maxiter": 2000, "ftol": 1e-14, "gtol": tol, "maxcor": 5}
        options.update(kwargs)
        f0, _ = objective(x0)
        if not np.isfinite(f0):
            raise ConvergenceError(self._advice("the log-likelihood is not finite at the start"))
        L, at_theta = None, None  # at_theta: objective(theta) where the optimiser stopped
        if bounds is None and initial_params is None and len(counts) > 2 * _optimise.SUBSET_ROWS:
            x0, L = self._precondition(x0, distinct, counts, make_objective)
        if L is None:
            res = optimize.minimize(
                objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options
            )
            theta = res.x
        else:
            # L-BFGS-B in whitened log-parameters theta = x0 + L z: a start close to the
            # optimum with the right curvature takes a handful of iterations, not twenty.
            def whitened(z):
                f, g = objective(x0 + L @ z)
                return f, L.T @ g

            res = optimize.minimize(whitened, np.zeros(k), jac=True, method="L-BFGS-B",
                                    options=options)
            theta = x0 + L @ res.x
            # The whitened run can report success at a point where the full-data gradient is
            # still ~1e-3 (it was seen a few log-likelihood units short of the optimum):
            # finish in plain coordinates whenever the gradient says so.
            at_theta = objective(theta)
            if np.max(np.abs(at_theta[1])) > max(1e-6, 10 * tol):
                res = optimize.minimize(objective, theta, jac=True, method="L-BFGS-B",
                                        options=options)
                theta, at_theta = res.x, None
        if verbose:
            print(res)
        n_iter = res.nit

        def restart(th):  # L-BFGS-B afresh from where it stopped (see _optimise.settle)
            nonlocal res, n_iter
            res = optimize.minimize(objective, th, jac=True, method="L-BFGS-B", bounds=bounds,
                                    options=options)
            n_iter += res.nit
            if verbose:
                print(res)
            return (res.x, *objective(res.x), res.success)

        # L-BFGS-B often stops with "ABNORMAL_TERMINATION_IN_LNSRCH" when it is already at the
        # optimum to machine precision: the optimum is judged by _optimise.accept instead.
        theta, f_end, grad, converged = _optimise.settle(
            objective, theta, restart=restart, fg=at_theta, success=res.success, n_total=n_total,
            gtol=max(1e-4, 100 * tol), bounds=bounds,
            hessian=lambda th: forward_hessian(lambda t: objective(t)[1], th))
        gmax = float(np.max(np.abs(grad)))
        if not converged:
            free = _optimise.free_parameters(theta, bounds)
            gmax_free = float(np.max(np.abs(grad[free]), initial=0.0))
            raise ConvergenceError(
                self._advice(f"the optimiser stopped after {res.nit} iterations "
                             f"({res.message}; largest gradient {gmax_free:.3g})")
            )
        if not np.any(~_optimise.free_parameters(theta, bounds)):
            # L-BFGS-B stops within ~1e-5 of the optimum along flat directions (Gamma-Gamma's
            # p, q, gamma), where the BLAS kernel's last bits then move the estimate by ~1e-8;
            # Newton steps on the forward-difference Hessian land on the optimum itself
            H = self._polish_hessian(theta, prepared, counts, grad, n_total, pen)
            if H is None:
                H = forward_hessian(lambda t: objective(t)[1], theta, grad) * n_total
            theta, f_end, grad = _optimise.newton_polish(objective, theta, f_end, grad, H,
                                                         n_total)
            gmax = float(np.max(np.abs(grad)))
        params = np.exp(theta)
        ll_total = -(f_end - pen * np.sum(params**2)) * n_total

        data = pd.DataFrame({**arrays, "weights": w}, index=index)
        self._record_fit(params, list(self._param_names), data, ll_total, f_end, n_total,
                         len(counts), n_iter, res.message, gmax)
        # the gradient at the optimum in log-parameters, total scale: reused by _covariance
        self.variance_matrix_ = self._covariance(params, prepared, counts, grad * n_total)
        self._set_inference()
        self._after_fit()
        return self

    def _record_fit(self, params, names, data, ll_total, f_end, n_total, n_distinct, n_iterations,
                    message, gmax) -> None:
        """Store the fitted parameters and fit statistics (every fitter's ``fit`` ends here)."""
        k = len(params)
        self.params_ = pd.Series(params, index=names, dtype=float)
        self.data = data
        self.log_likelihood_ = float(ll_total)
        self._negative_log_likelihood_ = float(f_end)
        self.n_customers_ = float(n_total)
        self.n_distinct_ = int(n_distinct)
        self.AIC_ = 2 * k - 2 * self.log_likelihood_
        self.BIC_ = k * np.log(n_total) - 2 * self.log_likelihood_
        self.converged_ = True
        self.n_iterations_ = int(n_iterations)
        self.optimizer_message_ = str(message)
        self.gradient_max_ = gmax

    def _precondition(self, x0, distinct, counts, make_objective):
        """:func:`clvtools.btyd._curvature.precondition` (the subset fit that whitens a large
        fit)."""
        return _curvature.precondition(self, x0, distinct, counts, make_objective)

    def _advice(self, what: str) -> str:
        name = type(self).__name__
        return (
            f"{name} did not converge: {what}. Try, in this order:\n"
            f"  1. a small penalizer, e.g. {name}(penalizer_coef=0.001);\n"
            "  2. other starting values via initial_params (log-parameters, in the order "
            f"{', '.join(self._param_names)});\n"
            "  3. more iterations, e.g. fit(..., maxiter=10000);\n"
            "  4. check the data: enough repeat buyers, recency and T in the same time unit, "
            "and a time unit that is not too fine (weeks rather than hours)."
        )

    def _loglik_hessian(self, params, data, weights):
        """Optional hook (see the module docstring): None, no analytic Hessian."""
        return None

    def _polish_hessian(self, theta, prepared, counts, grad, n_total, pen):
        """:func:`clvtools.btyd._curvature.polish_hessian` (None without ``_loglik_hessian``)."""
        return _curvature.polish_hessian(self, theta, prepared, counts, grad, n_total, pen)

    def _covariance(self, params, prepared, counts, g0=None) -> pd.DataFrame:
        """:func:`clvtools.btyd._curvature.covariance` (inverse Hessian, natural scale)."""
        return _curvature.covariance(self, params, prepared, counts, g0)

    def _set_inference(self) -> None:
        self.standard_errors_, self.confidence_intervals_ = _curvature.inference(
            self.params_, self.variance_matrix_)

    # ---- results ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise ClvInputError(
                # lifetimes' phrase, which code written for it may match
                f"This {type(self).__name__} has not been fitted yet (Model has not been fit "
                "yet. Please call the .fit method first).",
                advice="call .fit(...) or .load_model(path) first.",
            )

    def _unload_params(self, *names: str) -> list[float]:
        self._check_fitted()
        return [float(self.params_[n]) for n in names]

    @property
    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95 % Wald intervals (lifetimes' column names)."""
        self._check_fitted()
        df = pd.DataFrame(index=self.params_.index)
        df["coef"] = self.params_
        df["se(coef)"] = self.standard_errors_
        df["lower 95% bound"] = self.confidence_intervals_["lower 95% bound"]
        df["upper 95% bound"] = self.confidence_intervals_["upper 95% bound"]
        return df

    def print_summary(self, decimals: int = 4) -> None:
        """Print what was fitted, the fit statistics and ``summary``."""
        self._check_fitted()
        if self._time_params:
            unit = ("  time unit = that of the data given to fit "
                    f"({', '.join(self._time_params)} in that unit)")
        elif "n_periods" in self._fit_columns:
            unit = "  time unit = transaction opportunities (n_periods)"
        else:
            unit = "  time unit = none (a spend model)"
        lines = [
            f"<clvtools.{type(self).__name__}>",
            f"  customers = {self.n_customers_:,.0f} ({self.n_distinct_:,} distinct rows)",
            unit,
            f"  penalizer_coef = {self.penalizer_coef}",
            f"  log-likelihood = {self.log_likelihood_:,.{decimals}f} (total)",
            f"  AIC = {self.AIC_:,.{decimals}f}, BIC = {self.BIC_:,.{decimals}f}",
            (f"  optimiser = L-BFGS-B on log-parameters, {self.n_iterations_} iterations, "
            f"converged = {self.converged_}"),
            "",
            self.summary.to_string(float_format=lambda v: f"{v:.{decimals}f}"),
        ]
        print("\n".join(lines))

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"<clvtools.{name}>"
        ps = ", ".join(f"{k}: {v:.2f}" for k, v in self.params_.items())
        return f"<clvtools.{name}: fitted with {self.n_customers_:,.0f} subjects, {ps}>"

    # ---- frequency/recency/T conveniences ------------------------------------------------
    def conditional_probability_alive_matrix(self, max_frequency=None, max_recency=None):
        """P(alive) on a grid: rows are recency 0..max_recency, columns frequency 0..max_frequency.

        The customer's age is ``max_recency`` throughout, as in lifetimes. Cells with
        recency = 0 and frequency > 0 are valid inputs to the formula and are kept as
        lifetimes keeps them.

        Returns
        -------
        numpy.ndarray, shape (max_recency + 1, max_frequency + 1)
        """
        self._check_fitted()
        max_frequency = max_frequency or int(self.data["frequency"].max())
        max_recency = max_recency or int(self.data["T"].max())
        x, tx = np.meshgrid(np.arange(max_frequency + 1.0), np.arange(max_recency + 1.0))
        return np.asarray(self.conditional_probability_alive(x, tx, float(max_recency)))

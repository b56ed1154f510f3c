"""Static customer covariates for BTYD models: the fitter base shared by
:class:`~clvtools.btyd.pareto_nbd_covariates.ParetoNBDCovariatesFitter` and
:class:`~clvtools.btyd.bgnbd_covariates.BetaGeoCovariatesFitter`.

* :class:`~clvtools.encoding.CovariateEncoder` turns the customers' attributes into the
  design matrices (reference level: R's default, ``reference="sorted"``).
* :class:`CovariateBTYDFitter` orchestrates a covariate model the way
  :class:`~clvtools.btyd.base.BTYDFitter` does a plain one: validation, collapsing of
  identical (x, t_x, T, z) rows into weights, L-BFGS-B with the model's analytic gradient
  (numeric covariates are scaled by their standard deviation inside the optimiser, exactly
  undone afterwards), then up to three Newton steps with the Hessian (assembled from each
  row's 6 x 6 second derivatives, forward differences of the rows' analytic gradients:
  :meth:`CovariateBTYDFitter._loglik_hessian`), covariance from that Hessian, ``summary``,
  AIC/BIC and JSON
  persistence. Above 40,000 distinct rows the fit starts on a seeded subset of 22,000 rows
  and continues on all rows by Newton iterations with the subset's Hessian (a handful of
  full-data evaluations instead of about forty; L-BFGS-B if that fails): that loop lives
  in :mod:`clvtools.btyd._covariate_fit`. The parameter
  vector is the model's four positive parameters (optimised on the log scale) followed by
  the coefficients of the purchase process and of the dropout process (unbounded).

Parameterisation (R's CLVTools, static covariates; Bachmann, Meierer & Naef 2021)
----------------------------------------------------------------------------------
With z_i the purchase covariates and w_i the dropout covariates of customer i, the purchase
process uses alpha_i = alpha exp(-gamma_p' z_i), so that lambda_i ~ Gamma(r, alpha_i) and the
mean purchase rate scales by exp(gamma_p' z_i). The dropout process is model-specific (see
each model); a coefficient of 0 means no effect and the model without covariates is the
special case with none.

Subclass contract
-----------------
``_param_names`` (four names), ``_base_fitter`` (the plain fitter class, used for the start),
and ``_rows(params, eta_p, eta_d, data, grad)`` returning per-row log-likelihoods, the
per-row gradient with respect to the four LOG-parameters (shape (4, n)) and the per-row
derivatives with respect to the linear predictors eta_p = gamma_p' z and eta_d = gamma_d' w.
"""
from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from ..encoding import CovariateEncoder, EncodedCovariates
from ..errors import ClvInputError, ConvergenceError
from ._covariate_fit import fit_covariate_model
from .base import BTYDFitter
from .prediction import check_horizons
from .utils import _check_weights, _to_float_array, check_rfm

__all__ = ["CovariateBTYDFitter"]


# ----------------------------------------------------------------------------------------
# The shared fitter
# ----------------------------------------------------------------------------------------
class CovariateBTYDFitter(BTYDFitter):
    """Base of the BTYD fitters with static covariates; see the module docstring.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty ``penalizer_coef * sum(theta ** 2)`` on the four model parameters (natural
        scale, as :class:`BTYDFitter`) and the covariate coefficients, added to the mean
        negative log-likelihood per customer.
    """

    _base_fitter: ClassVar[type] = BTYDFitter
    _purchase_param: ClassVar[str] = "alpha"
    #: the large fit's subset start holds this share of ``_optimise.SUBSET_ROWS`` rows
    #: (:func:`~clvtools.btyd._covariate_fit.fit_covariate_model`)
    _subset_share: ClassVar[float] = 1.0

    # ---- the model's part ------------------------------------------------------------------
    def _rows(self, params, eta_p, eta_d, data, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, data: dict) -> dict:
        return data

    # ---- fitting ---------------------------------------------------------------------------
    def fit(self, frequency, recency, T, covariates: pd.DataFrame | None = None,
            purchase_covariates=None, dropout_covariates=None, weights=None,
            reference_levels=None, initial_params=None, verbose=False, tol=1e-7,
            maxiter=2000):
        """Fit the model with static covariates.

        Parameters
        ----------
        frequency, recency, T : array_like or Series, shape (n,)
            RFM summary: repeat purchases x, recency t_x and age T, in one time unit.
        covariates : pandas.DataFrame, shape (n, ...), optional
            One row per customer, in the order of ``frequency``; the attributes.
        purchase_covariates, dropout_covariates : list of str, optional
            Columns of ``covariates`` acting on the purchase and on the dropout process
            (default none). Categorical columns become dummies ``column=level``.
        weights : array_like, shape (n,), optional
            Customers per row.
        reference_levels : dict of str to object, optional
            Reference level per categorical column (default: first category, else first in
            sorted order).
        initial_params : array_like, optional
            Start: the four LOG-parameters followed by the coefficients, in the order of
            ``params_``. Default: the plain model's fit and zero coefficients.
        verbose : bool
            Print the optimiser's result.
        tol : float, default 1e-7
            Gradient tolerance of L-BFGS-B on the mean log-likelihood per customer.
        maxiter : int, default 2000

        Returns
        -------
        self
            With ``encoded_``, the design matrices of ``covariates``
            (:class:`~clvtools.encoding.EncodedCovariates`, None without ``covariates``).
        """
        self._validate_settings(tol)
        name = type(self).__name__
        for arg, val in (("purchase_covariates", purchase_covariates),
                         ("dropout_covariates", dropout_covariates)):
            if val is not None and (isinstance(val, str) or not all(isinstance(c, str)
                                                                    for c in val)):
                raise ClvInputError(
                    f"The '{arg}' parameter of {name}.fit must be a list of column names. "
                    f"Got {val!r} instead.")
        if covariates is not None and not isinstance(covariates, pd.DataFrame):
            raise ClvInputError(
                f"The 'covariates' parameter of {name}.fit must be a pandas DataFrame. "
                f"Got {type(covariates).__name__} instead.")
        index = next((v.index for v in (frequency, recency, T) if isinstance(v, pd.Series)),
                     None)
        cols = {k: _to_float_array(v, k).reshape(-1)
                for k, v in (("frequency", frequency), ("recency", recency), ("T", T))}
        check_rfm(cols, index=index)
        n = len(cols["frequency"])
        if covariates is not None and len(covariates) != n:
            raise ClvInputError(
                f"'covariates' must have one row per customer ({n}). Got {len(covariates)}.",
                advice="align the attribute table with the RFM summary (same customers, same "
                "order), e.g. covariates.loc[rfm.index].")
        ref = dict(reference_levels or {})
        pcols, dcols = list(purchase_covariates or []), list(dropout_covariates or [])
        self.purchase_encoder_ = CovariateEncoder(
            pcols, reference="sorted", reference_levels={k: v for k, v in ref.items() if k in pcols}
        ).fit(covariates)
        # the same columns on both processes (as the pipeline puts them): the same encoder,
        # fitted once (its levels of a million text values took about a second to learn)
        self.dropout_encoder_ = copy.deepcopy(self.purchase_encoder_) if dcols == pcols else \
            CovariateEncoder(dcols, reference="sorted",
                             reference_levels={k: v for k, v in ref.items() if k in dcols}
                             ).fit(covariates)
        missing = set(ref) - set(pcols) - set(dcols)
        if missing:
            raise ClvInputError(
                f"reference_levels names columns that are not covariates: {sorted(missing)}.")
        Zp, Zd = self._design(covariates, n)
        # the fit's customers encoded, kept for their scoring (a caller that scores the same
        # customers passes it back instead of encoding a million rows again)
        self.encoded_ = (None if covariates is None
                         else EncodedCovariates(Zp, Zd, covariates.index))
        w = _check_weights(weights, n)
        # what the fit's evaluations share (``_fit_memo``): not kept with the fitted model
        self._fit_memo = {}
        try:
            return fit_covariate_model(self, cols, index, w, Zp, Zd,
                                       initial_params=initial_params, verbose=verbose,
                                       tol=tol, maxiter=maxiter)
        finally:
            self._fit_memo = None

    def _start(self, distinct, counts):
        """The plain model's optimum (a good start for the base parameters)."""
        base = self._base_fitter()
        d3 = {k: distinct[k] for k in ("frequency", "recency", "T")}
        try:
            base.fit(d3["frequency"], d3["recency"], d3["T"], weights=counts)
            return base.params_.to_numpy()
        except ConvergenceError:
            return base._initial_params(d3, counts)

    def _total(self, theta, zps, zds, data, counts):
        """Total weighted log-likelihood and gradient in the internal coordinates."""
        params = np.exp(theta[:4])
        kp = zps.shape[1]
        eta_p = zps @ theta[4 : 4 + kp]
        eta_d = zds @ theta[4 + kp :]
        ll, g4, dp, dd = self._rows(params, eta_p, eta_d, data, True)
        # kept for the Hessian, whose forward differences start from these row gradients
        # at the same point (the fit asks for the Hessian where it last evaluated)
        memo = getattr(self, "_fit_memo", None)
        if memo is not None:
            memo["rows"] = (theta.tobytes(), data, zps, zds, (g4, dp, dd))
        ll = float(counts @ ll)
        g = np.concatenate([g4 @ counts, zps.T @ (counts * dp), zds.T @ (counts * dd)])
        return ll, g

    def _loglik_hessian(self, theta, zps, zds, data, counts, h=1e-6):
        """Hessian of the total weighted log-likelihood in the internal coordinates.

        A row's log-likelihood depends on theta only through six inputs: the four
        log-parameters and its two linear predictors eta_p = zps_i . theta_p and eta_d =
        zds_i . theta_d, a linear map J_i. So H = sum_i w_i J_i' W_i J_i, with W_i the 6 x 6
        Hessian of row i in its inputs, by forward differences of the rows' analytic
        gradients: 6 gradient evaluations whatever the number of coefficients (instead of one
        per parameter), with the same relative error (about 1e-6).

        Rows that share a covariate pattern share J_i's coefficient part: where the fit's
        rows have few patterns (``data["design_pattern"]``, categorical attributes), the
        w_i W_i are summed by pattern first, and the products with the designs run over the
        patterns, not the rows (at a million customers with three attributes, 24 patterns:
        no 6 x 6 x n array of a quarter of a gigabyte, nor products over every row).

        Returns
        -------
        numpy.ndarray, shape (k, k)
        """
        kp = zps.shape[1]
        log_params = np.asarray(theta[:4], dtype=float)
        eta_p = zps @ theta[4 : 4 + kp]
        eta_d = zds @ theta[4 + kp :]

        def row_gradients(lp, ep, ed):
            _, g4, dp, dd = self._rows(np.exp(lp), ep, ed, data, True)
            return np.vstack([g4, dp, dd])  # (6, n): d ll_i / d (log-parameters, eta_p, eta_d)

        last = (getattr(self, "_fit_memo", None) or {}).get("rows")
        if (last is not None and last[0] == np.asarray(theta, dtype=float).tobytes()
                and last[1] is data and last[2] is zps and last[3] is zds):
            # the objective's rows at this very point: the same figures, one pass fewer
            q0 = np.vstack(last[4])
        else:
            q0 = row_gradients(log_params, eta_p, eta_d)
        summed = _pattern_sums(data.get("design_pattern"), counts)
        if summed is None:      # row by row: each row's W_i times its weight
            zp, zd = zps, zds

            def weighted(d):
                return d * counts
        else:                   # by pattern: the weighted W_i summed over its rows
            by_pattern, first = summed   # (P, n) sparse: the rows' weights by pattern
            zp, zd = zps[first], zds[first]

            def weighted(d):
                return (by_pattern @ d.T).T
        W = np.empty((6, 6, len(zp)))
        for j in range(6):
            lp = log_params + h * (np.arange(4) == j)
            d_j = (row_gradients(lp, eta_p + h * (j == 4), eta_d + h * (j == 5)) - q0) / h
            W[:, j] = weighted(d_j)     # column j of the 6 x 6 second derivatives

        def s(a, b):  # weighted, symmetrised second derivative in inputs a and b
            return (W[a, b] + W[b, a]) / 2

        k = len(theta)
        P, D = slice(4, 4 + kp), slice(4 + kp, k)
        H = np.empty((k, k))
        H[:4, :4] = [[s(a, b).sum() for b in range(4)] for a in range(4)]
        H[:4, P] = np.vstack([s(a, 4) for a in range(4)]) @ zp
        H[:4, D] = np.vstack([s(a, 5) for a in range(4)]) @ zd
        H[P, P] = zp.T @ (zp * s(4, 4)[:, None])
        H[P, D] = zp.T @ (zd * s(4, 5)[:, None])
        H[D, D] = zd.T @ (zd * s(5, 5)[:, None])
        H[P, :4], H[D, :4], H[D, P] = H[:4, P].T, H[:4, D].T, H[P, D].T
        return H

    # ---- per-customer quantities for prediction ---------------------------------------------
    def _coefs(self):
        kp = len(self.purchase_encoder_.feature_names_)
        c = self.params_.to_numpy()[4:]
        return c[:kp], c[kp:]

    def encode(self, covariates: pd.DataFrame) -> EncodedCovariates:
        """``covariates`` (one row per customer) encoded by this model's encoders, to pass
        to its prediction methods in place of the DataFrame (:class:`EncodedCovariates`)."""
        self._check_fitted()
        if not isinstance(covariates, pd.DataFrame):
            raise ClvInputError(
                f"The 'covariates' argument of {type(self).__name__}.encode must be a pandas "
                f"DataFrame. Got {type(covariates).__name__} instead.")
        n = len(covariates)
        return EncodedCovariates(*self._design(covariates, n), covariates.index)

    def _design(self, covariates: pd.DataFrame | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The purchase and dropout design matrices of ``covariates``, shape (n, kp) and
        (n, kd): one array for both when the two encoders are the same (the pipeline puts
        every attribute on both processes), read-only then, so that neither use can change
        the other's (encoding a million customers' three text attributes took about 0.5 s a
        matrix, ten matrices a run)."""
        Zp = self.purchase_encoder_.transform(covariates, n_rows=n)
        if self.dropout_encoder_.to_dict() != self.purchase_encoder_.to_dict():
            return Zp, self.dropout_encoder_.transform(covariates, n_rows=n)
        Zp.flags.writeable = False
        return Zp, Zp

    def _predict_inputs(self, args: dict, covariates, what: str):
        """Broadcast float arrays, per-row linear predictors, the output index and scalar flag."""
        self._check_fitted()
        index = next((v.index for v in args.values() if isinstance(v, pd.Series)), None)
        scalar = all(np.ndim(v) == 0 for v in args.values())
        arrays = np.broadcast_arrays(*[_to_float_array(v, k) for k, v in args.items()])
        shape = arrays[0].shape
        n = int(np.prod(shape)) if shape else 1
        if isinstance(covariates, EncodedCovariates):
            Zp, Zd = covariates.purchase, covariates.dropout
        elif covariates is not None and not isinstance(covariates, pd.DataFrame):
            raise ClvInputError(
                f"The 'covariates' argument of {type(self).__name__}.{what} must be a pandas "
                f"DataFrame. Got {type(covariates).__name__} instead.")
        else:
            Zp, Zd = self._design(covariates, n)
        m = len(Zp) if Zp.shape[1] else (len(Zd) if Zd.shape[1] else None)
        gp, gd = self._coefs()
        eta_p = Zp @ gp if Zp.shape[1] else np.zeros(1)
        eta_d = Zd @ gd if Zd.shape[1] else np.zeros(1)
        if m is not None:
            if scalar:
                shape, n = (m,), m
                scalar = m == 1
            elif m != n and m != 1:
                raise ClvInputError(
                    f"'covariates' has {m} rows but the other arguments have {n} values.",
                    advice="pass one covariate row per customer (or a single row for all).")
            if index is None and m == n and covariates is not None and not scalar:
                index = covariates.index
        flat = [np.broadcast_to(a, shape).reshape(-1).astype(float) for a in arrays]
        size = flat[0].size
        eta_p = np.broadcast_to(eta_p, (size,)) if eta_p.size in (1, size) else eta_p
        eta_d = np.broadcast_to(eta_d, (size,)) if eta_d.size in (1, size) else eta_d
        return flat, np.asarray(eta_p, float), np.asarray(eta_d, float), index, scalar, shape

    def expected_purchases_by_horizon(self, horizons, frequency, recency, T, covariates=None):
        """E[X(T, T+h) | x, t_x, T, covariates] for several horizons h in one pass.

        The values of ``conditional_expected_number_of_purchases_up_to_time`` called once per
        horizon, several times faster: P(alive) and the covariate encoding (and for BG/NBD the
        quadrature's node weights) are computed once for all horizons.

        Parameters
        ----------
        horizons : array_like, shape (k,)
            Lengths of the periods (time units), e.g. the ends of each month of a forecast.
        frequency, recency, T : array_like or Series, shape (n,)
        covariates : pandas.DataFrame, shape (n, ...) or (1, ...), optional

        Returns
        -------
        pandas.DataFrame, shape (n, k)
            One column per horizon (named by it), indexed like the inputs.
        """
        horizons = check_horizons(horizons)
        (x, tx, TT), ep, ed, index, _, _ = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "expected_purchases_by_horizon")
        return pd.DataFrame(self._by_horizon(horizons, x, tx, TT, ep, ed)[1], index=index,
                            columns=horizons)

    def alive_and_expected_by_horizon(self, horizons, frequency, recency, T, covariates=None):
        """``conditional_probability_alive`` and ``expected_purchases_by_horizon`` as arrays,
        from one computation of P(alive) (which the expectations need anyway): the same
        numbers as the two calls, bit for bit, for the cost of the second.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            P(alive), shape (n,), and the expected purchases, shape (n, k).
        """
        horizons = check_horizons(horizons)
        (x, tx, TT), ep, ed, _, _, _ = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "alive_and_expected_by_horizon")
        return self._by_horizon(horizons, x, tx, TT, ep, ed)

    def _by_horizon(self, horizons, x, tx, T, eta_p, eta_d):  # pragma: no cover - abstract
        """P(alive), shape (n,), and the expected purchases in (T, T + h] per customer and
        horizon, shape (n, k)."""
        raise NotImplementedError

    @staticmethod
    def _out(values, index, scalar, shape, name):
        values = np.asarray(values, dtype=float).reshape(shape)
        if scalar:
            return float(values.reshape(-1)[0])
        if index is not None and values.ndim == 1 and len(values) == len(index):
            return pd.Series(values, index=index, name=name)
        return values

    # ---- persistence -----------------------------------------------------------------------
    def _document(self, save_data: bool = True) -> dict:
        """:meth:`BTYDFitter.to_dict`'s document plus the covariate encoders (levels,
        reference levels)."""
        doc = super()._document(save_data)
        doc["covariates"] = {"purchase": self.purchase_encoder_.to_dict(),
                             "dropout": self.dropout_encoder_.to_dict()}
        return doc

    def _restore(self, doc: dict) -> None:
        super()._restore(doc)
        self.purchase_encoder_ = CovariateEncoder.from_dict(doc["covariates"]["purchase"])
        self.dropout_encoder_ = CovariateEncoder.from_dict(doc["covariates"]["dropout"])


def _pattern_sums(codes: np.ndarray | None, counts: np.ndarray):
    """The rows' weights summed by covariate pattern (``codes``, shape (n,)), as a sparse
    (P, n) matrix, and the first row of each pattern, shape (P,); None without patterns, or
    with more than an eighth as many patterns as rows (numeric attributes), where summing
    saves nothing. Patterns that no row holds (a subset's rows) are dropped."""
    n = len(counts)
    if codes is None or not n:
        return None
    size = int(codes.max()) + 1
    if size > n // 8:
        return None
    first = np.full(size, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)
    seen = first >= 0
    if not seen.all():      # a subset's rows: number the patterns it holds
        renumber = np.cumsum(seen) - 1
        codes, first, size = renumber[codes], first[seen], int(seen.sum())
    matrix = sparse.csr_matrix((np.asarray(counts, dtype=float), (codes, np.arange(n))),
                               shape=(size, n))
    return matrix, first

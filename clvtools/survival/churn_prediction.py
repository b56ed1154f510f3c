"""What a fitted churn model answers: its drivers (:attr:`~ChurnPrediction.summary`, hazard
ratios with the proportional-hazards check) and its predictions for a landmark or scoring table
(partial hazards, each driver's contribution, cumulative hazard, survival, churn probability).

:class:`ChurnPrediction` is the half of :class:`~clvtools.survival.churn_model.ChurnModel` that
reads a fitted state (``params_``, ``variance_``, ``norm_mean_``, ``baselines_``, ``encoder_``,
...) and never fits.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ClvInputError
from ._cox_math import step_cumhaz
from ._params import check_columns, check_number
from .proportional_hazards import PH_COLUMNS

__all__ = ["ChurnPrediction", "ALL_STRATA"]

#: The baseline's key when the model has no strata.
ALL_STRATA = "all"


class ChurnPrediction:
    """Summary and predictions of a fitted Cox churn model (a mixin of ``ChurnModel``)."""

    # ------------------------------------------------------------------ results
    @property
    def summary(self) -> pd.DataFrame:
        """Hazard ratios with confidence intervals, p-values and the PH check.

        Returns
        -------
        DataFrame
            Index ``covariate`` (dummies as ``"column=level"``); columns ``variable``,
            ``level``, ``reference``, ``coef``, ``se`` (robust if ``robust_``), ``hazard_ratio``,
            ``hazard_ratio_lower``, ``hazard_ratio_upper`` (``1 - alpha`` interval), ``z``,
            ``p_value``, then ``ph_statistic``, ``ph_p_value``, ``ph_verdict``, ``ph_advice``.
        """
        self._check_fitted()
        coef = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_.to_numpy()))
        zq = stats.norm.ppf(1 - self.alpha / 2)
        desc = self.encoder_.describe().set_index("feature").reindex(self.feature_names_)
        out = pd.DataFrame(index=pd.Index(self.feature_names_, name="covariate"))
        out["variable"] = desc["variable"].to_numpy()
        out["level"] = desc["level"].to_numpy()
        out["reference"] = desc["reference"].to_numpy()
        out["coef"] = coef
        out["se"] = se
        with np.errstate(over="ignore"):  # an unidentified coefficient gives an infinite bound
            out["hazard_ratio"] = np.exp(coef)
            out["hazard_ratio_lower"] = np.exp(coef - zq * se)
            out["hazard_ratio_upper"] = np.exp(coef + zq * se)
        out["z"] = coef / se
        out["p_value"] = 2 * stats.norm.sf(np.abs(coef / se))
        ph = self.ph_test_ if self.ph_test_ is not None else pd.DataFrame(
            {"ph_statistic": np.nan, "ph_p_value": np.nan, "ph_verdict": "not run",
             "ph_advice": ""}, index=out.index)
        return out.join(ph[PH_COLUMNS])

    def print_summary(self, decimals: int = 4) -> None:
        """Print a header saying what was fitted, then :attr:`summary`."""
        self._check_fitted()
        unit = self.time_unit or "time unit"
        header = [
            "clvtools ChurnModel (Cox proportional hazards, Efron ties, lifelines)",
            f"rows: {self.n_rows_:,}   customers: {self.n_customers_:,}   "
            f"churn events: {self.n_events_:,}   durations in {unit}s",
            f"strata: {self.strata or 'none'}   penalizer: {self.penalizer}   "
            f"l1_ratio: {self.l1_ratio}   variance: "
            f"{'robust (clustered by customer)' if self.robust_ else 'model-based'}",
            f"log partial likelihood: {self.log_likelihood_:.4f}   "
            f"concordance (Harrell): {self.concordance_:.4f}",
        ]
        if self.ph_test_ is not None:
            header.append("PH check: Schoenfeld residuals (Efron), rank time transform, all rows")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print("\n".join(header))
            print(self.summary.drop(columns="ph_advice").round(decimals).to_string())
            advice = self.summary["ph_advice"]
            for cov, adv in advice[advice.astype(bool)].items():
                print(f"PH check: {cov}: {adv}")

    # ------------------------------------------------------------------ scoring
    def log_partial_hazard(self, covariates: pd.DataFrame, source: str = "DataFrame") -> pd.Series:
        """Linear predictor :math:`(x - \\bar x)\\beta` per row, aligned with ``covariates``."""
        self._check_fitted()
        x = self.encoder_.transform(covariates, source)
        eta = (x - self.norm_mean_) @ self.params_.to_numpy()
        return pd.Series(eta, index=covariates.index, name="log_partial_hazard")

    def contributions(self, covariates: pd.DataFrame, source: str = "DataFrame") -> pd.DataFrame:
        """Each covariate's term :math:`(x_j - \\bar x_j)\\beta_j` of the log partial hazard,
        shape (n_rows, n_features): which drivers raise a customer's risk."""
        self._check_fitted()
        x = self.encoder_.transform(covariates, source)
        return pd.DataFrame((x - self.norm_mean_) * self.params_.to_numpy(),
                            index=covariates.index, columns=self.feature_names_)

    def cumulative_hazard(self, covariates: pd.DataFrame, times, source: str = "DataFrame"
                          ) -> np.ndarray:
        """:math:`H(t \\mid x) = H_{0,s}(t) \\exp((x - \\bar x)\\beta)`, shape (n_rows, n_times)."""
        self._check_fitted()
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size == 0 or not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ClvInputError(
                "The 'times' (or 'horizon') parameter of ChurnModel must be non-negative "
                f"numbers. Got {times.tolist()!r} instead.")
        eta = self.log_partial_hazard(covariates, source).to_numpy()
        rel = np.exp(eta)
        if not self.strata:
            base = self._baseline_at(ALL_STRATA, times)
            return rel[:, None] * base[None, :]
        check_columns(covariates, self.strata, source, "strata column")
        keys = self._stratum_keys(covariates)
        out = np.empty((len(rel), len(times)))
        uniq, inv = np.unique(keys, return_inverse=True)
        unknown = [k for k in uniq if k not in self.baselines_]
        if unknown:
            raise ClvInputError(
                f"Strata not seen in fitting: {unknown[:10]}.", source=source,
                column=", ".join(self.strata),
                advice=f"Known strata: {sorted(self.baselines_)[:20]}.")
        for j, k in enumerate(uniq):
            m = inv == j
            out[m] = rel[m, None] * self._baseline_at(k, times)[None, :]
        return out

    def _baseline_at(self, key: str, times: np.ndarray) -> np.ndarray:
        b = self.baselines_[key]
        beyond = times > b["follow_up"]
        if beyond.any() and self.tail == "raise":
            raise ClvInputError(
                f"The horizon {times[beyond].max():g} runs past the last duration observed in "
                f"training ({b['follow_up']:g} time units"
                + ("" if key == ALL_STRATA else f", stratum {key!r}")
                + "): there the baseline survival curve is flat, so the churn probability would "
                "be silently capped.",
                advice="Fit on earlier landmarks so that the follow-up covers the horizon, "
                "shorten the horizon, or choose ChurnModel(tail='constant_hazard') to "
                "extrapolate with the recent baseline hazard.")
        return step_cumhaz(b["times"], b["cumhaz"], times, b["follow_up"], b["tail_hazard"])

    def survival_function(self, covariates: pd.DataFrame, times, source: str = "DataFrame"
                          ) -> pd.DataFrame:
        """P(no churn declared by each time | covariates at the landmark).

        Parameters
        ----------
        covariates : DataFrame, shape (n_rows, ...)
            A landmark or scoring table with the model's covariates (and strata columns).
        times : array-like of float, shape (n_times,)
            Time units after the landmark.

        Returns
        -------
        DataFrame, shape (n_rows, n_times)
            Index as ``covariates``; columns the times (axis name ``time``).
        """
        times = np.atleast_1d(np.asarray(times, dtype=float))
        s = np.exp(-self.cumulative_hazard(covariates, times, source))
        return pd.DataFrame(s, index=covariates.index,
                            columns=pd.Index(times, name="time"))

    def churn_probability(self, covariates: pd.DataFrame, horizon: float,
                          source: str = "DataFrame") -> pd.Series:
        """P(churn declared within ``horizon`` | not declared by the scoring landmark).

        The scoring table's covariates are those at the scoring landmark (the observation
        end), so this is :math:`1 - S(h \\mid x) = 1 - \\exp(-H_{0,s}(h) e^{(x-\\bar x)\\beta})`.

        Parameters
        ----------
        covariates : DataFrame, shape (n_rows, ...)
        horizon : float
            Time units, > 0.

        Returns
        -------
        Series, shape (n_rows,)
            Named ``churn_probability``, index as ``covariates``.
        """
        check_number(horizon, "horizon", "ChurnModel.churn_probability", low=0, low_open=True)
        h = self.cumulative_hazard(covariates, [horizon], source)[:, 0]
        return pd.Series(-np.expm1(-h), index=covariates.index, name="churn_probability")

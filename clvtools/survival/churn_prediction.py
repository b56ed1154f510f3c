"""What a fitted churn model answers: its drivers (:attr:`~ChurnPrediction.summary`, hazard
ratios with the proportional-hazards check) and its predictions for a landmark or scoring table
(partial hazards, each driver's contribution, cumulative hazard, survival, churn probability).

:class:`ChurnPrediction` is the half of :class:`~clvtools.survival.churn_model.ChurnModel` that
reads a fitted state (``params_``, ``variance_``, ``norm_mean_``, ``baselines_``, ``encoder_``,
``features_``, ...) and never fits. Every prediction takes the same kind of table as ``fit``:
when the model derives its features (``features_``, the landmark feature set), a raw landmark
or scoring table.

lifelines' ``CoxPHFitter`` names are here too, with its shapes and orientation:
``hazard_ratios_``, ``standard_errors_``, ``confidence_intervals_``, ``concordance_index_``,
``AIC_partial_``, ``variance_matrix_``, ``baseline_cumulative_hazard_``, ``baseline_survival_``,
``check_assumptions()``, ``predict_log_partial_hazard``, ``predict_partial_hazard``,
``predict_cumulative_hazard`` and ``predict_survival_function`` (times as the index, one column
per row of the table). ``summary`` keeps clvtools' columns (``hazard_ratio`` is lifelines'
``exp(coef)``, ``se`` its ``se(coef)``, ``p_value`` its ``p``) with the PH check beside them.
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

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise ClvInputError("This ChurnModel is not fitted yet.",
                                advice="Call fit(landmark_table) or clvtools.survival.load_model.")

    def _strata_of(self, table) -> tuple[np.ndarray, np.ndarray] | None:
        """Each row's stratum: the strata's keys (each strata column's value as text,
        ``<NA>`` for a missing one, joined by ``|``), sorted as :func:`numpy.unique` sorts
        them, and each row's position in them, shape (n_rows,); None without strata.

        The text is made once per distinct value, not per row (a million rows' keys as text,
        then sorted, took about a third of a second each time)."""
        if not self.strata:
            return None
        codes, labels = None, None
        for column in self.strata:
            mine, values = pd.factorize(table[column], use_na_sentinel=False)
            text = pd.Series(values).astype("string").fillna("<NA>").to_numpy(dtype=object)
            if codes is None:
                codes, labels = mine, text
                continue
            pairs, seen = pd.factorize(codes.astype(np.int64) * len(text) + mine)
            labels = np.array([f"{labels[v // len(text)]}|{text[v % len(text)]}"
                               for v in seen], dtype=object)
            codes = pairs
        # values of different types may read alike (1 and "1"): one key, as the text is
        keys, position = np.unique(labels.astype(str), return_inverse=True)
        return keys, position.reshape(-1)[codes]

    def _design(self, table: pd.DataFrame, source: str) -> np.ndarray:
        """Design matrix of ``table``: its derived features first when the model has a recipe."""
        recipe = getattr(self, "features_", None)
        data = table if recipe is None else recipe.transform(table, source)
        x = self.encoder_.transform(data, source)
        if getattr(self, "clip_to_training", False):
            x = np.clip(x, self.feature_range_[0], self.feature_range_[1])
        return x

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
        sample = getattr(self, "sample_", None)
        if sample is not None:
            header.append(f"fitted on a stratified sample of {sample['rows']:,} of "
                          f"{sample['rows_total']:,} rows (strata: {' x '.join(sample['strata'])}),"
                          " weighted by the inverse sampling fraction")
        recipe = getattr(self, "features_", None)
        if recipe is not None:
            header.append(f"features derived from the landmark table: log1p of frequency and "
                          f"{recipe.window_column_}"
                          + (f", log1p of average_spend / {recipe.spend_scale_:.4g}"
                             if recipe.log_spend_ else ""))
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
        x = self._design(covariates, source)
        eta = (x - self.norm_mean_) @ self.params_.to_numpy()
        return pd.Series(eta, index=covariates.index, name="log_partial_hazard")

    def contributions(self, covariates: pd.DataFrame, source: str = "DataFrame") -> pd.DataFrame:
        """Each covariate's term :math:`(x_j - \\bar x_j)\\beta_j` of the log partial hazard,
        shape (n_rows, n_features): which drivers raise a customer's risk."""
        self._check_fitted()
        x = self._design(covariates, source)
        return pd.DataFrame((x - self.norm_mean_) * self.params_.to_numpy(),
                            index=covariates.index, columns=self.feature_names_)

    def variable_contributions(self, covariates: pd.DataFrame,
                               source: str = "DataFrame") -> pd.DataFrame:
        """:meth:`contributions` summed over each variable's columns (the dummies of an
        attribute), shape (n_rows, n_variables): a customer's log hazard ratio against the
        average customer, by driver."""
        terms = self.contributions(covariates, source)
        variables = self.encoder_.describe().set_index("feature").reindex(
            self.feature_names_)["variable"].to_numpy()
        names = list(dict.fromkeys(variables))
        values = terms.to_numpy()
        return pd.DataFrame({v: values[:, variables == v].sum(axis=1) for v in names},
                            index=covariates.index)

    def cumulative_hazard(self, covariates: pd.DataFrame, times, source: str = "DataFrame", *,
                          eta: np.ndarray | None = None) -> np.ndarray:
        """:math:`H(t \\mid x) = H_{0,s}(t) \\exp((x - \\bar x)\\beta)`, shape (n_rows, n_times);
        ``eta`` (shape (n_rows,)), when given, is :meth:`log_partial_hazard` of the rows,
        already computed by the caller (the design matrix is then not built again)."""
        self._check_fitted()
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size == 0 or not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ClvInputError(
                "The 'times' (or 'horizon') parameter of ChurnModel must be non-negative "
                f"numbers. Got {times.tolist()!r} instead.")
        if eta is None:
            eta = self.log_partial_hazard(covariates, source).to_numpy()
        rel = np.exp(eta)
        if not self.strata:
            base = self._baseline_at(ALL_STRATA, times)
            return rel[:, None] * base[None, :]
        check_columns(covariates, self.strata, source, "strata column")
        uniq, inv = self._strata_of(covariates)
        out = np.empty((len(rel), len(times)))
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

    def baseline_variance(self, covariates: pd.DataFrame, times, source: str = "DataFrame"
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's stratum, and per stratum the baseline cumulative hazard and its variance
        at ``times`` (the Breslow estimator's, coefficients taken as known; 0 for a model file
        written without it; past the follow-up, the variance at its end).

        Returns
        -------
        (numpy.ndarray of int, shape (n_rows,), numpy.ndarray, numpy.ndarray)
            The row's stratum position, and H_0 and Var(H_0), shapes (n_strata, n_times).
        """
        self._check_fitted()
        times = np.atleast_1d(np.asarray(times, dtype=float))
        strata = self._strata_of(covariates)
        if strata is None:
            uniq, inv = np.array([ALL_STRATA]), np.zeros(len(covariates), dtype=np.intp)
        else:
            uniq, inv = strata
        hazard = np.vstack([self._baseline_at(k, times) for k in uniq])
        variance = np.zeros_like(hazard)
        for j, k in enumerate(uniq):
            b = self.baselines_[k]
            if b.get("cumhaz_var") is not None and len(b["times"]):
                idx = np.searchsorted(b["times"], times, side="right") - 1
                variance[j] = np.r_[0.0, b["cumhaz_var"]][idx + 1]
        return inv, hazard, variance

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

    # ------------------------------------------------------------------ lifelines' names
    @property
    def hazard_ratios_(self) -> pd.Series:
        """:math:`e^{\\beta}` per covariate, shape (n_features,), named ``exp(coef)``."""
        self._check_fitted()
        return pd.Series(np.exp(self.params_.to_numpy()), index=self.params_.index,
                         name="exp(coef)")

    @property
    def standard_errors_(self) -> pd.Series:
        """Standard errors of the coefficients (robust if ``robust_``), named ``se``."""
        self._check_fitted()
        return pd.Series(np.sqrt(np.diag(self.variance_.to_numpy())), index=self.params_.index,
                         name="se")

    @property
    def variance_matrix_(self) -> pd.DataFrame:
        """Covariance of the coefficients, (n_features, n_features): ``variance_``."""
        self._check_fitted()
        return self.variance_

    @property
    def confidence_intervals_(self) -> pd.DataFrame:
        """``1 - alpha`` Wald intervals of the coefficients (log hazard ratios), as lifelines:
        columns ``"95% lower-bound"`` and ``"95% upper-bound"`` (for alpha 0.05)."""
        self._check_fitted()
        ci, zq = 100 * (1 - self.alpha), stats.norm.ppf(1 - self.alpha / 2)
        coef, se = self.params_.to_numpy(), self.standard_errors_.to_numpy()
        return pd.DataFrame(np.c_[coef - zq * se, coef + zq * se], index=self.params_.index,
                            columns=[f"{ci:g}% lower-bound", f"{ci:g}% upper-bound"])

    @property
    def concordance_index_(self) -> float:
        """Harrell's C on the training rows (``concordance_``; a seeded subsample of
        ``diagnostic_rows`` rows when the table is larger)."""
        self._check_fitted()
        return self.concordance_

    @property
    def AIC_partial_(self) -> float:  # noqa: N802 - lifelines' name
        """:math:`-2 \\log L_{partial} + 2k`, k the number of coefficients."""
        self._check_fitted()
        return -2.0 * self.log_likelihood_ + 2.0 * len(self.params_)

    def _baseline_frame(self, survival: bool) -> pd.DataFrame:
        times = self._event_times()
        # each stratum's step function, flat after its own last event (no tail extrapolation)
        cols = {k: step_cumhaz(b["times"], b["cumhaz"], times) for k, b in self.baselines_.items()}
        frame = pd.DataFrame(cols, index=pd.Index(times, name="time"))
        if not self.strata:
            frame.columns = ["baseline survival" if survival else "baseline cumulative hazard"]
        return np.exp(-frame) if survival else frame

    @property
    def baseline_cumulative_hazard_(self) -> pd.DataFrame:
        """Breslow baseline :math:`H_0(t)` at the mean covariates, as lifelines: times (the
        training event times) as the index, one column per stratum."""
        self._check_fitted()
        return self._baseline_frame(survival=False)

    @property
    def baseline_survival_(self) -> pd.DataFrame:
        """:math:`\\exp(-H_0(t))`, shaped as :attr:`baseline_cumulative_hazard_`."""
        self._check_fitted()
        return self._baseline_frame(survival=True)

    def check_assumptions(self, training_df: pd.DataFrame | None = None, advice: bool = True
                          ) -> pd.DataFrame:
        """Print and return the proportional-hazards check that ``fit`` ran on every training row.

        lifelines recomputes its test on ``training_df``; here it was computed in ``fit`` (on
        every row, vectorised) and saved with the model, so ``training_df`` is accepted for
        lifelines' signature and not re-tested.

        Parameters
        ----------
        training_df : DataFrame, optional
            Ignored (see above).
        advice : bool
            Print what to do about each violated covariate.

        Returns
        -------
        DataFrame
            Index ``covariate``; ``ph_statistic`` (chi-square, 1 df), ``ph_p_value``,
            ``ph_verdict`` (``"ok"`` or ``"violated"``, at p < 0.05) and ``ph_advice``.
        """
        self._check_fitted()
        if self.ph_test_ is None:
            raise ClvInputError("The proportional-hazards check was not run for this model.",
                                advice="Fit with ChurnModel(check_ph=True) (the default).")
        ph = self.ph_test_[PH_COLUMNS]
        violated = ph.index[ph["ph_verdict"] == "violated"]
        print(f"Proportional-hazards check: Schoenfeld residuals (Efron), rank time transform, "
              f"{ph.attrs.get('rows', self.n_rows_)} rows; {len(violated)} of {len(ph)} "
              "covariates violate it at p < 0.05.")
        print(ph.drop(columns="ph_advice").to_string())
        if advice:
            for cov in violated:
                print(f"{cov}: {ph.loc[cov, 'ph_advice']}")
            if len(violated):
                print("On many rows the test flags departures too small to matter: a violated "
                      "verdict says the effect changes over time, not that it changes much.")
        return ph

    def _event_times(self, within_follow_up: bool = False) -> np.ndarray:
        """Every stratum's baseline jump times, sorted: lifelines' default prediction times
        (lifelines also lists censoring-only times, where no curve moves); with
        ``within_follow_up``, only those within every stratum's follow-up."""
        times = np.unique(np.concatenate([b["times"] for b in self.baselines_.values()]))
        if within_follow_up:
            times = times[times <= min(b["follow_up"] for b in self.baselines_.values())]
        return times

    def predict_log_partial_hazard(self, df: pd.DataFrame) -> pd.Series:
        """:math:`(x - \\bar x)\\beta` per row of ``df``, shape (n_rows,), index as ``df``."""
        return self.log_partial_hazard(df)

    def predict_partial_hazard(self, df: pd.DataFrame) -> pd.Series:
        """:math:`\\exp((x - \\bar x)\\beta)` per row of ``df``, shape (n_rows,)."""
        return np.exp(self.log_partial_hazard(df)).rename("partial_hazard")

    def predict_cumulative_hazard(self, df: pd.DataFrame, times=None) -> pd.DataFrame:
        """:math:`H(t \\mid x)`, oriented as lifelines: shape (n_times, n_rows).

        Parameters
        ----------
        df : DataFrame, shape (n_rows, ...)
            Rows to predict (the kind of table ``fit`` took).
        times : array-like of float, optional
            Time units after the landmark. Default: the training event times (with strata
            and ``tail="raise"``, those within every stratum's follow-up).

        Returns
        -------
        DataFrame
            Index the times (``time``), one column per row of ``df`` (its index labels). The
            baseline is a step function: between event times lifelines interpolates linearly,
            clvtools does not.
        """
        self._check_fitted()
        times = (self._event_times(within_follow_up=self.tail == "raise") if times is None
                 else np.atleast_1d(np.asarray(times, dtype=float)))
        h = self.cumulative_hazard(df, times)
        return pd.DataFrame(h.T, index=pd.Index(times, name="time"), columns=df.index)

    def predict_survival_function(self, df: pd.DataFrame, times=None) -> pd.DataFrame:
        """:math:`S(t \\mid x) = \\exp(-H(t \\mid x))`, shaped as
        :meth:`predict_cumulative_hazard`: times as the index, one column per row of ``df``."""
        return np.exp(-self.predict_cumulative_hazard(df, times))

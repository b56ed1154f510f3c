"""The result of one run: each step's own typed result, side by side."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .._version import __version__
from ..config import Settings
from ..data.export import frame_relation
from ..data.transactions import data_fingerprint
from .backtest import BacktestResult
from .churn_validation import calibration_warning
from .evaluation import EvaluationResult, survival_with_cells
from .forecasting import ForecastResult
from .inputs import Inputs
from .kpis import KpiResult
from .risk import BTYD, FALLBACKS, RiskResult
from .targets import TargetsResult
from .timeline import Timeline
from .value import ValueResult

__all__ = ["AnalysisResult", "CALIBRATION_WARNING", "CUSTOMER_CHUNK_ROWS"]

#: Largest out-of-time gap between predicted and observed churn in a decile that passes
#: without a warning.
CALIBRATION_WARNING = 0.05
#: Rows per chunk of the per-customer table (:meth:`AnalysisResult.iter_customers`): 27
#: columns of 200,000 rows are about 60 MB as pandas, about as much again as arrow and CSV.
CUSTOMER_CHUNK_ROWS = 200_000


@dataclass
class AnalysisResult:
    """Everything one run computes, step by step (pandas DataFrames with named columns).

    Attributes
    ----------
    settings : Settings
    inputs : Inputs
        The validated log, attributes and contracts.
    timeline : Timeline
        Every date of the run.
    value : ValueResult
        RFM, value models, per-customer value and the holdout validation.
    risk : RiskResult
        Lifecycle, the churn model, churn probabilities, validation and survival curves.
    targets : TargetsResult
        The per-customer table (``targets.customers``), the matrix and the push/pull plan.
    kpi : KpiResult
        Retention KPIs and cohorts.
    provenance : dict
        Package versions, BLAS kernel, seed and settings (:func:`run_provenance`).
    evaluation : EvaluationResult or None
        The targeting evaluated out of time (MP, EMPC, lift, Gini, profit curve, realised net
        benefit of the plan against naive plans).
    forecast : ForecastResult or None
        Revenue and churn per month, segment and in total, with intervals (forecast.csv).
    backtest : BacktestResult or None
        The forecast refitted at earlier origins against what followed
        (forecast_backtest.csv).
    last_campaign : pandas.DataFrame or None
        The last campaign's evaluation when one was given (``analyze --evaluation DIR``):
        measured against predicted per action and cell (:func:`.campaign.last_campaign`).
    """

    settings: Settings
    inputs: Inputs
    timeline: Timeline
    value: ValueResult
    risk: RiskResult
    targets: TargetsResult
    kpi: KpiResult
    provenance: dict
    evaluation: EvaluationResult | None = None
    forecast: ForecastResult | None = None
    backtest: BacktestResult | None = None
    last_campaign: pd.DataFrame | None = None

    def iter_customers(self, chunk_rows: int = CUSTOMER_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The per-customer table in chunks of ``chunk_rows`` rows, in its order.

        The table is customers.csv's (``targets.customers``); chunks serve work whose copies
        or conversions (money to the cent, arrow, CSV text) should hold one chunk at a time,
        not the base.

        Yields
        ------
        pandas.DataFrame, shape (<= chunk_rows, n_columns)
            Slices of the table (views where pandas can: do not modify them); an empty table
            yields one empty chunk, so that a writer still writes the header.
        """
        if not (isinstance(chunk_rows, int) and chunk_rows >= 1):
            raise ValueError(f"The 'chunk_rows' parameter of iter_customers must be a positive "
                             f"whole number. Got {chunk_rows!r} instead.")
        customers = self.targets.customers
        for start in range(0, max(len(customers), 1), chunk_rows):
            yield customers.iloc[start:start + chunk_rows]

    def customers_relation(self, con=None):
        """The per-customer table as a DuckDB relation, without a copy.

        On the run's own connection unless ``con`` is given
        (:func:`~clvtools.data.export.frame_relation`): SQL over the base (filters, sums by
        cell, writing with ``write_csv`` or ``write_parquet``) that DuckDB runs on the
        table's columns in place, without a second copy in pandas.

        Returns
        -------
        duckdb.DuckDBPyRelation
            Columns as in customers.csv (before money is rounded to the cent), one row per
            customer; valid while this result lives.
        """
        return frame_relation(self.targets.customers,
                              self.inputs.log.con if con is None else con)

    def survival_tables(self) -> dict[str, pd.DataFrame]:
        """``survival_curves``, ``median_time_to_churn`` and ``logrank_tests``: the risk
        step's (overall and by categorical attribute) with the curves by matrix cell of the
        targeting evaluation stacked under them (same columns, ``by`` says which)."""
        by_cell = self.evaluation.survival_by_cell if self.evaluation is not None else {}
        return survival_with_cells(self.risk.tables, by_cell)

    def data_quality(self) -> dict:
        """data_quality.json, assembled from each step's own counts and notes."""
        return {
            "clvtools_version": __version__,
            **self.inputs.quality(),
            "value_model_notes": list(self.value.notes),
            "value_model_selection": (self.value.choice.as_dict()
                                      if self.value.choice is not None else None),
            "value_checks": self.value.checks,
            "landmarks": [d.isoformat() for d in self.timeline.landmarks],
            "churn_model_notes": list(self.risk.notes),
            "targeting_notes": list(self.targets.notes),
            "targeting_evaluation_notes": (list(self.evaluation.notes)
                                           if self.evaluation is not None else []),
            **self._forecast_quality(),
            "timeline": self.timeline.as_dict(),
            "run": self.provenance,
        }

    def _forecast_quality(self) -> dict:
        if self.forecast is None:
            return {}
        index = self.forecast.seasonal_index
        backtest = [] if self.backtest is None else list(self.backtest.notes)
        return {"forecast_notes": list(self.forecast.notes) + backtest,
                "seasonal_index": None if index is None else
                {int(m): float(v) for m, v in zip(index["month_of_year"], index["index"],
                                                  strict=True)}}

    def warnings(self) -> list[str]:
        """What a user must hear about this run before reading its figures (the CLI prints
        them): a schedule cut short, rows of the log left out, churn probabilities that fell
        back to the value model, and a churn model whose out-of-time calibration is off by
        more than :data:`CALIBRATION_WARNING` in a decile."""
        out = list(self.timeline.notes) + list(self.value.warnings)
        q = self.inputs.log.quality
        if q.get("rows_excluded"):
            reasons = ", ".join(f"{n:,} {reason.replace('_', ' ')}"
                                for reason, n in q["excluded_by_reason"].items() if n)
            out.append(f"{q['rows_excluded']:,} of the {q['rows_read']:,} rows of the "
                       f"transaction log were left out ({reasons}); data_quality.json counts "
                       "them by reason.")
        models = self.value.models
        fitted = {"purchase": getattr(models.purchases, "model", models.purchases),
                  "spend": models.spend}
        degenerate = [name for name, fitter in fitted.items()
                      if getattr(fitter, "variance_matrix_", None) is not None
                      and fitter.variance_matrix_.isna().all().all()]
        if degenerate:
            whose = " and ".join(degenerate) + (" models'" if len(degenerate) > 1 else " model's")
            out.append(f"The {whose} parameter variances are unknown (a degenerate fit: too few "
                       "or too alike customers): standard errors and intervals built on them "
                       "are empty, and models/*.json hold null for them.")
        source = self.risk.scores["churn_model"]
        fallback = source.isin(FALLBACKS)
        if fallback.any():
            how = ("1 - P(alive)" if (source == BTYD).any()
                   else "its probability of a declaration within the horizon")
            out.append(f"Churn probabilities of {int(fallback.sum()):,} customers come from the "
                       f"value model ({how}), not the Cox model: "
                       + (self.risk.notes[0] if self.risk.notes else "see data_quality.json."))
        warning = calibration_warning(self.risk.tables.get("churn_calibration"),
                                      CALIBRATION_WARNING)
        if warning:
            out.append(warning)
        return out

    @cached_property
    def _fingerprint(self) -> dict:
        return data_fingerprint(self.inputs.log)  # a scan of the log: once per run

    def model_context(self) -> dict:
        """What every model file of this run carries besides the model: the run's settings,
        a fingerprint of the data and the provenance (its settings are ``run_settings``)."""
        return {"run_settings": self.settings.model_dump(mode="json"),
                "data_fingerprint": self._fingerprint,
                "provenance": {k: v for k, v in self.provenance.items() if k != "settings"}}

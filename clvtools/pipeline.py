"""The main job: settings and data in, every table of the analysis out.

The CLI (``clvtools analyze`` / ``clvtools demo``) and the Python API call the same
:func:`run_analysis`; :func:`write_outputs` writes the results atomically into a folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ._version import __version__
from .btyd.customer_value import ValueModels, fit_value_models, holdout_validation, score_customers
from .config import Settings, settings_to_toml
from .data.attributes import complete_attributes, match_customers, read_contracts, read_customers
from .data.export import write_csv
from .data.kpis import cohort_table, kpi_table
from .data.rfm import rfm_summary
from .data.survival_tables import contract_table, landmark_table, lifecycle_status
from .data.transactions import DataPolicies, TransactionLog, data_fingerprint, read_transactions
from .errors import ClvInputError
from .survival.competing_risks import cumulative_incidence
from .survival.customer_risk import (
    COX,
    ChurnResult,
    churn_agreement,
    fit_churn_model,
    score_churn,
    segment_survival,
    validate_churn_model,
)
from .targeting.revenue_at_risk import revenue_at_risk
from .units import to_days

__all__ = [
    "AnalysisResult", "run_analysis", "write_outputs", "check_output_folder", "landmark_dates"
]


@dataclass
class AnalysisResult:
    """Everything one run computes (pandas DataFrames with named columns).

    Attributes
    ----------
    settings : Settings
    data_quality : dict
        Rows read, used and excluded by reason, per input table; customers matched.
    rfm : pandas.DataFrame
        One row per customer (index ``customer_id``): frequency, recency, T, monetary_value.
    lifecycle : pandas.DataFrame
        Lifecycle status of every customer at the observation end.
    survival_table : pandas.DataFrame
        The stacked landmark survival table (customer_id, landmark, duration, event, covariates).
    kpis, cohorts : pandas.DataFrame
        Retention KPIs per period and retention by acquisition cohort.
    contracts : pandas.DataFrame or None
        Contract durations with competing end reasons, when contracts were given.
    customers : pandas.DataFrame
        One row per customer (``customers.csv``): RFM, value, revenue at risk, lifecycle.
    value_models : ValueModels
        The fitted purchase and spend models.
    churn : ChurnResult
        The fitted Cox churn model (``churn.model`` is None when none could be fitted).
    validation : dict of pandas.DataFrame
        Holdout validation of the value model, churn drivers (hazard ratios), out-of-time
        validation of the churn model and its agreement with 1 - P(alive); each becomes a CSV.
    model_files : dict
        Extra content of each model file: the run's settings and data fingerprint.
    """

    settings: Settings
    data_quality: dict
    rfm: pd.DataFrame
    lifecycle: pd.DataFrame
    survival_table: pd.DataFrame
    kpis: pd.DataFrame
    cohorts: pd.DataFrame
    customers: pd.DataFrame | None = None
    value_models: ValueModels | None = None
    churn: ChurnResult | None = None
    validation: dict[str, pd.DataFrame] = field(default_factory=dict)
    model_files: dict = field(default_factory=dict)
    contracts: pd.DataFrame | None = None
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def landmark_dates(log: TransactionLog, settings: Settings) -> list[dt.date]:
    """Landmarks for the churn model: the first ``horizon`` units before the observation end
    (so that the whole outcome window is observed), then one more ``horizon`` earlier for each
    extra landmark, keeping only those after the first purchase in the data."""
    step = dt.timedelta(days=to_days(settings.horizon, settings.time_unit, "horizon"))
    first = dt.date.fromisoformat(log.quality["first_date"])
    dates = [log.observation_end - step * k for k in range(1, settings.landmarks + 1)]
    kept = [d for d in dates if d > first]
    if not kept:
        raise ClvInputError(
            f"The data span {first} to {log.observation_end} is shorter than the horizon "
            f"({settings.horizon:g} {settings.time_unit}s), "
            "so no landmark leaves a full outcome window.",
            advice="Give a longer transaction history or a shorter horizon (--horizon).",
        )
    return kept


def run_analysis(
    transactions,
    *,
    customers=None,
    contracts=None,
    settings: Settings | None = None,
    on_step: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """Run the analysis on a transaction log.

    Parameters
    ----------
    transactions : pandas.DataFrame, path, glob or list of paths
        The transaction log (CSV or Parquet).
    customers : pandas.DataFrame or path, optional
        Customer attributes: the id column and one column per attribute.
    contracts : pandas.DataFrame or path, optional
        Contracts: id, start, end (empty while running), end reason.
    settings : Settings, optional
        Default settings when omitted.
    on_step : callable, optional
        Called with a short description as each step starts (progress display).

    Returns
    -------
    AnalysisResult
    """
    settings = settings or Settings()
    step = on_step or (lambda _msg: None)
    s = settings

    step("Reading and validating transactions")
    log = read_transactions(
        transactions,
        customer_id_col=s.customer_id_col,
        datetime_col=s.datetime_col,
        monetary_value_col=s.monetary_value_col,
        datetime_format=s.datetime_format,
        observation_end=s.observation_end,
        policies=DataPolicies(
            negative_amounts=s.negative_amounts, zero_amounts=s.zero_amounts,
            duplicate_rows=s.duplicate_rows, same_day=s.same_day,
            after_observation_end=s.after_observation_end,
        ),
    )
    con = log.con
    quality: dict = {"clvtools_version": __version__, "transactions": log.quality}
    attributes_table = None
    if customers is not None:
        step("Reading customer attributes")
        quality["customers"] = read_customers(con, customers, customer_id_col=s.customer_id_col)
        quality["customers"]["matching"] = match_customers(con, log.occasions, "customers")
        attributes_table, quality["customers"]["filled_for_models"] = complete_attributes(
            con, log.occasions, "customers", quality["customers"]["attributes"])
    contract_durations = None
    extra_tables: dict[str, pd.DataFrame] = {}
    if contracts is not None:
        step("Reading contracts")
        quality["contracts"] = read_contracts(
            con, contracts, customer_id_col=s.customer_id_col, start_col=s.contract_start_col,
            end_col=s.contract_end_col, reason_col=s.end_reason_col,
            datetime_format=s.datetime_format,
        )
        quality["contracts"]["matching"] = match_customers(con, log.occasions, "contracts")
        contract_durations = contract_table(
            con, "contracts", observation_end=log.observation_end, time_unit=s.time_unit
        )
        # competing end reasons (voluntary, non-payment, ...): Aalen-Johansen incidence
        extra_tables["contract_cumulative_incidence"] = cumulative_incidence(contract_durations)

    step("Summarising purchases (RFM)")
    rfm = rfm_summary(log, time_unit=s.time_unit)
    lifecycle = lifecycle_status(
        con, log.occasions, observation_end=log.observation_end, churn_after=s.churn_after,
        at_risk_after=s.at_risk_after, time_unit=s.time_unit,
    )

    step(f"Fitting the value model ({s.value_model} and Gamma-Gamma)")
    covariates = None
    if attributes_table is not None and s.value_covariates:
        covariates = con.execute(f"SELECT * FROM {attributes_table}").df().set_index("customer_id")
    value_models = fit_value_models(rfm, s.value_model, covariates)
    quality["value_model_notes"] = value_models.notes
    scores = score_customers(value_models, rfm, horizon=s.horizon, time_unit=s.time_unit,
                             discount_rate=s.discount_rate)
    step("Validating the value model on a holdout window")
    validation = holdout_validation(log, value_model=s.value_model, horizon=s.horizon,
                                    time_unit=s.time_unit, covariates=covariates)
    if validation is None:
        quality["value_model_notes"].append(
            "No holdout validation: the history before the holdout window is shorter than "
            "the horizon.")
        validation = {}

    step("Building the landmark survival table")
    landmarks = landmark_dates(log, s)
    quality["landmarks"] = [d.isoformat() for d in landmarks]
    survival = landmark_table(
        con, log.occasions, landmarks=landmarks, observation_end=log.observation_end,
        churn_after=s.churn_after, time_unit=s.time_unit, customers=attributes_table,
    )
    categorical = [c for c, kind in quality.get("customers", {}).get("attributes", {}).items()
                   if kind == "categorical"]
    validation.update(segment_survival(survival, categorical))
    step("Fitting the churn model (Cox)")
    churn = fit_churn_model(survival, time_unit=s.time_unit, seed=s.seed)
    quality["churn_model_notes"] = churn.notes
    churn_scores = score_churn(
        churn, con, log.occasions, customer_ids=rfm.index, p_alive=scores["p_alive"],
        observation_end=log.observation_end, churn_after=s.churn_after, horizon=s.horizon,
        time_unit=s.time_unit, customers=attributes_table,
    )
    if churn.model is not None:
        validation["churn_drivers"] = churn.model.summary.reset_index()
        scored = churn_scores["churn_model"] == COX
        validation["churn_agreement"] = churn_agreement(
            churn_scores.loc[scored, "churn_probability"], scores.loc[scored, "p_alive"])
        step("Validating the churn model out of time")
        churn_validation, note = validate_churn_model(
            log, churn_after=s.churn_after, horizon=s.horizon, time_unit=s.time_unit,
            customers=attributes_table, seed=s.seed)
        quality["churn_model_notes"].append(note)
        validation.update(churn_validation or {})

    at_risk = revenue_at_risk(
        scores["p_alive"], scores["revenue_if_retained"], scores["expected_revenue"]
    )
    value_columns = ["p_alive", "expected_purchases", "expected_average_spend"]
    customers_out = (
        rfm.join(scores[value_columns]).join(churn_scores)
        .join(scores[["revenue_if_retained", "expected_revenue"]]).join(at_risk)
        .join(lifecycle.set_index("customer_id")[["lifecycle"]])
        .rename_axis("customer_id").reset_index()
    )

    step("Computing KPIs and cohorts")
    common = dict(observation_end=log.observation_end, churn_after=s.churn_after,
                  time_unit=s.time_unit, period=s.kpi_period)
    kpis = kpi_table(con, log.occasions, **common)
    cohorts = cohort_table(con, log.occasions, **common)
    model_files = {
        "run_settings": s.model_dump(mode="json"), "data_fingerprint": data_fingerprint(log)
    }
    return AnalysisResult(
        settings=s, data_quality=quality, rfm=rfm, lifecycle=lifecycle, survival_table=survival,
        kpis=kpis, cohorts=cohorts, customers=customers_out, value_models=value_models, churn=churn,
        validation=validation, model_files=model_files, contracts=contract_durations,
        extra_tables=extra_tables,
    )


def _write_models(result: AnalysisResult, folder: Path) -> None:
    """Model files: the fitter's own JSON plus the run's settings and data fingerprint."""
    folder.mkdir()
    purchases = result.value_models.purchases
    # a covariate model is bound to the customers' attributes; the file holds the fitter
    models = {"value": getattr(purchases, "model", purchases), "spend": result.value_models.spend}
    for name, model in models.items():
        if model is None:
            continue
        path = folder / f"{name}.json"
        model.save_model(path, save_data=False)
        _add_run_context(path, result)
    if result.churn is not None and result.churn.model is not None:
        path = folder / "churn.json"
        result.churn.model.save_model(path)
        _add_run_context(path, result)


def _add_run_context(path: Path, result: AnalysisResult) -> None:
    doc = json.loads(path.read_text())
    doc.update(result.model_files)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=str))


def check_output_folder(out: str | os.PathLike) -> Path:
    """Refuse an output folder that exists and holds something other than a clvtools output."""
    out = Path(out).resolve()
    if out.exists() and (
        not out.is_dir()
        or (any(out.iterdir()) and not (out / "data_quality.json").exists())
    ):
        raise ClvInputError(
            "The output folder exists and is not a clvtools output.", source=str(out),
            advice="Choose another --out folder, or empty or remove this one.",
        )
    return out


def write_outputs(
    result: AnalysisResult,
    out: str | os.PathLike,
    attachments: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write every table of ``result`` into the folder ``out``, atomically.

    The files go to a temporary folder beside ``out`` that is renamed at the end, so that a
    failed run never leaves a half-written folder. An existing ``out`` is replaced only if
    it is empty or a previous clvtools output (it holds ``data_quality.json``).
    ``attachments`` maps relative CSV paths to further tables to write (the demo's input).
    """
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_csv(result.rfm.reset_index(), tmp / "rfm.csv")
        write_csv(result.lifecycle, tmp / "lifecycle.csv")
        write_csv(result.survival_table, tmp / "survival_table.csv")
        write_csv(result.kpis, tmp / "kpis.csv")
        write_csv(result.cohorts, tmp / "cohorts.csv")
        if result.contracts is not None:
            write_csv(result.contracts, tmp / "contracts_survival.csv")
        if result.customers is not None:
            write_csv(result.customers, tmp / "customers.csv")
        for name, frame in {**result.validation, **result.extra_tables}.items():
            write_csv(frame, tmp / f"{name}.csv")
        for relative, frame in (attachments or {}).items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            write_csv(frame, tmp / relative)
        (tmp / "data_quality.json").write_text(
            json.dumps(result.data_quality, indent=2, allow_nan=False, default=str) + "\n"
        )
        (tmp / "config.toml").write_text(settings_to_toml(result.settings))
        if result.value_models is not None:
            _write_models(result, tmp / "models")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

"""The risk half of the main job: fit the Cox churn model on the landmark table, score every
customer at the observation end, and validate out of time.

Orchestration only; the model is :class:`~clvtools.survival.churn_model.ChurnModel`.
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.attributes import CustomerAttributes
from ..data.survival_tables import DEFAULT_WINDOWS, landmark_table, scoring_table
from ..data.transactions import TransactionLog
from ..errors import ClvInputError, ConvergenceError
from ..units import to_days
from .churn_model import ChurnModel
from .kaplan_meier import km_curves, logrank_tests, median_survival
from .metrics import validate_out_of_time

__all__ = [
    "ChurnResult", "fit_churn_model", "score_churn", "validate_churn_model", "segment_survival"
]

#: lifelines' penalizer (on the mean log partial likelihood) of the main job's churn model.
PENALIZER = 1e-3

#: Where a churn probability came from (the ``churn_model`` column of customers.csv).
COX, DECLARED, BTYD = "cox", "declared_churned", "btyd_1_minus_p_alive"


@dataclass
class ChurnResult:
    """The fitted churn model (None when none could be fitted) and what to say about it."""

    model: ChurnModel | None
    notes: list[str] = field(default_factory=list)


#: Columns of a landmark table that are bookkeeping or outcome, never covariates.
_NOT_COVARIATES = ("customer_id", "landmark", "duration", "event")


def _tables_for_model(table: pd.DataFrame, time_unit: str) -> pd.DataFrame:
    """The covariates the main job's churn model uses, from a landmark or scoring table.

    The landmark table has more columns than a model can take together (``n_purchases`` is
    ``frequency + 1``; the longest window often equals the whole history), so the model uses a
    set without exact collinearity: recency of the last purchase, tenure, repeat purchases,
    purchases in the middle window, the trend and the log of the mean spend, plus every
    attribute. Counts and spend are skewed, hence log1p.
    """
    windows = DEFAULT_WINDOWS[time_unit]
    behaviour = {
        "time_since_last_purchase": table["time_since_last_purchase"],
        "tenure": table["tenure"],
        "log_frequency": np.log1p(table["frequency"].astype("float64")),
        f"log_purchases_last_{windows[1]:g}": np.log1p(
            table[f"purchases_last_{windows[1]:g}"].astype("float64")),
        "purchase_trend": table["purchase_trend"],
    }
    if table["average_spend"].notna().all():
        behaviour["log_average_spend"] = np.log1p(
            table["average_spend"].clip(lower=0).astype("float64")
        )
    known = set(_NOT_COVARIATES) | set(_behaviour_columns(table.columns))
    attributes = [c for c in table.columns if c not in known]
    out = pd.DataFrame({c: table[c] for c in _NOT_COVARIATES if c in table.columns})
    for name, values in behaviour.items():
        out[name] = values.astype("float64")
    for column in attributes:
        values = table[column]
        # lifelines wants float64, not pandas' nullable integers
        out[column] = values.astype("float64") if pd.api.types.is_numeric_dtype(values) else values
    if "event" in out:
        out["event"] = out["event"].astype("int64")
    return out


def _behaviour_columns(columns) -> list[str]:
    fixed = {"n_purchases", "frequency", "tenure", "time_since_last_purchase", "total_spend",
             "average_spend", "purchase_trend"}
    return [c for c in columns if c in fixed or c.startswith(("purchases_last_", "spend_last_"))]


def fit_churn_model(survival_table: pd.DataFrame, *, time_unit: str, seed: int = 0) -> ChurnResult:
    """Fit the Cox churn model, or explain why it cannot be fitted.

    The constant-hazard tail is used so that a horizon equal to the follow-up (the landmark
    sits ``horizon`` before the observation end) is never silently capped.
    """
    if survival_table.empty or survival_table["event"].sum() < 10:
        return ChurnResult(None, [
            "No Cox churn model: "
            f"{int(survival_table['event'].sum()) if len(survival_table) else 0} "
            "churn events in the survival table (at least 10 are needed); churn probabilities "
            "come from the value model (1 - P(alive))."])
    # A small ridge penalty keeps the fit finite under the separation that declared churn
    # creates by construction: whoever is declared churned within the horizon had been idle
    # for at least churn_after - horizon, so a short purchase window is exactly 0 for every
    # event. It shrinks ordinary coefficients by well under 1 %.
    model = ChurnModel(time_unit=time_unit, tail="constant_hazard", seed=seed, penalizer=PENALIZER)
    # lifelines' warnings (near-separation, ill-conditioning) go into the run's notes, where
    # the reader of data_quality.json and the report sees them, instead of the console
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(_tables_for_model(survival_table, time_unit),
                      source="landmark survival table")
        except (ClvInputError, ConvergenceError) as exc:
            return ChurnResult(None, [f"No Cox churn model ({str(exc).splitlines()[0]}); churn "
                                      "probabilities come from the value model (1 - P(alive))."])
    notes = sorted({f"Cox fit: {w.category.__name__}: {' '.join(str(w.message).split())[:300]}"
                    for w in caught})
    return ChurnResult(model, notes)


def score_churn(result: ChurnResult, log: TransactionLog, *, customer_ids: pd.Index,
                p_alive: pd.Series, churn_after: float, horizon: float, time_unit: str,
                attributes: CustomerAttributes | None) -> pd.DataFrame:
    """``churn_probability`` and ``churn_model`` for every customer.

    Customers already declared churned get probability 1 (``declared_churned``); the others
    get the Cox model's P(churn declared within the horizon | not declared by now), or
    1 - P(alive) when no Cox model could be fitted.
    """
    out = pd.DataFrame({"churn_probability": 1.0, "churn_model": DECLARED}, index=customer_ids)
    scoring = scoring_table(log, churn_after=churn_after, time_unit=time_unit,
                            attributes=attributes).set_index("customer_id")
    if result.model is not None:
        probability = result.model.churn_probability(_tables_for_model(scoring, time_unit), horizon,
                                                     source="scoring table")
        out.loc[scoring.index, "churn_probability"] = probability.to_numpy()
        out.loc[scoring.index, "churn_model"] = COX
    else:
        out.loc[scoring.index, "churn_probability"] = 1.0 - p_alive.loc[scoring.index].to_numpy()
        out.loc[scoring.index, "churn_model"] = BTYD
    return out


def validate_churn_model(log: TransactionLog, *, churn_after: float, horizon: float, time_unit: str,
                         attributes: CustomerAttributes | None,
                         seed: int = 0) -> tuple[dict[str, pd.DataFrame] | None, str]:
    """Out-of-time validation: fit at ``L1 = end - 2.35 h`` with outcomes censored at
    ``L2 = end - 1.1 h``, evaluate at ``L2`` with outcomes up to the end, so that no evaluated
    outcome was seen in fitting. Both follow-ups (1.25 h and 1.1 h) run past the horizon
    because the IPCW metrics (scikit-survival) need the censoring distribution, and the
    evaluation times, beyond it.

    Returns
    -------
    (dict of pandas.DataFrame or None, str)
        ``churn_validation`` (metrics) and ``churn_calibration`` (per decile), or None with the
        reason when the history is too short or a metric cannot be computed.
    """
    days = to_days(horizon, time_unit, "horizon")
    eval_landmark = log.observation_end - dt.timedelta(days=round(days * 1.1))
    train_landmark = eval_landmark - dt.timedelta(days=round(days * 1.25))
    if train_landmark <= log.first_date:
        return None, ("No out-of-time validation of the churn model: it needs a history of "
                      "2.35 horizons before the observation end.")
    # the training table must not see past the evaluation landmark, outcomes included
    common = dict(churn_after=churn_after, time_unit=time_unit, attributes=attributes)
    train = landmark_table(log.until(eval_landmark), landmarks=[train_landmark], **common)
    evaluation = landmark_table(log, landmarks=[eval_landmark], **common)
    fitted = fit_churn_model(train, time_unit=time_unit, seed=seed)
    if fitted.model is None or evaluation["event"].sum() == 0:
        return None, "No out-of-time validation of the churn model: too few churn events."
    train, evaluation = (
        _tables_for_model(train, time_unit), _tables_for_model(evaluation, time_unit)
    )
    try:
        result = validate_out_of_time(fitted.model, train, evaluation, horizon, seed=seed)
    except (ClvInputError, ValueError) as exc:  # scikit-survival's checks raise ValueError
        return None, f"No out-of-time validation of the churn model: {str(exc).splitlines()[0]}"
    metrics = result["metrics"]
    metrics.insert(0, "train_landmark", train_landmark)
    metrics.insert(1, "evaluation_landmark", eval_landmark)
    return {"churn_validation": metrics, "churn_calibration": result["calibration"]}, (
        f"Churn model validated out of time: fitted at {train_landmark}, "
        f"evaluated at {eval_landmark}.")


def churn_agreement(churn_probability: pd.Series, p_alive: pd.Series) -> pd.DataFrame:
    """How the Cox churn probability agrees with the BTYD view (1 - P(alive)), for the report."""
    both = pd.DataFrame({"churn_probability": churn_probability, "one_minus_p_alive": 1 - p_alive})
    return pd.DataFrame([{
        "customers": len(both),
        "mean_churn_probability": float(both["churn_probability"].mean()),
        "mean_one_minus_p_alive": float(both["one_minus_p_alive"].mean()),
        "spearman": float(both.corr(method="spearman").iloc[0, 1]) if len(both) > 2 else np.nan,
    }])


def segment_survival(survival_table: pd.DataFrame, segments: list[str]) -> dict[str, pd.DataFrame]:
    """Kaplan-Meier curves, median time to declared churn and log-rank tests, overall and by
    each segment column (the categorical attributes), stacked with a ``by`` column, for the
    report to draw."""
    if survival_table.empty:
        return {}
    curves, medians, tests = [], [], []
    for by in [None, *segments]:
        label = by or "all"
        curves.append(km_curves(survival_table, by).assign(by=label))
        medians.append(median_survival(survival_table, by).assign(by=label))
        if by is not None and survival_table[by].nunique() > 1:
            tests.append(logrank_tests(survival_table, by).assign(by=label))
    out = {"survival_curves": pd.concat(curves, ignore_index=True),
           "median_time_to_churn": pd.concat(medians, ignore_index=True)}
    if tests:
        out["logrank_tests"] = pd.concat(tests, ignore_index=True)
    return {
        name: frame[["by", *[c for c in frame.columns if c != "by"]]]
        for name, frame in out.items()
    }

"""Step 3, the value axis: choose the purchase model (``value_model``, ``auto`` by holdout),
fit it and Gamma-Gamma, score every customer, validate on a holdout window and check the
models' assumptions.

The models and their scoring live in :mod:`clvtools.pipeline.value_models`, the choice in
:mod:`clvtools.pipeline.value_choice`, the holdout in :mod:`clvtools.pipeline.holdout` and the
checks in :mod:`clvtools.pipeline.value_checks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..btyd.clv import RevenueByMonth
from ..config import Settings
from ..data.rfm import rfm_summary
from ..encoding import as_categories
from ..errors import ConvergenceError
from .holdout import calibration_window
from .inputs import Inputs
from .timeline import Timeline
from .value_checks import checks_table, value_checks
from .value_choice import ValueChoice, choose_by_bic, choose_on_holdout, holdout_tables
from .value_intervals import value_intervals
from .value_models import (  # noqa: F401 - the value axis's public names, re-exported
    COVARIATE_MODELS,
    VALUE_MODELS,
    BoundCovariates,
    GammaGammaFitter,
    ValueModels,
    fit_value_models,
    rows_of,
    score_customers,
    score_customers_by_month,
)

__all__ = ["VALUE_MODELS", "ValueModels", "ValueResult", "value_step", "fit_value_models",
           "score_customers", "score_customers_by_month"]


@dataclass
class ValueResult:
    """What the value step computed.

    Attributes
    ----------
    rfm : pandas.DataFrame
        One row per customer (index ``customer_id``): frequency, recency, T, monetary_value.
    models : ValueModels
        The fitted purchase and spend models.
    scores : pandas.DataFrame
        Indexed like ``rfm``: p_alive, expected_purchases, expected_average_spend,
        revenue_if_retained, expected_revenue (see :func:`score_customers`).
    holdout : dict of pandas.DataFrame
        ``holdout_by_frequency``, ``holdout_by_month``, ``holdout_summary`` (one row per
        candidate model) and, with attributes, ``holdout_by_segment``; empty when the
        history is too short for a holdout.
    notes : list of str
        What a reader of data_quality.json should know about the value model.
    choice : ValueChoice or None
        How the purchase model was chosen (models/value.json's ``selection``).
    checks : dict
        ``p_alive_auc_holdout``, ``spend_frequency_correlation``, ``frequency_fit`` (the
        chi-square test and its table): :mod:`clvtools.pipeline.value_checks`.
    warnings : list of str
        What the console must show (an assumption the data contradict).
    months : RevenueByMonth or None
        The per-customer x calendar-month arrays of the horizon that ``scores`` sums
        (purchases undiscounted; revenue discounted), rows as ``rfm``: the forecast's input.
    holdout_fit : tuple of (pandas.DataFrame, ValueModels) or None
        The calibration window's RFM (at ``timeline.holdout_start``) and the chosen model
        fitted on every customer of it, for the forecast backtest, whose first origin is
        that date (None without a holdout, or when the holdout's model is not the one used).
    """

    rfm: pd.DataFrame
    models: ValueModels
    scores: pd.DataFrame
    holdout: dict[str, pd.DataFrame]
    notes: list[str]
    choice: ValueChoice | None = None
    checks: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    months: RevenueByMonth | None = None
    holdout_fit: tuple[pd.DataFrame, ValueModels] | None = None

    @property
    def console_notes(self) -> list[str]:
        """The model choice, in one line for the console."""
        return [self.choice.note] if self.choice is not None else []

    def checks_table(self) -> pd.DataFrame | None:
        """``value_checks.csv``: one row per check (statistic, value, df, p-value, flag)."""
        return checks_table(self.checks, self.choice.chosen if self.choice is not None else "")


def value_step(inputs: Inputs, timeline: Timeline, settings: Settings,
               step=lambda _msg: None) -> ValueResult:
    """RFM summary, the value model chosen, fitted and scored, its holdout validation and
    the checks of its assumptions."""
    s = settings
    step("Summarising purchases (RFM)")
    rfm = rfm_summary(inputs.log, time_unit=s.time_unit)
    # in the RFM's order, as the query returns them (a look-up if it differs), once: every
    # fit below then takes its rows without a look-up
    frame = inputs.attributes.frame(rfm.index) if inputs.attributes is not None else None
    if frame is not None and frame.shape[1]:
        frame = rows_of(frame, rfm.index)
    # the text attributes as categories, once: every fit and scoring below encodes them from
    # their codes
    covariates = (as_categories(frame) if frame is not None and s.value_covariates
                  and frame.shape[1] else None)
    categorical = inputs.categorical_attributes
    segments = frame[categorical] if frame is not None and categorical else None
    auto = " by holdout" if s.value_model == "auto" else ""
    step(f"Fitting the value model ({s.value_model}{auto} and Gamma-Gamma)")
    notes: list[str] = []
    holdout: dict[str, pd.DataFrame] = {}
    holdout_fit = None
    if timeline.holdout_start is None:
        notes.append("No holdout validation: the history before the holdout window is shorter "
                     "than half the horizon.")
        choice, models = choose_by_bic(rfm, s.value_model, covariates, segments, seed=s.seed)
        notes, scored = list(models.notes) + notes, None
    else:
        window = calibration_window(inputs.log, timeline, segments)

        def whole_history(choice):  # beside the window's refit, on the second core
            models = _fit_chosen(rfm, choice, covariates)
            return models, score_customers_by_month(
                models, rfm, horizon=s.horizon, time_unit_days=timeline.unit_days,
                discount_rate=s.discount_rate, period_ends=timeline.forecast_month_ends())

        choice, fitted, summary, (models, scored) = choose_on_holdout(
            window, s.value_model, covariates, horizon=s.horizon, unit_days=timeline.unit_days,
            log=inputs.log, timeline=timeline, seed=s.seed, alongside=whole_history)
        holdout_models, holdout = holdout_tables(choice, fitted, summary)
        if holdout_models is not None:
            holdout_fit = (window.rfm, holdout_models)
        holdout_notes = holdout_models.notes if holdout_models is not None else [
            "The holdout files of the model used are missing: it was not the holdout's "
            "choice (see the notes above) and was compared on a sample only."]
        notes = list(models.notes) + [f"Holdout fit: {note}" for note in holdout_notes
                                      if note not in models.notes]
    notes = [*choice.notes, choice.note, *notes]
    if scored is None:
        # the forecast's calendar months: customers.csv's value is their sum, discounted
        scored = score_customers_by_month(
            models, rfm, horizon=s.horizon, time_unit_days=timeline.unit_days,
            discount_rate=s.discount_rate, period_ends=timeline.forecast_month_ends())
    scores, months = scored
    if s.customer_intervals:
        step("Intervals of each customer's value (delta method)")
        scores = scores.join(value_intervals(
            models, rfm, scores, horizon=s.horizon, time_unit_days=timeline.unit_days,
            discount_rate=s.discount_rate))
    step("Checking the value model's assumptions and fit")
    checks, warnings = value_checks(models.purchases, rfm, holdout.get("holdout_summary"),
                                    choice.chosen, seed=s.seed)
    return ValueResult(rfm, models, scores, holdout, notes, choice, checks, warnings, months,
                       holdout_fit)


def _fit_chosen(rfm: pd.DataFrame, choice: ValueChoice,
                covariates: pd.DataFrame | None) -> ValueModels:
    """The chosen model on the whole history; should it not converge there (it did on the
    calibration window), the next candidate by the criterion, and the choice says so."""
    for rank, model in enumerate(choice.ranking):
        try:
            models = fit_value_models(rfm, model, covariates)
        except ConvergenceError as exc:
            if rank == len(choice.ranking) - 1:
                raise
            choice.notes.append(f"{model} did not converge on the whole history "
                                f"({str(exc).splitlines()[0]}); the next candidate is used.")
            continue
        choice.chosen = model
        return models
    raise AssertionError("unreachable: the ranking is never empty")

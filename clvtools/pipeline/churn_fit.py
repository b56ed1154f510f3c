"""The churn model's fit: the Cox model of the main job on a landmark survival table (or its
stratified sample), and the alignment of a table to score with the levels and strata the
model was fitted with. Used by the risk step, its out-of-time validation and the Spark
engine alike.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import ClvInputError, ConvergenceError
from ..survival.churn_model import ChurnModel
from ..survival.features import is_behaviour_column
from ..survival.sampling import SAMPLE_WEIGHT, SurvivalSample, stratified_sample
from .structural import RECENCY_BAND

__all__ = ["PENALIZER", "fit_churn_model", "known_levels"]

#: lifelines' penalizer (on the mean log partial likelihood) of the main job's churn model.
PENALIZER = 1e-3


def fit_churn_model(survival_table: pd.DataFrame, *, time_unit: str, seed: int = 0,
                    sample_rows: int | None = None, drawn: SurvivalSample | None = None,
                    check_ph: bool = True) -> tuple[ChurnModel | None, list[str]]:
    """Fit the Cox churn model, or explain why it cannot be fitted.

    The constant-hazard tail is used so that a horizon equal to the follow-up (the landmark
    sits ``horizon`` before the observation end) is never silently capped. When the table
    has the recency band (:func:`~clvtools.pipeline.structural.churn_model_inputs`), the
    baseline is stratified by it: the declaration hazard's shape in time depends on how far
    off the current declaration date is, which no proportional term carries (out of time,
    a single baseline was up to 0.18 off in a decile; see
    benchmarks/bench_churn_calibration.py).

    A table of more than ``sample_rows`` rows is fitted on a stratified sample of that many
    (:func:`~clvtools.survival.sampling.stratified_sample`: event x landmark x recency band,
    seeded with ``seed``), weighted by the inverse sampling fraction, with robust errors; the
    model's ``sample_`` and a note say so. ``drawn``: ``survival_table`` is already that
    sample (with its weight column), drawn by the caller (the chunked run draws it in DuckDB
    from the same strata); it is fitted as such. ``check_ph``: run the model's
    proportional-hazards test (``ph_test_``, read by the report and the model file); a model
    that is only evaluated (the out-of-time validation's) skips it.

    Returns
    -------
    (ChurnModel or None, list of str)
        The model (None when it cannot be fitted) and the notes for data_quality.json.
    """
    if survival_table.empty or survival_table["event"].sum() < 10:
        return None, [
            "No Cox churn model: "
            f"{int(survival_table['event'].sum()) if len(survival_table) else 0} "
            "churn events in the survival table (at least 10 are needed); churn probabilities "
            "come from the value model (its probability of a declaration within the horizon)."]
    notes = []
    # lifelines' time and memory grow with the rows: past sample_rows, a weighted sample
    sample = drawn
    if drawn is not None:
        notes.append(drawn.describe())
    elif sample_rows is not None and len(survival_table) > sample_rows:
        by = [c for c in ("landmark", RECENCY_BAND) if c in survival_table.columns]
        sample = stratified_sample(survival_table, sample_rows, by=by, seed=seed)
        survival_table = sample.table
        notes.append(sample.describe())
    # A small ridge penalty keeps the fit finite under the separation that declared churn
    # creates by construction: whoever is declared churned within the horizon had been idle
    # for at least churn_after - horizon, so a short purchase window is exactly 0 for every
    # event. It shrinks ordinary coefficients by well under 1 %.
    # The model derives its covariates from the raw table (features="landmark", saved in its
    # file): recency, tenure, log1p counts in the middle window (about 3 months), trend, log1p
    # mean spend, attributes; without the landmark table's collinear columns.
    strata = [RECENCY_BAND] if RECENCY_BAND in survival_table.columns else None
    # covariates are scored within their training range (clip_to_training): a base scored
    # later than its landmarks (older customers, a longer history) gets no extrapolated hazard
    model = ChurnModel(time_unit=time_unit, tail="constant_hazard", seed=seed, penalizer=PENALIZER,
                       features="landmark", strata=strata, clip_to_training=True,
                       check_ph=check_ph,
                       # sample weights are no frequencies: only the sandwich variance holds
                       **({} if sample is None else {"weights_col": SAMPLE_WEIGHT,
                                                     "robust": True}))
    # attributes are typed on the whole customers file; among the customers at risk at the
    # landmarks an attribute may hold one value (a plan launched since), which no hazard
    # ratio can be estimated for: left out of this fit, and said so
    outcome = {"customer_id", "landmark", "duration", "event", RECENCY_BAND, SAMPLE_WEIGHT}
    constant = [c for c in survival_table.columns if c not in outcome
                and not is_behaviour_column(c) and survival_table[c].nunique(dropna=False) < 2]
    if constant:
        notes.append("Attributes with a single value in the survival table, left out of the "
                     f"churn model: {', '.join(constant)}.")
        survival_table = survival_table.drop(columns=constant)
    # lifelines' warnings (near-separation, ill-conditioning) go into the run's notes, where
    # the reader of data_quality.json and the report sees them, instead of the console
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(survival_table, source="landmark survival table")
        except (ClvInputError, ConvergenceError) as exc:
            return None, [f"No Cox churn model ({str(exc).splitlines()[0]}); churn "
                          "probabilities come from the value model (its probability of a "
                          "declaration within the horizon)."]
    notes += sorted({f"Cox fit: {w.category.__name__}: {' '.join(str(w.message).split())[:300]}"
                     for w in caught})
    if sample is not None:
        model.sample_ = sample.as_dict()
    return model, notes


def known_levels(model: ChurnModel, table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``table`` with every level of a categorical attribute that the model was not fitted
    with replaced by the attribute's reference level (and every recency band without a
    baseline by the nearest band with one), and how many values were replaced.

    Attributes are typed on the whole customers file, but a model fitted at an earlier
    landmark sees only the customers acquired by then: a level held only by newer customers
    (a new plan, a new store) would otherwise stop the run at scoring.
    """
    replaced, table = 0, table.copy(deep=False)    # columns are replaced, never written into
    for column, levels in model.encoder_.levels_.items():
        if column not in table:
            continue
        # each distinct value checked once, not its text made for every row
        codes, values = pd.factorize(table[column], use_na_sentinel=False)
        unseen = ~np.asarray(pd.Index(values).astype(str).isin(levels))[codes]
        if unseen.any():
            replaced += int(unseen.sum())
            table[column] = table[column].astype(object).where(~unseen, levels[0])
    if model.strata == [RECENCY_BAND] and RECENCY_BAND in table:
        # a band of time since the last purchase that no training row fell in (small data)
        # takes the baseline of the nearest band that has one
        seen = np.array(sorted(int(band) for band in model.baselines_))
        # the band labels, read once per distinct label (a million rows share 26)
        codes, labels = pd.factorize(table[RECENCY_BAND])
        label_bands = np.array([int(label) for label in labels], dtype=np.int64)
        # the nearest band looked up per label, not per row (a million rows by 26 bands
        # took about a second)
        label_nearest = seen[np.abs(label_bands[:, None] - seen[None, :]).argmin(axis=1)]
        bands, nearest = label_bands[codes], label_nearest[codes]
        moved = nearest != bands
        if moved.any():
            replaced += int(moved.sum())
            relabelled = table[RECENCY_BAND].to_numpy(dtype=object, copy=True)
            relabelled[moved] = [f"{band:02d}" for band in nearest[moved]]
            table[RECENCY_BAND] = relabelled
    return table, replaced

"""The churn model's out-of-time validation reads its tables off the risk step's one landmark
query: the training table censored at the evaluation landmark equals the table built from the
log cut there, and the validation equals the one built from its own queries."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.config import Settings
from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.pipeline import build_timeline
from clvtools.pipeline.churn_fit import fit_churn_model
from clvtools.pipeline.churn_validation import validate_on_rows
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.risk import censored_at, validate_churn_model, validation_landmarks
from clvtools.pipeline.structural import STRUCTURAL_COLUMN, churn_model_inputs


@pytest.fixture(scope="module")
def base():
    # weekly buyers over three years: spells that end before, across and after the cut
    return generate_customer_base(1500, seed=8, start="2022-01-01", observation_end="2024-12-31")


@pytest.mark.parametrize("time_unit, churn_after", [("week", 26), ("day", 60)])
def test_censoring_the_full_logs_outcomes_gives_the_cut_logs_table(base, time_unit, churn_after):
    log = read_transactions(base.transactions)
    train_at, end = dt.date(2023, 2, 14), dt.date(2023, 11, 2)
    rule = dict(churn_after=churn_after, time_unit=time_unit)
    cut = landmark_table(log.until(end), landmarks=[train_at], **rule)
    full = landmark_table(log, landmarks=[train_at, end], **rule)
    censored = censored_at(full[full["landmark"] == pd.Timestamp(train_at)], end, time_unit)
    # some outcomes differ before censoring (a declaration after the cut): the test bites
    assert (full.loc[full["landmark"] == pd.Timestamp(train_at), "duration"].to_numpy()
            != cut["duration"].to_numpy()).sum() > 10
    pd.testing.assert_frame_equal(censored.reset_index(drop=True), cut)
    assert censored["event"].sum() > 50 and (censored["event"] == 0).sum() > 10


def test_validation_from_the_shared_table_equals_its_own_queries(base):
    s = Settings()
    inputs = read_inputs(base.transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    score_at = timeline.holdout_start
    marks = sorted({*timeline.landmarks, *validation_landmarks(timeline, score_at)})
    assert len(marks) == 3            # the main landmark is the scoring date of the evaluation
    shared = landmark_table(inputs.log, landmarks=marks, churn_after=s.churn_after,
                            time_unit=s.time_unit)
    own, note = validate_churn_model(inputs, timeline, s, score_at=score_at)
    from_shared, _ = validate_churn_model(inputs, timeline, s, score_at=score_at,
                                          landmark_rows=shared)
    assert "validated out of time" in note
    assert set(own) == {"churn_validation", "churn_calibration", "churn_scores_at_holdout"}
    for name, table in own.items():
        pd.testing.assert_frame_equal(from_shared[name], table, rtol=1e-12)
    metrics = own["churn_validation"].set_index("metric")["value"]
    assert 0.5 < metrics["concordance_harrell"] < 1
    assert np.isfinite(metrics["brier_at_horizon"])


def test_validation_scores_the_main_fits_rows_at_its_landmark(base):
    s = Settings()
    inputs = read_inputs(base.transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    score_at = timeline.holdout_start
    assert score_at in timeline.landmarks     # the main fit's landmark is the scoring date
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    main = landmark_table(inputs.log, landmarks=list(timeline.landmarks), **rule)
    cache = {}
    main, _, _ = churn_model_inputs(main, main.head(0), inputs.log, horizon=s.horizon,
                                    seed=s.seed, cache=cache, **rule)
    # what the validation takes: the term is there, and so are rows at the scoring date
    assert STRUCTURAL_COLUMN in main and (main["landmark"] == pd.Timestamp(score_at)).all()
    own, _ = validate_churn_model(inputs, timeline, s, score_at=score_at)
    reused, _ = validate_churn_model(inputs, timeline, s, score_at=score_at, cache=cache,
                                     model_rows=main)
    assert len(own["churn_scores_at_holdout"]) > 100
    for name, table in own.items():
        pd.testing.assert_frame_equal(reused[name], table, rtol=1e-12)


def test_a_fit_without_the_ph_test_has_the_same_model(base):
    # the validation's fit skips the proportional-hazards test, which leaves the fit alone
    log = read_transactions(base.transactions)
    table = landmark_table(log, landmarks=[dt.date(2023, 6, 1)], churn_after=26)
    tested, _ = fit_churn_model(table, time_unit="week")
    untested, _ = fit_churn_model(table, time_unit="week", check_ph=False)
    assert tested.ph_test_ is not None and untested.ph_test_ is None
    pd.testing.assert_series_equal(untested.params_, tested.params_, rtol=0, atol=0)
    probe = table.head(200)
    np.testing.assert_array_equal(untested.churn_probability(probe, 26).to_numpy(),
                                  tested.churn_probability(probe, 26).to_numpy())


def test_the_engines_common_finish_on_the_standard_rows(base):
    """validate_on_rows, which every engine ends with: on the standard engine's rows it gives
    the standard validation and its model; without an event to evaluate, or with rows that
    are not out of time, no tables and no model (the chunked run then scores nothing)."""
    s = Settings()
    inputs = read_inputs(base.transactions, None, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    train_at, eval_at = timeline.validation_training, timeline.validation_evaluation
    rule = dict(churn_after=s.churn_after, time_unit=s.time_unit)
    rows = landmark_table(inputs.log, landmarks=[train_at, eval_at], **rule)
    dates = pd.to_datetime(rows["landmark"]).dt.date
    train = censored_at(rows[dates == train_at].reset_index(drop=True), eval_at, s.time_unit)
    evaluation = rows[dates == eval_at].reset_index(drop=True)
    train, evaluation, _ = churn_model_inputs(train, evaluation, inputs.log.until(eval_at),
                                              scoring_log=inputs.log, horizon=s.horizon,
                                              seed=s.seed, **rule)
    marks = dict(train_at=train_at, eval_at=eval_at)
    tables, note, model = validate_on_rows(train, evaluation, s, **marks)
    expected, expected_note = validate_churn_model(inputs, timeline, s)
    assert model is not None and note == expected_note and set(tables) == set(expected)
    for name, table in expected.items():
        pd.testing.assert_frame_equal(tables[name], table, rtol=0, atol=0)
    # said as a sample of more rows, with the order of its error
    _, sampled_note, _ = validate_on_rows(train, evaluation, s, sampled=10 * len(evaluation),
                                          **marks)
    assert (f"on a uniform sample of {len(evaluation):,} of the {10 * len(evaluation):,} "
            "rows at the evaluation landmark (sampling error") in sampled_note
    none = validate_on_rows(train, evaluation.assign(event=0), s, **marks)
    assert none == ({}, "No out-of-time validation of the churn model: too few churn events.",
                    None)
    # training rows whose outcomes run past the evaluation landmark: refused, not evaluated
    overlapping = validate_on_rows(train, evaluation, s, censoring=evaluation, **marks)
    assert overlapping[0] == {} and overlapping[2] is None
    assert overlapping[1].startswith("No out-of-time validation of the churn model: The "
                                     "evaluation landmark")

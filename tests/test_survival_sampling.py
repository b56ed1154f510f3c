"""The Cox fit on a stratified, weighted sample (survival.sampling): the draw itself, and a
sample fit against the full-data fit on a simulated table with known truth."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.errors import ClvInputError
from clvtools.pipeline.risk import fit_churn_model
from clvtools.survival import ChurnModel, load_model
from clvtools.survival.sampling import SAMPLE_WEIGHT, rows_to_draw, sample_keys, stratified_sample

COVARIATES = [f"x{i}" for i in range(6)]
#: True log hazard ratios of the simulated table (the last covariate has none).
TRUE_COEF = np.array([0.5, -0.4, 0.3, -0.2, 0.6, 0.0])
MODEL = dict(covariates=COVARIATES, features=None, check_ph=False, strata=["landmark"])


def _simulated_table(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` landmark rows: four normal and two binary covariates, two landmarks with their
    own baseline, exponential times to churn (about 17 % churn within 52 weeks), durations
    in whole weeks, censored at 52."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=(n, 4)), rng.binomial(1, 0.3, n),
                         rng.binomial(1, 0.5, n)])
    landmark = rng.integers(0, 2, n)
    time = rng.exponential(1 / (0.002 * np.exp(x @ TRUE_COEF + 0.3 * landmark)))
    table = pd.DataFrame(x, columns=COVARIATES)
    table["landmark"] = landmark
    table["duration"] = np.ceil(np.minimum(time, 52.0))
    table["event"] = (time <= 52.0).astype(int)
    return table


@pytest.fixture(scope="module")
def table():
    return _simulated_table(300_000)


@pytest.fixture(scope="module")
def full_fit(table):
    return ChurnModel(**MODEL).fit(table)


def test_the_draw_is_stratified_weighted_and_seeded(table):
    sample = stratified_sample(table, 40_000, by=["landmark"], seed=1)
    drawn = sample.table
    assert sample.rows == len(drawn) == pytest.approx(40_000, abs=4)
    # 50,000 events, more than half the sample: half of it each
    assert drawn["event"].sum() == pytest.approx(20_000, abs=2)
    # each stratum's weights add up to its size: weighted counts are the full table's
    sizes = table.groupby(["event", "landmark"]).size()
    weighted = drawn.groupby(["event", "landmark"])[SAMPLE_WEIGHT].sum()
    np.testing.assert_allclose(weighted.to_numpy(), sizes.to_numpy(), rtol=1e-12)
    again = stratified_sample(table, 40_000, by=["landmark"], seed=1).table
    other = stratified_sample(table, 40_000, by=["landmark"], seed=2).table
    assert again.index.equals(drawn.index) and not other.index.equals(drawn.index)
    assert sample.as_dict()["rows_total"] == len(table)


def test_rare_events_are_all_kept_and_scarce_censored_rows_too():
    rare = pd.DataFrame({"event": [1] * 100 + [0] * 900, "duration": 1.0})
    drawn = stratified_sample(rare, 400, seed=0).table
    # the 100 events fill less than half: all kept (weight 1), the censored rows the rest
    assert drawn["event"].value_counts().to_dict() == {0: 300, 1: 100}
    assert drawn.groupby("event")[SAMPLE_WEIGHT].unique().map(list).to_dict() == {
        0: [3.0], 1: [1.0]}
    common = pd.DataFrame({"event": [1] * 900 + [0] * 100, "duration": 1.0})
    drawn = stratified_sample(common, 400, seed=0).table
    # 100 censored rows cannot fill their half: all kept, the events take the other 300
    assert drawn["event"].value_counts().to_dict() == {1: 300, 0: 100}


def test_no_sample_of_a_table_that_is_small_enough(table):
    with pytest.raises(ClvInputError, match="fit it whole"):
        stratified_sample(table.head(100), 100)
    with pytest.raises(ClvInputError, match="no column"):
        stratified_sample(table, 1000, by=["segment"])


def test_robust_intervals_of_sample_fits_cover_the_full_data_hazard_ratios(table, full_fit):
    """Three samples of 40,000 of the 300,000 rows (20,000 of the 50,000 events, 20,000 of
    the 250,000 censored rows): the full-data hazard ratio lies in the sample fit's robust
    95 % interval for 16 of the 18 coefficients. Fits with the model-based variance, which
    takes the weights for frequencies, covered 12: their intervals are as narrow as the full
    data's."""
    full = full_fit.summary
    covered, widths = 0, []
    for seed in range(3):
        sample = stratified_sample(table, 40_000, by=["landmark"], seed=seed)
        fitted = ChurnModel(**MODEL, weights_col=SAMPLE_WEIGHT, robust=True).fit(sample.table)
        s = fitted.summary
        covered += int(((s["hazard_ratio_lower"] <= full["hazard_ratio"])
                        & (full["hazard_ratio"] <= s["hazard_ratio_upper"])).sum())
        widths.append((s["se"] / full["se"]).to_numpy())
    assert covered >= 15
    # 40,000 rows know less than 300,000: the sandwich says so (about 2.3x the full se)
    assert np.min(widths) > 1.5
    # and the full fit itself finds the truth
    np.testing.assert_allclose(full["coef"].to_numpy(), TRUE_COEF, atol=0.05)


def test_without_weights_the_sample_biases_churn_probabilities_and_coefficients(table,
                                                                                full_fit):
    sample = stratified_sample(table, 40_000, by=["landmark"], seed=0).table
    weighted = ChurnModel(**MODEL, weights_col=SAMPLE_WEIGHT, robust=True).fit(sample)
    unweighted = ChurnModel(**MODEL).fit(sample.drop(columns=SAMPLE_WEIGHT))
    rows = table.head(5000)
    full_p = full_fit.churn_probability(rows, 26).mean()
    assert weighted.churn_probability(rows, 26).mean() == pytest.approx(full_p, rel=0.03)
    # censored rows undersampled 12.5-fold, events 2.5-fold: the unweighted baseline more
    # than doubles
    assert unweighted.churn_probability(rows, 26).mean() > 2 * full_p
    # and its coefficients shrink towards 0 (x4's true 0.6: below 0.5)
    assert unweighted.params_["x4"] < 0.5 < weighted.params_["x4"]


def test_the_main_jobs_fit_samples_a_large_table_and_says_so(tmp_path):
    base = generate_customer_base(2500, seed=4, start="2022-01-01", observation_end="2024-12-31")
    log = read_transactions(base.transactions)
    survival = landmark_table(log, landmarks=[dt.date(2023, 6, 30), dt.date(2023, 12, 29)],
                              churn_after=26, time_unit="week")
    model, notes = fit_churn_model(survival, time_unit="week", seed=5, sample_rows=1000)
    assert len(survival) > 1000
    assert model.sample_["rows"] == model.n_rows_ == pytest.approx(1000, abs=4)
    assert model.sample_["rows_total"] == len(survival)
    assert model.sample_["strata"] == ["event", "landmark"]
    assert model.robust_ and model.weights_col == SAMPLE_WEIGHT
    assert any(f"sample of {model.n_rows_:,} of the survival table's {len(survival):,}" in n
               for n in notes)
    model.save_model(tmp_path / "churn.json")  # read back against the schema
    assert load_model(tmp_path / "churn.json").sample_ == model.sample_
    whole, _ = fit_churn_model(survival, time_unit="week", seed=5, sample_rows=len(survival))
    assert whole.sample_ is None and whole.n_rows_ == len(survival)


def test_the_keys_of_a_piece_of_the_table_are_the_whole_draws_keys_there():
    """Spark draws each partition's keys where it is: the stream advanced to the piece's first
    position gives the keys the whole table's draw gives those rows."""
    whole = sample_keys(7, 0, 1_000)
    np.testing.assert_array_equal(whole, np.random.default_rng(7).random(1_000))
    np.testing.assert_array_equal(sample_keys(7, 123, 50), whole[123:173])
    drawn, event_fraction, censored_fraction = rows_to_draw(
        np.array([10, 990, 40, 960]), np.array([True, False, True, False]), 100)
    # the 50 events kept whole (at most half of 100), 50 of the 1,950 censored rows
    assert drawn.tolist() == [10, 25, 40, 25] and event_fraction == 1.0
    assert censored_fraction == 50 / 1_950

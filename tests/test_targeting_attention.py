"""Early warning and win-back: the pure lists by hand, and in the main job the early-warning
probabilities are the churn model's at both dates, its drivers add up to the change of the log
cumulative hazard, and the win-back list reuses the allocation's net benefits."""
import numpy as np
import pandas as pd
import pytest

from clvtools.api import analyze
from clvtools.config import Settings
from clvtools.data.rfm import rfm_summary
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.attention import rows_for, score_at
from clvtools.pipeline.drivers import baseline_centre, risk_drivers
from clvtools.pipeline.structural import STRUCTURAL_COLUMN, cloglog, structural_from_rfm
from clvtools.targeting.early_warning import early_warning_list
from clvtools.targeting.win_back import NO_VALUE, win_back_list

# One xdist worker for the module: its analysed base is built once, not once per worker.
# (Its value step is slow: the calibration window's Pareto/NBD estimate sits where the
# dropout heterogeneity vanishes, s ~ 300 and beta ~ 25,000, and each likelihood sums
# thousands of series terms; issue 18's note.)
pytestmark = pytest.mark.xdist_group("attention_run")


def test_early_warning_list_by_hand():
    now = pd.Series([0.5, 0.2, np.nan, 0.9, 0.4], index=list("abcde"))
    before = pd.Series([0.1, 0.3, 0.2, np.nan], index=list("abce"))   # d had no score then
    value = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0], index=list("abcde"))
    drivers = pd.DataFrame({"driver_1": ["x", "y", "z", "w", "v"]}, index=list("abcde"))
    out, counts = early_warning_list(now, before, value, drivers)
    # a rose 0.4; b fell; c is declared churned now; d and e have no score before
    assert out["customer_id"].tolist() == ["a"]
    row = out.iloc[0]
    assert row["rise"] == pytest.approx(0.4) and row["value_at_stake"] == 10.0
    assert row["driver_1"] == "x" and row["early_warning_rank"] == 1
    assert counts == {"live": 4, "scored_before": 2, "not_scored_before": 2, "listed": 1}


@pytest.mark.parametrize("seed", range(20))
def test_rows_for_is_the_look_up_from_the_table_side(seed):
    # random text ids, some absent on either side, in any order: the positions are
    # table_ids.get_indexer(ids), whichever side's hash table finds them
    rng = np.random.default_rng(seed)
    labels = np.array([f"c{i}" for i in rng.permutation(60)], dtype=object)
    ids = pd.Index(rng.choice(labels[:45], size=rng.integers(0, 45), replace=False))
    table_ids = pd.Index(rng.choice(labels[15:], size=rng.integers(0, 45), replace=False))
    expected = table_ids.get_indexer(ids)
    np.testing.assert_array_equal(rows_for(ids, table_ids), expected)
    # repeated customer ids: the same answer (the look-up from the table's side)
    twice = ids.append(ids)
    np.testing.assert_array_equal(rows_for(twice, table_ids), table_ids.get_indexer(twice))


def test_rows_for_refuses_a_table_id_twice_as_pandas_does():
    ids = pd.Index(["a", "b", "c"])
    with pytest.raises(pd.errors.InvalidIndexError):
        rows_for(ids, pd.Index(["b", "c", "b"]))


def test_win_back_list_by_hand():
    customers = pd.DataFrame({
        "customer_id": ["live", "g1", "g2", "gone_long"],
        "churn_probability": [0.3, np.nan, np.nan, np.nan],
        "lapsed_revenue": [5.0, 100.0, 400.0, NO_VALUE / 2],
        "net_benefit_push": [1.0, -10.0, 5.0, -20.0],
        "net_benefit_pull": [2.0, 1.5, 3.0, -1.0],
        "action": ["pull", "pull", "push", "none"],
        "last_purchase": ["2024-05-01", "2023-01-01", "2023-06-01", "2019-01-01"],
        "region": ["n", "s", "e", "w"]})
    out, left_off = win_back_list(customers, extra_columns=["region"])
    assert left_off == 1
    assert out["customer_id"].tolist() == ["g2", "g1"]
    assert out["best_offer"].tolist() == ["push", "pull"]
    assert len({id(o) for o in win_back_list(customers.iloc[[1, 1, 2, 2]])[0]["best_offer"]}) == 2
    assert out["net_benefit"].tolist() == [5.0, 1.5]
    assert out["win_back_rank"].tolist() == [1, 2] and out["region"].tolist() == ["e", "s"]
    # a mapping of columns gives the same list (the pipeline passes one: no frame is built)
    columns = {c: customers[c].to_numpy() for c in customers.columns}
    same, _ = win_back_list(columns, extra_columns=["region"])
    pd.testing.assert_frame_equal(same, out)


@pytest.fixture(scope="module")
def run():
    base = generate_customer_base(3000, seed=5)
    return analyze(base.transactions, customers=base.customers.drop(columns="acquisition_date"),
                   config=Settings())


def test_early_warning_is_the_model_scored_at_both_dates(run):
    a = run.analysis
    early = a.targets.early_warning
    assert len(early) > 100
    assert (early["rise"] > 0).all() and early["rise"].is_monotonic_decreasing
    customers = a.targets.customers.set_index("customer_id")
    np.testing.assert_allclose(early["churn_probability"],
                               customers.loc[early["customer_id"], "churn_probability"])
    assert customers.loc[early["customer_id"], "churn_model"].eq("cox").all()
    previous = a.timeline.previous_scoring
    then = score_at(a.risk, a.inputs, previous, a.settings)
    before = a.risk.model.churn_probability(then, a.settings.horizon)
    np.testing.assert_allclose(early["churn_probability_before"],
                               before.loc[early["customer_id"]], rtol=1e-12)
    # the drivers add up to the change of the log cumulative hazard at the horizon
    ids = early["customer_id"].head(50).to_numpy()
    centre = baseline_centre(a.risk.model, a.risk.scoring, a.settings.horizon)
    now_parts = risk_drivers(a.risk.model, a.risk.scoring.loc[ids], horizon=a.settings.horizon,
                             centre=centre)
    then_parts = risk_drivers(a.risk.model, then.loc[ids], horizon=a.settings.horizon,
                              centre=centre)
    p_now, p_then = (early.set_index("customer_id").loc[ids, c].to_numpy()
                     for c in ("churn_probability", "churn_probability_before"))
    keep = p_now < 1 - 1e-9              # log(-log(1 - p)) is infinite at p = 1
    change = np.log(-np.log1p(-p_now[keep])) - np.log(-np.log1p(-p_then[keep]))
    np.testing.assert_allclose((now_parts - then_parts).sum(axis=1).to_numpy()[keep], change,
                               atol=1e-8)
    # nobody already declared churned is on it
    assert customers.loc[early["customer_id"], "churn_probability"].notna().all()


def test_win_back_reuses_the_plans_net_benefits(run):
    t = run.analysis.targets
    assert run.win_back is t.win_back and run.early_warning is t.early_warning  # the API
    win_back = t.win_back.set_index("customer_id")
    customers = t.customers.set_index("customer_id")
    churned = customers["churn_probability"].isna()
    assert churned.sum() == len(win_back) + t.summary["win_back_no_value"]
    rows = customers.loc[win_back.index]
    np.testing.assert_array_equal(win_back["net_benefit"],
                                  np.maximum(rows["net_benefit_push"], rows["net_benefit_pull"]))
    assert win_back["net_benefit"].is_monotonic_decreasing
    assert (win_back["lifetime_spend"] > 0).all() and (win_back["purchases"] >= 1).all()
    assert (win_back["declared_at"] > win_back["last_purchase"]).all()


def test_early_warning_scores_the_same_bgnbd_on_the_history_then(run):
    """The structural term one period back is the observation end's BG/NBD (the one behind
    the main scoring table's term) on each customer's RFM as it stood then."""
    a = run.analysis
    s, model = a.settings, a.risk.structural_model
    assert model is not None
    term = dict(horizon=s.horizon, churn_after=s.churn_after, seed=s.seed)
    now = rfm_summary(a.inputs.log, time_unit=s.time_unit)
    np.testing.assert_allclose(
        a.risk.scoring[STRUCTURAL_COLUMN],
        cloglog(structural_from_rfm(model, now, **term).loc[a.risk.scoring.index]), rtol=1e-10)
    previous = a.timeline.previous_scoring
    then = score_at(a.risk, a.inputs, previous, s)
    history = rfm_summary(a.inputs.log.until(previous), time_unit=s.time_unit)
    expected = cloglog(structural_from_rfm(model, history, **term).loc[then.index])
    np.testing.assert_allclose(then[STRUCTURAL_COLUMN], expected, rtol=1e-10)
    # the customers' histories moved: the terms then are not the terms now
    both = then.index.intersection(a.risk.scoring.index)
    assert (then.loc[both, STRUCTURAL_COLUMN]
            != a.risk.scoring.loc[both, STRUCTURAL_COLUMN]).mean() > 0.5


def test_lifecycle_columns_by_id_whatever_the_order(run):
    from clvtools.pipeline.attention import lifecycle_columns

    customers = run.customers
    lifecycle = run.analysis.risk.lifecycle.set_index("customer_id")
    columns = ["last_purchase", "purchases", "declared_at"]
    aligned = lifecycle_columns(customers, lifecycle, columns)
    shuffled = lifecycle_columns(customers, lifecycle.sample(frac=1.0, random_state=1), columns)
    missing = lifecycle_columns(customers, lifecycle.iloc[1:], columns)
    # the table as the risk step keeps it, ids in a column (no copy indexed by id), in order
    # or not
    by_column = lifecycle_columns(customers, run.analysis.risk.lifecycle, columns)
    by_column_shuffled = lifecycle_columns(
        customers, run.analysis.risk.lifecycle.sample(frac=1.0, random_state=2), columns)
    for column in columns:
        want = customers["customer_id"].map(lifecycle[column]).to_numpy()
        np.testing.assert_array_equal(aligned[column], want)
        np.testing.assert_array_equal(shuffled[column], want)
        np.testing.assert_array_equal(by_column[column], want)
        np.testing.assert_array_equal(by_column_shuffled[column], want)
    first = customers["customer_id"] == lifecycle.index[0]
    assert pd.isna(missing["last_purchase"][first.to_numpy()]).all()

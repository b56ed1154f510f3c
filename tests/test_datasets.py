"""Tests of clvtools.datasets: the simulated customer base and the lifetimes data loaders.

Statistical checks compare simulated means with the models' closed forms, with a tolerance
of 4 standard errors of the simulated mean (a false alarm about once in 16,000 runs; the
seeds are fixed, so a failure means the simulation changed, not bad luck).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import EXTREME_PARAMETERS
from scipy.special import hyp2f1

from clvtools import datasets
from clvtools.data import loaders
from clvtools.errors import ClvInputError

N_SE = 4.0


def _weeks_observed(base) -> np.ndarray:
    """T_i in weeks, shape (n_customers,), as the RFM summary computes it."""
    end = np.datetime64(base.observation_end, "D")
    acq = base.customers["acquisition_date"].to_numpy().astype("datetime64[D]")
    return (end - acq).astype(np.int64) / 7.0


def _repeats_within(base, weeks: float) -> np.ndarray:
    """Repeat purchases (rows, not occasions) in the first ``weeks`` after acquisition.

    A purchase at model time tau lands on day floor(7 tau), so ``day < 7 weeks`` is
    exactly ``tau < weeks`` for whole-day ``7 weeks``. Shape (n_customers,).
    """
    tr = base.transactions.merge(base.customers[["customer_id", "acquisition_date"]])
    days = (tr["date"] - tr["acquisition_date"]).dt.days.to_numpy()
    pos = base.customers.reset_index().set_index("customer_id").loc[tr["customer_id"], "index"]
    counts = np.bincount(pos.to_numpy(), weights=days < 7 * weeks, minlength=len(base.customers))
    return counts - 1  # the acquisition itself is not a repeat purchase


def bgnbd_expected_purchases(t, r, alpha, a, b):
    """E[X(t)] of BG/NBD, Fader, Hardie & Lee (2005), eq. (7); t in weeks."""
    return (a + b - 1) / (a - 1) * (
        1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
    )


@pytest.fixture(scope="module")
def base_1k():
    return datasets.generate_customer_base(1_000, seed=7)


@pytest.fixture(scope="module")
def bgnbd_50k_no_effects():
    return datasets.generate_customer_base(50_000, seed=11, covariate_effects={})


@pytest.fixture(scope="module")
def pnbd_50k_no_effects():
    return datasets.generate_customer_base(50_000, model="pnbd", seed=12, covariate_effects={})


# --------------------------------------------------------------------------- generator


def test_shapes_columns_and_types(base_1k):
    b = base_1k
    assert b.customers.columns.tolist() == [
        "customer_id", "channel", "region", "plan", "acquisition_date",
    ]
    assert b.transactions.columns.tolist() == ["customer_id", "date", "amount"]
    assert b.customer_truth.columns.tolist() == [
        "customer_id", "lambda", "p", "nu", "expected_spend", "dropout_date", "alive_at_end",
    ]
    assert len(b.customers) == len(b.customer_truth) == 1_000
    assert b.transactions["date"].dtype == "datetime64[ns]"
    assert set(b.customers["channel"]) == {"online", "store", "referral"}
    assert set(b.customers["region"]) == {"north", "south", "east", "west"}
    assert set(b.customers["plan"]) == {"basic", "premium"}
    # Every customer has its acquisition as first purchase.
    first = b.transactions.groupby("customer_id")["date"].min()
    acq = b.customers.set_index("customer_id")["acquisition_date"]
    pd.testing.assert_series_equal(first.loc[acq.index], acq, check_names=False)


def test_ids_unique_strings_with_leading_zeros(base_1k):
    ids = base_1k.customers["customer_id"]
    assert ids.is_unique
    assert ids.map(type).eq(str).all()
    assert ids.iloc[0] == "C0000001" and ids.iloc[-1] == "C0001000"
    assert set(base_1k.transactions["customer_id"]) == set(ids)


def test_amounts_dates_and_sorting(base_1k):
    tr = base_1k.transactions
    assert (tr["amount"] > 0).all()
    np.testing.assert_array_equal(tr["amount"], tr["amount"].round(2))
    assert tr["date"].max() <= pd.Timestamp(base_1k.observation_end)
    assert tr["date"].min() >= pd.Timestamp(base_1k.truth["start"])
    assert (tr["date"] == tr["date"].dt.normalize()).all()
    acq_end = pd.Timestamp(base_1k.truth["acquisition_end"])
    assert (base_1k.customers["acquisition_date"] <= acq_end).all()
    key = tr[["customer_id", "date"]]
    assert key.equals(key.sort_values(["customer_id", "date"]))


def test_default_acquisition_end_is_two_thirds():
    b = datasets.generate_customer_base(1_000, start="2023-01-01", observation_end="2024-01-01")
    assert b.truth["acquisition_end"] == "2023-09-01"  # 243 of 365 days


def test_same_seed_same_base_other_seed_other_base():
    a = datasets.generate_customer_base(2_000, model="pnbd", seed=5)
    b = datasets.generate_customer_base(2_000, model="pnbd", seed=5)
    c = datasets.generate_customer_base(2_000, model="pnbd", seed=6)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    pd.testing.assert_frame_equal(a.customer_truth, b.customer_truth)
    assert a.truth == b.truth
    assert not a.transactions.equals(c.transactions)


def test_truth_is_json_and_names_the_dummies(base_1k):
    truth = json.loads(json.dumps(base_1k.truth, allow_nan=False))
    assert truth["model"] == "bgnbd" and truth["time_unit"] == "week"
    assert set(truth["params"]) == {"r", "alpha", "a", "b"}
    assert set(truth["gamma_gamma"]) == {"p", "q", "gamma"}
    assert set(truth["covariate_effects"]["dropout"]) == {
        "channel_store", "channel_referral", "region_south", "region_east", "region_west",
        "plan_premium",
    }
    assert truth["reference_levels"] == {"channel": "online", "region": "north", "plan": "basic"}


def test_same_day_purchases_are_rare(base_1k):
    tr = base_1k.transactions
    repeats = len(tr) - len(base_1k.customers)
    merged = tr.duplicated(["customer_id", "date"]).sum()
    assert repeats > 1_000
    assert merged / repeats < 0.04


def test_bgnbd_dropout_only_at_a_repeat_purchase():
    b = datasets.generate_customer_base(5_000, seed=3)
    t = b.customer_truth.set_index("customer_id")
    last = b.transactions.groupby("customer_id")["date"].max()
    n_rows = b.transactions.groupby("customer_id").size()
    dead = ~t["alive_at_end"]
    assert dead.any() and t.loc[~dead, "dropout_date"].isna().all()
    # BG/NBD customers leave right after a repeat purchase: the last one, never before.
    pd.testing.assert_series_equal(
        t.loc[dead, "dropout_date"], last.loc[dead[dead].index], check_names=False
    )
    assert (n_rows.loc[dead[dead].index] >= 2).all()


def test_pnbd_no_purchase_after_dropout():
    b = datasets.generate_customer_base(5_000, model="pnbd", seed=3)
    assert set(b.customer_truth.columns) >= {"mu", "lambda"}
    t = b.customer_truth.set_index("customer_id")
    tr = b.transactions.join(t["dropout_date"], on="customer_id")
    assert (~t["alive_at_end"]).sum() > 1_000
    assert (tr["dropout_date"].isna() | (tr["date"] <= tr["dropout_date"])).all()
    assert (t["dropout_date"].dropna() < pd.Timestamp(b.observation_end)).all()


@pytest.mark.parametrize("weeks", [4, 13, 26])
def test_bgnbd_mean_repeat_purchases_match_closed_form(bgnbd_50k_no_effects, weeks):
    b = bgnbd_50k_no_effects
    assert _weeks_observed(b).min() >= weeks  # every customer observed for the whole window
    x = _repeats_within(b, weeks)
    expected = bgnbd_expected_purchases(weeks, **b.truth["params"])
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - expected) < N_SE * se, (x.mean(), expected, se)


def test_pnbd_share_alive_matches_closed_form(pnbd_50k_no_effects):
    b = pnbd_50k_no_effects
    s, beta = b.truth["params"]["s"], b.truth["params"]["beta"]
    # P(lifetime > T) = (beta / (beta + T)) ** s for a Gamma(s, beta) mixture of exponentials.
    p_alive = np.mean((beta / (beta + _weeks_observed(b))) ** s)
    share = b.customer_truth["alive_at_end"].mean()
    assert abs(share - p_alive) < N_SE * np.sqrt(p_alive * (1 - p_alive) / len(b.customers))


def test_gamma_gamma_mean_spend_matches_closed_form(pnbd_50k_no_effects):
    b = pnbd_50k_no_effects
    gg = b.truth["gamma_gamma"]
    expected = gg["p"] * gg["gamma"] / (gg["q"] - 1)
    # One amount per customer (the acquisition), so the draws are independent.
    first = b.transactions.drop_duplicates("customer_id")["amount"]
    assert abs(first.mean() - expected) < N_SE * first.std(ddof=1) / np.sqrt(first.size)
    spend = b.customer_truth["expected_spend"]
    assert abs(spend.mean() - expected) < N_SE * spend.std(ddof=1) / np.sqrt(spend.size)


@pytest.mark.parametrize("model", ["bgnbd", "pnbd"])
def test_churn_and_purchases_depend_on_attributes_as_set(model):
    b = datasets.generate_customer_base(30_000, model=model, seed=21)
    df = b.customers.join(b.customer_truth.set_index("customer_id"), on="customer_id")
    churned = ~df["alive_at_end"]
    by_channel = churned.groupby(df["channel"]).mean()
    by_plan = churned.groupby(df["plan"]).mean()
    # Referral and premium customers leave more slowly (negative dropout effects).
    assert by_channel["referral"] < by_channel["online"] - 0.05, by_channel
    assert by_plan["premium"] < by_plan["basic"] - 0.05, by_plan
    # The south buys more: repeat purchases in the first 13 weeks.
    x = pd.Series(_repeats_within(b, 13), index=df.index).groupby(df["region"]).mean()
    assert x["south"] > 1.2 * x["north"], x


def test_no_effects_means_no_dependence():
    b = datasets.generate_customer_base(30_000, model="pnbd", seed=21, covariate_effects={})
    df = b.customers.join(b.customer_truth.set_index("customer_id"), on="customer_id")
    by_plan = (~df["alive_at_end"]).groupby(df["plan"]).mean()
    assert abs(by_plan["premium"] - by_plan["basic"]) < 0.03, by_plan


def test_params_override_changes_the_process():
    slow = datasets.generate_customer_base(2_000, seed=1, params={"alpha": 80.0, "gamma": 2.5})
    assert slow.truth["params"]["alpha"] == 80.0 and slow.truth["gamma_gamma"]["gamma"] == 2.5
    fast = datasets.generate_customer_base(2_000, seed=1)
    assert len(slow.transactions) < 0.5 * len(fast.transactions)
    assert slow.transactions["amount"].mean() < 0.2 * fast.transactions["amount"].mean()


@pytest.mark.parametrize("model, params", EXTREME_PARAMETERS)
def test_extreme_but_valid_parameters_give_valid_bases(model, params):
    # Beta draws of exactly 0 or 1, near-zero rates and spend scales: no warning (they
    # are errors here), no NaN, amounts still at least one cent.
    b = datasets.generate_customer_base(1_000, model=model, seed=4, params=params)
    assert (b.transactions["amount"] >= 0.01).all()
    assert b.transactions["date"].max() <= pd.Timestamp(b.observation_end)
    assert b.customer_truth.drop(columns="dropout_date").notna().all().all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 10.5}, "n_customers"),
        ({"model": "mbgnbd"}, "'bgnbd' or 'pnbd'"),
        ({"params": {"s": 1.0}}, "Unknown parameter 's'"),
        ({"params": {"r": -1.0}}, "positive number"),
        ({"params": {"q": 0.9}}, "'q' must be above 1"),
        ({"covariate_effects": {"dropout": {"plan_gold": 1.0}}}, "plan_gold"),
        ({"covariate_effects": {"spend": {}}}, "Unknown process"),
        ({"observation_end": "2022-01-01"}, "after 'start'"),
        ({"acquisition_end": "2025-06-01"}, "acquisition_end"),
        ({"start": "01/01/2023"}, "ISO date"),
    ],
)
def test_bad_arguments_raise_clv_input_error(kwargs, match):
    kwargs = {"n_customers": 1_000} | kwargs
    with pytest.raises(ClvInputError, match=match):
        datasets.generate_customer_base(**kwargs)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_round_trip(base_1k, tmp_path, fmt):
    paths = base_1k.write(tmp_path / "out", format=fmt, include_truth=True)
    assert set(paths) == {"transactions", "customers", "customer_truth", "truth"}
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    tr = read(paths["transactions"])
    tr["date"] = pd.to_datetime(tr["date"])
    pd.testing.assert_frame_equal(tr, base_1k.transactions)
    truth = read(paths["customer_truth"])
    assert truth["dropout_date"].isna().sum() == base_1k.customer_truth["alive_at_end"].sum()
    assert json.loads(paths["truth"].read_text()) == base_1k.truth
    if fmt == "csv":
        assert paths["customers"].read_text().splitlines()[1].startswith('"C0000001",')


def test_write_rejects_unknown_format(base_1k, tmp_path):
    with pytest.raises(ClvInputError, match="'csv' or 'parquet'"):
        base_1k.write(tmp_path, format="xlsx")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bgnbd", "pnbd"])
def test_one_million_customers(model):
    # Speed is measured in benchmarks/, never asserted in a test.
    b = datasets.generate_customer_base(1_000_000, model=model, seed=2)
    assert len(b.customers) == 1_000_000 and b.customers["customer_id"].is_unique
    assert b.customers["customer_id"].iloc[-1] == "C1000000"
    assert len(b.transactions) > 2_000_000
    assert (b.transactions["amount"] > 0).all()
    assert b.transactions["date"].max() <= pd.Timestamp(b.observation_end)


# --------------------------------------------------------------------------- loaders


@pytest.fixture(scope="module")
def lifetimes_datasets():
    return pytest.importorskip("lifetimes.datasets")


def test_loaders_equal_lifetimes_own(lifetimes_datasets):
    lt = lifetimes_datasets
    pd.testing.assert_frame_equal(
        datasets.load_cdnow_summary(index_col=None), lt.load_cdnow_summary()
    )
    pd.testing.assert_frame_equal(
        datasets.load_cdnow_summary(), lt.load_cdnow_summary(index_col=[0])
    )
    pd.testing.assert_frame_equal(
        datasets.load_cdnow_summary_data_with_monetary_value(),
        lt.load_cdnow_summary_data_with_monetary_value(),
    )
    pd.testing.assert_frame_equal(datasets.load_donations(), lt.load_donations())
    pd.testing.assert_frame_equal(datasets.load_transaction_data(), lt.load_transaction_data())


def test_summary_shapes():
    summary = datasets.load_cdnow_summary()
    assert summary.shape == (2_357, 3) and summary.index.name == "ID"
    assert summary.columns.tolist() == ["frequency", "recency", "T"]
    donations = datasets.load_donations()
    assert donations.shape == (22, 4) and donations["weights"].sum() == 11_104


def test_cdnow_master_log():
    log = datasets.load_cdnow_transactions()
    assert log.shape == (69_659, 4)
    assert log.columns.tolist() == ["customer_id", "date", "number_of_cds", "dollar_value"]
    assert log["customer_id"].nunique() == 23_570
    assert log["customer_id"].str.fullmatch(r"\d{5}").all()
    assert log["customer_id"].iloc[0] == "00001"
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == pd.Timestamp("1998-06-30")
    # Everyone's first purchase is in the first quarter of 1997 (the cohort's definition).
    assert log.groupby("customer_id")["date"].min().max() <= pd.Timestamp("1997-03-31")
    assert log["number_of_cds"].dtype == "int64" and (log["dollar_value"] >= 0).all()
    assert log["dollar_value"].sum() == pytest.approx(2_500_315.63, abs=0.01)


def test_cdnow_sample_is_a_subset_of_the_master_log_and_matches_the_summary():
    sample = datasets.load_cdnow_sample()
    assert sample.shape == (6_919, 5)
    assert sample["customer_id"].nunique() == 2_357
    assert sample["customer_id"].str.fullmatch(r"\d{4}").all()
    cols = ["master_customer_id", "date", "number_of_cds", "dollar_value"]
    master = datasets.load_cdnow_transactions()
    master = master.rename(columns={"customer_id": "master_customer_id"})
    joined = sample[cols].merge(master[cols].drop_duplicates(), how="left", indicator=True)
    assert (joined["_merge"] == "both").all()
    # The summary's calibration period ends on 1997-09-30 (T = 38.86 weeks from 1997-01-01).
    cal = sample[sample["date"] <= "1997-09-30"]
    occasions = cal.drop_duplicates(["customer_id", "date"])
    g = occasions.groupby(occasions["customer_id"].astype(int))["date"]
    first = g.min()
    ours = pd.DataFrame({
        "frequency": g.size() - 1,
        "recency": (g.max() - first).dt.days / 7,
        "T": (pd.Timestamp("1997-09-30") - first).dt.days / 7,
    })
    summary = datasets.load_cdnow_summary()
    np.testing.assert_array_equal(ours.index, summary.index)
    np.testing.assert_array_equal(ours["frequency"], summary["frequency"])
    np.testing.assert_allclose(ours[["recency", "T"]], summary[["recency", "T"]], atol=0.006)


def test_missing_lifetimes_says_what_to_install(monkeypatch):
    monkeypatch.setattr(loaders, "find_spec", lambda name, *args: None)
    for load in (datasets.load_cdnow_summary, datasets.load_cdnow_transactions):
        with pytest.raises(ImportError, match=r"pip install lifetimes==0\.11\.3") as info:
            load()
        assert "pip install clvtools[test]" in str(info.value)
        assert info.value.name == "lifetimes"


def test_package_runs_without_importing_lifetimes():
    code = (
        "import sys, clvtools.datasets as d; "
        "d.generate_customer_base(1000); d.load_cdnow_summary(); d.load_cdnow_transactions(); "
        "assert 'lifetimes' not in sys.modules, 'lifetimes was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

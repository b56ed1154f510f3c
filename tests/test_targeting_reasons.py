"""Reason codes: the strongest drivers by hand, the threshold, the declared churned, and on a
fitted churn model the drivers add up to the customer's log hazard ratio."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvtools.data.attributes import read_customers
from clvtools.data.survival_tables import landmark_table
from clvtools.data.transactions import read_transactions
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.drivers import driver_labels
from clvtools.survival.churn_model import ChurnModel
from clvtools.targeting.reasons import REASON_COLUMNS, reason_codes, top_drivers


def test_top_drivers_by_hand():
    contributions = pd.DataFrame({"a": [0.7, -0.2, 0.05], "b": [0.1, 0.9, 0.0],
                                  "c": [1.2, -0.5, 0.01]}, index=["x", "y", "z"])
    labels = pd.DataFrame({c: [f"{c}{i}" for i in range(3)] for c in "abc"},
                          index=contributions.index)
    out = top_drivers(contributions, labels, k=2)
    assert list(out.columns) == ["driver_1", "driver_2"]
    assert out.loc["x", "driver_1"] == f"c0 (risk ×{np.exp(1.2):.2g})"
    assert out.loc["x", "driver_2"] == f"a0 (risk ×{np.exp(0.7):.2g})"
    # y: only b raises the risk; z: nothing reaches a factor of 1.1
    assert out.loc["y", "driver_1"].startswith("b1 (risk ×2.5")
    assert out.loc["y", "driver_2"] == ""
    assert (out.loc["z"] == "").all()
    # the drivers that lower the risk most
    lower = top_drivers(contributions, labels, k=1, sign=-1)
    assert lower.loc["y", "driver_1"] == f"c1 (risk ×{np.exp(-0.5):.2g})"


def test_reason_codes_live_and_declared_churned():
    customers = pd.DataFrame({
        "revenue_if_retained": [1234.4, 50.0], "churn_probability": [0.42, np.nan],
        "value_share": [0.031, 0.5], "last_purchase": ["2024-01-05", "2023-02-01"],
        "lapsed_revenue": [10.0, 321.0]}, index=["live", "gone"])
    drivers = pd.DataFrame({"driver_1": ["no purchase for 9 weeks (risk ×2)"],
                            "driver_2": [""]}, index=["live"])
    out = reason_codes(customers, drivers)
    assert list(out.columns) == list(REASON_COLUMNS)
    assert out.loc["live", "reason_1"] == "value at stake 1,234 (top 4 %), churn risk 42%"
    assert out.loc["live", "reason_2"] == "no purchase for 9 weeks (risk ×2)"
    assert out.loc["gone", "reason_1"] == ("declared churned, last purchase 2023-02-01, "
                                           "lapsed revenue 321")
    assert out.loc["gone", "reason_2"] == out.loc["gone", "reason_3"] == ""


def test_reason_texts_formatted_per_distinct_value_as_per_row():
    # the texts are made once per distinct rounded value: the same as formatting each row,
    # at the rounding edges too (halves to even, -0.4 prints "-0", a percent that rounds
    # up, a missing value) and for dates as their column prints them
    rng = np.random.default_rng(3)
    value = np.r_[0.5, 1.5, 2.5, -0.4, 0.3, np.nan, 1234567.5, rng.lognormal(3, 2, 200)]
    p = np.r_[0.005, 0.015, 0.994, 0.995, np.nan, np.nan, 0.5, rng.uniform(0, 1, 200)]
    n = len(value)
    last = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 99, n), "D"))
    customers = pd.DataFrame({
        "revenue_if_retained": value, "churn_probability": p,
        "value_share": rng.uniform(0, 1, n), "last_purchase": last.to_numpy(),
        "lapsed_revenue": np.r_[-0.2, 0.5, 2.5, np.nan, rng.lognormal(3, 2, n - 4)]},
        index=[f"c{i}" for i in range(n)])
    out = reason_codes(customers, None)["reason_1"]
    top = np.maximum(np.ceil(customers["value_share"] * 100), 1)
    dates = customers["last_purchase"].astype(str)
    for i, (v, q, lapsed) in enumerate(zip(value, p, customers["lapsed_revenue"], strict=True)):
        expected = (f"declared churned, last purchase {dates.iloc[i]}, lapsed revenue "
                    f"{lapsed:,.0f}" if np.isnan(q) else
                    f"value at stake {v:,.0f} (top {top.iloc[i]:.0f} %), churn risk {q:.0%}")
        assert out.iloc[i] == expected
    assert out.iloc[3] == "value at stake -0 (top {:.0f} %), churn risk 100%".format(top.iloc[3])
    assert out.iloc[4].startswith("declared churned, last purchase 2024-")


@pytest.fixture(scope="module")
def fitted():
    base = generate_customer_base(1500, seed=4, start="2022-01-01", observation_end="2024-06-30")
    log = read_transactions(base.transactions)
    attributes = read_customers(log, base.customers.drop(columns="acquisition_date"))
    table = landmark_table(log, landmarks=[dt.date(2023, 6, 30)], attributes=attributes,
                           churn_after=26, time_unit="week")
    model = ChurnModel(time_unit="week", features="landmark", penalizer=1e-3).fit(table)
    return model, table


def test_variable_contributions_add_up_to_the_log_hazard_ratio(fitted):
    model, table = fitted
    parts = model.variable_contributions(table)
    assert "time_since_last_purchase" in parts.columns
    np.testing.assert_allclose(parts.sum(axis=1), model.log_partial_hazard(table), atol=1e-12)


def test_labels_say_the_customers_values(fitted):
    model, table = fitted
    parts = model.variable_contributions(table)
    labels = driver_labels(table, list(parts.columns), time_unit="week")
    row = table.iloc[0]
    assert labels.iloc[0]["time_since_last_purchase"] == (
        f"no purchase for {round(row['time_since_last_purchase'], 1):,g} weeks")
    assert labels.iloc[0]["log_frequency"] == f"{row['frequency']:,g} repeat purchases"
    drivers = top_drivers(parts, labels, k=2)
    # the first driver named is the variable with the largest part
    i = int(np.argmax(parts.max(axis=1).to_numpy()))
    strongest = parts.columns[int(np.argmax(parts.iloc[i].to_numpy()))]
    assert drivers.iloc[i]["driver_1"].startswith(labels.iloc[i][strongest])

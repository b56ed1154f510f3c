"""The value-risk matrix: cells, cut points over the live customers only, per-cell totals that
add up, and value concentration against hand computations."""
import numpy as np
import pandas as pd
import pytest

from clvtools.config import parse_cut
from clvtools.targeting import concentration, matrix_table, value_risk_matrix
from clvtools.targeting.matrix import CELL_ORDER, MONEY, cut_point


def test_cells_by_hand():
    value = pd.Series([10.0, 10.0, 1.0, 1.0, 5.0], index=list("abcde"))
    risk = pd.Series([0.9, 0.1, 0.9, 0.1, np.nan], index=list("abcde"))
    out = value_risk_matrix(value, risk, value_cut=5.0, risk_cut=0.5)
    assert out["cell"].tolist() == ["protect", "maintain", "retain_cheaply", "monitor",
                                    "churned"]
    assert out.loc["e", "value_tier"] is None and out.loc["a", "risk_tier"] == "high"
    assert list(out.index) == list("abcde")


def test_quantiles_are_taken_over_the_live_customers_only():
    # 10 live customers with values 1..10 and 90 churned ones worth 1000 each: were the
    # churned counted, the 0.8 quantile would be 1000 and nobody live would be high value
    rng = np.random.default_rng(0)
    value = pd.Series(np.concatenate([np.arange(1.0, 11.0), np.full(90, 1000.0)]))
    risk = pd.Series(np.concatenate([rng.uniform(size=10), np.full(90, np.nan)]))
    out = value_risk_matrix(value, risk, value_cut=parse_cut("q0.8"), risk_cut=("quantile", 0.5))
    assert out.attrs["cut_points"]["value"] == pytest.approx(np.quantile(np.arange(1, 11), 0.8))
    assert out.attrs["cut_points"]["risk"] == pytest.approx(np.median(risk[:10]))
    live = out.iloc[:10]
    assert (live["value_tier"] == "high").sum() == 2          # 9 and 10: the top 20 %
    assert (live["risk_tier"] == "high").sum() == 5
    assert (out.iloc[10:]["cell"] == "churned").all()


def test_cut_points_absolute_and_invalid():
    assert cut_point(np.array([1.0, 2.0]), 1500) == 1500.0
    assert cut_point(np.array([1.0, 2.0]), ("absolute", 3)) == 3.0
    with pytest.raises(ValueError, match="quantile"):
        cut_point(np.array([1.0]), ("quantile", 1.5))


def test_missing_value_of_a_live_customer_is_an_error():
    with pytest.raises(ValueError, match="missing for 1 live"):
        value_risk_matrix(pd.Series([np.nan, 1.0]), pd.Series([0.2, 0.3]))


def _customers(n=500, seed=1):
    rng = np.random.default_rng(seed)
    v = rng.gamma(1.0, 100.0, n)
    lapsed, preventable = v * rng.uniform(0, 0.5, n), v * rng.uniform(0, 0.3, n)
    p = rng.uniform(size=n)
    p[rng.uniform(size=n) < 0.2] = np.nan
    df = pd.DataFrame({"revenue_if_retained": v, "expected_revenue": v - lapsed - preventable,
                       "revenue_at_risk": lapsed + preventable, "lapsed_revenue": lapsed,
                       "preventable_revenue": preventable, "churn_probability": p})
    df["cell"] = value_risk_matrix(df["revenue_if_retained"], df["churn_probability"])["cell"]
    return df


def test_matrix_table_counts_and_sums_add_up():
    df = _customers()
    table = matrix_table(df).set_index("cell")
    assert list(table.index) == [*CELL_ORDER, "total"]
    for cell in CELL_ORDER:
        part = df[df["cell"] == cell]
        assert table.loc[cell, "customers"] == len(part)
        for col in MONEY:
            # summed in whole micro-units: each figure is off by half a millionth at most
            assert table.loc[cell, col] == pytest.approx(part[col].sum(),
                                                         abs=0.5e-6 * len(part) + 1e-9)
    assert table.loc["total", "customers"] == len(df)
    assert table.loc["total", "share_of_customers"] == pytest.approx(1.0)
    np.testing.assert_allclose(table["revenue_at_risk"],
                               table["lapsed_revenue"] + table["preventable_revenue"])


def test_empty_cells_are_listed_with_zeros():
    df = _customers(20).assign(cell="monitor")
    table = matrix_table(df).set_index("cell")
    assert table.loc["protect", "customers"] == 0 and table.loc["protect", MONEY[0]] == 0


def test_concentration_by_hand():
    # 10 customers: one holds 91 of 100
    x = pd.Series([91.0] + [1.0] * 9)
    out = concentration(x).set_index("measure")
    assert out.loc["top_1pct", "customers"] == 1                 # ceil(0.1)
    assert out.loc["top_10pct", "value"] == pytest.approx(0.91)
    assert out.loc["top_20pct", "value"] == pytest.approx(0.92)
    assert out.loc["top_50pct", "value"] == pytest.approx(0.95)
    # Gini: mean absolute difference / (2 mean) over all ordered pairs
    diffs = np.abs(x.to_numpy()[:, None] - x.to_numpy()[None, :]).sum()
    assert out.loc["gini", "value"] == pytest.approx(diffs / (2 * len(x) ** 2 * x.mean()))
    assert concentration(pd.Series([5.0] * 8)).set_index("measure").loc["gini", "value"] == \
        pytest.approx(0.0)

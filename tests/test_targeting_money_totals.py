"""Exact money totals in micro-units (targeting/money_totals.py): the rounding of SQL's
micro-units (data/money.py) and sums that do not depend on the order of the rows."""
import numpy as np
import pandas as pd

from clvtools.targeting.matrix import matrix_table
from clvtools.targeting.money_totals import from_micro, micro_sums, micro_units


def test_micro_units_round_half_away_from_zero_as_sql_does():
    amounts = [0.0000005, -0.0000005, 1.25, 1.2345674, np.nan, -2.0000004]
    assert micro_units(amounts).tolist() == [1, -1, 1_250_000, 1_234_567, 0, -2_000_000]


def test_sums_are_exact_whatever_the_order():
    rng = np.random.default_rng(0)
    values = rng.lognormal(3, 2, 5000)
    frame = pd.DataFrame({"cell": rng.choice(["a", "b"], 5000), "money": values})
    shuffled = frame.sample(frac=1.0, random_state=1)
    sums, again = micro_sums(frame, "cell", ["money"]), micro_sums(shuffled, "cell", ["money"])
    assert sums.loc["a", "money"] == again.loc["a", "money"]
    exact = sum(int(v) for v in micro_units(values[frame["cell"].to_numpy() == "a"]))
    assert sums.loc["a", "money"] == exact


def test_the_matrix_total_is_the_exact_total_rounded_once():
    customers = pd.DataFrame({
        "cell": ["protect", "monitor", "churned"] * 3,
        "revenue_if_retained": [0.1, 0.2, 0.3] * 3, "expected_revenue": [1e9, 1e-6, 3.0] * 3,
        "revenue_at_risk": 0.0, "lapsed_revenue": 0.0, "preventable_revenue": 0.0})
    table = matrix_table(customers).set_index("cell")
    assert table.loc["total", "revenue_if_retained"] == from_micro(1_800_000)
    assert table.loc["total", "expected_revenue"] == from_micro(3 * (10**15 + 1 + 3_000_000))
    assert table.loc["total", "customers"] == 9
    assert table.loc["protect", "share_of_customers"] == 3 / 9

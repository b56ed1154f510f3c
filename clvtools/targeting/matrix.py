"""The value-versus-risk matrix, its per-cell totals and the concentration of value.

Value tiers come from the value at stake (revenue if retained, or expected revenue) and risk
tiers from the churn probability, each cut at a quantile or an absolute number. Quantiles are
taken over the live customers only (churn probability given): the customers already declared
churned (churn probability empty) form the group ``churned``, the win-back population, and
would otherwise pull the cut points down (docs/concepts.rst, "Decisions").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .money_totals import from_micro, micro_sums

__all__ = ["CELLS", "CELL_ORDER", "CHURNED", "MONEY", "concentration",
           "concentration_ranks", "concentration_table", "cut_point",
           "matrix_from_totals", "matrix_table", "value_risk_matrix"]

#: (value tier, risk tier) -> cell.
CELLS = {("high", "high"): "protect", ("high", "low"): "maintain",
         ("low", "high"): "retain_cheaply", ("low", "low"): "monitor"}
#: Declared-churned customers: outside the quantiles, the win-back population.
CHURNED = "churned"
#: The order in which tables list the cells.
CELL_ORDER = ("protect", "maintain", "retain_cheaply", "monitor", CHURNED)
#: The money columns that matrix_table sums per cell (currency, discounted over the horizon).
MONEY = ("revenue_if_retained", "expected_revenue", "revenue_at_risk", "lapsed_revenue",
         "preventable_revenue")
#: Top shares of customers (percent) whose share of expected revenue concentration() gives.
TOP_PERCENTS = (1, 5, 10, 20, 50)


def cut_point(values: np.ndarray, cut) -> float:
    """The number that splits ``values`` into a low and a high tier.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
        The live customers' values (no NaN).
    cut : tuple or float
        ``("quantile", q)`` with q in [0, 1], ``("absolute", x)``, or a number x (absolute),
        as :func:`clvtools.config.parse_cut` gives them from ``"q0.8"`` or ``1500``.

    Returns
    -------
    float
        The cut point: a customer is in the high tier when strictly above it. NaN for a
        quantile of no customers.
    """
    kind, number = cut if isinstance(cut, tuple) else ("absolute", cut)
    number = float(number)
    if kind == "absolute":
        return number
    if kind != "quantile" or not 0 <= number <= 1:
        raise ValueError(f"A cut must be ('quantile', q) with q in [0, 1], ('absolute', x) "
                         f"or a number. Got {cut!r} instead.")
    return float(np.quantile(values, number)) if len(values) else float("nan")


def value_risk_matrix(value: pd.Series, risk: pd.Series, *, value_cut=("quantile", 0.8),
                      risk_cut=("quantile", 0.8)) -> pd.DataFrame:
    """Each customer's cell of the value-versus-risk matrix.

    Parameters
    ----------
    value : pandas.Series, shape (n,)
        The value axis (currency): revenue if retained, or expected revenue.
    risk : pandas.Series, shape (n,)
        Churn probability within the horizon; NaN for a customer already declared churned.
        Indexed like ``value``.
    value_cut, risk_cut : tuple or float
        Cut points, ``("quantile", 0.8)`` (the top 20 % of the live customers are high) or an
        absolute number (see :func:`cut_point`).

    Returns
    -------
    pandas.DataFrame, shape (n, 3)
        ``value_tier`` and ``risk_tier`` (``high``, ``low``, or None for the churned) and
        ``cell`` (``protect``, ``maintain``, ``retain_cheaply``, ``monitor`` or ``churned``),
        indexed like ``value``. ``attrs["cut_points"]`` holds the two cut points.
    """
    v = np.asarray(value, dtype=float)
    r = np.asarray(risk, dtype=float)
    if v.shape != r.shape:
        raise ValueError(f"value and risk differ in length: {v.shape} and {r.shape}.")
    live = ~np.isnan(r)
    if np.isnan(v[live]).any():
        raise ValueError(f"The value axis is missing for {int(np.isnan(v[live]).sum())} live "
                         "customers: every customer not declared churned needs a value.")
    v_cut, r_cut = cut_point(v[live], value_cut), cut_point(r[live], risk_cut)
    high_value, high_risk = v > v_cut, r > r_cut
    names = np.array([CELLS[("low", "low")], CELLS[("low", "high")], CELLS[("high", "low")],
                      CELLS[("high", "high")], CHURNED], dtype=object)
    # 2 * value tier + risk tier picks the cell; the churned are their own group
    code = np.where(live, 2 * high_value + high_risk, 4)
    tiers = np.array(["low", "high"], dtype=object)
    out = pd.DataFrame(
        {"value_tier": np.where(live, tiers[high_value.astype(int)], None),
         "risk_tier": np.where(live, tiers[high_risk.astype(int)], None),
         "cell": names[code]},
        index=value.index if isinstance(value, pd.Series) else None)
    out.attrs["cut_points"] = {"value": v_cut, "risk": r_cut}
    return out


def matrix_table(customers: pd.DataFrame) -> pd.DataFrame:
    """Per-cell totals: customers and the money at stake (``matrix.csv``).

    Parameters
    ----------
    customers : pandas.DataFrame, shape (n, k)
        One row per customer with ``cell`` and the columns of :data:`MONEY` (currency).

    Returns
    -------
    pandas.DataFrame, shape (6, 8)
        One row per cell in :data:`CELL_ORDER` (empty cells included, with zeros) and a
        ``total`` row: ``cell``, ``customers``, ``share_of_customers``, then the sums of
        :data:`MONEY`. Revenue at risk = lapsed + preventable in every row.
    """
    counts = customers.groupby("cell", observed=True).size()
    return matrix_from_totals(counts, micro_sums(customers, "cell", MONEY))


def matrix_from_totals(counts: pd.Series, micro: pd.DataFrame) -> pd.DataFrame:
    """:func:`matrix_table` from each cell's count and exact sums of micro-units
    (:mod:`clvtools.targeting.money_totals`), however they were summed (pandas, Spark).

    Parameters
    ----------
    counts : pandas.Series of int
        Customers per cell, indexed by cell.
    micro : pandas.DataFrame of int
        Per cell (same index), the micro-units of each column of :data:`MONEY`.

    Returns
    -------
    pandas.DataFrame
        :func:`matrix_table`'s table: each sum, the total's included, converted to currency
        once from its exact integer.
    """
    cells = list(CELL_ORDER)
    exact = {c: [int(micro[c].get(cell, 0)) for cell in cells] for c in MONEY}
    customers = [int(counts.get(cell, 0)) for cell in cells]
    table = pd.DataFrame(
        {"customers": customers + [sum(customers)],
         **{c: [from_micro(v) for v in [*totals, sum(totals)]] for c, totals in exact.items()}},
        index=pd.Index([*cells, "total"], name="cell"))
    table["customers"] = table["customers"].astype("int64")
    table.insert(1, "share_of_customers", table["customers"] / max(int(counts.sum()), 1))
    return table.reset_index()


def concentration(expected_revenue: pd.Series) -> pd.DataFrame:
    """How concentrated value is: the share of expected revenue held by the top customers,
    and the Gini coefficient (``concentration.csv``, the 80/20 table).

    Parameters
    ----------
    expected_revenue : array_like, shape (n,)
        Expected revenue per customer (currency, >= 0).

    Returns
    -------
    pandas.DataFrame, shape (6, 4)
        ``measure`` (``top_1pct`` ... ``top_50pct``, then ``gini``), ``customers`` (in the
        top group; all for the Gini row), ``expected_revenue`` (theirs, currency) and
        ``value`` (their share of the total; the Gini coefficient in [0, 1]).
    """
    x = np.sort(np.asarray(expected_revenue, dtype=float))[::-1]
    n, total = len(x), float(x.sum())
    cumulative = np.concatenate([[0.0], np.cumsum(x)])
    # sum(i x_i) over the ascending values, i = 1..n
    return concentration_table(n, total, cumulative[concentration_ranks(n)],
                               float(np.sum(np.arange(1, n + 1) * x[::-1])))


def concentration_ranks(customers: int) -> np.ndarray:
    """How many of the most valuable customers each top group of :func:`concentration`
    holds, shape (len(TOP_PERCENTS),)."""
    return np.array([int(np.ceil(pct / 100 * customers)) for pct in TOP_PERCENTS], dtype=int)


def concentration_table(customers: int, total: float, top_sums, ascending_weighted: float
                        ) -> pd.DataFrame:
    """:func:`concentration`'s table from its sums (computed here or in chunks elsewhere).

    Parameters
    ----------
    customers : int
    total : float
        The expected revenue of all customers (currency).
    top_sums : array_like, shape (len(TOP_PERCENTS),)
        The expected revenue of the top :func:`concentration_ranks` customers (currency).
    ascending_weighted : float
        sum(i x_i) over the values in ascending order, i = 1..n (currency).
    """
    n = customers
    rows = [(f"top_{pct}pct", int(k), float(held), held / total if total else np.nan)
            for pct, k, held in zip(TOP_PERCENTS, concentration_ranks(n), top_sums,
                                    strict=True)]
    # Gini of the ascending values: 2 sum(i x_i) / (n sum x) - (n + 1) / n
    gini = 2 * ascending_weighted / (n * total) - (n + 1) / n if n and total else np.nan
    rows.append(("gini", n, total, gini))
    return pd.DataFrame(rows, columns=["measure", "customers", "expected_revenue", "value"])

"""The value-versus-risk matrix: customers on value and risk with the cut lines and the four
cells (binned: a hexbin, never a million points), per-cell totals, a P(alive) map over
frequency and recency, and value concentration (Lorenz curve and the 80/20 table)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...pipeline import AnalysisResult
from ...targeting.matrix import CELLS, CHURNED
from ..blocks import Paragraph, Section
from ..figures import MONEY, PALETTE, draw_chart, log_labels, percent_axis, short_number
from ..tables import count, fmt, money, percent, table
from ._words import horizon, units

__all__ = ["section", "cells_table", "cuts_in_words", "matrix_chart", "p_alive_chart",
           "lorenz_chart", "concentration_table", "AliveGrid", "alive_edges", "alive_grid",
           "lorenz_ranks", "lorenz_curve"]

#: Hexagons across the risk axis.
_GRID = 40
#: Bins of the P(alive) map on each axis, and the fewest customers a bin is shown with.
_MAP_BINS, _MAP_MIN = 24, 3
#: Points drawn of the Lorenz curve (the curve is read from sorted values at these shares).
_LORENZ_POINTS = 400
#: Where each cell's totals are written: (x, y) in axes fractions, alignment.
_CORNERS = {"protect": (0.98, 0.97, "right", "top"), "maintain": (0.02, 0.97, "left", "top"),
            "retain_cheaply": (0.98, 0.03, "right", "bottom"),
            "monitor": (0.02, 0.03, "left", "bottom")}
_VALUE_AXIS = {"revenue_if_retained": "revenue if retained", "expected_revenue":
               "expected revenue"}


def matrix_chart(live: pd.DataFrame, value_axis: str, value_cut: float, risk_cut: float,
                 cells: pd.DataFrame, settings, weight: str | None = None):
    """Live customers on churn probability (x) and value (y, log scale), binned as hexagons,
    with the cut lines and each cell's customers and revenue at risk.

    ``weight``: a column of ``live`` counting the customers each row stands for (rows already
    binned finely elsewhere, e.g. in DuckDB); None: a row per customer.
    """
    risk = live["churn_probability"].to_numpy(float)
    value = live[value_axis].to_numpy(float)
    keep = np.isfinite(risk) & np.isfinite(value)
    risk, value = risk[keep], value[keep]
    counts = None if weight is None else live[weight].to_numpy(float)[keep]
    floor = max(0.01, float(np.nanmin(value[value > 0])) if (value > 0).any() else 0.01)
    value = np.maximum(value, floor)
    by_cell = cells.set_index("cell")
    name = _VALUE_AXIS.get(value_axis, value_axis.replace("_", " "))

    def draw(fig):
        ax = fig.subplots()
        bins = ax.hexbin(risk, value, C=counts, reduce_C_function=np.sum, gridsize=_GRID,
                         yscale="log", bins="log", mincnt=1,
                         cmap="Blues", linewidths=0.2, extent=(0, 1, np.log10(floor),
                                                               np.log10(value.max() * 1.05)))
        bar = fig.colorbar(bins, ax=ax, fraction=0.04)
        bar.set_label("customers per hexagon (log scale)")
        log_labels(bar.ax.yaxis, lambda v: f"{v:,.0f}")
        log_labels(ax.yaxis, short_number)
        ax.axvline(risk_cut, color=PALETTE[1], lw=2)
        ax.axhline(max(value_cut, floor), color=PALETTE[1], lw=2)
        for cell, (x, y, ha, va) in _CORNERS.items():
            if cell not in by_cell.index:
                continue
            row = by_cell.loc[cell]
            ax.text(x, y, f"{cell.replace('_', ' ')}\n{count(row['customers'])} customers\n"
                    f"at risk {money(row['revenue_at_risk'])}", transform=ax.transAxes,
                    ha=ha, va=va, fontsize=10, fontweight="bold",
                    bbox={"boxstyle": "round", "fc": "white", "ec": PALETTE[1], "alpha": 0.9})
        ax.set_xlim(0, 1)
        percent_axis(ax.xaxis)
        ax.set_xlabel(f"churn probability within {horizon(settings)}")
        ax.set_ylabel(f"{name} ({MONEY}, log scale)")
        ax.grid(False)

    return draw_chart(
        "The value-versus-risk matrix",
        f"Each hexagon counts the live customers with that churn probability and {name}; the "
        "orange lines are the cut points, and each corner gives its cell's customers and "
        "revenue at risk (protect: high value, high risk).", draw, height=5.2)


@dataclass(frozen=True)
class AliveGrid:
    """The P(alive) map's bins: edges and the customers and P(alive) summed in each.

    Attributes
    ----------
    x_edges : numpy.ndarray, shape (columns + 1,)
        Frequency edges (whole repeat purchases); the last column holds ``top`` or more.
    y_edges : numpy.ndarray, shape (:data:`_MAP_BINS` + 1,)
        Recency edges (time units).
    customers, alive_sum : numpy.ndarray, shape (columns, :data:`_MAP_BINS`)
        Customers counted and their P(alive) summed in each bin.
    top : float
        The frequency the last column starts at (the 99th percentile, rounded up).
    """

    x_edges: np.ndarray
    y_edges: np.ndarray
    customers: np.ndarray
    alive_sum: np.ndarray
    top: float

    @property
    def mean(self) -> np.ndarray:
        """Mean P(alive) per bin, NaN where fewer than :data:`_MAP_MIN` customers."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.customers >= _MAP_MIN, self.alive_sum / self.customers,
                            np.nan)


def alive_edges(frequency_q99: float, recency_max: float) -> tuple[float, np.ndarray,
                                                                   np.ndarray]:
    """The P(alive) map's ``top`` and bin edges from the 99th percentile of frequency and the
    largest recency (of the customers with all three figures finite)."""
    top = max(1.0, float(np.ceil(frequency_q99)))
    step = max(1, int(np.ceil((top + 1) / _MAP_BINS)))   # whole purchases per column
    x_edges = np.arange(0, top + 1 + step, step)
    y_edges = np.linspace(0, max(1.0, float(recency_max)), _MAP_BINS + 1)
    return top, x_edges, y_edges


def alive_grid(customers: pd.DataFrame) -> AliveGrid:
    """The P(alive) map's bins from a row per customer (``frequency``, ``recency``,
    ``p_alive``)."""
    frequency = customers["frequency"].to_numpy(float)
    recency = customers["recency"].to_numpy(float)
    p_alive = customers["p_alive"].to_numpy(float)
    keep = np.isfinite(frequency) & np.isfinite(recency) & np.isfinite(p_alive)
    frequency, recency, p_alive = frequency[keep], recency[keep], p_alive[keep]
    top, x_edges, y_edges = alive_edges(np.quantile(frequency, 0.99), recency.max())
    clipped = np.minimum(frequency, top)
    # each customer's bin found once for both sums (histogram2d, called twice, searched the
    # edges twice: 0.15 CPU-s at 1M customers against 0.09); np.bincount adds in the order
    # histogram2d does, so the sums are its own bit for bit
    column, row = _bin_of(clipped, x_edges), _bin_of(recency, y_edges)
    inside = (column >= 0) & (row >= 0)
    flat = column[inside] * (len(y_edges) - 1) + row[inside]
    shape = (len(x_edges) - 1, len(y_edges) - 1)
    size = shape[0] * shape[1]
    customers_in = np.bincount(flat, minlength=size).astype(float).reshape(shape)
    alive_sum = np.bincount(flat, weights=p_alive[inside], minlength=size).reshape(shape)
    return AliveGrid(x_edges, y_edges, customers_in, alive_sum, top)


def _bin_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value between increasing ``edges``, as :func:`numpy.histogram2d`
    counts it (each bin holds its left edge, the last also its right one), -1 outside."""
    bins = np.searchsorted(edges, values, side="right") - 1
    bins[values == edges[-1]] = len(edges) - 2
    bins[(bins < 0) | (bins >= len(edges) - 1)] = -1
    return bins


def p_alive_chart(customers: pd.DataFrame | AliveGrid, settings):
    """Mean P(alive) of the customers in each bin of frequency and recency (from a row per
    customer, or from the bins counted elsewhere)."""
    grid = customers if isinstance(customers, AliveGrid) else alive_grid(customers)
    x_edges, y_edges, mean, top = grid.x_edges, grid.y_edges, grid.mean, grid.top

    def draw(fig):
        ax = fig.subplots()
        mesh = ax.pcolormesh(x_edges, y_edges, mean.T, cmap="RdYlGn", vmin=0, vmax=1)
        bar = fig.colorbar(mesh, ax=ax, fraction=0.04)
        bar.set_label("mean P(alive)")
        percent_axis(bar.ax.yaxis)
        ax.set_xlabel(f"repeat purchases (frequency; the last column: {top:g} or more)")
        ax.set_ylabel(f"recency: first to last purchase ({units(settings)})")
        ax.grid(False)

    return draw_chart(
        "P(alive) by frequency and recency",
        "The value model's probability that a customer is still buying, averaged over the "
        f"customers in each cell (cells of fewer than {_MAP_MIN} customers left blank): "
        "customers who bought often but not for a long time (low recency for their frequency) "
        "are the ones it thinks have quietly left.", draw, height=4.4)


def lorenz_ranks(customers: int) -> np.ndarray:
    """How many of the most valuable customers each point of the Lorenz curve covers, shape
    (:data:`_LORENZ_POINTS` + 2,): the curve's points, then the top 20 %."""
    shares = np.linspace(0, 1, _LORENZ_POINTS + 1)
    return np.append(np.round(shares * customers).astype(int), int(round(0.2 * customers)))


def lorenz_curve(expected_revenue: pd.Series) -> np.ndarray:
    """The share of expected revenue held by the top customers at each of
    :func:`lorenz_ranks` (negative values counted as 0, non-finite ones left out)."""
    values = np.sort(np.clip(expected_revenue.to_numpy(float), 0, None))[::-1]
    values = values[np.isfinite(values)]
    total = values.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / (total if total > 0 else 1.0)
    return cumulative[lorenz_ranks(len(values))]


def lorenz_chart(expected_revenue: pd.Series | np.ndarray, settings):
    """The Lorenz curve of expected revenue: the share held by the top customers (from a
    value per customer, or from :func:`lorenz_curve`'s shares computed elsewhere)."""
    held = (np.asarray(expected_revenue, float) if isinstance(expected_revenue, np.ndarray)
            else lorenz_curve(expected_revenue))
    shares = np.linspace(0, 1, _LORENZ_POINTS + 1)
    curve, at20 = held[:-1], float(held[-1])

    def draw(fig):
        ax = fig.subplots()
        ax.plot(shares, curve, color=PALETTE[0], lw=2.5, label="customers, most valuable first")
        ax.plot([0, 1], [0, 1], color="#888888", ls="--", lw=1, label="equal shares")
        ax.plot([0.2, 0.2, 0], [0, at20, at20], color=PALETTE[1], lw=1)
        ax.annotate(f"top 20 % hold {100 * at20:.0f} %", (0.2, at20), xytext=(0.3, at20 - 0.12),
                    color=PALETTE[1], fontweight="bold",
                    arrowprops={"arrowstyle": "->", "color": PALETTE[1]})
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        percent_axis(ax.xaxis)
        percent_axis(ax.yaxis)
        ax.set_xlabel("share of customers")
        ax.set_ylabel(f"share of expected revenue\n(next {horizon(settings)})")
        ax.legend(loc="lower right")

    return draw_chart(
        "Value concentration",
        "The Lorenz curve: the share of the expected revenue held by the most valuable "
        "customers; the further above the diagonal, the more the revenue rests on a few.",
        draw, height=4.2, width=6.5)


def cuts_in_words(settings, value_cut: float | None, risk_cut: float | None) -> str:
    """How the live customers are cut into the four cells, in words."""
    cells = ", ".join(f"{cell.replace('_', ' ')} ({v} value, {k} risk)"
                      for (v, k), cell in CELLS.items())
    value = money(value_cut) if value_cut is not None else settings.value_cut
    risk = f"{risk_cut:.0%}" if risk_cut is not None else settings.risk_cut
    name = _VALUE_AXIS.get(settings.value_axis, settings.value_axis)
    return (f"The live customers (not yet declared churned) are cut by value ({name} above "
            f"{value} is high) and by churn probability (above {risk} is high) into four "
            f"cells: {cells}; the customers already declared churned form the group "
            f"'{CHURNED}', the win-back population.")


def cells_table(matrix: pd.DataFrame, s):
    """matrix.csv as a table: per cell and in total."""
    return table(matrix, s, "Per cell and in total: customers, and money over the next "
                 f"{horizon(s)} (revenue at risk = lapsed + preventable).",
                 formats={"share_of_customers": "percent", "revenue_if_retained": "money",
                          "expected_revenue": "money", "revenue_at_risk": "money",
                          "lapsed_revenue": "money", "preventable_revenue": "money"})


def concentration_table(concentration: pd.DataFrame, s):
    """concentration.csv as a table (the 80/20 table)."""
    c = concentration
    gini = c["measure"] == "gini"
    frame = c.assign(measure=c["measure"].str.replace("pct", " %").str.replace("_", " "),
                     value=[fmt(v) if g else percent(v)
                            for v, g in zip(c["value"], gini, strict=True)])
    return table(frame, s, "The share of expected revenue held by the top customers, and "
                 "the Gini coefficient (0: everyone alike, 1: one customer holds all).",
                 formats={"expected_revenue": "money", "value": "text"},
                 headers={"value": "share (Gini)"})


def section(r: AnalysisResult) -> Section:
    """The matrix section."""
    s, t = r.settings, r.targets
    customers = t.customers
    out = Section("matrix", "Value and risk")
    value_cut, risk_cut = t.summary.get("value_cut_point"), t.summary.get("risk_cut_point")
    out.add(Paragraph(cuts_in_words(s, value_cut, risk_cut)))
    # the two columns drawn, not a copy of the whole table (half the CPU time of this line:
    # 0.04 against 0.02 s at 300,000 customers)
    live = customers.loc[customers["cell"] != CHURNED, ["churn_probability", s.value_axis]]
    if (len(live) and value_cut is not None and risk_cut is not None
            and live["churn_probability"].notna().any()):
        out.add(matrix_chart(live, s.value_axis, float(value_cut), float(risk_cut), t.matrix,
                             s))
    if t.matrix is not None:
        out.add(cells_table(t.matrix, s))
    if len(customers):
        out.add(p_alive_chart(customers, s))
        out.add(lorenz_chart(customers["expected_revenue"], s))
    if t.concentration is not None:
        out.add(concentration_table(t.concentration, s))
    return out

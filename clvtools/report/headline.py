"""The headline figures of a run: what a manager reads first, in words and numbers.

The console's summary table prints them; the HTML report may show the same list. Money is
rounded to whole units and carries no currency symbol (the data do not say which).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pipeline import AnalysisResult

__all__ = ["Figure", "headline"]


@dataclass(frozen=True)
class Figure:
    """One headline figure.

    Attributes
    ----------
    label : str
        What it is, in a few words (with its period or unit).
    value : str
        The figure, formatted, with its qualifiers (``"118,162 (discounted)"``,
        ``"43.2 % within 52 weeks, mean of the live customers"``).
    """

    label: str
    value: str


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _percent(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def headline(result: AnalysisResult) -> list[Figure]:
    """The run's headline figures, in reading order.

    Customers (live and declared churned); expected revenue over the horizon and the revenue
    at risk in its lapsed and preventable parts (discounted, from the matrix's totals); the
    forecast's nominal revenue with its 80 % interval; the mean churn probability of the live
    customers; the plan's push and pull contacts, cost, expected net benefit and return.
    """
    s = result.settings
    customers = result.targets.customers
    churned = int((customers["cell"] == "churned").sum())
    horizon = f"{s.horizon:g} {s.time_unit}s"
    total = result.targets.matrix.set_index("cell").loc["total"]
    figures = [
        Figure("Customers", f"{len(customers):,} ({len(customers) - churned:,} live, "
                            f"{churned:,} declared churned)"),
        Figure(f"Expected revenue, {horizon}", f"{_money(total['expected_revenue'])} "
                                               "(discounted)"),
        Figure("Revenue at risk",
               f"{_money(total['revenue_at_risk'])}: {_money(total['lapsed_revenue'])} lapsed"
               f" + {_money(total['preventable_revenue'])} preventable"),
    ]
    forecast = None if result.forecast is None else result.forecast.table
    if forecast is not None:
        whole = forecast[(forecast["month"] == "all") & (forecast["segment"] == "total")]
        if len(whole):
            row = whole.iloc[0]
            figures.append(Figure(
                f"Forecast revenue, {horizon}",
                f"{_money(row['expected_revenue'])} nominal (80 %: "
                f"{_money(row['expected_revenue_lo80'])} to "
                f"{_money(row['expected_revenue_hi80'])})"))
    risk = customers["churn_probability"].to_numpy(dtype=float, na_value=np.nan)
    if np.isfinite(risk).any():
        figures.append(Figure("Churn probability", f"{_percent(np.nanmean(risk))} within "
                                                   f"{horizon}, mean of the live customers"))
    plan = result.targets.summary
    ret = plan.get("return_on_spend")
    figures += [
        Figure("Contacts", f"{plan['push']:,} push, {plan['pull']:,} pull "
                           f"({plan['push_control']:,} and {plan['pull_control']:,} held out "
                           "as control)"),
        Figure("Cost of the plan", _money(plan["cost"])),
        Figure("Expected net benefit", _money(plan["expected_net_benefit"])
               + (f" (return on spend {_percent(ret, 0)})"
                  if ret is not None and np.isfinite(ret) else "")),
    ]
    return figures

"""The forecast: monthly expected revenue, revenue if no churn and loss to churn as a fan chart
with 80 % and 95 % bands, the month-by-month table and the backtest (forecast.csv,
forecast_backtest.csv)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Paragraph, Section
from ..figures import MONEY, PALETTE, draw_chart, money_axis
from ..tables import count, money, table
from ._words import horizon

__all__ = ["section", "section_from", "fan_chart"]

_TOTAL, _ALL = "total", "all"


def _charted(months: pd.DataFrame) -> pd.DataFrame:
    """The months drawn: those of which the horizon covers at least half (a month cut to a
    few days would read as a collapse of revenue; the table keeps it)."""
    if "days" not in months:
        return months
    length = pd.to_datetime(months["month"] + "-01").dt.days_in_month
    return months[months["days"].to_numpy() * 2 >= length.to_numpy()]


def fan_chart(months: pd.DataFrame):
    """Expected revenue per month with its 80 % and 95 % bands, the revenue if no customer
    churned, and the expected loss to churn with its bands (months the horizon covers less
    than half of are left out)."""
    months = _charted(months)
    labels = months["month"].astype(str).tolist()
    x = np.arange(len(labels))
    partial = months["partial"].astype(bool).to_numpy() if "partial" in months else np.zeros(
        len(x), bool)

    def band(ax, column, colour, name):
        ax.fill_between(x, months[f"{column}_lo95"], months[f"{column}_hi95"], color=colour,
                        alpha=0.15, lw=0, label=f"{name}: 95 % band")
        ax.fill_between(x, months[f"{column}_lo80"], months[f"{column}_hi80"], color=colour,
                        alpha=0.3, lw=0, label=f"{name}: 80 % band")
        ax.plot(x, months[column], color=colour, lw=2.5, label=f"{name}: expected")
        ax.plot(x[partial], months[column].to_numpy(float)[partial], "o", color=colour,
                mfc="white")

    def draw(fig):
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        band(top, "expected_revenue", PALETTE[0], "revenue")
        top.plot(x, months["revenue_if_retained"], color=PALETTE[2], lw=2, ls="--",
                 label="revenue if no customer churned")
        top.set_ylim(0, 1.35 * _top(months[["expected_revenue_hi95", "revenue_if_retained"]]))
        money_axis(top.yaxis)
        top.set_ylabel(f"revenue per month\n({MONEY})")
        top.legend(loc="upper left", ncols=2, fontsize=9)
        band(bottom, "expected_loss", PALETTE[1], "loss to churn")
        bottom.set_ylim(0, 1.3 * _top(months[["expected_loss_hi95"]]))
        money_axis(bottom.yaxis)
        bottom.set_ylabel(f"loss to churn per month\n({MONEY})")
        bottom.legend(loc="upper left", ncols=3, fontsize=9)
        step = max(1, int(np.ceil(len(labels) / 12)))
        bottom.set_xticks(x[::step], labels[::step])
        bottom.set_xlabel("calendar month (an open circle: a month the horizon cuts short)")

    return draw_chart(
        "Revenue forecast by month",
        "Expected revenue of today's customers per calendar month (nominal) with its 80 % and "
        "95 % intervals (customers' randomness and the models' parameter uncertainty), against "
        "the revenue if nobody churned; below, the revenue expected to be lost to churn (a "
        "month the horizon covers less than half of is in the table only).", draw,
        height=5.8)


def _top(frame: pd.DataFrame) -> float:
    """The largest finite value (1 when there is none: a base too small to forecast has
    empty intervals, and the axis still needs a range)."""
    values = frame.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size and values.max() > 0 else 1.0


def _span(months: pd.DataFrame) -> str:
    return "" if months.empty else f"{months['month'].iloc[0]} to {months['month'].iloc[-1]}"


def section(r: AnalysisResult) -> Section | None:
    """The forecast section; None when the run has no forecast."""
    return section_from(r.settings, r.forecast, r.backtest)


def section_from(s, forecast, backtest_result) -> Section | None:
    """The forecast section of any run, from its forecast and backtest results (each with a
    ``table``: forecast.csv and forecast_backtest.csv); None without a forecast."""
    if forecast is None or forecast.table is None or forecast.table.empty:
        return None
    frame = forecast.table
    total = frame[frame["segment"] == _TOTAL]
    months, whole = total[total["month"] != _ALL], total[total["month"] == _ALL]
    out = Section("forecast", "Forecast")
    if len(whole):
        w = whole.iloc[0]
        out.add(Paragraph(
            f"Over the next {horizon(s)} ({_span(months)}), today's customers are expected to "
            f"bring {money(w['expected_revenue'])} (80 %: {money(w['expected_revenue_lo80'])} "
            f"to {money(w['expected_revenue_hi80'])}; 95 %: {money(w['expected_revenue_lo95'])}"
            f" to {money(w['expected_revenue_hi95'])}), against "
            f"{money(w['revenue_if_retained'])} if none churned: {money(w['expected_loss'])} "
            f"is expected to be lost to churn, and about {count(w['expected_churners'])} "
            "customers to be declared churned. Money here is nominal (not discounted)."))
    if len(months):
        out.add(fan_chart(months))
    shown = ["month", "expected_revenue", "expected_revenue_lo80", "expected_revenue_hi80",
             "revenue_if_retained", "expected_loss", "expected_churners", "saved_by_plan"]
    money_formats = {c: "money" for c in shown if c not in ("month", "expected_churners")}
    out.add(table(total, s, "Per month and for the whole horizon (all), in total "
                  "(forecast.csv also has each matrix cell and the 95 % bounds).",
                  columns=shown, formats={**money_formats, "expected_churners": "count",
                                          "month": "text"},
                  headers={"expected_revenue_lo80": "80 % low",
                           "expected_revenue_hi80": "80 % high"}))
    backtest = backtest_result.table if backtest_result is not None else None
    if backtest is not None and len(backtest):
        whole_backtest = backtest[backtest["month"] == _ALL]
        covered = backtest[backtest["month"] != _ALL]
        out.add(table(whole_backtest, s, f"The forecast made at earlier origins against what "
                      f"followed (forecast_backtest.csv): over {len(covered)} months, the 80 % "
                      f"interval covered {int(covered['covered_80'].sum())} and the 95 % "
                      f"interval {int(covered['covered_95'].sum())}.",
                      columns=["origin", "expected_revenue",
                               "expected_revenue_lo80", "expected_revenue_hi80",
                               "actual_revenue", "relative_error", "covered_80", "covered_95"],
                      formats={"expected_revenue": "money", "expected_revenue_lo80": "money",
                               "expected_revenue_hi80": "money", "actual_revenue": "money",
                               "relative_error": "percent"},
                      headers={"expected_revenue_lo80": "80 % low",
                               "expected_revenue_hi80": "80 % high"}))
    return out

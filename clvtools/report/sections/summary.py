"""The summary a manager reads in one minute: four numbers, the plan, three things to do.

Every figure is read from the run's tables (the matrix's totals, the plan's summary, the KPIs,
the lists); the sentences only put them in words.
"""
from __future__ import annotations

import math

import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Headline, Items, Note, Number, Paragraph, Section
from ..tables import count, money, percent
from ._words import horizon

__all__ = ["section", "headline_section", "churn_trend", "things_to_do", "things_to_do_from",
           "TODO_TITLE", "WARNING_TOP"]

#: A change of the churn rate smaller than this share of its level reads as "stable".
_STABLE = 0.10
#: Complete KPI periods averaged on each side of the trend.
_TREND_PERIODS = 3
#: The first customers of the early-warning list whose value at stake the summary adds.
WARNING_TOP = 20
#: The title of the summary's list of things to do.
TODO_TITLE = "Three things to do this month"


def churn_trend(kpis: pd.DataFrame, period: str = "period") -> tuple[float, str, str] | None:
    """The latest complete period's churn rate and its trend in words.

    Parameters
    ----------
    kpis : pandas.DataFrame
        ``kpis.csv``: ``label``, ``churn_rate``, ``complete``.
    period : str
        The KPI period in words (``month``).

    Returns
    -------
    (rate, label, trend) or None
        The churn rate of the last complete period (a share), its label, and a phrase
        comparing the mean of the last :data:`_TREND_PERIODS` complete periods with the
        same number before them; None without a complete period with a churn rate.
    """
    done = kpis[kpis["complete"].astype(bool) & kpis["churn_rate"].notna()]
    if done.empty:
        return None
    rate, label = float(done["churn_rate"].iloc[-1]), str(done["label"].iloc[-1])
    if len(done) < 2 * _TREND_PERIODS:
        return rate, label, "too few periods for a trend"
    recent = float(done["churn_rate"].iloc[-_TREND_PERIODS:].mean())
    before = float(done["churn_rate"].iloc[-2 * _TREND_PERIODS:-_TREND_PERIODS].mean())
    if before > 0 and abs(recent - before) <= _STABLE * before:
        word = "stable"
    else:
        word = "rising" if recent > before else "falling"
    return rate, label, (f"{word}: {percent(recent)} a {period} over the last "
                         f"{_TREND_PERIODS} against {percent(before)} over the "
                         f"{_TREND_PERIODS} before")


def _plan_sentence(summary: dict) -> str:
    push, pull = summary.get("push", 0), summary.get("pull", 0)
    if not push and not pull:
        return ("The plan contacts nobody: at the assumed costs and uplifts no push or pull "
                "offer is expected to pay for itself (see the sensitivity table).")
    ret = summary.get("return_on_spend", float("nan"))
    ret_text = "" if not math.isfinite(ret) else f", a return of {ret:.2f} per unit spent"
    control = summary.get("push_control", 0) + summary.get("pull_control", 0)
    held = (f" A control group of {count(control)} customers is held out at random and not "
            "contacted, so that the campaign can be measured." if control else "")
    return (f"The plan: push retention (proactive, high-touch) to {count(push)} customers and "
            f"pull retention (a cheap broad offer) to {count(pull)}, for an expected cost of "
            f"{money(summary['cost'])}, expected saved revenue of "
            f"{money(summary['expected_saved_revenue'])} and an expected net benefit of "
            f"{money(summary['expected_net_benefit'])}{ret_text}.{held}")


def _list_totals(targets: pd.DataFrame | None, action: str) -> tuple[int, float, float]:
    if targets is None:
        return 0, 0.0, 0.0
    chosen = targets[targets["action"] == action]
    return (len(chosen), float(chosen["expected_net_benefit"].sum()),
            float(chosen["expected_cost"].sum()))


def things_to_do(r: AnalysisResult) -> list[str]:
    """The three things to do this month, from the plan and the lists, most valuable first
    (:func:`things_to_do_from`)."""
    t = r.targets
    warning, win_back = t.early_warning, t.win_back
    warned = None
    if warning is not None and len(warning):
        top = warning.head(WARNING_TOP)
        warned = (len(warning), len(top), float(top["value_at_stake"].sum()))
    worth = None
    if win_back is not None and len(win_back):
        paying = win_back[win_back["net_benefit"] > 0]
        worth = (len(paying), float(paying["lapsed_revenue"].sum()))
    return things_to_do_from(_list_totals(t.targets, "push"), _list_totals(t.targets, "pull"),
                             warned, worth)


def things_to_do_from(push: tuple[int, float, float], pull: tuple[int, float, float],
                      early_warning: tuple[int, int, float] | None,
                      win_back: tuple[int, float] | None) -> list[str]:
    """The three things to do this month from the lists' totals, most valuable first.

    Push, then pull, then the early-warning list, then the win-back list: the first three
    that the run has something for.

    Parameters
    ----------
    push, pull : (int, float, float)
        The action's customers in targets.csv, their expected net benefit and expected cost
        (currency).
    early_warning : (int, int, float) or None
        The list's customers, the first :data:`WARNING_TOP` of them counted, and their value
        at stake (currency); None: no list.
    win_back : (int, float) or None
        The churned customers for whom a reactivation offer pays, and their lapsed revenue
        (currency); None: no list.
    """
    todo = []
    n, net, cost = push
    if n:
        todo.append(f"Call the {count(n)} push customers of targets.csv, in priority order: "
                    f"a personal offer to each, expected net benefit {money(net)} for a cost "
                    f"of {money(cost)}. Their reasons are in the columns reason_1 to reason_3.")
    n, net, cost = pull
    if n:
        todo.append(f"Send the pull offer to the {count(n)} pull customers of targets.csv: "
                    f"expected net benefit {money(net)} for a cost of {money(cost)}.")
    if early_warning is not None and early_warning[0]:
        listed, top, at_stake = early_warning
        todo.append(f"Look at the early-warning list first thing: {count(listed)} "
                    f"customers became riskier since the last period; the top "
                    f"{count(top)} hold {money(at_stake)} of value at "
                    "stake, and early_warning.csv says which drivers moved.")
    if win_back is not None and win_back[0]:
        todo.append(f"Make a reactivation offer to the {count(win_back[0])} churned "
                    f"customers for whom one pays (win_back.csv): lapsed revenue "
                    f"{money(win_back[1])}.")
    return todo[:3]


def section(r: AnalysisResult) -> Section:
    """The summary section."""
    out = headline_section(r.settings, r.timeline, r.targets.matrix, r.kpi.kpis,
                           r.targets.summary)
    todo = things_to_do(r)
    if todo:
        out.add(Items(todo, numbered=True, title=TODO_TITLE))
    for warning in r.warnings():
        out.add(Note(warning))
    return out


def headline_section(s, timeline, matrix: pd.DataFrame, kpis: pd.DataFrame,
                     plan_summary: dict) -> Section:
    """The summary section's opening of any run: the base's date, the four numbers and the
    plan in a sentence, from matrix.csv, kpis.csv and plan_summary.csv."""
    total = matrix.set_index("cell").loc["total"]
    live = int(total["customers"] - matrix.set_index("cell")["customers"].get("churned", 0))
    out = Section("summary", "Summary")
    out.add(Paragraph(
        f"Customer base as of {timeline.observation_end.isoformat()} (data from "
        f"{timeline.first_date.isoformat()}); money over the next {horizon(s)}, discounted "
        f"at {percent(s.discount_rate, 0)} a year, in the data's currency."))
    numbers = [
        Number("Customers", count(total["customers"]),
               f"{count(live)} still live, {count(total['customers'] - live)} declared churned "
               f"(no purchase for {s.churn_after:g} {s.time_unit}s)"),
        Number(f"Expected revenue, next {horizon(s)}", money(total["expected_revenue"]),
               f"{money(total['revenue_if_retained'])} if every customer kept buying"),
        Number("Revenue at risk", money(total["revenue_at_risk"]),
               f"lapsed {money(total['lapsed_revenue'])} (already quietly gone: win back), "
               f"preventable {money(total['preventable_revenue'])} (still buying: retain)"),
    ]
    trend = churn_trend(kpis, s.kpi_period)
    if trend is not None:
        rate, label, words = trend
        numbers.append(Number(f"Churn rate per {s.kpi_period}", percent(rate),
                              f"in {label}, the last complete {s.kpi_period}; {words}"))
    out.add(Headline(numbers))
    out.add(Paragraph(_plan_sentence(plan_summary)))
    return out


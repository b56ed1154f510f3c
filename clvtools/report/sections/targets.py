"""Targets: the push and pull plan in figures, its sensitivity to the assumptions, the top of
each list (push, pull, early warning, win-back), the control group's power and the targeting
evaluated out of time (plan_summary.csv, sensitivity.csv, targets.csv, early_warning.csv,
win_back.csv, control_power.csv, targeting_evaluation.csv, profit_curve.csv)."""
from __future__ import annotations

import math

import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Paragraph, Section
from ..figures import MONEY, PALETTE, draw_chart, label_text, money_axis, percent_axis
from ..tables import count, fmt, key_values, money, percent, table

__all__ = ["section", "assumptions", "plan_figures", "control_power_table",
           "sensitivity_chart", "sensitivity_blocks", "profit_chart", "list_tables", "TOP"]

#: Rows shown of each list (the files hold them all).
TOP = 10
#: Attribute columns shown beside a list (the first ones).
_ATTRIBUTES = 3
_RANKINGS = {"model": "the plan's ranking (expected net benefit of push)",
             "churn_probability": "churn probability", "revenue_at_risk": "revenue at risk",
             "random": "random"}
_SCENARIOS = {"uplift_and_reactivation": "uplifts and reactivation rates scaled",
              "push_capacity": "push capacity moved", "push_budget": "push budget moved",
              "total_budget": "total budget moved", "push_count": "push count capped"}


def plan_figures(summary: dict, settings):
    """plan_summary.csv's figures in words, as a key-value table."""
    limit = summary.get("limit")
    pairs = [
        ("push customers (contacted)", count(summary.get("push", 0))),
        ("pull customers (contacted)", count(summary.get("pull", 0))),
        ("held out as control (push, pull)",
         f"{count(summary.get('push_control', 0))}, {count(summary.get('pull_control', 0))}"),
        ("no action", count(summary.get("none", 0))),
        ("not contactable", count(summary.get("not_contactable", 0))),
        ("cost (push, pull)", f"{money(summary.get('cost'))} ({money(summary.get('push_cost'))}"
                              f", {money(summary.get('pull_cost'))})"),
        ("expected saved revenue", money(summary.get("expected_saved_revenue"))),
        ("expected net benefit", money(summary.get("expected_net_benefit"))),
        ("return on spend (net benefit per unit of cost)",
         _ratio(summary.get("return_on_spend"))),
        ("net benefit forgone by the control group",
         money(summary.get("control_forgone_net_benefit"))),
        ("constraint", f"{summary.get('constraint', '')}"
                       f"{'' if limit is None or pd.isna(limit) else ' ' + fmt(limit)}"),
        ("solver (gap to the best possible)",
         f"{summary.get('solver', '')} ({money(summary.get('gap'))})"),
        ("offer", f"{summary.get('offer', '')}, margin {fmt(summary.get('margin'))}"),
    ]
    return key_values(pairs, settings, "The plan in figures (plan_summary.csv).")


def _ratio(value) -> str:
    return "" if value is None or not math.isfinite(float(value)) else f"{float(value):.2f}"


def sensitivity_chart(sensitivity: pd.DataFrame):
    """Expected net benefit and push count as the assumptions are scaled."""
    def draw(fig):
        left, right = fig.subplots(1, 2)
        for colour, (scenario, part) in zip(PALETTE, sensitivity.groupby("scenario", sort=False),
                                            strict=False):
            name = _SCENARIOS.get(scenario, scenario.replace("_", " "))
            left.plot(part["factor"], part["expected_net_benefit"], "o-", color=colour, lw=2,
                      label=name)
            right.plot(part["factor"], part["push"], "o-", color=colour, lw=2, label=name)
        for ax in (left, right):
            ax.axvline(1.0, color="#888888", lw=1, ls="--")
            ax.set_xlabel("factor applied to the assumption (1 = as set)")
        money_axis(left.yaxis)
        left.set_ylabel(f"expected net benefit ({MONEY})")
        left.set_ylim(0, None)
        right.set_ylabel("push customers")
        right.set_ylim(0, None)
        left.legend(loc="upper left")

    return draw_chart(
        "How the plan depends on its assumptions",
        "The plan recomputed with the uplifts and reactivation rates scaled, and with the push "
        "capacity or budget moved: expected net benefit (left) and push customers (right); "
        "the uplifts are assumptions until a campaign measures them.", draw, height=3.8)


def profit_chart(curve: pd.DataFrame):
    """Realised net benefit of pushing the top share of each ranking, out of time."""
    def draw(fig):
        ax = fig.subplots()
        for colour, ranking in zip(PALETTE, dict.fromkeys(curve["ranking"]), strict=False):
            part = curve[curve["ranking"] == ranking]
            ax.plot(part["share_targeted"], part["net_benefit"], color=colour,
                    lw=2.5 if ranking == "model" else 1.5,
                    label=label_text(_RANKINGS.get(ranking, ranking)))
        ax.axhline(0, color="black", lw=1)
        percent_axis(ax.xaxis)
        money_axis(ax.yaxis)
        ax.set_xlabel("share of the customers pushed, best ranked first")
        ax.set_ylabel(f"realised net benefit ({MONEY})")
        ax.legend(loc="lower left")

    return draw_chart(
        "Targeting evaluated out of time: the profit curve",
        "The plan chosen one horizon before the end, scored against what followed: the net "
        "benefit realised by pushing the top share of customers of each ranking (its peak is "
        "the best share to target).", draw, height=4.0)


def _count(targets: pd.DataFrame, action: str) -> int:
    return int((targets["action"] == action).sum())


def _reasons(targets: pd.DataFrame) -> list[str]:
    """The reason codes of each row in one cell, in order, empty ones left out."""
    columns = [c for c in ("reason_1", "reason_2", "reason_3") if c in targets]
    return ["; ".join(str(v) for v in row if isinstance(v, str) and v)
            for row in targets[columns].itertuples(index=False, name=None)]


def _attributes(frame: pd.DataFrame, after: str) -> list[str]:
    columns = list(frame.columns)
    return columns[columns.index(after) + 1:][:_ATTRIBUTES] if after in columns else []


def _lists(r: AnalysisResult, out: Section) -> None:
    t = r.targets
    contacts = t.targets
    counts = ({} if contacts is None else
              {action: _count(contacts, action) for action in ("push", "pull")})
    for block in list_tables(r.settings, contacts, counts, t.early_warning,
                             None if t.early_warning is None else len(t.early_warning),
                             t.win_back, None if t.win_back is None else len(t.win_back)):
        out.add(block)


def list_tables(s, contacts: pd.DataFrame | None, counts: dict, early_warning: pd.DataFrame |
                None, early_warning_rows: int | None, win_back: pd.DataFrame | None,
                win_back_rows: int | None) -> list:
    """The tables of the top of each list (push, pull, early warning, win-back).

    Parameters
    ----------
    s : Settings
    contacts : pandas.DataFrame, optional
        targets.csv's rows in priority order: all, or at least the first :data:`TOP` of each
        action.
    counts : dict
        The customers of each action (``push``, ``pull``) in targets.csv.
    early_warning, win_back : pandas.DataFrame, optional
        The lists in rank order: all, or at least their first :data:`TOP` rows.
    early_warning_rows, win_back_rows : int, optional
        Their lengths.
    """
    blocks = []
    if contacts is not None and len(contacts):
        attributes = _attributes(contacts, "reason_3")
        shown = ["customer_id", "priority_rank", "expected_net_benefit", "cell", "why",
                 *attributes]
        for action, words in (("push", "push (call or visit)"), ("pull", "pull (broad offer)")):
            chosen = contacts[contacts["action"] == action].head(TOP)
            if len(chosen):
                blocks.append(table(
                    chosen.assign(why=_reasons(chosen)), s,
                    f"The top of the {words} list: {count(counts[action])} "
                    "customers in targets.csv, in priority order, with the reasons a "
                    "call-centre agent reads.", columns=shown,
                    formats={"expected_net_benefit": "money", "customer_id": "text"},
                    headers={"priority_rank": "rank", "expected_net_benefit": "net benefit"}))
    if early_warning is not None and len(early_warning):
        blocks.append(table(
            early_warning, s, f"The top of the early-warning list: {count(early_warning_rows)} "
            "live customers whose churn probability rose since the previous period "
            "(early_warning.csv), largest rise first.",
            columns=["customer_id", "churn_probability_before", "churn_probability",
                     "rise", "value_at_stake", "driver_1", "driver_2"],
            formats={"churn_probability_before": "percent", "customer_id": "text",
                     "churn_probability": "percent", "rise": "percent",
                     "value_at_stake": "money"},
            headers={"churn_probability_before": "churn probability before"}, limit=TOP))
    if win_back is not None and len(win_back):
        shown = ["customer_id", "best_offer", "net_benefit", "lapsed_revenue", "action",
                 "last_purchase", "purchases", "lifetime_spend",
                 *_attributes(win_back, "lifetime_spend")]
        blocks.append(table(
            win_back, s, f"The top of the win-back list: {count(win_back_rows)} "
            "customers already declared churned, by the net benefit of their best "
            "reactivation offer (win_back.csv).", columns=shown,
            formats={"net_benefit": "money", "lapsed_revenue": "money",
                     "lifetime_spend": "money", "customer_id": "text"}, limit=TOP))
    return blocks


def evaluation_blocks(r: AnalysisResult, out: Section) -> None:
    """The targeting evaluation's chart and table into ``out`` (``r.evaluation``; a chunked
    run has them too)."""
    evaluation = r.evaluation
    if evaluation is None:
        return
    if evaluation.profit_curve is not None and len(evaluation.profit_curve):
        out.add(profit_chart(evaluation.profit_curve))
    measures = evaluation.measures
    if measures is not None and len(measures):
        wanted = ["mp", "empc", "top_decile_lift", "gini", "realised_net_benefit",
                  "expected_net_benefit", "churners_pushed"]
        grid = (measures[measures["measure"].isin(wanted) & (measures["ranking"] != "all")]
                .pivot_table(index="ranking", columns="measure", values="value", sort=False)
                .reindex(columns=[w for w in wanted if w in set(measures["measure"])])
                .rename_axis(columns=None).reset_index())
        grid["ranking"] = grid["ranking"].map(lambda k: _RANKINGS.get(k, k))
        out.add(table(grid, r.settings, "Out of time, per ranking: maximum profit (MP) and "
                      "expected maximum profit (EMPC) per customer, top-decile lift, Gini, "
                      "and the realised against the expected net benefit of a plan of the "
                      "same size.", formats={"mp": "money", "empc": "money",
                                             "realised_net_benefit": "money",
                                             "expected_net_benefit": "money",
                                             "churners_pushed": "count"},
                      headers={"mp": "MP", "empc": "EMPC"}))


def sensitivity_blocks(sensitivity: pd.DataFrame | None, s) -> list:
    """sensitivity.csv as a chart and a table (none without it)."""
    if sensitivity is None or not len(sensitivity):
        return []
    frame = sensitivity.assign(scenario=sensitivity["scenario"].map(
        lambda k: _SCENARIOS.get(k, k)))
    return [sensitivity_chart(sensitivity),
            table(frame, s, "The plan under scaled assumptions (sensitivity.csv; its "
                  "figures count the control group as contacted, so at a factor of 1 the "
                  "net benefit is the plan's plus what the control group forgoes).",
                  columns=["scenario", "factor", "push", "pull", "cost",
                           "expected_net_benefit", "push_kept", "push_added"],
                  formats={"cost": "money", "expected_net_benefit": "money",
                           "push_kept": "percent"})]


def assumptions(s) -> Paragraph:
    """The plan's costs and uplift assumptions in a paragraph."""
    uplifts = (f"push keeps {percent(s.push_uplift, 0)} of would-be churners"
               if isinstance(s.push_uplift, float) else "push uplift set per cell")
    return Paragraph(
        f"Push costs {money(s.push_cost)} per contact plus an incentive of "
        f"{money(s.push_incentive)}, pull {money(s.pull_cost)} plus {money(s.pull_incentive)}; "
        f"the assumptions ({uplifts}, pull "
        + (f"{percent(s.pull_uplift, 0)}" if isinstance(s.pull_uplift, float) else "per cell")
        + ") decide who is worth contacting. With constant uplifts the plan targets by value "
        "at stake: uplift measured in an experiment is what makes the lists causal.")


def control_power_table(power: pd.DataFrame | None, s):
    """control_power.csv as a table (None without a control group)."""
    if power is None or not len(power):
        return None
    return table(power, s, "The control group: per action and cell, the customers treated "
                 "and held out, and the smallest uplift (or reactivation rate) it can detect "
                 "(empty: none under 100 %).",
                 formats={"expected_churn": "percent", "min_detectable_uplift": "percent",
                          "min_detectable_reactivation": "percent"})


def section(r: AnalysisResult) -> Section:
    """The targets section."""
    s, t = r.settings, r.targets
    out = Section("targets", "Targets")
    out.add(assumptions(s))
    if t.summary:
        out.add(plan_figures(t.summary, s))
    for block in sensitivity_blocks(t.sensitivity, s):
        out.add(block)
    _lists(r, out)
    out.add(control_power_table(t.control_power, s))
    evaluation_blocks(r, out)
    return out


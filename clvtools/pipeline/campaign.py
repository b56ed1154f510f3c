"""``clvtools evaluate``: a saved plan and the transactions that followed it, measured.

The plan folder of ``clvtools analyze`` (``plan.parquet``, ``plan.json``) says who got push,
pull or nothing, who was held out as control, and what the plan predicted; the new log says
what the customers did. :func:`evaluate_campaign` reads both, measures the campaign per action
and cell (:func:`clvtools.targeting.campaign.measure_campaign`) and writes the measured rates
in the settings' own form, so that the next ``analyze --config measured_settings.toml`` uses
them instead of guesses.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Settings, load_settings, settings_to_toml
from ..data.campaign_outcomes import CampaignOutcomes, campaign_outcomes
from ..data.lifecycle import churn_days
from ..data.transactions import DataPolicies, read_transactions
from ..errors import ClvInputError
from ..targeting.campaign import MIN_EVENTS, MIN_GROUP, measure_campaign
from ..targeting.matrix import CELLS, CHURNED
from ..units import to_days

__all__ = ["CampaignEvaluation", "evaluate_campaign", "last_campaign", "read_plan"]

#: What plan.json says it is (written by the report, read here).
PLAN_FORMAT, PLAN_VERSION = "clvtools-plan", 1


@dataclass
class CampaignEvaluation:
    """What ``clvtools evaluate`` measured.

    Attributes
    ----------
    measures : pandas.DataFrame
        Measured against predicted per action and cell, per action and in total
        (``evaluation.csv``; :func:`~clvtools.targeting.campaign.measure_campaign`).
    customers : pandas.DataFrame
        Every plan customer with the plan's action, group and cell and the outcomes over
        the window (``evaluation_customers.csv``); ``missing`` marks those absent from the
        new log.
    measured_settings : Settings
        The plan's settings with the measured uplifts and reactivation rates where a cell
        says enough (the assumed ones elsewhere), and no observation end.
    rate_sources : list of str
        Where each rate of ``measured_settings`` comes from, one line each.
    summary : dict
        The window, the read-out (final or early), the counts and the notes
        (``evaluation.json``).
    """

    measures: pd.DataFrame
    customers: pd.DataFrame
    measured_settings: Settings
    rate_sources: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        return list(self.summary.get("notes", []))

    def measured_settings_toml(self) -> str:
        """``measured_settings.toml``: the settings for the next ``analyze``, with the source
        of every rate as comments."""
        head = [f"# clvtools evaluate: the plan of {self.summary['plan_observation_end']} "
                f"measured over {self.summary['window_start']} to {self.summary['window_end']} "
                f"({self.summary['read_out']} read-out).",
                "# Use it for the next run: clvtools analyze LOG --config measured_settings.toml"
                " --out DIR",
                *(f"# {line}" for line in self.rate_sources)]
        return "\n".join(head) + "\n" + settings_to_toml(self.measured_settings)


def read_plan(source) -> tuple[pd.DataFrame, dict]:
    """The saved plan: ``plan.parquet`` and ``plan.json`` from an output folder of
    ``clvtools analyze`` (or the path of its ``plan.parquet`` or ``plan.json``)."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    table, meta = folder / "plan.parquet", folder / "plan.json"
    for needed in (table, meta):
        if not needed.is_file():
            raise ClvInputError(
                f"The plan has no {needed.name}.", source=str(folder),
                advice="Give the output folder of the `clvtools analyze` run whose plan was "
                       "carried out (it holds plan.parquet and plan.json).")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClvInputError(f"plan.json is not valid JSON ({exc}).", source=str(meta),
                            advice="Use the plan.json that clvtools analyze wrote.") from None
    if info.get("format") != PLAN_FORMAT or info.get("version") != PLAN_VERSION:
        raise ClvInputError(
            f"plan.json is not a clvtools plan of version {PLAN_VERSION} (format "
            f"{info.get('format')!r}, version {info.get('version')!r}).", source=str(meta),
            advice="Use the plan.json that clvtools analyze wrote.")
    plan = pd.read_parquet(table)
    needed_columns = {"customer_id", "action", "group", "cell", "last_purchase",
                      "churn_probability", "assumed_uplift", "assumed_reactivation",
                      "saved_revenue", "expected_cost", "expected_net_benefit"}
    missing = sorted(needed_columns - set(plan.columns))
    if missing:
        raise ClvInputError(f"plan.parquet lacks the columns {missing}.", source=str(table),
                            advice="Use the plan.parquet that clvtools analyze wrote.")
    plan["customer_id"] = plan["customer_id"].astype(str)
    plan["group"] = plan["group"].fillna("").astype(str)
    return plan, info


def evaluate_campaign(plan_source, transactions, *, end=None,
                      **overrides) -> CampaignEvaluation:
    """Measure a carried-out plan against the transactions that followed it.

    Parameters
    ----------
    plan_source : path
        The output folder of the ``clvtools analyze`` run whose plan was carried out.
    transactions : pandas.DataFrame, path, glob or list of paths
        The log after the plan: the updated full log, or only the rows after the plan's
        observation end. Read with the plan's column names and data policies (rows dated
        after ``end`` are counted and left out).
    end : date-like, optional
        The last day to count (default: the last date in the log). The window is complete
        (the read-out final) once it reaches the plan's observation end plus its horizon.
    **overrides
        Settings that differ for the new log, such as ``customer_id_col`` or
        ``datetime_format``.

    Returns
    -------
    CampaignEvaluation
    """
    plan, info = read_plan(plan_source)
    settings = load_settings(None, **{**info["settings"], **overrides})
    plan_end = dt.date.fromisoformat(info["observation_end"])
    s = settings
    log = read_transactions(
        transactions, customer_id_col=s.customer_id_col, datetime_col=s.datetime_col,
        monetary_value_col=s.monetary_value_col, datetime_format=s.datetime_format,
        observation_end=end,
        policies=DataPolicies(negative_amounts=s.negative_amounts, zero_amounts=s.zero_amounts,
                              duplicate_rows=s.duplicate_rows, same_day=s.same_day,
                              after_observation_end="drop"))
    if log.observation_end <= plan_end:
        raise ClvInputError(
            f"The log ends on {log.observation_end}, not after the plan's observation end "
            f"({plan_end}): nothing that followed the plan can be measured yet.",
            source=str(transactions) if not isinstance(transactions, pd.DataFrame) else None,
            advice="Give the transactions recorded since the plan (or the updated full log).")
    outcomes = campaign_outcomes(plan, log, plan_end=plan_end,
                                 horizon_days=to_days(s.horizon, s.time_unit, "horizon"),
                                 churn_days=churn_days(s.churn_after, s.time_unit))
    frame = plan.merge(outcomes.table, on="customer_id", how="inner")
    economics = {a: {"cost": getattr(s, f"{a}_cost"), "incentive": getattr(s, f"{a}_incentive")}
                 for a in ("push", "pull")}
    measures = measure_campaign(frame[frame["action"] != "none"], economics, margin=s.margin,
                                offer=s.offer, final=outcomes.final)
    measured, sources = _measured_settings(measures, s)
    customers = plan[["customer_id", "action", "group", "cell", "churn_probability"]].merge(
        outcomes.table, on="customer_id", how="left")
    customers.insert(4, "missing", customers["purchases"].isna())
    summary = _summary(outcomes, info, log.quality, measures, s)
    return CampaignEvaluation(measures, customers, measured, sources, summary)


def _measured_settings(measures: pd.DataFrame, s: Settings) -> tuple[Settings, list[str]]:
    """The plan's settings with each measured rate that a cell supports; and where each rate
    comes from."""
    values = s.model_dump()
    values["observation_end"] = None
    sources = []
    for action in ("push", "pull"):
        assumed = getattr(s, f"{action}_uplift")
        table = {}
        for cell in CELLS.values():
            row = _row(measures, action, cell)
            guess = assumed.get(cell, 0.0) if isinstance(assumed, dict) else float(assumed)
            if row is not None and row["uplift_enough"] and np.isfinite(row["uplift"]):
                table[cell] = float(np.clip(row["uplift"], 0.0, 1.0))
                sources.append(
                    f"{action}_uplift.{cell} = {table[cell]:.4g}: measured, 95 % interval "
                    f"{row['uplift_low']:.3g} to {row['uplift_high']:.3g} ({row['treated']:,} "
                    f"treated, {row['control']:,} control)")
            else:
                table[cell] = guess
                sources.append(f"{action}_uplift.{cell} = {guess:.4g}: assumed, "
                               f"{_why_not(row, 'uplift')}")
        values[f"{action}_uplift"] = table
        row = _row(measures, action, CHURNED)
        rate_name = f"{action}_reactivation"
        if row is not None and row["reactivation_enough"] and np.isfinite(row["reactivation"]):
            values[rate_name] = float(np.clip(row["reactivation"], 0.0, 1.0))
            sources.append(f"{rate_name} = {values[rate_name]:.4g}: measured, 95 % interval "
                           f"{row['reactivation_low']:.3g} to {row['reactivation_high']:.3g}")
        else:
            sources.append(f"{rate_name} = {values[rate_name]:.4g}: assumed, "
                           f"{_why_not(row, 'reactivation')}")
        if getattr(s, f"{action}_uplift_column"):
            sources.append(f"{action}_uplift_column is set: it still overrides {action}_uplift "
                           "for the customers it gives a value for.")
    return Settings(**values), sources


def _row(measures: pd.DataFrame, action: str, cell: str) -> pd.Series | None:
    match = measures[(measures["action"] == action) & (measures["cell"] == cell)]
    return None if match.empty else match.iloc[0]


def _why_not(row: pd.Series | None, measure: str) -> str:
    if row is None:
        return "no customer of this cell got this action"
    if row["control"] == 0:
        return "no control group"
    return (f"too few to say ({row['treated']:,} treated, {row['control']:,} control; at least "
            f"{MIN_GROUP} in each and {MIN_EVENTS} events needed)"
            if not row[f"{measure}_enough"] else "not measurable")


def _summary(outcomes: CampaignOutcomes, info: dict, quality: dict, measures: pd.DataFrame,
             s: Settings) -> dict:
    """evaluation.json: the window, the read-out, the counts, and the notes a reader needs."""
    window = (outcomes.window_end - outcomes.window_start).days + 1
    horizon = (outcomes.horizon_end - outcomes.window_start).days + 1
    notes = []
    if not outcomes.final:
        notes.append(
            f"Early read-out: {window} of the horizon's {horizon} days have passed. Churn is "
            f"declared only {s.churn_after:g} {s.time_unit}s after a last purchase, so the "
            "churn, uplift and reactivation figures are not final; purchases and revenue of "
            "treated against control already compare.")
    if outcomes.missing:
        notes.append(f"{len(outcomes.missing):,} customers of the plan are missing from the new "
                     f"log (first: {', '.join(outcomes.missing[:5])}); they are left out of the "
                     "evaluation.")
    if not outcomes.counts["full_log"]:
        notes.append("The new log starts after the plan's observation end: a plan customer "
                     "absent from it is taken to have bought nothing since.")
    if outcomes.counts["customers_not_in_plan"]:
        notes.append(f"{outcomes.counts['customers_not_in_plan']:,} customers of the new log are "
                     "not in the plan (acquired since): they are not evaluated.")
    if (measures["control"] == 0).all():
        notes.append("The plan has no control group: the treated customers' outcomes are "
                     "reported, but uplift and reactivation cannot be measured.")
    small = measures[measures["conclusion"].str.contains("too small", regex=False)
                     & (measures["cell"] != "all")]
    if len(small):
        groups = (small["action"] + " " + small["cell"]).tolist()
        notes.append(f"{len(small)} action-cell groups are too small to say anything: "
                     f"{', '.join(groups)}.")
    notes.append("The plan's figures are its predictions at the plan's date (revenue over the "
                 "horizon, discounted at the discount rate); the measured ones are nominal "
                 "revenue over the window.")
    return {
        "format": "clvtools-evaluation", "version": 1,
        "plan_observation_end": info["observation_end"],
        "window_start": outcomes.window_start.isoformat(),
        "window_end": outcomes.window_end.isoformat(), "window_days": window,
        "horizon_days": horizon, "read_out": "final" if outcomes.final else "early",
        # what an early read-out can and cannot say yet
        "final_figures": (["all"] if outcomes.final else
                          ["treated", "control", "purchases_per_*", "revenue_per_*",
                           "revenue_saved* (over the window so far)", "cost (so far)"]),
        "early_figures": ([] if outcomes.final else
                          ["churn_*", "uplift*", "back_*", "reactivation*", "net_benefit*",
                           "return_on_spend"]),
        "plan_customers": int(info.get("customers", 0)),
        "evaluated_customers": int(len(outcomes.table)),
        **{k: v for k, v in outcomes.counts.items()},
        "missing_customers": outcomes.missing[:100],
        "transactions": quality, "notes": notes,
    }


#: evaluation.csv's columns as the report's campaign section reads them.
_REPORTED = {"action": "action", "cell": "cell", "read_out": "read_out",
             "treated": "treated", "control": "control", "uplift": "measured_uplift",
             "uplift_low": "measured_uplift_lo95", "uplift_high": "measured_uplift_hi95",
             "assumed_uplift": "predicted_uplift", "reactivation": "measured_reactivation",
             "assumed_reactivation": "predicted_reactivation",
             "net_benefit": "net_benefit", "predicted_net_benefit": "predicted_net_benefit",
             "conclusion": "conclusion"}


def last_campaign(folder) -> pd.DataFrame:
    """The evaluation that ``clvtools evaluate`` wrote into ``folder``, for the report: per
    action and cell, measured against predicted (the declared-churned cells' reactivation on
    their own rows, their uplift empty)."""
    path = Path(folder) / "evaluation.csv"
    if not path.is_file():
        raise ClvInputError("The evaluation folder has no evaluation.csv.", source=str(folder),
                            advice="Give the --out folder of a `clvtools evaluate` run.")
    table = pd.read_csv(path)
    missing = sorted(set(_REPORTED) - set(table.columns))
    if missing:
        raise ClvInputError(f"evaluation.csv lacks the columns {missing}.", source=str(path),
                            advice="Give the --out folder of a `clvtools evaluate` run of "
                                   "this version.")
    return table[list(_REPORTED)].rename(columns=_REPORTED)

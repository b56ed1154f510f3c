"""What a run beside the single-machine pipeline (on Spark, :mod:`clvtools.scale.spark_run`;
in chunks, :mod:`clvtools.scale.chunked_run`) writes the same way whatever its engine: the
settings it refuses, plan_summary.csv's fields, data_quality.json, and the small files
(models, matrix, plan summary, KPIs, drivers, settings)."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from .._version import __version__
from ..config import Settings, settings_to_toml
from ..errors import ClvInputError
from ..pipeline.scoring import Scorers
from ..pipeline.timeline import Timeline
from ..report.outputs import MONEY_COLUMNS, ModelDocument, forecast_to_cents, to_cents
from ..report.workbook import WorkbookContent
from ..targeting.allocation import Action
from ..targeting.matrix import MONEY
from ..targeting.reasons import REASON_COLUMNS

__all__ = ["CUSTOMER_COLUMNS", "TARGET_COLUMNS", "refuse_settings", "actions", "workbook_of",
           "plan_summary_fields", "run_data_quality", "small_files", "summary_lines"]

#: customers.parquet's columns, in customers.csv's order (those a Spark or chunked run
#: computes).
CUSTOMER_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                    "expected_purchases", "expected_average_spend", "churn_probability",
                    "churn_model", "revenue_if_retained", "expected_revenue", "revenue_at_risk",
                    "lapsed_revenue", "preventable_revenue", "cell", "action", "priority_rank",
                    "expected_net_benefit", "net_benefit_push", "net_benefit_pull")
#: targets.parquet's columns: targets.csv's, without the attributes.
TARGET_COLUMNS = ("customer_id", "priority_rank", "action", "expected_net_benefit",
                  "saved_revenue", "expected_cost", "cell", *REASON_COLUMNS)


def refuse_settings(s: Settings, engine: str, single: Mapping[str, object], *,
                    changed: tuple[str, ...] = (), advice: str) -> None:
    """Settings a run cannot honour are an error, never ignored.

    Parameters
    ----------
    s : Settings
    engine : str
        The engine's name for the message (``"Spark"``, ``"chunked"``).
    single : mapping
        Setting name -> its value: an error when not None.
    changed : tuple of str
        Settings that are an error when they differ from their default.
    advice : str
    """
    given = sorted(k for k, v in single.items() if v is not None)
    if s.customer_intervals:
        given.append("customer_intervals")
    defaults = Settings()
    given += [k for k in changed if getattr(s, k) != getattr(defaults, k)]
    if given:
        raise ClvInputError(f"The {engine} engine does not support the settings {given}.",
                            source="settings", advice=advice)


def actions(s: Settings) -> tuple[Action, Action]:
    """Push and pull as the settings price them (cost, incentive, uplift, reactivation; no
    per-customer uplift column, which these runs refuse)."""
    push, pull = (Action(a, getattr(s, f"{a}_cost"), getattr(s, f"{a}_incentive"),
                         getattr(s, f"{a}_uplift"), getattr(s, f"{a}_reactivation"))
                  for a in ("push", "pull"))
    return push, pull


def plan_summary_fields(sums: Mapping[str, float], s: Settings, cuts: Mapping[str, float],
                        engine: str, allocation: Mapping[str, object] | None = None) -> dict:
    """plan_summary.csv's row from the plan's counts and sums (``customers``, ``push``,
    ``pull``, ``none``, ``push_cost``, ``pull_cost``, ``cost``, ``expected_saved_revenue``,
    ``expected_net_benefit``): the return on spend, the constraint and the cut points
    added; ``allocation``: a budget's constraint, limit, solver, bound and gap."""
    out = dict(sums)
    out["return_on_spend"] = (out["expected_net_benefit"] / out["cost"] if out["cost"] > 0
                              else float("nan"))
    out.update({"constraint": "capacity" if s.push_capacity is not None else "none",
                "limit": s.push_capacity,
                "solver": "sort" if s.push_capacity is not None else "unconstrained",
                "offer": s.offer, "margin": s.margin, "value_axis": s.value_axis,
                "value_cut_point": cuts["value"], "risk_cut_point": cuts["risk"],
                "engine": engine})
    out.update(allocation or {})
    return out


def run_data_quality(engine: str, transactions: dict, attributes: dict | None,
                     timeline: Timeline, value_model: str, notes: list[str], *,
                     value_checks: dict | None = None) -> dict:
    """data_quality.json of a run beside the single-machine pipeline (``value_checks``: the
    value model's checks, as the standard file's, when the run computed them)."""
    customers = {} if attributes is None else {"customers": attributes}
    checks = {"value_checks": value_checks} if value_checks else {}
    return {"engine": engine, "clvtools_version": __version__, "transactions": transactions,
            **customers, "timeline": timeline.as_dict(), "value_model": value_model,
            **checks, "notes": notes}


def small_files(s: Settings, models: Scorers, *, matrix: pd.DataFrame, summary: dict,
                kpis: pd.DataFrame, data_quality: Callable[[], dict], engine: str
                ) -> dict[str, Callable[[], object]]:
    """The manifest's small files of such a run (name -> content function, for
    :func:`clvtools.report.outputs.write_folder`)."""
    context = {"run_settings": s.model_dump(mode="json"),
               "provenance": {"engine": engine, "clvtools_version": __version__}}

    def model(fitted, **options):
        if fitted is None:
            return None
        fitted = getattr(fitted, "model", fitted)
        return ModelDocument({**fitted.to_dict(**options), **context})

    churn = models.churn
    return {
        # to the cent, as the single machine writes it
        "matrix.csv": lambda: matrix.round({c: 2 for c in MONEY}),
        "plan_summary.csv": lambda: pd.DataFrame([summary]),
        "kpis.csv": lambda: kpis,
        "churn_drivers.csv": lambda: None if churn is None else churn.summary.reset_index(),
        "models/value.json": lambda: model(models.value.purchases, save_data=False),
        "models/spend.json": lambda: model(models.value.spend, save_data=False),
        "models/churn.json": lambda: model(churn),
        "data_quality.json": data_quality,
        "config.toml": lambda: settings_to_toml(s),
    }


def summary_lines(summary: dict, value_model: str, has_churn_model: bool, notes: list[str],
                  how: str = "") -> list[str]:
    """The run in a few lines for the console (``how``: after the customers' count, such as
    " in 22 chunks")."""
    m = summary
    return [f"{m['customers']:,} customers{how}; purchase model {value_model}; churn model "
            f"{'Cox' if has_churn_model else 'none (value model)'}.",
            f"Plan: push {m['push']:,}, pull {m['pull']:,}, none {m['none']:,}; expected "
            f"net benefit {m['expected_net_benefit']:,.0f} for a cost of {m['cost']:,.0f}.",
            *notes]


def workbook_of(run, top: pd.DataFrame, push: int, pull: int) -> WorkbookContent:
    """forecast.xlsx's content of a chunked or a Spark run (``run.forecast``, ``summary``,
    ``kpis``, ``matrix``, ``settings``, ``timeline``): the standard workbook, its contact
    lists ``top`` (the first :data:`~clvtools.report.workbook.MAX_LIST_ROWS` of each action,
    by rank) out of ``push`` and ``pull`` customers."""
    return WorkbookContent(
        forecast=forecast_to_cents(None if run.forecast is None else run.forecast.table),
        plan_summary=to_cents(pd.DataFrame([run.summary])), targets=to_cents(top),
        kpis=run.kpis, matrix=run.matrix.round({c: 2 for c in MONEY}),
        settings=run.settings, observation_end=run.timeline.observation_end,
        money=MONEY_COLUMNS, list_sizes={"push": push, "pull": pull})

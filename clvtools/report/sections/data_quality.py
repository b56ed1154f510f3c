"""Data quality and settings: rows read, used and excluded by reason, customers matched
across files, how each attribute was typed, the notes of every step, the run's dates and
the settings used (data_quality.json and config.toml in words)."""
from __future__ import annotations

import json

import pandas as pd

from ...pipeline import AnalysisResult
from ..blocks import Items, Paragraph, Section
from ..tables import count, key_values, table

__all__ = ["section", "section_from"]


def _duplicates(q: dict) -> str:
    """The duplicate rows' line: a Spark run under duplicate_rows = "keep" does not look for
    them (no count in its quality dict), which must not read as none found."""
    if "duplicate_rows_found" not in q:
        return "not looked for (duplicate_rows = 'keep' on the Spark engine)"
    return f"{count(q['duplicate_rows_found'])} (policy: {q.get('duplicate_rows_policy', '')})"


def _transactions(q: dict, settings):
    pairs = [("source", ", ".join(q.get("files") or []) or str(q.get("source", ""))),
             ("rows read", count(q["rows_read"])), ("rows used", count(q["rows_used"])),
             ("rows excluded", count(q["rows_excluded"]))]
    pairs += [(f"  excluded: {reason.replace('_', ' ')}", count(n))
              for reason, n in q.get("excluded_by_reason", {}).items()]
    pairs += [("duplicate rows found", _duplicates(q)),
              ("same-day rows combined into one purchase occasion",
               count(q.get("same_day_rows_combined", 0))),
              ("customers", count(q["customers"])),
              ("purchase occasions", count(q.get("purchase_occasions", 0))),
              ("first date", str(q.get("first_date", ""))),
              ("last date", str(q.get("last_date", ""))),
              ("observation end", str(q.get("observation_end", "")))]
    return key_values(pairs, settings, "The transaction log: what was read and what was used.")


def _matching(quality: dict, settings):
    rows = []
    for name in ("customers", "contracts"):
        matching = quality.get(name, {}).get("matching")
        if matching:
            rows.append({"file": f"{name} file", "in both": matching["in_both"],
                         "only in the transactions": matching["only_in_transactions"],
                         "only in this file": matching[f"only_in_{name}"]})
    if not rows:
        return None
    return table(pd.DataFrame(rows), settings,
                 "Customers matched between the transactions and the other files.")


def _attributes(quality: dict, settings):
    typed = quality.get("customers", {}).get("typed")
    if not typed:
        return None
    frame = pd.DataFrame([{"column": name, **fate} for name, fate in typed.items()])
    return table(frame, settings, "How each column of the customers file was typed before "
                 "the models saw it (pooled: rare levels merged into '(other)').")


def _contracts(quality: dict, settings):
    q = quality.get("contracts")
    if not q:
        return None
    pairs = [("rows read", count(q.get("rows_read", 0))),
             ("contracts", count(q.get("contracts", 0))), ("ended", count(q.get("ended", 0)))]
    pairs += [(f"  ended: {reason}", count(n)) for reason, n in q.get("reasons", {}).items()]
    return key_values(pairs, settings, "The contracts file: contracts and end reasons.")


def _setting_text(value) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def section(r: AnalysisResult) -> Section:
    """The data quality and settings section."""
    dq = r.data_quality()
    notes = [n for key in ("value_model_notes", "churn_model_notes", "targeting_notes",
                           "targeting_evaluation_notes", "forecast_notes")
             for n in dq.get(key) or []]
    return section_from(r.settings, r.inputs.quality(), [*notes, *r.inputs.notes],
                        r.timeline)


def section_from(s, quality: dict, notes: list[str], timeline) -> Section:
    """The data quality and settings section of any run.

    Parameters
    ----------
    s : Settings
    quality : dict
        data_quality.json's input parts: ``transactions`` and, when given, ``customers``,
        ``matching``, ``contracts``.
    notes : list of str
        The notes of each step.
    timeline : Timeline
    """
    q = quality["transactions"]
    out = Section("data", "Data quality and settings")
    out.add(Paragraph(
        f"{count(q['rows_read'])} transaction rows read, {count(q['rows_used'])} used and "
        f"{count(q['rows_excluded'])} excluded; {count(q['customers'])} customers from "
        f"{q.get('first_date', '')} to {q.get('observation_end', '')}."))
    out.add(_transactions(q, s))
    out.add(_matching(quality, s))
    out.add(_attributes(quality, s))
    out.add(_contracts(quality, s))
    if notes:
        out.add(Items(notes, title="Notes from each step"))
    dates = [(k.replace("_", " "), _setting_text(v)) for k, v in timeline.as_dict().items()
             if k != "notes"]
    out.add(key_values(dates, s, "The run's dates (data_quality.json, timeline)."))
    settings = [(k, _setting_text(v)) for k, v in s.model_dump(mode="json").items()]
    out.add(key_values(settings, s, "The settings used (config.toml): every setting and its "
                       "value in this run.", headers=("setting", "value"), side_by_side=2))
    return out

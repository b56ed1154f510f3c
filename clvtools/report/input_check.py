"""What ``clvtools validate`` reports: the inputs as ``analyze`` would read them, and what it
would leave out and why, from the same reading and the same data-quality counts (no model
is fitted)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..pipeline.inputs import Inputs
from ..pipeline.timeline import Timeline

__all__ = ["InputCheck"]


@dataclass(frozen=True)
class InputCheck:
    """The inputs read and scheduled exactly as :func:`clvtools.analyze` reads them.

    Attributes
    ----------
    settings : Settings
    inputs : Inputs
        The validated tables, with their counts (``inputs.quality()``: data_quality.json's
        input sections).
    timeline : Timeline
        The run's dates (landmarks, holdout, forecast months).
    """

    settings: Settings
    inputs: Inputs
    timeline: Timeline

    def quality(self) -> dict:
        """data_quality.json's input sections and the run's dates, as analyze writes them."""
        return {**self.inputs.quality(), "timeline": self.timeline.as_dict()}

    def lines(self) -> list[str]:
        """The report, one line each: what would be read, excluded (and by which setting),
        matched and scheduled."""
        q = self.inputs.log.quality
        out = [f"Transactions ({q['source']}): {q['rows_read']:,} rows read, "
               f"{q['rows_used']:,} used, {q['customers']:,} customers, "
               f"{q['first_date']} to {q['observation_end']} (observation end)."]
        for reason, n in q["excluded_by_reason"].items():
            if n:
                out.append(f"  would exclude {n:,} rows: {self._why(reason)}")
        if q.get("same_day_rows_combined"):
            out.append(f"  {q['same_day_rows_combined']:,} rows on a day with another purchase "
                       "of the customer would be combined into one purchase occasion.")
        if q.get("duplicate_rows_found") and "duplicate_rows" not in q["excluded_by_reason"]:
            out.append(f"  {q['duplicate_rows_found']:,} exact duplicate rows would be kept "
                       "(duplicate_rows = 'keep').")
        out += self._table_lines("customers", "Customer attributes", "customers")
        out += self._table_lines("contracts", "Contracts", "contracts")
        out += [f"  {note}" for note in self.inputs.notes]
        t = self.timeline
        out.append(f"Schedule: {len(t.landmarks)} landmark(s) "
                   f"({', '.join(d.isoformat() for d in t.landmarks)}), holdout from "
                   f"{t.holdout_start or 'none (history too short)'}, forecast over "
                   f"{len(t.forecast_months)} month(s).")
        out += [f"  {note}" for note in t.notes]
        return out

    def _why(self, reason: str) -> str:
        """A reason of exclusion, with the setting that decides it where there is one."""
        text = reason.replace("_", " ")
        if reason in Settings.model_fields:
            value = getattr(self.settings, reason)
            return f"{text} ({reason} = {value!r}; data_quality.json counts them)"
        return f"{text} (data_quality.json counts them)"

    def _table_lines(self, key: str, title: str, other: str) -> list[str]:
        q = self.inputs.quality().get(key)
        if q is None:
            return []
        match = q.get("matching", {})
        line = f"{title} ({q['source']}): {q['rows_read']:,} rows"
        if match:
            line += (f"; customers in both files {match['in_both']:,}, only in the "
                     f"transactions {match['only_in_transactions']:,}, only in this file "
                     f"{match.get(f'only_in_{other}', 0):,}")
        examples = match.get(f"examples_only_in_{other}") or []
        return [line + "."] + ([f"  ids only in this file, for example: "
                                f"{', '.join(map(str, examples))}"] if examples else [])

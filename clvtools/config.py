"""Settings of a clvtools run: one TOML file, overridable by flags of the same name.

Names and defaults are fixed (see the README and docs/concepts.rst) so that files and
scripts written against clvtools keep working. Unknown keys are an error that suggests the
closest known key.
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .errors import ClvInputError

__all__ = ["Settings", "load_settings", "parse_cut", "settings_to_toml"]

_CUT = re.compile(r"^q(0(\.\d+)?|1(\.0+)?)$")


def parse_cut(value: str | float) -> tuple[str, float]:
    """``"q0.8"`` -> ``("quantile", 0.8)``; ``1500`` -> ``("absolute", 1500.0)``."""
    if isinstance(value, str):
        if _CUT.match(value.strip()):
            return "quantile", float(value.strip()[1:])
        try:
            return "absolute", float(value)
        except ValueError:
            raise ValueError(
                f"must be a quantile such as 'q0.8' or a number. Got {value!r} instead"
            ) from None
    return "absolute", float(value)


class Settings(BaseModel):
    """Every setting of a run, validated (the README and docs/concepts.rst give their meaning)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # columns (lifetimes' names)
    customer_id_col: str = "customer_id"
    datetime_col: str = "date"
    monetary_value_col: str | None = "amount"
    datetime_format: str | None = None
    # contracts' columns
    contract_start_col: str = "start"
    contract_end_col: str = "end"
    end_reason_col: str = "end_reason"
    # customers' column: the date from which each row holds (None: known at every landmark)
    attributes_valid_from_col: str | None = None
    # time
    observation_end: dt.date | None = None
    time_unit: Literal["day", "week", "month"] = "week"
    churn_after: float = 26.0
    at_risk_after: float = 13.0
    horizon: float = 52.0
    kpi_period: Literal["week", "month", "quarter", "year"] = "month"
    landmarks: int = 1
    discount_rate: float = 0.10
    # models
    value_model: Literal["bgnbd", "mbgnbd", "pnbd"] = "bgnbd"
    value_covariates: bool = True
    # matrix
    value_axis: Literal["revenue_if_retained", "expected_revenue"] = "revenue_if_retained"
    value_cut: str | float = "q0.8"
    risk_cut: str | float = "q0.8"
    # push / pull retention (uplift: a number, or a table by matrix cell)
    margin: float = 1.0
    push_cost: float = 20.0
    push_incentive: float = 10.0
    push_uplift: float | dict[str, float] = 0.20
    push_uplift_column: str | None = None
    push_reactivation: float = 0.05
    pull_cost: float = 1.0
    pull_incentive: float = 5.0
    pull_uplift: float | dict[str, float] = 0.05
    pull_uplift_column: str | None = None
    pull_reactivation: float = 0.01
    offer: Literal["conditional", "unconditional"] = "conditional"
    push_capacity: int | None = None
    push_budget: float | None = None
    total_budget: float | None = None
    # data policies (see clvtools.data.transactions.DataPolicies)
    negative_amounts: Literal["drop", "keep", "error"] = "drop"
    zero_amounts: Literal["keep", "drop", "error"] = "keep"
    duplicate_rows: Literal["keep", "drop", "error"] = "keep"
    same_day: Literal["combine", "error"] = "combine"
    after_observation_end: Literal["error", "drop"] = "error"
    seed: int = 0

    @field_validator("churn_after", "horizon", "at_risk_after")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"must be a positive number. Got {v} instead")
        return v

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1. Got {v} instead")
        return v

    @field_validator("discount_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not 0 <= v < 1:
            raise ValueError(f"must be an annual rate in [0, 1), such as 0.1. Got {v} instead")
        return v

    @field_validator("push_uplift", "pull_uplift", "push_reactivation", "pull_reactivation")
    @classmethod
    def _fraction(cls, v):
        values = v.values() if isinstance(v, dict) else [v]
        if not all(0 <= x <= 1 for x in values):
            raise ValueError(f"must be a fraction in [0, 1] (or a table of them by cell). "
                             f"Got {v} instead")
        return v

    @field_validator("margin")
    @classmethod
    def _margin(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"must be the contribution per unit of revenue, in (0, 1]. "
                             f"Got {v} instead")
        return v

    @field_validator("push_capacity", "push_budget", "total_budget")
    @classmethod
    def _limit(cls, v):
        if v is not None and v < 0:
            raise ValueError(f"must be zero or more. Got {v} instead")
        return v

    @field_validator("push_cost", "push_incentive", "pull_cost", "pull_incentive")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError(f"must be zero or more. Got {v} instead")
        return v

    @field_validator("value_cut", "risk_cut")
    @classmethod
    def _cut(cls, v):
        parse_cut(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.at_risk_after >= self.churn_after:
            raise ValueError(
                f"at_risk_after ({self.at_risk_after}) must be less than churn_after "
                f"({self.churn_after}): 'at risk' is a band before churn is declared"
            )
        limits = [k for k in ("push_capacity", "push_budget", "total_budget")
                  if getattr(self, k) is not None]
        if len(limits) > 1:
            raise ValueError(f"give one of push_capacity, push_budget and total_budget, not "
                             f"{' and '.join(limits)}")
        return self


def _explain(exc: ValidationError, origin: str) -> ClvInputError:
    known = list(Settings.model_fields)
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"Unknown setting {key!r}.{hint}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if msg.startswith("Input should be"):
                msg = (
                    msg.replace("Input should be", "should be", 1)
                    + f". Got {err['input']!r} instead"
                )
            lines.append(f"The {key!r} setting {msg}." if err["loc"] else f"Settings: {msg}.")
    return ClvInputError(
        " ".join(lines),
        source=origin,
        advice="Fix the setting; the known settings and their defaults are listed by "
        "`clvtools analyze --help` and in the README.",
    )


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a TOML file (optional), then ``overrides`` (flags; None means not given)."""
    values: dict[str, Any] = {}
    origin = "settings"
    if path is not None:
        origin = str(path)
        try:
            with open(path, "rb") as fh:
                values = tomllib.load(fh)
        except FileNotFoundError:
            raise ClvInputError(
                "Config file not found.", source=origin, advice="Check the path."
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ClvInputError(f"The config file is not valid TOML: {exc}.", source=origin,
                                advice="Check the line named; strings need quotes.") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _explain(exc, origin) from None


def settings_to_toml(settings: Settings) -> str:
    """The resolved settings as TOML (unset optional values are written as comments)."""
    out = ["# clvtools settings of this run (resolved: file, flags and defaults)"]
    for key, value in settings.model_dump().items():
        if value is None:
            out.append(f"# {key} = (not set)")
        elif isinstance(value, bool):
            out.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            out.append(f"{key} = {value!r}")
        elif isinstance(value, dt.date):
            out.append(f"{key} = {value.isoformat()}")
        elif isinstance(value, dict):   # a table by cell, as an inline TOML table
            inner = ", ".join(f"{k} = {float(v)!r}" for k, v in value.items())
            out.append(f"{key} = {{ {inner} }}")
        else:
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{key} = "{escaped}"')
    return "\n".join(out) + "\n"

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
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ClvInputError
from .units import DAYS_PER_YEAR, unit_days

__all__ = ["Settings", "load_settings", "parse_cut", "settings_to_toml"]

#: Longest duration a setting may give (churn_after, at_risk_after, horizon), in years.
MAX_DURATION_YEARS = 100
#: Most landmarks a survival table may stack (each one copies the live customers).
MAX_LANDMARKS = 100

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(%|b|[kmgtp]i?b)\s*$", re.IGNORECASE)
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
    customer_id_col: str = Field(
        "customer_id", description="column of the customer id (lifetimes' name)")
    datetime_col: str = Field("date", description="column of the transaction date or timestamp")
    monetary_value_col: str | None = Field(
        "amount", description="column of the amount; none: revenue counts purchases")
    datetime_format: str | None = Field(
        None, description="strptime format of the dates, e.g. %Y%m%d (default: ISO dates)")
    # contracts' columns
    contract_start_col: str = Field("start", description="contracts: column of the start date")
    contract_end_col: str = Field(
        "end", description="contracts: column of the end date (empty while running)")
    end_reason_col: str = Field(
        "end_reason", description="contracts: column of the end reason (competing risks)")
    involuntary_reasons: list[str] = Field(
        ["non_payment", "nonpayment", "payment_failure", "involuntary"],
        description="contracts: end reasons a retention offer cannot address (comma-separated "
                    "on the command line; case, spaces and hyphens ignored)")
    # customers' column: the date from which each row holds (None: known at every landmark)
    attributes_valid_from_col: str | None = Field(
        None,
        description="customers file: column of the date from which "
                    "each row holds (default: known at every landmark)")
    # time
    observation_end: dt.date | None = Field(
        None, description="last day of observation (default: the last date in the data)")
    time_unit: Literal["day", "week", "month"] = Field(
        "week", description="day, week or month: the unit of every model and duration")
    churn_after: float = Field(
        26.0, description="time units without a purchase after which churn is declared")
    at_risk_after: float = Field(
        13.0,
        description="time units without a purchase after which "
                    "a customer is at risk (< churn_after)")
    horizon: float = Field(
        52.0, description="time units ahead for churn probabilities, values and forecasts")
    kpi_period: Literal["week", "month", "quarter", "year"] = Field(
        "month", description="week, month, quarter or year: the period of the KPIs and cohorts")
    landmarks: int = Field(
        1, description="landmarks stacked in the churn model's survival table, one horizon apart "
                   "(1 to 100)")
    discount_rate: float = Field(0.10, description="annual discount rate of revenue, in [0, 1)")
    # models
    churn_sample_rows: int = Field(
        2_000_000,
        description="largest survival table the Cox churn model is fitted on whole; a larger "
                    "one is fitted on a stratified sample of this many rows (event x landmark "
                    "x recency band, seeded), weighted by the inverse sampling fraction, with "
                    "robust standard errors (docs/scaling.rst)")
    value_model: Literal["auto", "bgnbd", "mbgnbd", "pnbd"] = Field(
        "auto", description="the purchase model: auto (chosen by holdout error), bgnbd, "
                            "mbgnbd or pnbd")
    value_covariates: bool = Field(
        True, description="use the customer attributes in the value model")
    customer_intervals: bool = Field(
        False, description="add 95 % intervals of each customer's revenue if retained and "
                           "expected revenue to customers.csv (the models' parameter "
                           "uncertainty; one more scoring of every customer per parameter)")
    # matrix
    value_axis: Literal["revenue_if_retained", "expected_revenue"] = Field(
        "revenue_if_retained",
        description="the matrix's value: revenue_if_retained (the "
                    "value at stake) or expected_revenue")
    value_cut: str | float = Field(
        "q0.8",
        description="the high-value cut: a quantile of the live "
                    "customers (q0.8: the top 20 %) or an amount")
    risk_cut: str | float = Field(
        "q0.8",
        description="the high-risk cut: a quantile of "
                    "the live customers (q0.8) or a probability")
    # push / pull retention (uplift: a number, or a table by matrix cell)
    margin: float = Field(
        1.0, description="contribution per unit of revenue, in (0, 1]: saved revenue as profit")
    push_cost: float = Field(20.0, description="push: cost of contacting one customer")
    push_incentive: float = Field(
        10.0, description="push: incentive paid by a customer who takes the offer")
    push_uplift: float | dict[str, float] = Field(
        0.20, description="push: share of would-be churners kept (a number, or a table by cell)")
    push_uplift_column: str | None = Field(
        None, description="push: column of the customers file with each customer's uplift")
    push_reactivation: float = Field(0.05, description="push: share of the lapsed revenue won back")
    pull_cost: float = Field(1.0, description="pull: cost of contacting one customer")
    pull_incentive: float = Field(
        5.0, description="pull: incentive paid by a customer who takes the offer")
    pull_uplift: float | dict[str, float] = Field(
        0.05, description="pull: share of would-be churners kept (a number, or a table by cell)")
    pull_uplift_column: str | None = Field(
        None, description="pull: column of the customers file with each customer's uplift")
    pull_reactivation: float = Field(0.01, description="pull: share of the lapsed revenue won back")
    offer: Literal["conditional", "unconditional"] = Field(
        "conditional",
        description="conditional (the incentive is "
                    "paid on renewal) or unconditional")
    control_share: float = Field(
        0.1, description="share of each action and cell held out at random as a control group "
                         "(0: none), in [0, 0.5]")
    push_capacity: int | None = Field(None, description="at most this many push contacts")
    push_budget: float | None = Field(None, description="at most this expected spend on push")
    total_budget: float | None = Field(
        None, description="at most this expected spend on push and pull together")
    # data policies (see clvtools.data.transactions.DataPolicies)
    negative_amounts: Literal["drop", "keep", "error"] = Field(
        "drop", description="returns: drop (counted), keep (netted within the day) or error")
    zero_amounts: Literal["keep", "drop", "error"] = Field(
        "keep", description="zero amounts: keep, drop or error")
    duplicate_rows: Literal["keep", "drop", "error"] = Field(
        "keep", description="rows equal in id, time and amount: keep (as lifetimes), drop or error")
    same_day: Literal["combine", "error"] = Field(
        "combine",
        description="several transactions on one day: combine "
                    "into one purchase occasion, or error")
    after_observation_end: Literal["error", "drop"] = Field(
        "error", description="rows dated after the observation end: error or drop (counted)")
    implausible_dates: Literal["drop", "error"] = Field(
        "drop", description="rows dated outside the plausible window (9999-12-31, 1900-01-01): "
                            "drop (counted, before the observation end is taken) or error")
    date_window: float = Field(
        1.0, description="the plausible window: the central 90 % of the dates widened on each "
                         "side by this many times their span (at least two years)")
    amount_outliers: Literal["drop", "keep", "error"] = Field(
        "drop", description="amounts above amount_outlier_factor times the median positive "
                            "amount (1e200): drop (counted), keep or error")
    amount_outlier_factor: float = Field(
        10_000.0, description="the largest plausible amount, in multiples of the median "
                              "positive amount")
    timezone: str = Field(
        "UTC", description="time zone whose calendar days count (IANA name, e.g. "
                           "Europe/Berlin): dates with a UTC offset and time-zone-aware Parquet "
                           "dates are converted to it; dates without one are its local times")
    seed: int = Field(0, description="seed of every random draw of the run")
    # resources of the data engine (DuckDB)
    memory_limit: str | None = Field(
        None, description="most memory DuckDB may use, such as 4GB or 50% (default: 80 % of "
                          "the machine's memory); beyond it, it spills to temp_directory")
    temp_directory: str | None = Field(
        None, description="folder in which DuckDB's temporary files get a folder of their "
                          "own, removed when the run ends (default: the system's temporary "
                          "folder)")
    # sharing: report.html and forecast.xlsx travel further than the data should
    pseudonymise: bool = Field(
        False,
        description="show customer ids and free-text attribute values in report.html and "
                    "forecast.xlsx as keyed hashes (key: the CLVTOOLS_PSEUDONYM_KEY environment "
                    "variable; the CSV files keep the real ids)")

    @field_validator("churn_after", "horizon", "at_risk_after")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"must be a positive number. Got {v} instead")
        return v

    @field_validator("date_window", "amount_outlier_factor")
    @classmethod
    def _positive_factor(cls, v: float) -> float:
        if not 0 < v < float("inf"):
            raise ValueError(f"must be a positive number. Got {v} instead")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"must be a time zone name such as 'UTC' or 'Europe/Berlin'. "
                             f"Got {v!r} instead") from None
        return v

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v: int) -> int:
        # each landmark adds a copy of the live customers to the survival table
        if not 1 <= v <= MAX_LANDMARKS:
            raise ValueError(f"must be a whole number from 1 to {MAX_LANDMARKS}. Got {v} instead")
        return v

    @field_validator("churn_sample_rows")
    @classmethod
    def _sample_rows(cls, v: int) -> int:
        # fewer rows would leave strata (event x landmark x band) with a row or two
        if v < 1000:
            raise ValueError(f"must be a whole number of at least 1000. Got {v} instead")
        return v

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _MEMORY.match(v):
            raise ValueError(f"must be a size such as '4GB', '512MiB' or '50%'. Got {v!r} "
                             "instead")
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

    @field_validator("involuntary_reasons", mode="before")
    @classmethod
    def _reasons(cls, v):
        # the command line gives one string: "non_payment, fraud"
        return [r.strip() for r in v.split(",") if r.strip()] if isinstance(v, str) else v

    @field_validator("control_share")
    @classmethod
    def _control(cls, v: float) -> float:
        if not 0 <= v <= 0.5:
            raise ValueError(f"must be a share in [0, 0.5] (0 turns the control group off). "
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
        if v is not None and not v >= 0:   # NaN is no limit either
            raise ValueError(f"must be zero or more. Got {v} instead")
        return v

    @field_validator("push_cost", "push_incentive", "pull_cost", "pull_incentive")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if not v >= 0:
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
        for key in ("churn_after", "at_risk_after", "horizon"):
            years = getattr(self, key) * unit_days(self.time_unit) / DAYS_PER_YEAR
            if not years <= MAX_DURATION_YEARS:   # dates beyond the calendar, or NaN
                raise ValueError(f"{key} ({getattr(self, key)} {self.time_unit}s) must be at "
                                 f"most {MAX_DURATION_YEARS} years")
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
        except IsADirectoryError:
            raise ClvInputError("The config path is a folder, not a file.", source=origin,
                                advice="Give the TOML file itself: --config FOLDER/clvtools.toml.",
                                ) from None
        except UnicodeDecodeError as exc:
            raise ClvInputError(
                f"The config file is not UTF-8 text (byte {exc.start + 1}).", source=origin,
                advice="Save it as UTF-8 (TOML files are UTF-8 by definition).") from None
        except OSError as exc:
            raise ClvInputError(f"The config file cannot be read: {exc.strerror or exc}.",
                                source=origin, advice="Check the path and its permissions.",
                                ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ClvInputError(f"The config file is not valid TOML: {exc}.", source=origin,
                                advice="Check the line named; strings need quotes.") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _explain(exc, origin) from None


def _toml_string(value) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def settings_to_toml(settings: Settings, *, described: bool = False) -> str:
    """The resolved settings as TOML (unset optional values are written as comments).

    With ``described``, each key follows a comment with its meaning: the example file of
    ``clvtools config --example``, every key with its default.
    """
    out = ["# clvtools settings of this run (resolved: file, flags and defaults)"]
    if described:
        out = ["# clvtools settings: every key with its default (clvtools analyze --config FILE)"]
    for key, value in settings.model_dump().items():
        if described:
            out.append(f"\n# {Settings.model_fields[key].description}")
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
        elif isinstance(value, list):
            out.append(f"{key} = [{', '.join(_toml_string(v) for v in value)}]")
        else:
            out.append(f"{key} = {_toml_string(value)}")
    return "\n".join(out) + "\n"

"""Step 1: read and validate the transaction log and the optional customer and contract tables."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..data.attributes import CustomerAttributes, read_customers
from ..data.contracts import Contracts, read_contracts
from ..data.engine import connect
from ..data.transactions import DataPolicies, TransactionLog, read_transactions
from ..errors import ClvInputError

__all__ = ["CONTACTABLE", "MIN_CUSTOMERS", "Inputs", "read_inputs"]

#: Column of the customers file marking who may be contacted (false: never targeted).
CONTACTABLE = "contactable"
#: Fewest customers with purchases a run fits its models on: with fewer, the value model's
#: four parameters are not identified (one customer gave negative variances) and no
#: quantile of the matrix means anything.
MIN_CUSTOMERS = 20


@dataclass(frozen=True)
class Inputs:
    """The validated inputs of a run, held in one DuckDB connection (``log.con``).

    Attributes
    ----------
    log : TransactionLog
        Purchase occasions; ``log.quality`` counts every row read, used and excluded.
    attributes : CustomerAttributes or None
        Customer attributes completed for every customer with purchases (with their
        quality and matching counts), when a customers table was given.
    contracts : Contracts or None
        Contracts with end reasons, when given.
    """

    log: TransactionLog
    attributes: CustomerAttributes | None = None
    contracts: Contracts | None = None

    @property
    def categorical_attributes(self) -> list[str]:
        """Names of the categorical attributes (the segments of survival curves)."""
        if self.attributes is None:
            return []
        return [c for c, kind in self.attributes.kinds.items() if kind == "categorical"]

    @property
    def notes(self) -> list[str]:
        """What was changed or left out of the inputs, one line each, for the console."""
        return list(self.attributes.notes) if self.attributes is not None else []

    def quality(self) -> dict:
        """The inputs' part of data_quality.json."""
        out = {"transactions": self.log.quality}
        if self.attributes is not None:
            out["customers"] = self.attributes.quality
        if self.contracts is not None:
            out["contracts"] = self.contracts.quality
        return out


def read_inputs(transactions, customers, contracts, settings: Settings,
                step: Callable[[str], None] = lambda _msg: None, *,
                read_aside: bool = True) -> Inputs:
    """Read every input table; each bad row is an error or a counted exclusion.

    ``read_aside``: False leaves the customers file's columns for the decisions
    (``contactable``, uplift columns) in DuckDB rather than in a DataFrame of every customer
    (:func:`~clvtools.data.attributes.read_customers`), for a chunked run."""
    s = settings
    step("Reading and validating transactions")
    log = read_transactions(
        transactions, customer_id_col=s.customer_id_col, datetime_col=s.datetime_col,
        monetary_value_col=s.monetary_value_col, datetime_format=s.datetime_format,
        observation_end=s.observation_end,
        policies=DataPolicies(
            negative_amounts=s.negative_amounts, zero_amounts=s.zero_amounts,
            duplicate_rows=s.duplicate_rows, same_day=s.same_day,
            after_observation_end=s.after_observation_end,
            implausible_dates=s.implausible_dates, date_window=s.date_window,
            amount_outliers=s.amount_outliers, amount_outlier_factor=s.amount_outlier_factor,
        ),
        timezone=s.timezone,
        con=connect(memory_limit=s.memory_limit, temp_directory=s.temp_directory),
    )
    _require_customers(log)
    attributes = None
    if customers is not None:
        step("Reading customer attributes")
        # columns for the decisions, not for the models
        aside = tuple(c for c in (CONTACTABLE, s.push_uplift_column, s.pull_uplift_column) if c)
        attributes = read_customers(log, customers, customer_id_col=s.customer_id_col,
                                    valid_from_col=s.attributes_valid_from_col, set_aside=aside,
                                    read_aside=read_aside)
    contract_table = None
    if contracts is not None:
        step("Reading contracts")
        contract_table = read_contracts(
            log, contracts, customer_id_col=s.customer_id_col, start_col=s.contract_start_col,
            end_col=s.contract_end_col, reason_col=s.end_reason_col,
            datetime_format=s.datetime_format, timezone=s.timezone,
        )
    return Inputs(log, attributes, contract_table)


def _require_customers(log: TransactionLog) -> None:
    """Refuse a log with fewer than :data:`MIN_CUSTOMERS` customers, before any fit."""
    q = log.quality
    if q["customers"] >= MIN_CUSTOMERS:
        return
    excluded = ", ".join(f"{n:,} {reason.replace('_', ' ')}"
                         for reason, n in q["excluded_by_reason"].items() if n)
    raise ClvInputError(
        f"The transaction log has {q['customers']:,} customer(s) with purchases"
        + (f" ({q['customers_excluded']:,} more had only rows left out: {excluded})"
           if q.get("customers_excluded") else "")
        + f"; the value and churn models need at least {MIN_CUSTOMERS} to be fitted.",
        source=q["source"],
        advice="Give the log of the whole customer base: a customer's figures come from "
               "models fitted on everyone (then read that customer's row of customers.csv).")

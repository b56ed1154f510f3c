"""The result of :func:`clvtools.data.generator.generate_customer_base`: tables and their truth."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ClvInputError, format_choices
from .lifecycle import first_declaration

__all__ = ["SimulatedBase"]


@dataclass
class SimulatedBase:
    """A simulated customer base and its truth.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer (n_customers rows): ``customer_id`` (str, ``"C0000001"``),
        ``channel``, ``region``, ``plan`` (str), ``acquisition_date`` (datetime64, whole
        days; also the date of the first purchase). Sorted by ``customer_id``, which
        follows the acquisition date.
    transactions : pandas.DataFrame
        One row per purchase: ``customer_id`` (str), ``date`` (datetime64, whole days),
        ``amount`` (float, currency units, rounded to cents, > 0). Sorted by customer and
        date. The first row of each customer is its acquisition.
    truth : dict
        JSON-serialisable true parameters: ``model``, ``time_unit`` (``"week"``),
        ``params`` (r, alpha, a, b or r, alpha, s, beta), ``gamma_gamma`` (p, q, gamma),
        ``covariate_effects`` (``{"purchase": {dummy: effect}, "dropout": {...}}``),
        ``reference_levels``, ``attribute_shares``, ``seed``, ``start``,
        ``acquisition_end``, ``observation_end``.
    customer_truth : pandas.DataFrame
        One row per customer: ``customer_id``, ``lambda`` (purchase rate per week, with
        the attribute effect), ``p`` (BG/NBD: dropout probability after each repeat
        purchase, with the attribute effect) or ``mu`` (Pareto/NBD: dropout rate per
        week, with the attribute effect), ``nu`` (Gamma-Gamma scale), ``expected_spend``
        (p / nu, currency units per purchase), ``dropout_date`` (datetime64; NaT if alive
        at the observation end, whatever the follow-up), ``alive_at_end`` (bool).

        With a follow-up (``follow_up > 0``; these columns are absent otherwise):
        ``alive_at_follow_up_end`` (bool), ``follow_up_dropout_date`` (datetime64: the
        dropout date if the customer left on or before ``follow_up_end``, that is
        ``dropout_date`` for those dead at the observation end and the day of the dropout
        for those leaving during the follow-up, a BG/NBD customer's being the day of its
        last purchase; NaT if alive at ``follow_up_end``), ``future_purchases`` (int, rows
        of ``future_transactions``: two purchases on one day count twice),
        ``future_revenue`` (float, their amounts' sum), ``expected_future_purchases``
        (float, the expected ``future_purchases`` given the customer's true lambda, p or mu
        and whether it is alive at the observation end: 0 if dead; BG/NBD
        ``(1 - exp(-lambda p w)) / p``; Pareto/NBD ``lambda / mu (1 - exp(-mu w))``; w the
        follow-up in weeks) and ``expected_future_revenue`` (float,
        ``expected_future_purchases * expected_spend``; the amounts' rounding to cents
        aside).
    observation_end : datetime.date
        Last day of observation; no transaction is dated later.
    model : str
        ``"bgnbd"`` or ``"pnbd"``.
    follow_up : int
        Days simulated after ``observation_end`` (0: none).
    future_transactions : pandas.DataFrame
        The purchases after the observation end, columns as ``transactions``, dated in
        ``(observation_end, follow_up_end]``, sorted by customer and date; no rows (same
        columns and dtypes) when ``follow_up`` is 0.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    truth: dict
    customer_truth: pd.DataFrame
    observation_end: dt.date
    model: str
    follow_up: int = 0
    future_transactions: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.future_transactions is None:
            self.future_transactions = pd.DataFrame({
                "customer_id": pd.Series([], dtype=object),
                "date": pd.Series([], dtype="datetime64[ns]"),
                "amount": pd.Series([], dtype=float),
            })

    @property
    def follow_up_end(self) -> dt.date:
        """Last simulated day: ``observation_end + follow_up`` days."""
        return self.observation_end + dt.timedelta(days=self.follow_up)

    def declared_churn(self, churn_after_days: int, horizon_days: int) -> pd.DataFrame:
        """The true churn declarations within ``horizon_days`` after the observation end.

        The churn rule of :mod:`clvtools.data.lifecycle`: a customer is declared
        churned *on* the day ``last purchase + churn_after_days``; a purchase on that day or
        later is a reactivation. The customers are those not yet declared churned at the
        observation end, ``observation_end - L0 < churn_after_days`` for their last
        purchase L0 on or before it. From L0 the walk goes forward through
        ``future_transactions`` until a gap of ``churn_after_days`` or more between two
        purchases, or the last purchase; the declaration date D is the last purchase of
        that run plus ``churn_after_days`` (so D is after the observation end), and churn
        is declared within the horizon if ``D <= observation_end + horizon_days``. This is
        the ``event`` of :func:`~clvtools.data.survival_tables.landmark_table` at the
        landmark ``observation_end`` with ``observation_end + horizon_days`` as its
        observation end, ``churn_after = churn_after_days`` and ``time_unit="day"``, on the
        purchase occasions of ``transactions`` and ``future_transactions`` together.

        Whether ``D <= observation_end + horizon_days`` depends only on the purchases up to
        the day before ``observation_end + horizon_days`` (the quiet spell before such a D
        ends before it), hence the need for ``follow_up >= horizon_days``; a later D need
        not be known and is not reported.

        Parameters
        ----------
        churn_after_days : int
            Days without a purchase after which churn is declared, at least 1.
        horizon_days : int
            Days after the observation end in which a declaration counts, 1 to
            ``follow_up``.

        Returns
        -------
        pandas.DataFrame
            One row per customer not yet declared churned at the observation end, sorted
            by ``customer_id``: ``customer_id``, ``last_purchase`` (datetime64, L0),
            ``churned`` (bool, declared within the horizon) and ``declared_at``
            (datetime64, D; NaT unless ``churned``).

        Raises
        ------
        ClvInputError
            For a bad number of days, or a follow-up shorter than ``horizon_days``.
        """
        cd = _positive_days(churn_after_days, "churn_after_days")
        hd = _positive_days(horizon_days, "horizon_days")
        if self.follow_up < hd:
            raise ClvInputError(
                f"declared_churn(horizon_days={hd}) needs a follow-up of at least {hd} days "
                f"(declarations up to observation end + {hd} days depend on the purchases "
                f"until then). This base has follow_up={self.follow_up}.",
                advice=f"Generate the base with generate_customer_base(..., "
                       f"follow_up={hd}) or more.",
            )
        end = np.datetime64(self.observation_end, "D")
        last = self.transactions.groupby("customer_id", sort=True)["date"].max()
        last_day = last.to_numpy().astype("datetime64[D]")
        at_risk = (end - last_day).astype(np.int64) < cd
        ids, last_day = last.index.to_numpy()[at_risk], last_day[at_risk]
        fut = self.future_transactions
        pos = pd.Index(ids).get_indexer(fut["customer_id"])
        later = pos >= 0
        declared = first_declaration(
            last_day.astype(np.int64), pos[later],
            fut["date"].to_numpy()[later].astype("datetime64[D]").astype(np.int64), cd,
        ).astype("datetime64[D]")
        churned = declared <= end + hd
        return pd.DataFrame({
            "customer_id": ids,
            "last_purchase": last_day.astype("datetime64[ns]"),
            "churned": churned,
            "declared_at": np.where(churned, declared, np.datetime64("NaT", "D"))
                           .astype("datetime64[ns]"),
        })

    def write(
        self,
        folder: str | Path,
        *,
        format: Literal["csv", "parquet"] = "csv",
        include_truth: bool = False,
    ) -> dict[str, Path]:
        """Write the tables to ``folder`` (created if missing) as CSV or Parquet.

        Dates are written as ``YYYY-MM-DD``. CSV goes through pyarrow's writer, several
        times faster than ``DataFrame.to_csv`` on millions of rows.

        Parameters
        ----------
        folder : str or pathlib.Path
            Destination folder.
        format : {"csv", "parquet"}
            File format.
        include_truth : bool
            Also write ``customer_truth.<ext>`` and ``truth.json``.

        With a follow-up (``follow_up > 0``) ``future_transactions.<ext>`` is written too,
        and ``truth.json`` holds ``truth`` plus ``follow_up`` (days) and ``follow_up_end``
        (ISO date), which the follow-up columns of ``customer_truth`` refer to.

        Returns
        -------
        dict of str to pathlib.Path
            ``{"transactions": path, "customers": path, ...}``, one entry per file, keyed
            by its name without extension.
        """
        if format not in ("csv", "parquet"):
            raise ClvInputError(
                f"The 'format' parameter of SimulatedBase.write must be "
                f"{format_choices(['csv', 'parquet'])}. Got {format!r} instead."
            )
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        from .export import arrow_table

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tables = {"transactions": self.transactions, "customers": self.customers}
        if self.follow_up:
            tables["future_transactions"] = self.future_transactions
        if include_truth:
            tables["customer_truth"] = self.customer_truth
        paths: dict[str, Path] = {}
        for name, df in tables.items():
            table = arrow_table(df)
            path = folder / f"{name}.{format}"
            if format == "csv":
                pacsv.write_csv(table, path)
            else:
                pq.write_table(table, path)
            paths[name] = path
        if include_truth:
            path = folder / "truth.json"
            truth = dict(self.truth)
            if self.follow_up:
                truth |= {"follow_up": self.follow_up,
                          "follow_up_end": self.follow_up_end.isoformat()}
            path.write_text(json.dumps(truth, indent=2, allow_nan=False), encoding="utf-8")
            paths["truth"] = path
        return paths


def _positive_days(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ClvInputError(
            f"The {name!r} parameter of SimulatedBase.declared_churn must be a whole number "
            f"of days, at least 1. Got {value!r} instead."
        )
    return int(value)

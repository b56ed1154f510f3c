"""The result of :func:`clvtools.data.generator.generate_customer_base`: tables and their truth."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ..errors import ClvInputError, format_choices

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

        Returns
        -------
        dict of str to pathlib.Path
            ``{"transactions": path, "customers": path, ...}``.
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
            path.write_text(json.dumps(self.truth, indent=2, allow_nan=False), encoding="utf-8")
            paths["truth"] = path
        return paths


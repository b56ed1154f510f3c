"""The value model's checks of a chunked run (value_checks.csv, data_quality.json's
``value_checks`` and the report's table), the standard engine's
(:func:`~clvtools.pipeline.value_checks.value_checks`) on the same arrays.

Both checks need every customer: Gamma-Gamma's spend-frequency correlation is over all the
repeat buyers, and the purchase model's fit counts every customer's repeat purchases and
draws its expected counts at each drawn customer's own age ``T``, the draw of rows seeded as
the standard engine's. So the RFM table's ``frequency``, ``T`` and ``monetary_value`` are
fetched whole, in customer order as the standard RFM frame has them (no customer ids: 24
bytes a customer, 255 MB at 10.6M customers, within the Python share of the chunked
budget), and the same seeded draw picks the same customers. A purchase model with
covariates is bound to the attributes a chunk at a time, as scoring binds it, for each
customer's purchase and dropout linear predictors (16 bytes a customer more).

Measured at 1.06M customers (10M transactions, no attributes; benchmarks/
bench_chunked_value_checks.py): 0.7 s CPU, the process's resident memory 183 MB above the
step's start at its peak (DuckDB's sorted result, the kept arrays, the draws), about 100
bytes a customer beyond the draws' fixed part: about 1.1 GB estimated at 10.6M customers.

The P(alive) AUC on the holdout is the chunked holdout summary's
(:mod:`.chunked_holdout`), read as the standard engine reads its own.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..btyd.covariates import CovariateBTYDFitter
from ..data.chunked_tables import chunk_frame
from ..data.engine import quote_ident
from ..pipeline.scoring import bound_models
from ..pipeline.value_checks import covariate_linear_predictors, value_checks
from ..pipeline.value_models import ValueModels

__all__ = ["chunked_value_checks"]


def chunked_value_checks(con, rfm: str, models: ValueModels, value_model: str, *,
                         holdout_summary: pd.DataFrame | None, covariates: str | None,
                         bounds: list, seed: int) -> tuple[dict, list[str]]:
    """The standard value checks of a chunked run.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    rfm : str
        The run's RFM table or subquery (one row per customer: ``frequency``, ``T`` in
        time units and, with amounts, ``monetary_value``).
    models : ValueModels
        The value models the run fitted on the table's compressed rows.
    value_model : str
        The purchase model's name.
    holdout_summary : pandas.DataFrame or None
        The chunked holdout's summary (None without a holdout).
    covariates : str or None
        SQL of the attributes the purchase model takes, one row per customer.
    bounds : list
        The first customer id of each chunk of ``rfm``
        (:func:`~clvtools.data.chunked_tables.chunk_bounds`).
    seed : int

    Returns
    -------
    (dict, list of str)
        The checks and the console's warnings, as
        :func:`~clvtools.pipeline.value_checks.value_checks` returns them.
    """
    names = ["frequency", "T"]
    if "monetary_value" in con.sql(f"SELECT * FROM {rfm} LIMIT 0").columns:
        names.append("monetary_value")
    arrays = con.execute(f"SELECT {', '.join(map(quote_ident, names))} FROM {rfm} "
                         "ORDER BY customer_id").fetchnumpy()
    frame = pd.DataFrame({name: np.asarray(arrays.pop(name), float) for name in names},
                         copy=False)
    predictors = None
    if isinstance(models.purchases, CovariateBTYDFitter):
        predictors = _linear_predictors(con, rfm, models, covariates, bounds, len(frame))
    return value_checks(models.purchases, frame, holdout_summary, value_model, seed=seed,
                        linear_predictors=predictors)


def _linear_predictors(con, rfm: str, models: ValueModels, covariates: str | None,
                       bounds: list, customers: int) -> tuple[np.ndarray, np.ndarray]:
    """Every customer's purchase and dropout linear predictors, in customer order, the
    covariate fitter bound to a chunk's attributes at a time."""
    if covariates is None:
        raise ValueError("A purchase model with covariates is checked with its attributes.")
    eta = np.empty((2, customers))
    done = 0
    for k in range(len(bounds)):
        rows = chunk_frame(con, rfm, bounds, k)[["T"]]
        bound = bound_models(models, rows, chunk_frame(con, covariates, bounds, k)).purchases
        eta_p, eta_d = covariate_linear_predictors(bound)
        eta[0, done:done + len(rows)], eta[1, done:done + len(rows)] = eta_p, eta_d
        done += len(rows)
    if done != customers:   # every customer once, or the chunks missed some
        raise RuntimeError(f"The value checks bound {done:,} customers of {customers:,}.")
    return eta[0], eta[1]

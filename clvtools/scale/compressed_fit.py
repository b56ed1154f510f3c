"""The value models fitted on compressed statistics: the distinct (frequency, recency, T[,
attribute pattern]) rows of a base with the customers each stands for, however an engine
collected them (a Spark job's driver, :mod:`clvtools.scale.spark_fit`; DuckDB's GROUP BY in
the chunked run, :mod:`clvtools.scale.chunked_run`).

BTYD and Gamma-Gamma likelihoods depend on a customer only through those few numbers, so the
fit on the compressed rows is the fit on the whole base; the rows come in the order of their
first customer id, the order in which the single-machine fit meets them, so that both fits
run on the same arrays.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.chunked_tables import compressed_rows
from ..data.engine import quote_ident
from ..errors import ClvInputError, ConvergenceError
from ..pipeline.structural import cloglog, fit_structural_model, structural_from_rfm
from ..pipeline.value_choice import candidate_models
from ..pipeline.value_models import (
    COVARIATE_MODELS,
    VALUE_MODELS,
    ValueModels,
    fit_spend_model,
    usable_covariates,
)

__all__ = ["fit_value_on_rows", "fit_value_on_table", "structural_on_rows",
           "structural_at_landmark"]


def fit_value_on_rows(purchase: pd.DataFrame, spend: pd.DataFrame | None, value_model: str,
                      attribute_columns=()) -> tuple[ValueModels, str, list[str]]:
    """The purchase model and Gamma-Gamma on compressed rows.

    Parameters
    ----------
    purchase : pandas.DataFrame, shape (k, 4 + a)
        ``frequency``, ``recency``, ``T``, the ``attribute_columns`` and ``weights``
        (customers per row), ordered by each row's first customer id.
    spend : pandas.DataFrame or None, shape (j, 3)
        ``frequency``, ``monetary_value`` and ``weights``; None when the log has no amounts
        (revenue then counts purchases).
    value_model : {"auto", "bgnbd", "mbgnbd", "pnbd"}
        ``auto``: the lowest BIC among the candidates, each fitted on the compressed rows (no
        holdout choice: that needs the models refitted on a calibration window).
    attribute_columns : sequence of str
        Covariates of BG/NBD and Pareto/NBD on purchase and dropout, as the single-machine
        :func:`~clvtools.pipeline.value_models.fit_purchase_model` fits them; the purchase
        model is then the covariate fitter itself, which scoring binds to each chunk's
        attributes.

    Returns
    -------
    (ValueModels, str, list of str)
        The fitted models, the purchase model's name and the notes for data_quality.json.
    """
    columns = list(attribute_columns)
    purchase = purchase.copy()
    notes = [f"Value model fitted on {len(purchase):,} distinct (frequency, recency, T"
             + (", attributes" if columns else "")
             + f") rows standing for {int(purchase['weights'].sum()):,} customers."]
    weights = purchase.pop("weights").to_numpy()
    covariates = usable_covariates(purchase, purchase[columns], notes) if columns else None
    candidates, why = candidate_models(value_model, covariates)
    notes += why
    fitted, bic = {}, {}
    for name in candidates:
        try:
            fitted[name] = _purchase_model(purchase, name, covariates, weights, notes)
        except ConvergenceError as exc:
            notes.append(f"{name} did not converge ({str(exc).splitlines()[0]}).")
            continue
        bic[name] = fitted[name].BIC_
    if not fitted:
        raise ConvergenceError("No purchase model could be fitted: " + " ".join(notes[1:]))
    chosen = min(bic, key=bic.get)
    if value_model == "auto":
        notes.append(f"Purchase model {chosen} chosen by BIC (" + ", ".join(
            f"{k} {v:,.1f}" for k, v in bic.items()) + ").")
    if spend is None:
        # no amounts: revenue counts purchases (fit_spend_model says so in its notes)
        models = fit_spend_model(pd.DataFrame(index=purchase.index), fitted[chosen], notes)
    else:
        models = fit_spend_model(spend.drop(columns="weights"), fitted[chosen], notes,
                                 weights=spend["weights"].to_numpy())
    return models, chosen, models.notes


def _purchase_model(rows: pd.DataFrame, name: str, covariates: pd.DataFrame | None,
                    weights: np.ndarray, notes: list[str]):
    """One purchase model on compressed rows: with the attributes on purchase and dropout
    where it has a covariate version (the covariate fitter collapses the rows again, into
    the distinct rows and counts the single-machine fit collapses its customers into)."""
    if covariates is None or name not in COVARIATE_MODELS:
        if covariates is not None:
            notes.append(f"{name} has no covariate version: fitted without the attributes.")
        return VALUE_MODELS[name]().fit(rows["frequency"], rows["recency"], rows["T"],
                                        weights=weights)
    columns = list(covariates.columns)
    model = COVARIATE_MODELS[name]().fit(
        rows["frequency"], rows["recency"], rows["T"], covariates=covariates,
        purchase_covariates=columns, dropout_covariates=columns, weights=weights)
    notes.append(f"{name} with covariates on purchase and dropout: {', '.join(columns)}.")
    return model


def structural_on_rows(rows: pd.DataFrame):
    """The structural BG/NBD fitted on compressed (frequency, recency, T, weights) rows."""
    return fit_structural_model(rows, weights=rows["weights"].to_numpy())


def structural_at_landmark(model, rfm: pd.DataFrame, ids: np.ndarray, mark, *, horizon: float,
                           churn_after: float, seed: int) -> np.ndarray:
    """The structural column (cloglog of P(churn declared within ``horizon``)) of the
    landmark rows of customers ``ids`` from their RFM rows at the landmark ``mark``.

    Raises
    ------
    ClvInputError
        A customer has no probability (not live by the RFM rows).
    """
    p = structural_from_rfm(model, rfm, horizon=horizon, churn_after=churn_after,
                            seed=seed).reindex(ids)
    if p.isna().any():
        raise ClvInputError(f"{int(p.isna().sum())} customers of the table at {mark} "
                            "have no structural churn probability.")
    return cloglog(p.to_numpy())


def fit_value_on_table(con, rfm: str, covariates: str | None, value_model: str,
                       has_amounts: bool) -> tuple[ValueModels, str, list[str]]:
    """:func:`fit_value_on_rows` on the compressed rows of the RFM table ``rfm`` (one row per
    customer, in DuckDB), with the attribute pattern of ``covariates`` (SQL of the attributes,
    one row per customer) when the value model takes covariates."""
    columns: list[str] = []
    source = rfm
    if covariates is not None:
        columns = [c for c in con.sql(f"SELECT * FROM {covariates} LIMIT 0").columns
                   if c != "customer_id"]
        source = (f"(SELECT r.customer_id, r.frequency, r.recency, r.\"T\", "
                  f"{', '.join('a.' + quote_ident(c) for c in columns)} FROM {rfm} AS r "
                  f"JOIN {covariates} AS a ON r.customer_id = a.customer_id)")
    purchase = compressed_rows(con, source, ["frequency", "recency", "T", *columns])
    spend = (compressed_rows(con, rfm, ["frequency", "monetary_value"]) if has_amounts
             else None)
    return fit_value_on_rows(purchase, spend, value_model, columns)

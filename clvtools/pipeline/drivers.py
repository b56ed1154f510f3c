"""Why a customer is on the list, in words a call-centre agent can read: each churn driver's
part of the customer's risk (the Cox model's log hazard ratio against the average customer,
by variable) and a phrase for the value behind it (``no purchase for 16 weeks``).

Glue between the churn model's features and the scoring table; the choice of the strongest
drivers is :func:`clvtools.targeting.reasons.reason_codes`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..survival.churn_model import ChurnModel
from ..targeting.reasons import reason_codes, top_drivers
from .structural import RECENCY_BAND, STRUCTURAL_COLUMN

__all__ = ["baseline_centre", "contact_reasons", "driver_labels", "risk_drivers"]


def _log_baseline(model: ChurnModel, table: pd.DataFrame, horizon: float) -> np.ndarray:
    """log H0_s(h) of each row's recency band (floored: a band may have no hazard yet); a
    look-up per band, no design matrix."""
    # hashed, not sorted: a million labels share 26 values
    inverse, unique = pd.factorize(table[RECENCY_BAND])
    per_band = np.array([model._baseline_at(str(band), np.array([horizon]))[0]
                         for band in unique])
    return np.log(np.maximum(per_band, 1e-300))[inverse]


def baseline_centre(model: ChurnModel, table: pd.DataFrame, horizon: float,
                    weights=None) -> float:
    """The average customer's log baseline at the horizon over ``table`` (0 without recency
    strata): the reference of :func:`risk_drivers`. ``weights`` (shape (n,), customers per
    row) averages a table of counts by band, as a Spark job collects it."""
    if model.strata != [RECENCY_BAND]:
        return 0.0
    if not len(table):
        return 0.0
    return float(np.average(_log_baseline(model, table, horizon), weights=weights))


def risk_drivers(model: ChurnModel, scoring: pd.DataFrame, *, horizon: float,
                 centre: float = 0.0) -> pd.DataFrame:
    """Each variable's part of the log cumulative hazard at the horizon against the average
    customer, shape (n_rows, n_variables), indexed like ``scoring`` (covariates at the scoring
    date, as the model scored them).

    The parts are the Cox terms (x_j - mean x_j) beta_j summed by variable; with the baseline
    stratified by recency band, the band's log baseline less ``centre``
    (:func:`baseline_centre`) joins ``time_since_last_purchase``: the band and the linear term
    are one driver, and apart they offset each other (a steep slope within a band, a lower
    baseline in the later bands). The parts then add up to log H(h | x) - centre exactly.
    """
    parts = model.variable_contributions(scoring, source="scoring table")
    if model.strata == [RECENCY_BAND] and "time_since_last_purchase" in parts:
        parts["time_since_last_purchase"] += _log_baseline(model, scoring, horizon) - centre
    return parts


def driver_labels(scoring: pd.DataFrame, variables: list[str], *, time_unit: str) -> pd.DataFrame:
    """A short phrase per variable for each row of ``scoring``.

    Parameters
    ----------
    scoring : pandas.DataFrame, shape (n, k)
        Rows of a raw scoring (or landmark) table: behaviour columns and attributes.
    variables : list of str
        The churn model's variables (:func:`risk_drivers`' columns).
    time_unit : {"day", "week", "month"}

    Returns
    -------
    pandas.DataFrame of str, shape (n, len(variables))
        E.g. ``no purchase for 16 weeks``, ``3 purchases in the last 13 weeks``,
        ``channel: referral``.
    """
    unit = f"{time_unit}s"

    def phrase(column: str, template: str, digits: int = 0) -> np.ndarray:
        # each phrase made once per distinct rounded value (a million rows hold a few
        # hundred), then taken per row: no text is built per row
        codes, values = pd.factorize(scoring[column].astype("float64").round(digits))
        text = [template.format(f"{v:,g}") for v in values] + [template.format("nan")]
        return np.array(text, dtype=object)[codes]

    def each(values, form) -> np.ndarray:
        # ``form`` applied once per distinct value (missing ones included), taken per row
        codes, distinct = pd.factorize(values, use_na_sentinel=False)
        return np.array([form(v) for v in distinct] + [""], dtype=object)[codes]

    out = {}
    for variable in variables:
        if variable == "time_since_last_purchase":
            text = phrase(variable, "no purchase for {} " + unit, 1)
        elif variable == "tenure":
            text = phrase(variable, "customer for {} " + unit, 1)
        elif variable == "log_frequency":
            text = phrase("frequency", "{} repeat purchases")
        elif variable.startswith("log_purchases_last_"):
            window = variable.removeprefix("log_purchases_last_").replace("_", ".")
            text = phrase(variable.removeprefix("log_"),
                          "{} purchases in the last " + f"{window} {unit}")
        elif variable == "purchase_trend":
            trend = np.sign(scoring[variable].astype("float64").to_numpy())
            text = np.array(["buying less often than before", "steady buying",
                             "buying more often than before"], dtype=object)[
                np.select([trend < 0, trend > 0], [0, 2], 1)]
        elif variable == "log_average_spend":
            text = phrase("average_spend", "average spend {}", 2)
        elif variable == STRUCTURAL_COLUMN:
            # the value model's probability of declared churn, from its complementary log-log;
            # format(q, ".0%") is format(q * 100, ".0f") + "%", so the percent rounded to a
            # whole number (as the format rounds it) is formatted once per value
            p = -np.expm1(-np.exp(scoring[variable].astype("float64").to_numpy()))
            text = each(np.rint(p * 100),
                        lambda r: f"purchase pattern: {r:.0f}% chance of lapsing")
        elif pd.api.types.is_numeric_dtype(scoring[variable]):
            text = phrase(variable, f"{variable} " + "{}", 2)
        else:
            # as astype("string"): str of each value, a missing one read "(missing)"
            codes, levels = pd.factorize(scoring[variable])
            text = np.array([f"{variable}: {level}" for level in levels]
                            + [f"{variable}: (missing)"], dtype=object)[codes]
        out[variable] = text
    return pd.DataFrame(out, index=scoring.index)


def contact_reasons(contacted: pd.DataFrame, model: ChurnModel | None,
                    scoring: pd.DataFrame | None, *, horizon: float, centre: float,
                    time_unit: str, value_axis: str) -> pd.DataFrame:
    """targets.csv's reason columns of the contacted customers: value at stake and risk, then
    the two churn drivers that raise the customer's risk most (live customers scored by the
    Cox model). Each row's reasons depend on that row, ``centre`` and the model only, so a
    Spark job computes them chunk by chunk.

    Parameters
    ----------
    contacted : pandas.DataFrame, shape (n, k)
        Indexed by ``customer_id``: ``value_axis``, ``churn_probability``, ``value_share``
        (the share of live customers with a value at least as large), ``last_purchase``,
        ``lapsed_revenue``.
    model : ChurnModel or None
    scoring : pandas.DataFrame or None
        The scoring rows as the model scored them, indexed by ``customer_id`` (may hold
        other customers; the contacted churned have none).
    horizon : float
        Time units.
    centre : float
        :func:`baseline_centre` over every live customer scored.
    time_unit : str
    value_axis : str

    Returns
    -------
    pandas.DataFrame of str, shape (n, 3)
        :data:`~clvtools.targeting.reasons.REASON_COLUMNS`, indexed like ``contacted``.
    """
    drivers = None
    if model is not None and scoring is not None:
        # each contacted customer's scoring row, looked up once by id (-1: none, a declared
        # churned customer); the drivers then come back in the contact list's rows, empty
        # where none, so that the reason codes need no second look-up by id
        at = scoring.index.get_indexer(contacted.index)
        found = at >= 0
        rows = scoring.take(at[found])
        parts = risk_drivers(model, rows, horizon=horizon, centre=centre)
        labels = driver_labels(rows, list(parts.columns), time_unit=time_unit)
        named = top_drivers(parts, labels, k=2)
        drivers = pd.DataFrame(index=contacted.index)
        for column in named.columns:
            text = np.empty(len(contacted), dtype=object)
            text.fill("")
            text[found] = named[column].to_numpy()
            drivers[column] = text
    return reason_codes(contacted, drivers, value_column=value_axis)

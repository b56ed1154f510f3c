"""P(alive) ahead: the probability that a customer is still alive t time units from now if
they make no purchase in the meantime.

``probability_alive_ahead(model, t, frequency, recency, T)`` =
P(alive at T + t | x, t_x, T, no purchase in (T, T + t]). It answers "if this customer stays
silent for another t weeks, how sure can we still be that they have not left?", the curve
along which P(alive) decays for a silent customer (at t = 0 it is
``conditional_probability_alive``).

Derivation (common to all four models)
--------------------------------------
The event "x repeat purchases, the last at t_x, none in (t_x, T], and none in (T, T + t]"
is exactly the history of an RFM summary (x, t_x, T + t). Every model's likelihood depends on
the history only through that summary, so the posterior given the history plus the silent
window is the posterior given (x, t_x, T + t), and

    P(alive at T + t | x, t_x, T, no purchase in (T, T + t]) = P(alive | x, t_x, T + t).

* Pareto/NBD: the posterior over (lambda, mu) updated with an extra exposure of t time units
  without purchases: P = [1 + s/(r+s+x) ((alpha+T+t)^(r+x) (beta+T+t)^s A_0(T+t))]^-1
  (Fader & Hardie 2005, note 009, eqs. 36-37, with T + t for T); computed by the stable
  evaluation of :mod:`clvtools.btyd._pareto_nbd_math`. (No simple odds update: a customer
  alive at T may die silently inside the window.)
* BG/NBD and MBG/NBD: dropout happens only right after a purchase, so a customer alive at T
  who makes no purchase in (T, T + t] is alive at T + t. With the posterior of lambda given
  alive, Gamma(r + x, alpha + T), P(no purchase in the window | alive at T) =
  ((alpha+T)/(alpha+T+t))^(r+x), and a customer dead at T makes no purchase either, so the
  odds of being alive are multiplied by that factor:

      log-odds(alive ahead) = log-odds(alive now) + (r + x) log((alpha + T) / (alpha + T + t)),

  log-odds(alive now) = -log(a/(b+x-1)) - (r+x) log((alpha+T)/(alpha+t_x)) (BG/NBD, x > 0;
  Fader, Hardie & Lee 2005, Marketing Science, and Hardie's note 021) or
  -log(a/(b+x)) - (r+x) log((alpha+T)/(alpha+t_x)) (MBG/NBD, every x). This is the same as
  the model's P(alive) at (x, t_x, T + t), which the tests check. For BG/NBD with x = 0 the
  customer cannot have dropped out: P = 1.
* BG/BB (t whole opportunities): P = P(alive at n + t | x, t_x, n + t), Fader, Hardie & Shang
  (2010) eq. (11) at the extended number of opportunities, i.e.
  B(alpha+x, beta+n+t-x) B(gamma, delta+n+t) / [B(alpha, beta) B(gamma, delta) L(x, t_x, n+t)].
  It is NOT the fitter's ``conditional_probability_alive(t, ...)``, which is P(alive at n + t)
  without the condition of no purchase in between.

Equivalently, by Bayes' rule on the state at T (the route the tests take to check the
formulas above): with P0 = P(alive at T | x, t_x, T), S = P(alive at T + t and silent | alive
at T) and D = P(dropped out inside the window before any purchase | alive at T),

    P = P0 S / (1 - P0 + P0 (S + D)).

Pareto/NBD: S = (A/(A+t))^(r+x) (B/(B+t))^s and D = int_0^t s/(B+u) (B/(B+u))^s (A/(A+u))^(r+x)
du, A = alpha + T, B = beta + T. BG/NBD and MBG/NBD: D = 0 (hence the odds update). BG/BB,
t = m opportunities: S = B(gamma, delta+n+m)/B(gamma, delta+n) B(alpha+x, beta+n-x+m)/B(alpha+x,
beta+n-x) and D = sum_{j=1..m} B(gamma+1, delta+n+j-1)/B(gamma, delta+n)
B(alpha+x, beta+n-x+j-1)/B(alpha+x, beta+n-x).

The tests also compare it with simulations (customers drawn from the prior, conditioned by
rejection on the observed history and on a silent window).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..errors import ClvInputError
from .bgbb import BetaGeoBetaBinomFitter
from .bgnbd import BetaGeoFitter
from .mbgnbd import ModifiedBetaGeoFitter
from .pareto_nbd import ParetoNBDFitter

__all__ = ["probability_alive_ahead"]


def _inputs(t, frequency, recency, T, integer_t: bool):
    values = (t, frequency, recency, T)
    index = next((v.index for v in values if isinstance(v, pd.Series)), None)
    scalar = all(np.ndim(v) == 0 for v in values)
    try:
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
    except (TypeError, ValueError):
        raise ClvInputError("'t', 'frequency', 'recency' and 'T' must be numeric and "
                            "broadcastable to one shape.") from None
    tt, x, tx, age = arrays
    bad_t = ~np.isfinite(tt) | (tt < 0)
    if integer_t:
        bad_t |= tt != np.round(tt)
    if bad_t.any():
        kind = "whole numbers of opportunities >= 0" if integer_t else "non-negative numbers"
        raise ClvInputError(f"The 't' values must be {kind}.", column="t",
                            n_rows=int(bad_t.sum()))
    bad = (~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(age) | (x < 0) | (tx < 0)
           | (tx > age) | (x != np.round(x)))
    if bad.any():
        raise ClvInputError("The RFM values must be finite, with whole frequencies >= 0 and "
                            "0 <= recency <= T.", n_rows=int(bad.sum()),
                            advice="rebuild the RFM summary with clvtools.data.")
    return tt, x, tx, age, index, scalar


def _beta_geo_alive_ahead(model, t, x, tx, T):
    """Log-odds update of the module docstring (BG/NBD and MBG/NBD)."""
    r, alpha = model._unload_params("r", "alpha")
    log_odds_dead = model._log_odds_dead(x, tx, T)  # -inf where certainly alive (BG/NBD, x=0)
    log_odds_dead = log_odds_dead + (r + x) * (np.log(alpha + T + t) - np.log(alpha + T))
    return special.expit(-log_odds_dead)


def probability_alive_ahead(model, t, frequency, recency, T):
    """P(alive at T + t | history, no purchase in (T, T + t]); see the module docstring.

    Parameters
    ----------
    model : fitted BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter or BetaGeoBetaBinomFitter
    t : scalar or array_like
        Length of the silent window after T: time units of the model (>= 0), or whole
        opportunities for BG/BB. Broadcast against the customers (e.g. shape (1, k) against
        customers of shape (n, 1) gives an (n, k) grid).
    frequency, recency, T : scalar, array_like or Series, shape (n,)
        RFM summary in the model's time unit (BG/BB: T is n_periods).

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        Probabilities in [0, 1], non-increasing in t; equal to
        ``model.conditional_probability_alive(frequency, recency, T)`` at t = 0 (BG/BB:
        ``conditional_probability_alive(0, ...)``).
    """
    if not hasattr(model, "params_"):
        raise ClvInputError(f"This {type(model).__name__} has not been fitted yet.",
                            advice="call .fit(...) or .load_model(path) first.")
    is_bgbb = isinstance(model, BetaGeoBetaBinomFitter)
    t, x, tx, age, index, scalar = _inputs(t, frequency, recency, T, integer_t=is_bgbb)
    if isinstance(model, (BetaGeoFitter, ModifiedBetaGeoFitter)):
        out = _beta_geo_alive_ahead(model, t, x, tx, age)
    elif isinstance(model, ParetoNBDFitter):
        out = model.conditional_probability_alive(x, tx, age + t)
    elif is_bgbb:
        out = model.conditional_probability_alive(0.0, x, tx, age + t)
    else:
        raise ClvInputError(
            f"probability_alive_ahead does not know {type(model).__name__}.",
            advice="pass a fitted BG/NBD, MBG/NBD, Pareto/NBD or BG/BB model.")
    out = np.clip(np.asarray(out, dtype=float), 0.0, 1.0)
    if scalar:
        return float(out.reshape(-1)[0])
    if index is not None and out.ndim == 1 and len(out) == len(index):
        return pd.Series(out, index=index, name="p_alive_ahead")
    return out

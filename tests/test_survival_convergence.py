"""The acceptance rule of the Cox fits (``survival.convergence``), tested on optimiser results
built by hand, so that nothing depends on the BLAS kernel (OPENBLAS_CORETYPE=Haswell made a
fit at its optimum look unconverged: such variables are left alone here and in CI); and the
same shapes of result for the BTYD rule (``btyd._optimise.accept``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy.optimize import OptimizeResult

from clvtools.btyd._optimise import accept
from clvtools.errors import ConvergenceError
from clvtools.survival import ChurnModel
from clvtools.survival.convergence import (
    NEWTON_DECREMENT_TOL,
    accept_cox,
    check_cox_convergence,
    cox_optimum,
    newton_decrement,
)

#: What lifelines says when its step size or iteration limit stops it.
LIFELINES_STOP = "Newton-Raphson failed to converge sufficiently."
#: What scipy's BFGS says when its line search loses precision (at an optimum, often).
PRECISION_LOSS = "Desired error not necessarily achieved due to precision loss."
VARIANCE = np.array([[0.04, 0.01], [0.01, 0.09]])   # standard errors 0.2 and 0.3


def stopped(grad, variance=VARIANCE, success=False, message=LIFELINES_STOP):
    return OptimizeResult(x=np.array([0.5, -0.1]), jac=np.asarray(grad, float),
                          hess_inv=np.asarray(variance, float), success=success, message=message)


def test_a_stop_at_the_optimum_is_accepted():
    result = stopped([1e-3, -2e-3])                 # decrement 2e-7: 0.0006 standard errors
    assert newton_decrement(result) == pytest.approx([1e-3, -2e-3] @ VARIANCE @ [1e-3, -2e-3] / 2)
    assert accept_cox(result)
    check_cox_convergence(result)                    # no error


def test_a_stop_away_from_the_optimum_is_refused_with_what_to_do():
    result = stopped([5.0, 1.0])                     # decrement 0.595: a standard error away
    assert not accept_cox(result)
    with pytest.raises(ConvergenceError, match="did not converge") as caught:
        check_cox_convergence(result)
    message = str(caught.value)
    assert "Newton decrement 0.595" in message and "largest gradient 5" in message
    assert LIFELINES_STOP in message and "ChurnModel(penalizer=0.01)" in message


def test_lifelines_success_is_not_enough():
    assert not accept_cox(stopped([5.0, 1.0], success=True, message=""))


@pytest.mark.parametrize("variance", [np.diag([1.0, -1.0]), np.diag([1.0, 0.0]),
                                      np.full((2, 2), np.nan)], ids=["saddle", "ridge", "nan"])
def test_no_minimum_is_refused(variance):
    assert not accept_cox(stopped([1e-9, 1e-9], variance=variance))


def test_the_bound_is_the_tolerance():
    # along the first axis: decrement = g^2 * 0.04 / 2
    at = np.sqrt(2 * NEWTON_DECREMENT_TOL / 0.04)
    assert accept_cox(stopped([0.99 * at, 0.0], variance=np.diag([0.04, 0.09])))
    assert not accept_cox(stopped([1.01 * at, 0.0], variance=np.diag([0.04, 0.09])))


@pytest.mark.parametrize("message", [PRECISION_LOSS, "ABNORMAL: "])
def test_btyd_rule_on_the_same_shapes(message):
    # the mean objective of 1,000 customers with this Hessian: a precision-loss stop with a
    # tiny gradient is accepted, a large gradient refused
    hessian = np.linalg.inv(VARIANCE) / 1_000

    def rule(grad):
        result = stopped(grad, message=message)
        return accept(0.3, result.jac, result.x, n_total=1_000, gtol=1e-9,
                      hessian=lambda theta: hessian, success=result.success)

    assert rule([1e-7, 2e-7])
    assert not rule([5e-3, 1e-3])


# ---- the gradient of a real fit ----------------------------------------------------------
@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """800 customers, whole-day durations (ties), covariates on very different scales, strata."""
    rng = np.random.default_rng(3)
    n = 800
    x1, x2 = rng.normal(3, 50, n), rng.integers(0, 3, n).astype(float)
    churn, censor = np.ceil(rng.exponential(10 * np.exp(-0.01 * x1))), rng.integers(5, 30, n)
    return pd.DataFrame({"duration": np.minimum(churn, censor).astype(float),
                         "event": (churn <= censor).astype(int), "x1": x1, "x2": x2,
                         "band": rng.integers(0, 3, n), "w": rng.uniform(0.5, 3, n)})


@pytest.mark.parametrize("options", [dict(), dict(penalizer=0.1),
                                     dict(penalizer=0.01, strata="band", weights="w")],
                         ids=["plain", "ridge", "strata-weights"])
def test_a_lifelines_fit_is_judged_at_its_optimum(table, options):
    cph = CoxPHFitter(penalizer=options.get("penalizer", 0.0))
    columns = ["duration", "event", "x1", "x2"] + [c for c in ("band", "w") if c in
                                                   options.values()]
    with warnings.catch_warnings():
        # lifelines on non-integer weights: its naive variance is what the rule needs
        warnings.simplefilter("ignore")
        cph.fit(table[columns], "duration", "event", weights_col=options.get("weights"),
                strata=options.get("strata"))
    x = table[["x1", "x2"]].to_numpy()
    w = table["w"].to_numpy() if "weights" in options else np.ones(len(table))
    strata = table["band"].to_numpy() if "strata" in options else None

    def at(beta):
        return cox_optimum(x, table["duration"], table["event"], w, beta,
                           cph.variance_matrix_.to_numpy(), penalizer=cph.penalizer,
                           scale=cph._norm_std.to_numpy(), strata=strata)

    beta = cph.params_.to_numpy()
    assert newton_decrement(at(beta)) < 1e-9          # far inside the tolerance
    se = np.sqrt(np.diag(cph.variance_matrix_.to_numpy()))
    assert newton_decrement(at(beta + 0.1 * se)) > 100 * NEWTON_DECREMENT_TOL


def test_churn_model_fits_without_lifelines_warnings(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChurnModel(features=None, check_ph=False, covariates=["x1", "x2"],
                           penalizer=0.01).fit(table)
    assert np.all(np.isfinite(model.params_))

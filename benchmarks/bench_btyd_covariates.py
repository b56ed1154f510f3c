"""Benchmark: BTYD fits with static covariates beside the same models without them, one run.

    python benchmarks/bench_btyd_covariates.py [--n 100000] [--models pnbd,bgnbd]

For each model, a customer base from ``clvtools.data.generator.generate_customer_base``
(weekly rates, attribute effects on purchase and dropout, whole-day dates) is summarised into
an RFM table in weeks; then, on the same data:

* the plain fitter (``ParetoNBDFitter`` / ``BetaGeoFitter``), and
* the covariate fitter (``ParetoNBDCovariatesFitter`` / ``BetaGeoCovariatesFitter``) with the
  3 attributes channel, region and plan on each process (6 dummies each, 16 parameters),

are timed (wall clock, this process), with the number of distinct rows, iterations, the
log-likelihood gain and the largest distance of an estimated effect from the truth in
standard errors. Scoring time (P(alive) and 26-week expectation for every customer) is
reported too, and the expected purchases at the 12 month ends of 52 weeks (the main job's
forecast) in one pass against one call per month.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import machine_line  # the script's folder is on sys.path

from clvtools.btyd.bgnbd import BetaGeoFitter
from clvtools.btyd.bgnbd_covariates import BetaGeoCovariatesFitter
from clvtools.btyd.pareto_nbd import ParetoNBDFitter
from clvtools.btyd.pareto_nbd_covariates import ParetoNBDCovariatesFitter
from clvtools.data.generator import generate_customer_base
from clvtools.units import DAYS_PER_MONTH

FITTERS = {"pnbd": (ParetoNBDFitter, ParetoNBDCovariatesFitter),
           "bgnbd": (BetaGeoFitter, BetaGeoCovariatesFitter)}
COLS = ["channel", "region", "plan"]


def rfm_from_base(base) -> pd.DataFrame:
    """RFM summary in weeks (same-day purchases are one occasion)."""
    tx = base.transactions
    days = tx.drop_duplicates(["customer_id", "date"])
    g = days.groupby("customer_id")["date"]
    first, last, count = g.min(), g.max(), g.size()
    end = pd.Timestamp(base.observation_end)
    rfm = pd.DataFrame({"frequency": (count - 1).astype(float),
                        "recency": (last - first).dt.days / 7.0,
                        "T": (end - first).dt.days / 7.0})
    return rfm.loc[base.customers["customer_id"]]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(model: str, n: int) -> None:
    base = generate_customer_base(n, model=model, seed=7)
    rfm = rfm_from_base(base)
    attrs = base.customers.set_index("customer_id").loc[rfm.index]
    plain_cls, cov_cls = FITTERS[model]
    args = (rfm["frequency"], rfm["recency"], rfm["T"])
    plain, t_plain = timed(lambda: plain_cls().fit(*args))
    cov, t_cov = timed(lambda: cov_cls().fit(
        *args, attrs, COLS, COLS, reference_levels=base.truth["reference_levels"]))
    _, t_score = timed(lambda: (
        cov.conditional_probability_alive(*args, attrs),
        cov.conditional_expected_number_of_purchases_up_to_time(26.0, *args, attrs)))
    # the main job's forecast: expected purchases at each of the 12 month ends of 52 weeks
    ends = np.minimum(np.arange(1, 13) * DAYS_PER_MONTH / 7, 52.0)
    by_month, t_months = timed(lambda: cov.expected_purchases_by_horizon(ends, *args, attrs))
    per_call, t_calls = timed(lambda: [
        cov.conditional_expected_number_of_purchases_up_to_time(e, *args, attrs) for e in ends])
    gap = max(float(np.max(np.abs(by_month[e].to_numpy() / np.asarray(c) - 1)))
              for e, c in zip(ends, per_call, strict=True))
    truth = {}
    for process in ("purchase", "dropout"):
        for dummy, value in base.truth["covariate_effects"][process].items():
            attr, level = dummy.split("_", 1)
            truth[f"{process}:{attr}={level}"] = value
    truth = pd.Series(truth)
    z = ((cov.params_[truth.index] - truth) / cov.standard_errors_[truth.index]).abs()
    print(f"\n{model}: {n:,} customers, {cov.n_distinct_:,} distinct (x, t_x, T, z) rows, "
          f"{len(cov.params_)} parameters")
    print(f"  {plain_cls.__name__:<27}: {t_plain:7.2f} s  "
          f"(log-likelihood {plain.log_likelihood_:,.1f})")
    print(f"  {cov_cls.__name__:<27}: {t_cov:7.2f} s  ({cov.n_iterations_} iterations, "
          f"log-likelihood {cov.log_likelihood_:,.1f}, "
          f"gain {cov.log_likelihood_ - plain.log_likelihood_:,.1f})")
    print(f"  ratio covariates / plain   : {t_cov / t_plain:7.1f}x")
    print(f"  scoring {n:,} customers    : {t_score:7.2f} s (P(alive) + 26-week expectation)")
    print(f"  12 month ends, one pass    : {t_months:7.2f} s (expected_purchases_by_horizon), "
          f"one call per month {t_calls:.2f} s, {t_calls / t_months:.1f}x; "
          f"largest relative gap {gap:.1e}")
    print(f"  largest |estimate - truth| / se over the 12 effects: {z.max():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--models", default="pnbd,bgnbd")
    ns = parser.parse_args()
    print(machine_line(), flush=True)
    for model in ns.models.split(","):
        run(model, ns.n)


if __name__ == "__main__":
    main()

"""Benchmark: clvtools' ParetoNBDFitter against lifetimes 0.11.3 on the same data, one run.

    python benchmarks/bench_btyd_pareto.py [--n-fit 100000] [--n-score 1000000]
        [--rate-multiplier 2.5]

1. Fit on simulated customers (CDNOW-like parameters with the purchase rate multiplied by
   ``--rate-multiplier``, ages of 13-52 weeks in whole days, recency in whole days, as an RFM
   summary built from dated transactions has them). The default 2.5 gives rows that compress
   poorly, about half of them distinct (48,732 of 100k: issue 18's case); 1 gives CDNOW's rate
   (34,512 distinct). Prints wall and CPU times, the ratio, the peak memory and how far apart
   the optima are (parameters and total log-likelihood), the load average and the BLAS kernel.
2. Scoring: P(alive) and conditional expected purchases over 26 weeks for 1M customers
   (continuous recency and T), with the same parameters for both libraries.

Times are taken without tracemalloc (it slows clvtools' many small block allocations far more
than lifetimes' few big ones); peak memory (tracemalloc, Python + numpy allocations above the
start) is measured in a second, separate call. For lifetimes' fit, whose peak is the same in
every Nelder-Mead iteration, that second call is limited to 200 iterations.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _common import MEGABYTE, blas_kernel  # noqa: E402

from clvtools.btyd import _pareto_nbd_math as pm
from clvtools.btyd.pareto_nbd import ParetoNBDFitter

TRUE = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def timed(fn):
    """(result, seconds) of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def timed_cpu(fn):
    """(result, (wall seconds, CPU seconds of this process)) of ``fn()``: the machine may be
    shared, and CPU time is the fairer figure when other jobs compete for the cores."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w0, time.process_time() - c0)


def peak_mib(fn) -> float:
    """Peak traced memory (MB) while ``fn()`` runs."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / MEGABYTE
    tracemalloc.stop()
    return peak


def fit_data(n: int, seed: int, rate_multiplier: float = 1.0) -> pd.DataFrame:
    """``n`` simulated customers: ``frequency``, ``recency``, ``T`` in weeks (whole days)."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(13 * 7, 52 * 7 + 1, n)
    params = {**TRUE, "alpha": TRUE["alpha"] / rate_multiplier}
    d = pm.simulate_rfm(params, n, T_days / 7.0, seed=seed + 1)
    d["recency"] = np.floor(d["recency"] * 7.0) / 7.0  # whole days, in weeks
    return d[["frequency", "recency", "T"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-fit", type=int, default=100_000)
    ap.add_argument("--n-score", type=int, default=1_000_000)
    ap.add_argument("--rate-multiplier", type=float, default=2.5)
    args = ap.parse_args()
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"BLAS: {blas_kernel()}")
    warnings.simplefilter("ignore")  # lifetimes' deprecated pandas/numpy calls
    from lifetimes import ParetoNBDFitter as LifetimesPareto

    # ---- 1. fit ---------------------------------------------------------------------------
    d = fit_data(args.n_fit, seed=2024, rate_multiplier=args.rate_multiplier)
    x, tx, T = d["frequency"], d["recency"], d["T"]
    ours, (t_ours, c_ours) = timed_cpu(lambda: ParetoNBDFitter().fit(x, tx, T))
    # lifetimes draws its Nelder-Mead start from numpy's global generator
    np.random.seed(0)  # noqa: NPY002
    theirs, (t_theirs, c_theirs) = timed_cpu(lambda: LifetimesPareto().fit(x, tx, T))
    m_ours = peak_mib(lambda: ParetoNBDFitter().fit(x, tx, T))
    m_theirs = peak_mib(lambda: LifetimesPareto().fit(x, tx, T, maxiter=200))
    p_ours, p_theirs = ours.params_.to_numpy(), theirs.params_.to_numpy()
    ll_theirs = pm.loglik(p_theirs, x, tx, T).sum()
    print(f"1. fit, {args.n_fit:,} simulated customers ({ours.n_distinct_:,} distinct rows, "
          f"purchase rate x{args.rate_multiplier:g}); seconds wall / CPU")
    print(f"   clvtools  {t_ours:8.2f} / {c_ours:6.2f} s   peak {m_ours:8.1f} MB   "
          f"LL {ours.log_likelihood_:.4f}")
    print(f"   lifetimes {t_theirs:8.2f} / {c_theirs:6.2f} s   peak {m_theirs:8.1f} MB   "
          f"LL {ll_theirs:.4f}")
    print(f"   speed-up  {t_theirs / t_ours:8.1f} x wall, {c_theirs / c_ours:.1f} x CPU")
    print("   params clvtools :", np.array2string(p_ours, precision=6))
    print("   params lifetimes:", np.array2string(p_theirs, precision=6))
    print("   max relative difference of the parameters:",
          f"{np.max(np.abs(p_ours / p_theirs - 1)):.2e}",
          f"(LL clvtools - lifetimes = {ours.log_likelihood_ - ll_theirs:+.2e})")

    # ---- 2. scoring -----------------------------------------------------------------------
    rng = np.random.default_rng(7)
    s = pm.simulate_rfm(TRUE, args.n_score, rng.uniform(13, 52, args.n_score), seed=8)
    xs, txs, Ts = (s[c].to_numpy() for c in ("frequency", "recency", "T"))
    lt = LifetimesPareto()
    lt.params_ = pd.Series(TRUE)
    ours.params_ = pd.Series(TRUE)

    def score(model):
        return (model.conditional_probability_alive(xs, txs, Ts),
                model.conditional_expected_number_of_purchases_up_to_time(26.0, xs, txs, Ts))

    (pa_o, ce_o), t_o = timed(lambda: score(ours))
    (pa_t, ce_t), t_t = timed(lambda: score(lt))
    mem_o, mem_t = peak_mib(lambda: score(ours)), peak_mib(lambda: score(lt))
    ok = np.isfinite(pa_t) & np.isfinite(ce_t)
    print(f"2. scoring {args.n_score:,} customers: P(alive) + conditional expected purchases")
    print(f"   clvtools  {t_o:8.3f} s   peak {mem_o:8.1f} MB")
    print(f"   lifetimes {t_t:8.3f} s   peak {mem_t:8.1f} MB   ({(~ok).sum()} non-finite)")
    print(f"   speed-up  {t_t / t_o:8.1f} x")
    print("   max relative difference: P(alive)",
          f"{np.max(np.abs(pa_o[ok] / pa_t[ok] - 1)):.1e},",
          f"expected purchases {np.max(np.abs(ce_o[ok] / ce_t[ok] - 1)):.1e}")


if __name__ == "__main__":
    main()

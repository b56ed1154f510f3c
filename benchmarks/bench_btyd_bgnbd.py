"""Benchmark: clvtools' BG/NBD against lifetimes 0.11.3 on 1M simulated customers (whole days).

Run: ``python benchmarks/bench_btyd_bgnbd.py [--n 1000000] [--seed 1] [--no-memory]``

Phases, each timed on its own (wall clock, best of one run: the lifetimes fits are long):
  1. fit with clvtools on the 1M raw rows (it collapses them to ~290k distinct rows itself);
  2. fit with lifetimes on the 1M raw rows (no weights);
  3. fit with lifetimes on the collapsed rows with their weights;
  4. score the 1M customers: P(alive) and expected purchases in the next 30 days, both ways.
Peak memory per phase comes from a second pass under ``tracemalloc`` (numpy reports its
buffers to it), kept apart so that tracing overhead does not distort the timings.
Targets (issue 4): fit >= 20x (aim 50x) without weights, >= 5x with weights, scoring >= 2x.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from _common import MEGABYTE, machine_line  # the script's folder is on sys.path

from clvtools.btyd import BetaGeoFitter

TRUE = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}  # alpha in days (CDNOW-like, weekly 4.3)


def simulate_bgnbd(n: int, seed: int, max_age_days: int = 600) -> pd.DataFrame:
    """Simulate a BG/NBD base observed in whole days.

    Customers are acquired uniformly over ``max_age_days`` (T ~ U{1..max_age_days}); each has
    lambda ~ Gamma(r, 1/alpha) and p ~ Beta(a, b). Purchases follow a Poisson process; after
    each repeat purchase the customer drops out with probability p, so the number of repeat
    purchases before dropout is K ~ Geometric(p) and x = min(K, N(T)), N(T) ~ Poisson(lambda T).
    Given N(T) = m events, their times are m uniform order statistics on [0, T], so the x-th
    is T * Beta(x, m - x + 1). Recency is floored to whole days.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.integers(1, max_age_days + 1, n).astype(float)
    m = rng.poisson(lam * T)
    K = rng.geometric(p)
    x = np.minimum(m, K)
    tx = np.zeros(n)
    pos = x > 0
    tx[pos] = np.floor(T[pos] * rng.beta(x[pos], m[pos] - x[pos] + 1))
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})


def timed(fn):
    """Run ``fn``; return its result and (wall clock, CPU time of this process) in seconds.

    The machine may be shared: CPU time is the fairer figure when other jobs compete for the
    cores, wall clock what a user waits.
    """
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w0, time.process_time() - c0)


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / MEGABYTE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-age", type=int, default=600, help="oldest customer, days")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    import lifetimes  # the reference; imported here only

    warnings.simplefilter("ignore")  # lifetimes' deprecation noise on current pandas/numpy
    df, t_sim = timed(lambda: simulate_bgnbd(args.n, args.seed, args.max_age))
    agg = df.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
    print(f"simulated {len(df):,} customers in {t_sim[0]:.1f} s; {len(agg):,} distinct rows; "
          f"{(df['frequency'] > 0).mean():.1%} repeat buyers; true params {TRUE}")

    def ours():
        return BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])

    def lt_raw():
        return lifetimes.BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])

    def lt_w():
        return lifetimes.BetaGeoFitter().fit(
            agg["frequency"], agg["recency"], agg["T"], weights=agg["weights"])

    m_ours, t_ours = timed(ours)
    m_w, t_w = timed(lt_w)
    m_raw, t_raw = timed(lt_raw)
    print("\nfitted parameters (alpha in days)")
    print(pd.DataFrame({"true": pd.Series(TRUE), "clvtools": m_ours.params_,
                        "lifetimes (raw)": m_raw.params_, "lifetimes (weights)": m_w.params_}))
    rel = (m_ours.params_ / m_raw.params_ - 1).abs().max()
    print(f"max relative difference clvtools vs lifetimes: {rel:.2e}")

    x, tx, T = df["frequency"], df["recency"], df["T"]

    def score(model):
        return (model.conditional_probability_alive(x, tx, T),
                model.conditional_expected_number_of_purchases_up_to_time(30.0, x, tx, T))

    (pa_o, e_o), t_score_o = timed(lambda: score(m_ours))
    m_raw.params_ = m_ours.params_.copy()  # score with the same parameters
    (pa_l, e_l), t_score_l = timed(lambda: score(m_raw))
    diff_pa = np.max(np.abs(np.asarray(pa_o) - np.asarray(pa_l)))
    diff_e = np.nanmax(np.abs(np.asarray(e_o) - np.asarray(e_l)) / np.asarray(e_o))

    print("\ntimings in seconds: wall clock / CPU time (clvtools always fits the 1M raw rows)")
    rows = [
        ("fit, lifetimes without weights (1M rows)", t_raw, t_ours),
        ("fit, lifetimes with weights (distinct rows)", t_w, t_ours),
        ("score P(alive) + E[X(30 days)], 1M customers", t_score_l, t_score_o),
    ]
    for name, t_l, t_o in rows:
        print(f"  {name:46s} lifetimes {t_l[0]:6.2f} / {t_l[1]:6.2f}  clvtools "
              f"{t_o[0]:5.2f} / {t_o[1]:5.2f}  ratio {t_l[0] / t_o[0]:5.1f}x / "
              f"{t_l[1] / t_o[1]:5.1f}x")
    print(f"  scoring agreement: max |dP(alive)| {diff_pa:.1e}, max rel dE {diff_e:.1e}")

    if not args.no_memory:
        print("\npeak traced memory (MB, tracemalloc, separate pass)")
        for name, fn in [("fit clvtools (1M rows)", ours), ("fit lifetimes, weights", lt_w),
                         ("fit lifetimes, no weights", lt_raw),
                         ("score clvtools", lambda: score(m_ours)),
                         ("score lifetimes", lambda: score(m_raw))]:
            print(f"  {name:30s} {peak_mb(fn):9.1f}")


if __name__ == "__main__":
    main()

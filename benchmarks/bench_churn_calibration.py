"""Benchmark: calibration of churn probabilities against the known future.

    python benchmarks/bench_churn_calibration.py [--customers 60000] [--seeds 0 1 2]
        [--models bgnbd pnbd] [--settings 26/26 52/26] [--skip-cdnow]

On generated bases (``generate_customer_base(n, model=..., seed=..., follow_up=horizon)``,
with attributes) the truth is ``SimulatedBase.declared_churn``: who, among the customers not
yet declared churned at the observation end, is declared churned within the horizon. Each
candidate scores those live customers at the observation end; on CDNOW (horizon =
churn_after = 26 weeks) everything is fitted on the log up to 26 weeks before its end and
compared with the declared churn of the 26 weeks that followed (out of time).

Candidates:

* ``cox``: today's Cox model (``pipeline.risk.fit_churn_model`` on the landmark table);
* ``struct``: the value model's own probability, a plain BG/NBD
  (``btyd.declared_churn``: closed form for a horizon up to twice ``churn_after``);
* ``cox+struct``: Cox with the structural term ``log(-log(1 - P_struct))`` as a covariate,
  computed at each landmark from a BG/NBD fitted on ``log.until(landmark)``;
* ``cox_strata6``, ``cox_strata26``: Cox stratified by 6 or 26 equal bands of time since the
  last purchase (from 0 to ``churn_after``);
* ``cox+struct_strata6``, ``cox+struct_strata26``: both.

Per candidate: the largest and mean gap |predicted - observed| over deciles of predicted
probability, the Brier score, the AUC, and the naive rule's AUC (rank by time since the last
purchase) for reference.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import machine_line  # the script's folder is on sys.path
from sklearn.metrics import roc_auc_score

from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.data.survival_tables import DEFAULT_WINDOWS, landmark_table, scoring_table
from clvtools.datasets import load_cdnow_transactions
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.risk import PENALIZER, fit_churn_model
from clvtools.pipeline.structural import add_structural_term, structural_probability
from clvtools.pipeline.timeline import build_timeline
from clvtools.survival.churn_model import ChurnModel

BAND = "recency_band"


def decile_gaps(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> tuple[float, float]:
    """(largest, mean) |mean predicted - observed share| over bins of predicted probability."""
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * n_bins // len(p)
    gaps = [abs(p[bins == b].mean() - y[bins == b].mean()) for b in range(n_bins)]
    return float(max(gaps)), float(np.mean(gaps))


def figures(p: np.ndarray, y: np.ndarray) -> dict:
    largest, mean = decile_gaps(p, y)
    return {"max_gap": largest, "mean_gap": mean, "brier": float(np.mean((p - y) ** 2)),
            "auc": float(roc_auc_score(y, p))}


def with_band(table: pd.DataFrame, churn_after: float, bands: int) -> pd.DataFrame:
    edges = np.linspace(0, churn_after, bands + 1)
    band = np.clip(np.searchsorted(edges, table["time_since_last_purchase"], side="right"), 1,
                   bands)
    return table.assign(**{BAND: band.astype(str)})


def stratified_cox(survival: pd.DataFrame, settings: Settings) -> ChurnModel:
    model = ChurnModel(time_unit=settings.time_unit, tail="constant_hazard", seed=settings.seed,
                       penalizer=PENALIZER, features="landmark", strata=[BAND], check_ph=False,
                       clip_to_training=True,
                       purchase_window=DEFAULT_WINDOWS[settings.time_unit][1])
    return model.fit(survival)


def candidates(log, attributes, landmarks, settings: Settings) -> dict[str, pd.Series]:
    """Every candidate's probability for the live customers at ``log``'s end, by id."""
    h, c, unit = settings.horizon, settings.churn_after, settings.time_unit
    common = dict(churn_after=c, time_unit=unit, attributes=attributes)
    survival = landmark_table(log, landmarks=list(landmarks), **common)
    scoring = scoring_table(log, **common)
    ids = scoring["customer_id"].astype(str).to_numpy()
    out = {}
    cox, _ = fit_churn_model(survival, time_unit=unit, seed=settings.seed)
    out["cox"] = cox.churn_probability(scoring, h).to_numpy()
    out["struct"] = structural_probability(log, horizon=h, churn_after=c,
                                           time_unit=unit).reindex(ids).to_numpy()
    term = dict(horizon=h, churn_after=c, time_unit=unit)
    survival_s = add_structural_term(survival, log, **term)
    scoring_s = add_structural_term(scoring, log, **term)
    cox_s, _ = fit_churn_model(survival_s, time_unit=unit, seed=settings.seed)
    out["cox+struct"] = cox_s.churn_probability(scoring_s, h).to_numpy()
    coef = cox_s.params_.get("structural_churn_cloglog", np.nan)
    for bands in (6, 26):
        strata = stratified_cox(with_band(survival, c, bands), settings)
        out[f"cox_strata{bands}"] = strata.churn_probability(
            with_band(scoring, c, bands), h).to_numpy()
        strata_s = stratified_cox(with_band(survival_s, c, bands), settings)
        out[f"cox+struct_strata{bands}"] = strata_s.churn_probability(
            with_band(scoring_s, c, bands), h).to_numpy()
    naive = scoring["time_since_last_purchase"].to_numpy(dtype=float)
    return {k: pd.Series(v, index=ids) for k, v in out.items()}, pd.Series(naive, index=ids), coef


def report(label: str, probs: dict, naive: pd.Series, truth: pd.Series, coef: float) -> list:
    y = truth.reindex(naive.index).to_numpy(dtype=float)
    if np.isnan(y).any():
        raise RuntimeError(f"{label}: live customers differ from the truth's")
    naive_auc = float(roc_auc_score(y, naive.to_numpy()))
    rows = []
    print(f"\n{label}: {len(y):,} live customers, {y.mean():.3f} declared within the horizon; "
          f"naive AUC {naive_auc:.3f}; Cox coefficient of the structural term {coef:.3f}")
    print(f"  {'candidate':<20}{'max gap':>9}{'mean gap':>10}{'Brier':>8}{'AUC':>8}")
    for name, p in probs.items():
        f = figures(p.to_numpy(), y)
        print(f"  {name:<20}{f['max_gap']:>9.3f}{f['mean_gap']:>10.3f}{f['brier']:>8.4f}"
              f"{f['auc']:>8.3f}")
        rows.append({"case": label, "candidate": name, **f, "naive_auc": naive_auc})
    return rows


def generated(model: str, seed: int, horizon: float, churn_after: float, n: int) -> list:
    hd, cd = round(horizon * 7), round(churn_after * 7)
    base = generate_customer_base(n, model=model, seed=seed, follow_up=hd)
    # the base's own observation end (the last purchase may fall a day or two before it)
    settings = Settings(horizon=horizon, churn_after=churn_after, seed=seed,
                        observation_end=base.observation_end)
    inputs = read_inputs(base.transactions, base.customers, None, settings)
    log = inputs.log
    timeline = build_timeline(log.first_date, log.observation_end, settings)
    truth = base.declared_churn(cd, hd).set_index("customer_id")["churned"]
    probs, naive, coef = candidates(log, inputs.attributes, timeline.landmarks, settings)
    return report(f"{model} seed {seed} h={horizon:g} c={churn_after:g}", probs, naive, truth,
                  coef)


def cdnow(horizon: float = 26.0, churn_after: float = 26.0) -> list:
    """Out of time: fit on the log up to E = end - horizon, score at E, truth after E."""
    settings = Settings(horizon=horizon, churn_after=churn_after, monetary_value_col=None)
    frame = load_cdnow_transactions()[["customer_id", "date"]]
    log = read_inputs(frame, None, None, settings).log
    at = log.observation_end - pd.Timedelta(weeks=horizon).to_pytimedelta()
    past = log.until(at)
    timeline = build_timeline(past.first_date, past.observation_end, settings)
    probs, naive, coef = candidates(past, None, timeline.landmarks, settings)
    outcome = landmark_table(log, landmarks=[at], churn_after=churn_after, time_unit="week")
    truth = outcome.set_index(outcome["customer_id"].astype(str))["event"].astype(bool)
    return report(f"CDNOW out of time, scored {at}, h={horizon:g} c={churn_after:g}", probs,
                  naive, truth, coef)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["bgnbd", "pnbd"])
    parser.add_argument("--settings", nargs="+", default=["26/26", "52/26"],
                        help="horizon/churn_after pairs, weeks")
    parser.add_argument("--skip-cdnow", action="store_true")
    parser.add_argument("--csv", help="write every row of figures to this CSV file")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    rows, t0 = [], time.perf_counter()
    if not args.skip_cdnow:
        rows += cdnow()
    for pair in args.settings:
        h, c = (float(v) for v in pair.split("/"))
        for model in args.models:
            for seed in args.seeds:
                rows += generated(model, seed, h, c, args.customers)
    table = pd.DataFrame(rows)
    print("\nWorst case per candidate over the generated bases:")
    gen = table[~table["case"].str.startswith("CDNOW")]
    if len(gen):
        print(gen.groupby("candidate")[["max_gap", "mean_gap", "brier", "auc", "naive_auc"]]
              .agg({"max_gap": "max", "mean_gap": "max", "brier": "max", "auc": "min",
                    "naive_auc": "max"}).round(3).to_string())
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

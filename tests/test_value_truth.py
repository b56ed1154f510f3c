"""The value axis against the generator's truth: expected revenue over the horizon, overall and
per attribute segment, and P(alive)'s ranking of the truly alive customers.

The generator knows each customer's rates and whether it is alive at the observation end, so
its ``expected_future_revenue`` is the revenue expected over the follow-up given all that: the
truth's own conditional expectation, free of the noise of the realised purchases. The run's
value step (``value_model = "auto"``, attributes on purchase and dropout) must come within
:data:`TOLERANCE` of it in total and in every attribute segment of at least
:data:`MIN_SEGMENT` customers, on bases of both purchase processes and two seeds each.
"""
from __future__ import annotations

import pandas as pd
import pytest

from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.pipeline.holdout import auc
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.timeline import build_timeline
from clvtools.pipeline.value import score_customers, value_step

#: Largest relative gap between the model's and the truth's expected revenue.
TOLERANCE = 0.10
#: Smallest attribute segment checked (the referral channel, 15 % of the base, has ~1,800).
MIN_SEGMENT = 1_500
#: The follow-up and the horizon: 52 weeks.
HORIZON_WEEKS = 52
#: Lowest AUC of P(alive) against the true alive status at the observation end.
MIN_ALIVE_AUC = 0.80
N_CUSTOMERS = 12_000
BASES = [("bgnbd", 11), ("bgnbd", 12), ("pnbd", 11), ("pnbd", 12)]


def _segment_figures(base, scores: pd.DataFrame) -> pd.DataFrame:
    """Per attribute segment (and ``all``): customers, the model's expected revenue over the
    horizon (undiscounted), the truth's conditional expectation and the realised revenue."""
    truth = base.customer_truth.set_index("customer_id").loc[scores.index]
    attributes = base.customers.set_index("customer_id").loc[scores.index]
    frame = pd.DataFrame({"model": scores["expected_revenue"].to_numpy(),
                          "truth": truth["expected_future_revenue"].to_numpy(),
                          "realised": truth["future_revenue"].to_numpy()}, index=scores.index)
    rows = [{"attribute": "all", "segment": "all", "customers": len(frame), **frame.sum()}]
    for attribute in ("channel", "region", "plan"):
        for level, part in frame.groupby(attributes[attribute].to_numpy()):
            rows.append({"attribute": attribute, "segment": level, "customers": len(part),
                         **part.sum()})
    out = pd.DataFrame(rows)
    out["relative_error"] = out["model"] / out["truth"] - 1.0
    return out


@pytest.fixture(scope="module", params=BASES, ids=[f"{m}-seed{s}" for m, s in BASES])
def valued(request):
    """A generated base with a 52-week follow-up, valued by the run's value step."""
    process, seed = request.param
    base = generate_customer_base(N_CUSTOMERS, model=process, seed=seed, start="2022-01-01",
                                  observation_end="2024-12-31", follow_up=7 * HORIZON_WEEKS)
    settings = Settings(horizon=HORIZON_WEEKS, seed=seed)
    inputs = read_inputs(base.transactions, base.customers.drop(columns="acquisition_date"),
                         None, settings)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, settings)
    value = value_step(inputs, timeline, settings)
    # undiscounted, to compare with the truth's expected revenue over the follow-up
    scores = score_customers(value.models, value.rfm, horizon=HORIZON_WEEKS,
                             time_unit_days=timeline.unit_days, discount_rate=0.0)
    return base, value, scores


@pytest.mark.slow
def test_expected_revenue_matches_the_truth_overall_and_per_segment(valued):
    base, value, scores = valued
    figures = _segment_figures(base, scores)
    checked = figures[figures["customers"] >= MIN_SEGMENT]
    assert len(checked) == 10  # all, 3 channels, 4 regions, 2 plans
    summary = value.holdout["holdout_summary"].set_index("model")
    fit = {k: v for k, v in value.checks["frequency_fit"].items() if k != "table"}
    print(f"\n{base.model} seed {base.truth['seed']}: {value.choice.note}\n"
          + summary[["chosen", "holdout_error", "error_by_frequency", "error_by_segment",
                     "p_alive_auc", "actual_revenue", "expected_revenue"]].to_string()
          + "\n" + figures.round(3).to_string()
          + f"\nchecks: {({k: v for k, v in value.checks.items() if k != 'frequency_fit'})}"
          + f"\nchi-square: {fit}")
    worst = checked.loc[checked["relative_error"].abs().idxmax()]
    assert abs(worst["relative_error"]) <= TOLERANCE, worst.to_dict()


@pytest.mark.slow
def test_p_alive_ranks_the_truly_alive(valued):
    base, _value, scores = valued
    alive = base.customer_truth.set_index("customer_id").loc[scores.index, "alive_at_end"]
    area = auc(scores["p_alive"].to_numpy(), alive.to_numpy())
    print(f"\n{base.model} seed {base.truth['seed']}: P(alive) AUC against the true alive "
          f"status {area:.3f}")
    assert area > MIN_ALIVE_AUC


@pytest.mark.slow
def test_the_holdout_choice_and_checks_are_reported(valued):
    _base, value, _scores = valued
    summary = value.holdout["holdout_summary"]
    assert set(summary["model"]) == {"bgnbd", "pnbd"}  # like with like: both with covariates
    assert summary["chosen"].sum() == 1
    chosen = summary.loc[summary["chosen"]].iloc[0]
    assert chosen["holdout_error"] == summary["holdout_error"].min()
    # Gamma-Gamma's independence holds in the generator: no warning
    assert not value.checks["spend_frequency_correlation"]["warning"]
    assert 0.5 < value.checks["p_alive_auc_holdout"] <= 1.0

"""Coverage of the forecast's intervals on generated bases with known truth (slow).

Each replication generates a base (clvtools.data.generator) whose customers carry on past the
observation end for one horizon (``follow_up``), fits the value models as the value step does,
and asks whether the interval of the whole-horizon total expected revenue (forecast.csv's
``all`` / ``total`` row) covers the revenue the customers really spent in the follow-up.
Seeds and sizes are fixed here in advance; the counts are printed (``-s``) and in the
assertion message.
"""
from __future__ import annotations

import numpy as np
import pytest

from clvtools.config import Settings
from clvtools.data.generator import generate_customer_base
from clvtools.data.rfm import rfm_summary
from clvtools.forecast import normal_bounds
from clvtools.pipeline.forecasting import money_totals
from clvtools.pipeline.inputs import read_inputs
from clvtools.pipeline.timeline import build_timeline
from clvtools.pipeline.value import ValueResult, fit_value_models, score_customers_by_month

HORIZON_WEEKS = 26
#: (purchase process, with attributes, replications): 100 in all. Fewer with attributes
#: because fitting the covariate models takes most of the time.
CONFIGURATIONS = (("bgnbd", False, 35), ("pnbd", False, 35), ("bgnbd", True, 15),
                  ("pnbd", True, 15))
#: Base sizes, cycled through the replications.
SIZES = (2000, 2500, 3000, 5000)


def realised_and_interval(model: str, attributes: bool, n: int, seed: int):
    """(realised revenue, mean, interval bounds) of one replication."""
    base = generate_customer_base(n, model=model, seed=seed,
                                  covariate_effects=None if attributes else {},
                                  follow_up=HORIZON_WEEKS * 7)
    s = Settings(horizon=HORIZON_WEEKS, observation_end=base.observation_end,
                 value_model=model, discount_rate=0.0)
    customers = base.customers.drop(columns="acquisition_date") if attributes else None
    inputs = read_inputs(base.transactions, customers, None, s)
    timeline = build_timeline(inputs.log.first_date, inputs.log.observation_end, s)
    rfm = rfm_summary(inputs.log, time_unit=s.time_unit)
    models = fit_value_models(rfm, model, inputs.attributes.frame() if attributes else None)
    ends = timeline.forecast_month_ends()
    scores, months = score_customers_by_month(models, rfm, horizon=s.horizon,
                                              time_unit_days=timeline.unit_days,
                                              discount_rate=0.0, period_ends=ends)
    value = ValueResult(rfm, models, scores, {}, [], months=months)
    mean, var = money_totals(value, ends, np.zeros(len(rfm), dtype=np.intp))["expected_revenue"]
    bounds = normal_bounds(mean[-1:, -1:], var[-1:, -1:])
    return (float(base.customer_truth["future_revenue"].sum()), float(mean[-1, -1]),
            {k: float(v[0, 0]) for k, v in bounds.items()})


@pytest.mark.slow
def test_total_revenue_intervals_cover_the_realised_revenue():
    counts = {}
    seed = 1000
    for model, attributes, replications in CONFIGURATIONS:
        covered = {"95": 0, "80": 0}
        for i in range(replications):
            seed += 1
            real, _, b = realised_and_interval(model, attributes, SIZES[i % len(SIZES)], seed)
            for level in covered:
                covered[level] += b[f"lo{level}"] <= real <= b[f"hi{level}"]
        counts[(model, attributes)] = (covered["95"], covered["80"], replications)
    total = sum(c[2] for c in counts.values())
    in95 = sum(c[0] for c in counts.values())
    in80 = sum(c[1] for c in counts.values())
    summary = "; ".join(f"{m}{' + attributes' if a else ''}: 95 % {c95}/{n}, 80 % {c80}/{n}"
                        for (m, a), (c95, c80, n) in counts.items())
    print(f"\nforecast coverage over {total} replications: 95 % {in95}, 80 % {in80}; {summary}")
    assert total >= 100
    assert in95 >= 0.90 * total, summary
    assert in80 >= 0.70 * total, summary

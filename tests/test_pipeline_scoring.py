"""The chunk scorer (pipeline/scoring.py) is the pipeline's own scoring: scored in chunks, with
the run's fitted models, the base gets the figures the main job gave it (no Spark needed)."""
import numpy as np
import pandas as pd
import pytest

from clvtools import api
from clvtools.data.survival_tables import scoring_table
from clvtools.datasets import generate_customer_base
from clvtools.pipeline.scoring import Scorers, decide_chunk, score_chunk
from clvtools.pipeline.structural import fit_structural_model
from clvtools.targeting.allocation import Action

NUMBERS = ["p_alive", "expected_purchases", "expected_average_spend", "churn_probability",
           "revenue_if_retained", "expected_revenue", "revenue_at_risk", "lapsed_revenue",
           "preventable_revenue"]


@pytest.fixture(scope="module")
def run():
    tx = generate_customer_base(1200, seed=5).transactions
    return api.analyze(tx, value_model="bgnbd")


def test_chunks_score_as_the_main_job(run):
    a, s = run.analysis, run.settings
    rfm = a.value.rfm
    scorers = Scorers(a.value.models, a.risk.model, fit_structural_model(rfm), horizon=s.horizon,
                      churn_after=s.churn_after, time_unit_days=a.timeline.unit_days,
                      discount_rate=s.discount_rate, seed=s.seed,
                      period_ends=tuple(a.timeline.forecast_month_ends()))
    table = scoring_table(a.inputs.log, churn_after=s.churn_after, time_unit=s.time_unit)
    chunks = []
    for ids in np.array_split(rfm.index.to_numpy(), 3):
        rows = table[table["customer_id"].isin(ids)]
        chunks.append(score_chunk(rfm.loc[ids], rows, scorers))
    scored = pd.concat(chunks)
    expected = run.customers.set_index("customer_id")
    assert a.risk.model is not None and scored["churn_model"].eq("declared_churned").any()
    assert (scored["churn_model"] == expected["churn_model"]).all()
    for column in NUMBERS:
        np.testing.assert_allclose(scored[column].to_numpy(float),
                                   expected[column].to_numpy(float), rtol=1e-12, atol=1e-12,
                                   equal_nan=True, err_msg=column)

    summary = a.targets.summary
    push, pull = (Action(n, getattr(s, f"{n}_cost"), getattr(s, f"{n}_incentive"),
                         getattr(s, f"{n}_uplift"), getattr(s, f"{n}_reactivation"))
                  for n in ("push", "pull"))
    decided = decide_chunk(scored, cut_points={"value": summary["value_cut_point"],
                                               "risk": summary["risk_cut_point"]},
                           value_axis=s.value_axis, push=push, pull=pull, margin=s.margin,
                           offer=s.offer)
    assert (decided["cell"] == expected["cell"]).all()
    np.testing.assert_allclose(decided["net_benefit_push"], expected["net_benefit_push"],
                               rtol=1e-12)
    # without a capacity, push is every open gain and pull every other open pull
    action = np.where(decided["push_gain"] > 0, "push",
                      np.where(decided["pull_open"], "pull", "none"))
    assert (action == expected["action"]).all()


def test_customer_scores_join_by_id_whatever_the_order(run):
    from clvtools.pipeline.scoring import customer_scores

    value, risk = run.analysis.value, run.analysis.risk
    aligned = customer_scores(value.rfm, value.scores, risk.scores)   # columns side by side
    shuffled = risk.scores.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(value.rfm.index)
    pd.testing.assert_frame_equal(customer_scores(value.rfm, value.scores, shuffled), aligned)
    assert list(aligned.columns[:4]) == list(value.rfm.columns)
    assert aligned["churn_model"].equals(risk.scores["churn_model"].reindex(aligned.index))

"""Competing churn reasons: Aalen-Johansen incidence, cause-specific Cox, reason probabilities."""
import warnings

import numpy as np
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from clvtools.survival import (
    ChurnModel,
    CompetingRisksModel,
    cumulative_incidence,
    simulate_contracts,
)


@pytest.fixture(scope="module")
def contracts():
    return simulate_contracts(6000, seed=4)


@pytest.fixture(scope="module")
def model(contracts):
    return CompetingRisksModel(check_ph=False, time_unit="month").fit(contracts)


def test_aalen_johansen_matches_lifelines_without_ties():
    c = simulate_contracts(800, grid=1e-9, seed=8)  # continuous times: no ties to jitter
    assert not c["duration"][c["event"] == 1].duplicated().any()
    ours = cumulative_incidence(c)
    for k, name in [(1, "voluntary"), (2, "non_payment")]:
        with warnings.catch_warnings():
            # lifelines warns when it jitters tied times; tied censoring times at the follow-up
            # are harmless here (no event is tied), so that warning is expected
            warnings.filterwarnings("ignore", message="Tied event times were detected")
            ajf = AalenJohansenFitter(calculate_variance=False).fit(
                c["duration"], c["event_type"], event_of_interest=k)
        ref = ajf.cumulative_density_.iloc[:, 0]
        mine = ours[ours["reason"] == name].set_index("time")["cumulative_incidence"]
        t_events = c.loc[c["event_type"] == k, "duration"].to_numpy()
        np.testing.assert_allclose(mine.reindex(t_events).to_numpy(),
                                   ref.reindex(t_events).to_numpy(), atol=1e-10)


def test_incidences_add_up_to_one_minus_kaplan_meier(contracts):
    ci = cumulative_incidence(contracts, "region")
    for seg, part in ci.groupby("segment"):
        wide = part.pivot(index="time", columns="reason", values="cumulative_incidence")
        np.testing.assert_allclose(wide["voluntary"] + wide["non_payment"], wide["all"],
                                   atol=1e-12)
        sub = contracts[contracts["region"] == seg]
        km = KaplanMeierFitter().fit(sub["duration"], sub["event"])
        np.testing.assert_allclose(1 - wide["all"], km.survival_function_at_times(wide.index),
                                   atol=1e-12)


def test_cause_specific_models_recover_effects(model):
    s = model.summary
    assert set(s.index.get_level_values("reason")) == {"voluntary", "non_payment"}
    vol, nonpay = s.loc["voluntary"], s.loc["non_payment"]
    # truth: voluntary log HR(phone) = log 1.6, non-payment log HR(south) = log 1.8, store 0.7
    for table_, cov, truth in [(vol, "channel=phone", np.log(1.6)),
                               (nonpay, "region=south", np.log(1.8)),
                               (nonpay, "channel=store", np.log(0.7)),
                               (vol, "region=south", 0.0)]:
        assert abs(table_.loc[cov, "coef"] - truth) < 3.5 * table_.loc[cov, "se"], cov


def test_reason_probabilities_are_consistent(model, contracts):
    p = model.reason_probabilities(contracts, 12.0, chunk_rows=1000)
    assert list(p.columns) == ["voluntary", "non_payment", "all_causes"]
    assert ((p >= 0) & (p <= 1)).all().all()
    np.testing.assert_allclose(p["voluntary"] + p["non_payment"], p["all_causes"], atol=1e-12)
    # all causes = 1 - exp(-(H_1 + H_2)), the product of the cause-specific survivals
    h = sum(m.cumulative_hazard(contracts, [12.0])[:, 0] for m in model.models_.values())
    np.testing.assert_allclose(p["all_causes"], -np.expm1(-h), atol=1e-12)
    # close to an all-cause Cox model fitted directly (same covariates)
    direct = ChurnModel(check_ph=False).fit(contracts).churn_probability(contracts, 12.0)
    assert np.abs(direct - p["all_causes"]).mean() < 0.01
    # averaged over customers, each reason agrees with its Aalen-Johansen incidence
    ci = cumulative_incidence(contracts)
    for name in ["voluntary", "non_payment"]:
        part = ci[(ci["reason"] == name) & (ci["time"] <= 12.0)]
        assert p[name].mean() == pytest.approx(part["cumulative_incidence"].iloc[-1], abs=0.01)

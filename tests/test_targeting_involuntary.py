"""The involuntary share of the risk: Aalen-Johansen incidence at the horizon by hand, reason
names matched whatever their case, spaces and hyphens."""
import pandas as pd
import pytest

from clvtools.survival.competing_risks import cumulative_incidence
from clvtools.targeting.revenue_at_risk import involuntary_share


def test_involuntary_share_by_hand():
    contracts = pd.DataFrame({"duration": [1.0, 2.0, 3.0, 10.0], "event_type": [1, 2, 3, 0],
                              "end_reason": ["non-payment", "voluntary", "Non Payment", None]})
    incidence = cumulative_incidence(contracts)
    # n = 4 at t = 1: F_np = 1/4, S = 3/4; t = 2: F_vol = 3/4 * 1/3 = 1/4, S = 1/2;
    # t = 3: F_np += 1/2 * 1/2 = 1/4; all ends by the horizon 5: 3/4, involuntary 1/2
    out = involuntary_share(incidence, 5.0, ["non_payment"])
    assert out["involuntary_share"] == pytest.approx((1 / 2) / (3 / 4), rel=1e-12)
    assert out["involuntary_reasons"] == "Non Payment, non-payment"
    assert out["ended_within_horizon"] == pytest.approx(0.75, rel=1e-12)
    # a horizon before the first end, or no involuntary reason: nothing to say
    assert involuntary_share(incidence, 0.5, ["non_payment"]) is None
    assert involuntary_share(incidence, 5.0, ["fraud"]) is None
    # at t = 2 only one non-payment end of two ends
    assert involuntary_share(incidence, 2.0, ["NON-PAYMENT"])["involuntary_share"] == (
        pytest.approx(0.5, rel=1e-12))

"""The summary's comparison of two groups: the always-valid result is `experiments.always_valid`'s, the fixed-horizon
one is the pooled two-proportion z-test, each with the settings' alpha and minimum effect."""

from __future__ import annotations

import pytest

from api.schemas import GroupResult
from api.services.ab import compare, comparison_alpha, conversion_comparison
from common.settings import Settings
from experiments.always_valid import Moments, best_rho, difference
from experiments.plan import Arm, Plan, even_split
from experiments.statistics import two_proportions


def _group(exposed: int, converted: int) -> GroupResult:
    return GroupResult(exposed_customers=exposed, converted_customers=converted, exposures=exposed,
                       converted_items=converted, revenue=0.0, conversion_rate=converted / exposed,
                       revenue_per_exposed=0.0)


def test_conversion_uses_the_always_valid_test_and_labels_the_fixed_one() -> None:
    settings = Settings(ab_alpha=0.1, ab_planned_customers=3000, ab_min_effect=0.02)
    result = conversion_comparison(_group(2000, 200), _group(2000, 290), settings, alpha=0.1)
    expected = difference(Moments.of(2000, 200, 200), Moments.of(2000, 290, 290), alpha=0.1,
                          rho=best_rho(3000, 0.1), min_effect=0.02)
    assert result.difference == pytest.approx(0.045) and result.relative == pytest.approx(0.45)
    assert result.always_valid.p_value == pytest.approx(float(expected.p_value))
    assert result.always_valid.ci_low == pytest.approx(float(expected.ci_low))
    assert result.always_valid.decision == "treatment_better" == str(expected.decision)
    assert result.always_valid.decision_text == "stop: treatment is better" and result.always_valid.min_effect == 0.02
    race = two_proportions(200, 2000, 290, 2000, alpha=0.1)
    assert result.fixed_horizon.p_value == pytest.approx(race.p_value)
    assert result.fixed_horizon.ci_low == pytest.approx(race.ci_low)
    assert result.fixed_horizon.label.startswith("fixed-horizon z-test: valid for one look")


def test_an_empty_group_gives_no_interval() -> None:
    result = compare(Moments.of(0, 0, 0), Moments.of(5, 10, 40), Settings(), 0.05, min_effect=1.0)
    assert result.always_valid.ci_low is None and result.always_valid.ci_high is None
    assert result.always_valid.p_value == 1 and result.always_valid.decision == "keep_running"
    assert result.fixed_horizon.p_value is None and result.relative is None


def test_each_comparison_with_the_control_gets_an_equal_share_of_alpha() -> None:
    arms = [Arm(name="control", strategy="best_sellers"), Arm(name="a", strategy="model", version="current"),
            Arm(name="b", strategy="model", version="v1")]
    plan = Plan(name="x", arms=arms, split=even_split(3), salt="s", started_at=0.0)
    assert comparison_alpha(0.05, plan) == pytest.approx(0.025)
    assert comparison_alpha(0.05, plan.model_copy(update={"arms": arms[:2], "split": [50, 50]})) == 0.05
    # the interval at the corrected alpha is the wider one
    wide = compare(Moments.of(2000, 200, 200), Moments.of(2000, 290, 290), Settings(), 0.025, min_effect=0.01)
    narrow = compare(Moments.of(2000, 200, 200), Moments.of(2000, 290, 290), Settings(), 0.05, min_effect=0.01)
    assert wide.always_valid.ci_low is not None and narrow.always_valid.ci_low is not None
    assert wide.always_valid.ci_low < narrow.always_valid.ci_low

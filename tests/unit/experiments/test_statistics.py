from __future__ import annotations

import math

import pytest

from common.assignment import bucket, group_of
from experiments.statistics import two_proportions


def test_assignment_is_sticky_and_salt_dependent() -> None:
    assert all(group_of("s", f"c{i}", 50) == group_of("s", f"c{i}", 50) for i in range(1000))
    changed = sum(bucket("s1", f"c{i}") != bucket("s2", f"c{i}") for i in range(1000))
    assert changed > 900


@pytest.mark.parametrize("percent", [10, 50, 80])
def test_split_is_close_to_the_configured_share_over_100k_ids(percent: int) -> None:
    n = 100_000
    treated = sum(group_of("exp-salt", f"customer-{i}", percent) == "treatment" for i in range(n))
    share = treated / n
    # 5 standard errors of a binomial share: fails only if the hash is biased
    assert abs(share - percent / 100) < 5 * math.sqrt(percent / 100 * (1 - percent / 100) / n)


def test_edges_of_the_split() -> None:
    assert all(group_of("s", f"c{i}", 0) == "control" for i in range(200))
    assert all(group_of("s", f"c{i}", 100) == "treatment" for i in range(200))


def test_two_proportions_hand_computed() -> None:
    race = two_proportions(control_conv=100, control_n=1000, treatment_conv=130, treatment_n=1000)
    assert race.control_rate == pytest.approx(0.10)
    assert race.treatment_rate == pytest.approx(0.13)
    assert race.absolute_uplift == pytest.approx(0.03)
    assert race.relative_uplift == pytest.approx(0.30)
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert race.ci_low == pytest.approx(0.03 - 1.959964 * se, abs=1e-6)
    assert race.ci_high == pytest.approx(0.03 + 1.959964 * se, abs=1e-6)
    pooled = 0.115
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert race.z == pytest.approx(z)
    assert race.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert race.p_value is not None and 0.03 < race.p_value < 0.04  # the textbook value for this case is p = 0.035


def test_empty_groups_have_no_test() -> None:
    race = two_proportions(0, 0, 3, 10)
    assert race.p_value is None and math.isnan(race.ci_low)

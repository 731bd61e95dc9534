"""A plan's arms and split: parsed from the CLI's words, validated, and dealt to customers by bucket."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from common.assignment import group_of
from common.settings import Settings
from experiments.plan import Arm, Plan, default_plan, even_split


def test_the_settings_experiment_keeps_every_customers_old_group() -> None:
    settings = Settings(ab_treatment_percent=30)
    plan = default_plan(settings)
    assert [a.label for a in plan.arms] == ["best_sellers", "model:current"] and plan.split == [70, 30]
    assert all(plan.arm_of(f"c{i}").name == group_of(settings.ab_salt, f"c{i}", 30) for i in range(2000))


def test_arms_are_parsed_from_the_clis_words() -> None:
    assert Arm.parse("control=best_sellers") == Arm(name="control", strategy="best_sellers")
    assert Arm.parse("new=model:20261205T020000Z").pinned_version == "20261205T020000Z"
    assert Arm.parse("now=model:current").pinned_version is None
    for bad in ("control", "x=model:", "x=popular", "cust=best_sellers", "a b=best_sellers"):
        with pytest.raises((ValueError, ValidationError)):
            Arm.parse(bad)


def test_a_split_is_whole_percents_per_arm_adding_up_to_100() -> None:
    arms = [Arm.parse("a=best_sellers"), Arm.parse("b=model:current"), Arm.parse("c=model:v2")]
    assert even_split(3) == [34, 33, 33] and even_split(8) == [13, 13, 13, 13, 12, 12, 12, 12]
    plan = Plan(name="x", arms=arms, split=[50, 25, 25], salt="s", started_at=0.0)
    dealt = Counter(plan.arm_of(f"c{i}").name for i in range(20_000))
    assert dealt["a"] / 20_000 == pytest.approx(0.5, abs=0.02) and dealt["c"] / 20_000 == pytest.approx(0.25, abs=0.02)
    assert plan.pinned_versions() == {"v2"} and plan.arm("b") == arms[1]
    with pytest.raises(KeyError):
        plan.arm("nope")
    for split in ([50, 50], [50, 25, 24], [101, -1, 0]):
        with pytest.raises(ValidationError):
            Plan(name="x", arms=arms, split=split, salt="s", started_at=0.0)
    with pytest.raises(ValidationError, match="must differ"):
        Plan(name="x", arms=[arms[0], arms[0]], split=[50, 50], salt="s", started_at=0.0)
    with pytest.raises(ValidationError, match="reserved"):  # a name the key layout uses
        Plan(name="ended", arms=arms, split=[34, 33, 33], salt="s", started_at=0.0)

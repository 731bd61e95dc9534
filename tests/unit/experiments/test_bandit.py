"""The guarded Thompson split: shares follow each arm's posterior chance of being best, never fall below the floor,
are whole percents adding up to 100; the inverse-probability-weighted estimate is unbiased where the plain
difference of an adaptive split need not be."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.bandit import expected_shares, guarded_shares, ipw_mean, probability_best, thompson_shares
from experiments.plan import Arm, Bandit, Plan
from experiments.simulation import Scenario, simulate


def test_the_chance_of_being_best_follows_the_posteriors() -> None:
    rng = np.random.default_rng(1)
    clear = probability_best([300, 100], [1000, 1000], rng)
    assert clear[0] == pytest.approx(1.0, abs=1e-3) and clear.sum() == pytest.approx(1.0)
    even = probability_best([100, 100, 100], [1000, 1000, 1000], rng)
    assert even == pytest.approx([1 / 3] * 3, abs=0.02)


@pytest.mark.parametrize(("best", "floor", "expected"), [
    ([1.0, 0.0], 0.1, [90, 10]),
    ([0.5, 0.5], 0.1, [50, 50]),
    ([0.0, 0.0, 1.0], 0.1, [10, 10, 80]),
    ([0.7, 0.2, 0.1], 0.0, [70, 20, 10]),
    ([0.34, 0.33, 0.33], 0.2, [34, 33, 33]),
])
def test_shares_are_whole_percents_above_the_floor(best: list[float], floor: float, expected: list[int]) -> None:
    shares = guarded_shares(np.array(best), floor)
    assert shares == expected and sum(shares) == 100 and min(shares) >= floor * 100


def test_a_floor_the_arms_cannot_all_have_is_refused() -> None:
    with pytest.raises(ValueError):
        guarded_shares(np.array([0.5, 0.3, 0.2]), 0.4)


def test_thompson_shares_move_customers_to_the_better_arm() -> None:
    shares = thompson_shares([80, 120], [1000, 1000], 0.1, np.random.default_rng(2))
    assert shares[1] == 90 and shares[0] == 10


def test_ipw_mean_divides_by_every_customer() -> None:
    # 3 converted customers of an arm that had a quarter of the traffic: 12 of 100 customers in all would convert
    assert float(ipw_mean(3 / 0.25, 100)) == pytest.approx(0.12)
    assert float(ipw_mean(0.0, 0)) == 0


def test_the_guarded_bandit_earns_more_and_its_weighted_estimate_stays_centred() -> None:
    fixed = simulate(Scenario(runs=200, days=14, customers_per_day=300, effect=0.03, seed=8))
    bandit = simulate(Scenario(runs=200, days=14, customers_per_day=300, effect=0.03, seed=8, split="thompson"))
    assert 0.6 < bandit.treatment_share <= 0.9  # the floor keeps a tenth of the customers on control
    assert bandit.regret < fixed.regret / 2
    error = bandit.estimate_error
    assert abs(error["ipw_bias"]) < 3 * error["ipw_rmse"] / np.sqrt(200)
    assert fixed.estimate_error["plain_rmse"] < error["ipw_rmse"]  # weighting costs precision


def test_the_sample_ratio_expects_each_split_for_the_customers_it_dealt() -> None:
    # 100 customers at 50/50, then 300 more at 20/80: expected (50 + 60) / 400 and (50 + 240) / 400
    assert expected_shares([([50, 50], 0), ([20, 80], 100)], 400) == pytest.approx([110 / 400, 290 / 400])
    assert expected_shares([([34, 66], 0)], 0) == pytest.approx([0.34, 0.66])


def test_a_bandit_plan_keeps_its_floor_and_draws_buckets_per_interval() -> None:
    arms = [Arm(name="control", strategy="best_sellers"), Arm(name="new", strategy="model", version="v2")]
    plan = Plan(name="b", arms=arms, split=[50, 50], salt="s", started_at=1000.0, bandit=Bandit(interval_s=60))
    with pytest.raises(ValueError, match="at least 10%"):
        Plan.model_validate(plan.model_dump() | {"split": [95, 5]})
    assert [plan.interval_at(t) for t in (999.0, 1000.0, 1059.0, 1060.0, 1200.0)] == [0, 0, 0, 1, 3]
    customers = [f"c{i}" for i in range(400)]
    first = [plan.arm_of(c).name for c in customers]
    assert first == [plan.arm_of(c).name for c in customers]  # within an interval: the same arm
    later = plan.model_copy(update={"split": [10, 90], "bandit": Bandit(interval_s=60, interval=1)})
    moved = [later.arm_of(c).name for c in customers]
    assert 0.8 < moved.count("new") / 400 < 0.97 and plan.share(arms[1]) == 0.5

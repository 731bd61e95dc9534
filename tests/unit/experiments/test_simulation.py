"""The causal simulator: the planted effect is what the data show, the fixed test looked at daily inflates its
false positives while the always-valid test stays under alpha, and the intervals cover the truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.simulation import Scenario, cuped_table, plot, regret_table, simulate, table


def test_a_a_peeking_inflates_the_fixed_test_but_not_the_always_valid_one() -> None:
    outcome = simulate(Scenario(runs=400, days=14, customers_per_day=300, seed=11))
    for metric in (outcome.conversion, outcome.revenue):
        assert metric.truth == 0
        assert metric.always_valid_any_look <= 0.05
        assert metric.fixed_any_look > 2 * 0.05  # checked 14 times, the fixed test finds "winners" far too often
        assert metric.fixed_final == pytest.approx(0.05, abs=0.035)  # looked at once it keeps its 5%
        assert metric.coverage_always_valid_every_look >= 0.95
        assert metric.coverage_fixed_every_look < metric.coverage_fixed_final
        curve = metric.rejections_by_day["fixed_peeking"]
        assert len(curve) == 14 and curve == sorted(curve)


def test_a_planted_effect_is_found_and_covered() -> None:
    outcome = simulate(Scenario(runs=200, days=14, customers_per_day=400, effect=0.04, seed=5))
    conversion = outcome.conversion
    assert conversion.truth == 0.04 and outcome.revenue.truth == pytest.approx(0.04 * 30.0)
    assert conversion.stopped_better > 0.9 and conversion.stopped_worse == 0
    assert conversion.median_stop_day is not None and conversion.median_stop_day < 14
    assert conversion.coverage_always_valid_every_look >= 0.95


def test_the_planted_effect_is_the_difference_the_data_show() -> None:
    # one huge experiment of one day: the fixed test's estimate is within a few standard errors of the truth
    outcome = simulate(Scenario(runs=10, days=1, customers_per_day=200_000, effect=0.03, seed=2))
    assert outcome.conversion.coverage_fixed_final >= 0.8
    assert outcome.conversion.stopped_better == 1.0


def test_cuped_keeps_the_a_a_error_under_daily_looks_and_removes_variance_when_the_past_predicts() -> None:
    alike = simulate(Scenario(runs=300, days=14, customers_per_day=300, seed=12))
    different = simulate(Scenario(runs=300, days=14, customers_per_day=300, concentration=1.0, pre_weeks=8,
                                  seed=12))
    for outcome in (alike, different):
        for metric in (outcome.conversion_cuped, outcome.revenue_cuped):
            assert metric.truth == 0 and metric.always_valid_any_look <= 0.05
            assert metric.coverage_always_valid_every_look >= 0.95
    # customers that differ: their pre-period spend predicts their conversion, and CUPED removes variance
    assert different.variance_reduction["conversion"] > 0.08 > 0.01 > alike.variance_reduction["conversion"]
    assert different.variance_reduction["revenue"] > 0.03


def test_cuped_finds_a_planted_effect_no_later_than_the_raw_test() -> None:
    outcome = simulate(Scenario(runs=200, days=14, customers_per_day=400, effect=0.03, concentration=1.0,
                                pre_weeks=8, seed=6))
    assert outcome.conversion_cuped.stopped_better >= outcome.conversion.stopped_better > 0.5
    assert outcome.conversion_cuped.mean_decision_day <= outcome.conversion.mean_decision_day
    assert outcome.conversion_cuped.coverage_always_valid_every_look >= 0.95


def test_scenarios_that_cannot_plant_an_exact_effect_are_refused() -> None:
    with pytest.raises(ValueError):
        Scenario(base_rate=0.19, effect=0.1)  # 5 * 0.19 + 0.1 > 1: some chances would exceed 1
    with pytest.raises(ValueError):
        Scenario(effect=-0.01)


def test_table_and_plot(tmp_path: Path) -> None:
    outcomes = [simulate(Scenario(runs=20, days=3, customers_per_day=50, effect=e, seed=1)) for e in (0.0, 0.02)]
    bandits = [simulate(Scenario(runs=20, days=3, customers_per_day=50, effect=e, seed=1, split="thompson"))
               for e in (0.0, 0.02)]
    assert regret_table(outcomes, bandits).count("\n") == 1 + 2
    text = table(outcomes)
    assert text.count("\n") == 1 + 2 * 4 and "(A/A)" in text and "conversion, CUPED" in text
    assert cuped_table(outcomes).count("\n") == 1 + 2 * 2
    plot(outcomes, tmp_path / "sim.png")
    assert (tmp_path / "sim.png").stat().st_size > 10_000


def test_thompson_sampling_moves_customers_to_the_better_list_and_loses_fewer_conversions() -> None:
    fixed = simulate(Scenario(runs=100, days=10, customers_per_day=300, effect=0.03, seed=4))
    bandit = simulate(Scenario(runs=100, days=10, customers_per_day=300, effect=0.03, seed=4, split="thompson"))
    assert fixed.treatment_share == pytest.approx(0.5, abs=0.01)
    assert fixed.regret == pytest.approx(0.03 * 3000 * (1 - fixed.treatment_share))
    assert bandit.treatment_share > 0.75 and bandit.regret < fixed.regret / 2
    same = simulate(Scenario(runs=100, days=10, customers_per_day=300, effect=0.0, seed=4, split="thompson"))
    assert same.regret == 0 and same.treatment_share == pytest.approx(0.5, abs=0.1)

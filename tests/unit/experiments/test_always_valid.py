"""The always-valid test against its closed forms, computed by hand here: Howard et al.'s sum form, Johari et al.'s
mSPRT form and Waudby-Smith et al.'s width formula must give the same numbers, and the decisions follow the
interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.always_valid import (
    Moments,
    best_rho,
    difference,
    fixed_horizon,
    log_mixture,
    mixture_bound,
    sample_ratio_mismatch,
)

ALPHA = 0.05


def test_best_rho_hand_computed() -> None:
    # 2 log(1/0.05) = 5.99146, log(1 + 5.99146) = 1.94470: rho = 1000 / 7.93616 = 126.006
    assert best_rho(1000, ALPHA) == pytest.approx(126.006, abs=1e-3)
    with pytest.raises(ValueError):
        best_rho(0, ALPHA)


def test_best_rho_gives_a_nearly_narrowest_bound_at_v_opt() -> None:
    # the closed form is an approximation of the minimiser: within 0.01% of the best width on a fine grid
    rho = best_rho(1000, ALPHA)
    width = float(mixture_bound(1000, ALPHA, rho))
    grid = [float(mixture_bound(1000, ALPHA, rho * f)) for f in np.linspace(0.5, 2.0, 301)]
    assert min(grid) <= width < min(grid) * 1.0001
    assert width < float(mixture_bound(1000, ALPHA, rho / 2))
    assert width < float(mixture_bound(1000, ALPHA, rho * 2))


def test_bound_and_martingale_hand_computed() -> None:
    # v = 500, rho = 100: u = sqrt(600 (log 6 + 2 log 20)) = sqrt(600 * 7.783224) = sqrt(4669.934) = 68.33692
    assert float(mixture_bound(500, ALPHA, 100)) == pytest.approx(68.33692, abs=1e-5)
    # s = 50: log M = 0.5 log(100 / 600) + 2500 / 1200 = -0.895880 + 2.083333 = 1.187453
    assert float(log_mixture(50, 500, 100)) == pytest.approx(1.187453, abs=1e-6)
    # on the boundary the martingale equals exactly 1 / alpha (the interval and the p-value agree)
    u = float(mixture_bound(500, ALPHA, 100))
    assert math.exp(float(log_mixture(u, 500, 100))) == pytest.approx(1 / ALPHA)


def _conversion(conv: int, n: int) -> Moments:
    return Moments.of(n, conv, conv)


def test_difference_of_proportions_matches_the_three_published_forms() -> None:
    control, treatment = _conversion(100, 1000), _conversion(130, 1000)
    rho = best_rho(2000, ALPHA)
    result = difference(control, treatment, alpha=ALPHA, rho=rho, min_effect=0.01)
    d = 0.03
    var = 0.1 * 0.9 * 1000 / 999 / 1000 + 0.13 * 0.87 * 1000 / 999 / 1000  # sample variances / n
    n = 2000
    assert float(result.estimate) == pytest.approx(d)
    # Johari et al.: Lambda = sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2))), tau^2 = n V / rho
    tau2 = n * var / rho
    lam = math.sqrt(var / (var + tau2)) * math.exp(tau2 * d * d / (2 * var * (var + tau2)))
    assert float(result.p_value) == pytest.approx(min(1.0, 1 / lam), rel=1e-9)
    # Waudby-Smith et al.: d +/- sigma sqrt(2 (t r^2 + 1) / (t^2 r^2) log(sqrt(t r^2 + 1) / alpha)), r^2 = 1 / rho
    sigma, r2 = math.sqrt(n * var), 1 / rho
    half = sigma * math.sqrt(2 * (n * r2 + 1) / (n * n * r2) * math.log(math.sqrt(n * r2 + 1) / ALPHA))
    assert float(result.ci_low) == pytest.approx(d - half, rel=1e-9)
    assert float(result.ci_high) == pytest.approx(d + half, rel=1e-9)
    # the numbers themselves (rho = 252.011): half-width 0.04328, wider than the fixed test's 0.02795; p = 0.4187
    assert half == pytest.approx(0.04328, abs=1e-5)
    assert float(result.p_value) == pytest.approx(0.41866, abs=1e-5)
    assert str(result.decision) == "keep_running"  # the fixed-horizon test (p = 0.035) would have called it


def test_interval_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    rng = np.random.default_rng(4)
    n_c = rng.integers(50, 5000, 400).astype(float)
    n_t = rng.integers(50, 5000, 400).astype(float)
    c = rng.binomial(n_c.astype(int), 0.1).astype(float)
    t = rng.binomial(n_t.astype(int), 0.12).astype(float)
    result = difference(Moments(n_c, c, c), Moments(n_t, t, t), alpha=ALPHA, rho=best_rho(2000, ALPHA),
                        min_effect=0.0)
    excludes = (result.ci_low > 0) | (result.ci_high < 0)
    assert np.array_equal(excludes, result.p_value < ALPHA)
    assert 0 < excludes.sum() < len(excludes)  # both cases occur


@pytest.mark.parametrize(("conv_c", "conv_t", "n", "min_effect", "decision"), [
    (1000, 1400, 10_000, 0.01, "treatment_better"),
    (1400, 1000, 10_000, 0.01, "treatment_worse"),
    (10_000, 10_050, 100_000, 0.01, "no_practical_difference"),  # interval about +/- 0.004 around 0.0005
    (10_000, 10_050, 100_000, 0.001, "keep_running"),  # ... but not inside +/- 0.001
    (10, 12, 100, 0.01, "keep_running"),
])
def test_decisions(conv_c: int, conv_t: int, n: int, min_effect: float, decision: str) -> None:
    result = difference(_conversion(conv_c, n), _conversion(conv_t, n), alpha=ALPHA, rho=best_rho(2000, ALPHA),
                        min_effect=min_effect)
    assert str(result.decision) == decision


def test_revenue_moments_hand_computed() -> None:
    # control: 4 customers spent 0, 0, 10, 30; treatment: 4 customers spent 0, 20, 20, 40
    control, treatment = Moments.of(4, 40, 1000), Moments.of(4, 80, 2000)
    assert float(control.mean()) == 10 and float(control.variance()) == pytest.approx((1000 - 4 * 100) / 3)
    est, low, high, p = fixed_horizon(control, treatment, alpha=ALPHA)
    se = math.sqrt(200 / 4 + (2000 - 4 * 400) / 3 / 4)
    assert float(est) == 10
    assert float(low) == pytest.approx(10 - 1.959964 * se, abs=1e-5)
    assert float(high) == pytest.approx(10 + 1.959964 * se, abs=1e-5)
    assert float(p) == pytest.approx(math.erfc(10 / se / math.sqrt(2)))


def test_nothing_to_say_without_two_customers_per_group_or_any_variance() -> None:
    for control, treatment in ((_conversion(0, 1), _conversion(1, 5)), (_conversion(0, 50), _conversion(0, 50))):
        result = difference(control, treatment, alpha=ALPHA, rho=100, min_effect=0.01)
        assert float(result.p_value) == 1 and math.isinf(float(result.ci_low)) and str(result.decision) == (
            "keep_running")


HALVES = {"control": 0.5, "treatment": 0.5}


def test_sample_ratio_mismatch_hand_computed() -> None:
    # 5,200 vs 4,800 against 50/50: chi2 = 2 * 200^2 / 5000 = 16, p = erfc(sqrt(8)) = 6.33e-5
    srm = sample_ratio_mismatch({"control": 4800, "treatment": 5200}, HALVES, threshold=0.001)
    assert srm.chi_square == pytest.approx(16.0)
    assert srm.p_value == pytest.approx(6.334e-5, rel=1e-3)
    assert srm.mismatch and srm.observed_shares == pytest.approx({"control": 0.48, "treatment": 0.52})
    fine = sample_ratio_mismatch({"control": 5030, "treatment": 4970}, HALVES, threshold=0.001)
    assert fine.chi_square == pytest.approx(0.36) and not fine.mismatch
    # 20% treatment: 8,000 expected in control; 7,900 / 2,100 gives chi2 = 100^2/8000 + 100^2/2000 = 6.25
    assert sample_ratio_mismatch({"control": 7900, "treatment": 2100}, {"control": 0.8, "treatment": 0.2},
                                 threshold=0.001).chi_square == pytest.approx(6.25)


def test_sample_ratio_over_three_arms_has_two_degrees_of_freedom() -> None:
    # 3,000 expected each; 3,300 / 2,850 / 2,850: chi2 = (300^2 + 150^2 + 150^2) / 3000 = 45; with 2 degrees of
    # freedom the survival function is exp(-chi2 / 2)
    thirds = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    srm = sample_ratio_mismatch({"a": 3300, "b": 2850, "c": 2850}, thirds, threshold=0.001)
    assert srm.chi_square == pytest.approx(45.0)
    assert srm.p_value == pytest.approx(math.exp(-22.5), rel=1e-9) and srm.mismatch


def test_sample_ratio_edges() -> None:
    nobody_in_treatment = {"control": 1.0, "treatment": 0.0}
    assert not sample_ratio_mismatch({"control": 0, "treatment": 0}, HALVES, threshold=0.001).mismatch
    assert sample_ratio_mismatch({"control": 10, "treatment": 3}, nobody_in_treatment, threshold=0.001).mismatch
    assert not sample_ratio_mismatch({"control": 10, "treatment": 0}, nobody_in_treatment, threshold=0.001).mismatch

"""CUPED from the stream's sums equals the regression adjustment done customer by customer, and the always-valid
test run on it equals the test run on the hand-adjusted outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.always_valid import Moments, best_rho, difference
from experiments.cuped import Sums, adjust, theta


def _sums(x: np.ndarray, y: np.ndarray) -> Sums:
    return Sums(len(x), x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum())


def _arms(seed: int = 3, effect: float = 0.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.gamma(2.0, 10.0, 400), rng.gamma(2.0, 10.0, 380)
    y_c = 0.8 * x_c + rng.normal(0, 5, 400)
    y_t = 0.8 * x_t + effect + rng.normal(0, 5, 380)
    return x_c, y_c, x_t, y_t


def test_the_adjustment_from_sums_equals_the_one_done_customer_by_customer() -> None:
    x_c, y_c, x_t, y_t = _arms(effect=2.0)
    adjusted = adjust(_sums(x_c, y_c), _sums(x_t, y_t))
    # theta by hand: within-arm centred cross products over within-arm centred squares, pooled
    cross = ((x_c - x_c.mean()) * (y_c - y_c.mean())).sum() + ((x_t - x_t.mean()) * (y_t - y_t.mean())).sum()
    square = ((x_c - x_c.mean()) ** 2).sum() + ((x_t - x_t.mean()) ** 2).sum()
    assert float(adjusted.theta) == pytest.approx(cross / square)
    m = np.concatenate([x_c, x_t]).mean()
    hand_c, hand_t = y_c - cross / square * (x_c - m), y_t - cross / square * (x_t - m)
    for got, hand in ((adjusted.control, hand_c), (adjusted.treatment, hand_t)):
        assert float(got.mean()) == pytest.approx(hand.mean())
        assert float(got.variance()) == pytest.approx(hand.var(ddof=1))
    rho = best_rho(1000, 0.05)
    by_sums = difference(adjusted.control, adjusted.treatment, alpha=0.05, rho=rho, min_effect=1.0)
    by_hand = difference(Moments.of(len(hand_c), hand_c.sum(), (hand_c**2).sum()),
                         Moments.of(len(hand_t), hand_t.sum(), (hand_t**2).sum()), alpha=0.05, rho=rho, min_effect=1.0)
    assert float(by_sums.ci_low) == pytest.approx(float(by_hand.ci_low))
    assert float(by_sums.p_value) == pytest.approx(float(by_hand.p_value))
    raw = difference(Moments.of(400, y_c.sum(), (y_c**2).sum()), Moments.of(380, y_t.sum(), (y_t**2).sum()),
                     alpha=0.05, rho=rho, min_effect=1.0)
    # a covariate that explains most of y: a much narrower interval, a reduction near the squared correlation
    assert float(by_sums.ci_high - by_sums.ci_low) < 0.5 * float(raw.ci_high - raw.ci_low)
    correlation = np.corrcoef(np.concatenate([x_c, x_t]), np.concatenate([y_c, y_t]))[0, 1]
    assert float(adjusted.variance_reduction) == pytest.approx(correlation**2, abs=0.05)


def test_a_covariate_that_does_not_vary_changes_nothing() -> None:
    _, y_c, _, y_t = _arms()
    flat_c, flat_t = _sums(np.zeros(400), y_c), _sums(np.zeros(380), y_t)
    adjusted = adjust(flat_c, flat_t)
    assert float(theta(flat_c, flat_t)) == 0 and float(adjusted.variance_reduction) == pytest.approx(0)
    assert float(adjusted.treatment.mean()) == pytest.approx(y_t.mean())


def test_sums_of_runs_are_adjusted_run_by_run() -> None:
    x_c, y_c, x_t, y_t = _arms()
    one = adjust(_sums(x_c, y_c), _sums(x_t, y_t))
    pair = [_sums(x_c, y_c), _sums(x_t, y_t)]
    stacked = adjust(*(Sums(*(np.array([getattr(s, f), getattr(s, f)]) for f in ("n", "x", "x_sq", "y", "y_sq",
                                                                                   "xy"))) for s in pair))
    assert np.allclose(stacked.theta, float(one.theta)) and np.allclose(stacked.treatment.mean(),
                                                                       float(one.treatment.mean()))
    empty = adjust(Sums(0, 0, 0, 0, 0, 0), Sums(0, 0, 0, 0, 0, 0))
    assert float(empty.theta) == 0 and float(empty.variance_reduction) == 0

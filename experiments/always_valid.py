"""Inference that stays valid under continuous monitoring, for a difference of means between two groups (the
conversion rate, or revenue per exposed customer), and the sample-ratio-mismatch check. Pure functions.

The test is the normal-mixture sequential probability ratio test (mSPRT) of Johari, Pekelis & Walsh, "Always
valid inference: continuous monitoring of A/B tests" (Operations Research 70(3), 2022), with the plug-in variance
of the asymptotic confidence sequences of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central
limit theory and asymptotic confidence sequences" (Annals of Statistics 52(6), 2024). In the notation of Howard,
Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences" (Annals of
Statistics 49(2), 2021), with S the standardised sum, v the intrinsic time and rho the mixture's precision:

    log M(s, v) = 1/2 log(rho / (v + rho)) + s^2 / (2 (v + rho))          (the mixture martingale)
    |S_v| <= sqrt((v + rho) (log(1 + v / rho) + 2 log(1 / alpha)))       (holds for all v at once, prob. 1 - alpha)
    rho*(v_opt) = v_opt / (2 log(1 / alpha) + log(1 + 2 log(1 / alpha)))  (the width is smallest at v_opt)

For two groups, v is the number of exposed customers n = n_c + n_t, the estimate is the difference of the group
means d, and its variance V = s_c^2 / n_c + s_t^2 / n_t (sample variances), so the standardised sum is
S = d sqrt(n / V). This is the same statistic as Johari et al.'s mSPRT with mixing variance tau^2 = n V / rho;
`1 / M` is the always-valid p-value and d -/+ sqrt(V / n) u(n) the always-valid interval.

Every function takes floats or numpy arrays (the simulator evaluates thousands of experiments at once)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import erfc
from scipy.stats import chi2, norm

from common.i18n import N_

Array = npt.NDArray[np.float64]
Values = Array | float
Decision = Literal["keep_running", "treatment_better", "treatment_worse", "no_practical_difference"]
# Marked for the catalogue: the live view shows them in the session's language.
DECISION_WORDS: dict[Decision, str] = {
    "keep_running": N_("keep running"),
    "treatment_better": N_("stop: treatment is better"),
    "treatment_worse": N_("stop: treatment is worse"),
    "no_practical_difference": N_("stop: no practical difference"),
}


def best_rho(v_opt: float, alpha: float) -> float:
    """The mixture precision that makes the interval (nearly) narrowest at intrinsic time `v_opt`: Howard et
    al.'s closed form (their reference code, `confseq`, `TwoSidedNormalMixture::best_rho`); Waudby-Smith et al.
    2024 choose rho = 1 / rho_ws^2 for a boundary tightest at t* the same way."""
    if v_opt <= 0 or not 0 < alpha < 1:
        raise ValueError("v_opt must be > 0 and alpha in (0, 1)")
    log_inv = 2 * math.log(1 / alpha)
    return v_opt / (log_inv + math.log(1 + log_inv))


def log_mixture(s: Values, v: Values, rho: float) -> Array:
    """log M: the two-sided normal-mixture martingale at standardised sum `s` and intrinsic time `v`."""
    s, v = np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return np.asarray(0.5 * np.log(rho / (v + rho)) + s * s / (2 * (v + rho)), dtype=np.float64)


def mixture_bound(v: Values, alpha: float, rho: float) -> Array:
    """u(v): |S_v| stays below it for every v at once with probability at least 1 - alpha."""
    v = np.asarray(v, dtype=np.float64)
    return np.asarray(np.sqrt((v + rho) * (np.log1p(v / rho) + 2 * math.log(1 / alpha))), dtype=np.float64)


@dataclass(frozen=True)
class Moments:
    """A group's count, sum and sum of squares of a per-customer metric (for conversion, sum == sum of squares ==
    converted customers)."""

    n: Array
    total: Array
    total_sq: Array

    @staticmethod
    def of(n: float, total: float, total_sq: float) -> Moments:
        return Moments(np.asarray(n, dtype=np.float64), np.asarray(total, dtype=np.float64),
                       np.asarray(total_sq, dtype=np.float64))

    def mean(self) -> Array:
        return np.asarray(np.divide(self.total, self.n, out=np.zeros_like(self.total), where=self.n > 0))

    def variance(self) -> Array:
        """The sample variance (n - 1 in the denominator); 0 below two customers."""
        centred = np.maximum(self.total_sq - self.n * self.mean() ** 2, 0.0)
        return np.asarray(np.divide(centred, self.n - 1, out=np.zeros_like(centred), where=self.n > 1))


@dataclass(frozen=True)
class Sequential:
    """Difference of means (treatment - control): estimate, always-valid interval and p-value, decision. Arrays
    of the shape of the inputs; the interval is +/- inf and the p-value 1 where nothing can be said yet."""

    estimate: Array
    ci_low: Array
    ci_high: Array
    p_value: Array
    decision: npt.NDArray[np.str_]


def difference(control: Moments, treatment: Moments, *, alpha: float, rho: float, min_effect: float) -> Sequential:
    """The always-valid test and interval of treatment mean - control mean, and what to do about it:
    stop (treatment better) when the interval is above 0, stop (treatment worse) when below 0, stop (no practical
    difference) when it lies inside (-min_effect, +min_effect), otherwise keep running."""
    estimate = treatment.mean() - control.mean()
    n = control.n + treatment.n
    var_c = np.divide(control.variance(), control.n, out=np.zeros_like(estimate), where=control.n > 0)
    var_t = np.divide(treatment.variance(), treatment.n, out=np.zeros_like(estimate), where=treatment.n > 0)
    variance = var_c + var_t
    known = (control.n >= 2) & (treatment.n >= 2) & (variance > 0)
    safe_var = np.where(known, variance, 1.0)
    safe_n = np.where(known, n, 1.0)
    half = np.sqrt(safe_var / safe_n) * mixture_bound(safe_n, alpha, rho)
    s = estimate * np.sqrt(safe_n / safe_var)
    log_m = log_mixture(s, safe_n, rho)
    p_value = np.where(known, np.minimum(1.0, np.exp(-np.minimum(log_m, 700.0))), 1.0)
    low = np.where(known, estimate - half, -np.inf)
    high = np.where(known, estimate + half, np.inf)
    decision = np.full(np.shape(estimate), "keep_running", dtype="<U32")
    decision = np.where((low > -min_effect) & (high < min_effect), "no_practical_difference", decision)
    decision = np.where(low > 0, "treatment_better", decision)
    decision = np.where(high < 0, "treatment_worse", decision)
    return Sequential(estimate, low, high, np.asarray(p_value, dtype=np.float64), decision)


def fixed_horizon(control: Moments, treatment: Moments, *, alpha: float) -> tuple[Array, Array, Array, Array]:
    """The fixed-horizon (one look, sample size fixed in advance) Welch z-test of the difference of means:
    (estimate, interval low, high, two-sided p-value). Valid only when looked at once."""
    estimate = treatment.mean() - control.mean()
    var_c = np.divide(control.variance(), control.n, out=np.zeros_like(estimate), where=control.n > 0)
    var_t = np.divide(treatment.variance(), treatment.n, out=np.zeros_like(estimate), where=treatment.n > 0)
    se = np.sqrt(var_c + var_t)
    known = (control.n >= 2) & (treatment.n >= 2) & (se > 0)
    safe_se = np.where(known, se, 1.0)
    z_crit = float(norm.ppf(1 - alpha / 2))
    p_value = np.where(known, erfc(np.abs(estimate / safe_se) / math.sqrt(2)), 1.0)
    return (estimate, np.where(known, estimate - z_crit * se, -np.inf), np.where(known, estimate + z_crit * se, np.inf),
            np.asarray(p_value, dtype=np.float64))


@dataclass(frozen=True)
class SampleRatio:
    """Chi-square goodness of fit of exposed customers per arm against the configured split."""

    expected_shares: dict[str, float]
    observed_shares: dict[str, float] | None
    chi_square: float | None
    p_value: float | None
    mismatch: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_ratio_mismatch(counts: Mapping[str, int], shares: Mapping[str, float], threshold: float) -> SampleRatio:
    """Pearson's chi-square with (arms - 1) degrees of freedom over the arms the split gives customers to; a
    mismatch when p < `threshold`. An arm the split gives nothing to that still has customers is a mismatch
    outright."""
    total = sum(counts.values())
    expected_shares = dict(shares)
    if total == 0:
        return SampleRatio(expected_shares, None, None, None, False)
    observed = {arm: n / total for arm, n in counts.items()}
    if any(counts[arm] > 0 for arm, share in shares.items() if share == 0):
        return SampleRatio(expected_shares, observed, None, 0.0, True)
    given = [arm for arm, share in shares.items() if share > 0]
    if len(given) < 2:
        return SampleRatio(expected_shares, observed, None, 1.0, False)
    chi_square = sum((counts[arm] - total * shares[arm]) ** 2 / (total * shares[arm]) for arm in given)
    p_value = float(chi2.sf(chi_square, len(given) - 1))
    return SampleRatio(expected_shares, observed, chi_square, p_value, p_value < threshold)

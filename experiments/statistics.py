"""The statistics of a conversion race (assignment and naming: `common.assignment`). Pure functions, used by
the API's A/B summary and the simulator."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Race:
    """Conversion per group, uplift of treatment over control, its 95% interval and a two-sided p-value."""

    control_rate: float
    treatment_rate: float
    absolute_uplift: float
    relative_uplift: float | None
    ci_low: float
    ci_high: float
    z: float | None
    p_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def two_proportions(control_conv: int, control_n: int, treatment_conv: int, treatment_n: int,
                    alpha: float = 0.05) -> Race:
    """Difference of two proportions: Wald 1 - alpha interval (unpooled) and the pooled two-proportion z-test. A
    fixed-horizon test: valid for one look at a sample size fixed in advance, not for a dashboard checked daily."""
    p_c = control_conv / control_n if control_n else 0.0
    p_t = treatment_conv / treatment_n if treatment_n else 0.0
    diff = p_t - p_c
    relative = diff / p_c if p_c > 0 else None
    if not control_n or not treatment_n:
        return Race(p_c, p_t, diff, relative, math.nan, math.nan, None, None)
    se = math.sqrt(p_c * (1 - p_c) / control_n + p_t * (1 - p_t) / treatment_n)
    pooled = (control_conv + treatment_conv) / (control_n + treatment_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    z = diff / se_pooled if se_pooled > 0 else None
    p_value = math.erfc(abs(z) / math.sqrt(2)) if z is not None else None
    z_crit = Z_95 if alpha == 0.05 else float(norm.ppf(1 - alpha / 2))
    return Race(p_c, p_t, diff, relative, diff - z_crit * se, diff + z_crit * se, z, p_value)


def proportion_interval(successes: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion (sensible at 0 and 1, unlike Wald); (0, 0) when n is 0."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    denominator = 1 + Z_95**2 / n
    centre = (p + Z_95**2 / (2 * n)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / n + Z_95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)

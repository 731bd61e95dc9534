"""CUPED (Deng, Xu, Kohavi and Walker, WSDM 2013): each customer's outcome y is adjusted by their own pre-period
metric x (what they spent before their first exposure), y - theta (x - mean x), with theta the regression slope
of y on x. x was fixed before the experiment touched the customer, so the adjusted difference estimates the
same effect, with the variance of the difference shrunk by about the squared correlation of x and y.

Inside the always-valid inference: the adjusted per-customer outcomes go through the same asymptotic confidence
sequence as the raw ones (`experiments.always_valid.difference`, the normal-mixture form of Waudby-Smith, Arnold,
Wu, Ramdas and Howard, "Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist.
2024), which holds for any outcome whose running mean and variance it is given; theta is re-estimated at each
look from the data so far (the plug-in "sequential CUPED" of Lindon, Ham, Tingley and Bojinov, "Anytime-valid
linear models and regression adjusted causal inference in randomized experiments", 2022). The simulator checks
the A/A false-positive rate under daily looks (`recsys ab simulate`).

Only sums per arm are needed, which the stream keeps: n, sum x, sum x^2, sum y, sum y^2, sum x y."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.always_valid import Array, Moments


@dataclass(frozen=True)
class Sums:
    """One arm's sums over its exposed customers (floats or arrays of runs)."""

    n: Array | float
    x: Array | float
    x_sq: Array | float
    y: Array | float
    y_sq: Array | float
    xy: Array | float


@dataclass(frozen=True)
class Adjusted:
    control: Moments
    treatment: Moments
    theta: Array
    variance_reduction: Array  # 1 - Var(adjusted difference) / Var(raw difference)


def theta(control: Sums, treatment: Sums) -> Array:
    """The slope of y on x within arms, pooled (each arm's own means removed, so the effect does not enter it);
    0 when x does not vary."""
    cov = _centred(control.xy, control.x, control.y, control.n) + _centred(treatment.xy, treatment.x, treatment.y,
                                                                         treatment.n)
    var = _centred(control.x_sq, control.x, control.x, control.n) + _centred(treatment.x_sq, treatment.x,
                                                                           treatment.x, treatment.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0), dtype=np.float64)


def adjust(control: Sums, treatment: Sums) -> Adjusted:
    """Each arm's moments of the adjusted outcome y - theta (x - pooled mean of x), from the sums alone."""
    slope = theta(control, treatment)
    n_all = np.asarray(control.n, dtype=np.float64) + np.asarray(treatment.n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_mean = np.where(n_all > 0, (np.asarray(control.x) + np.asarray(treatment.x)) / np.where(n_all > 0, n_all, 1),
                          0.0)
    control_m, treatment_m = (_adjusted(s, slope, x_mean) for s in (control, treatment))
    raw = _difference_variance(*(Moments(*(np.asarray(v, dtype=np.float64) for v in (s.n, s.y, s.y_sq)))
                                 for s in (control, treatment)))
    adjusted = _difference_variance(control_m, treatment_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(raw > 0, 1 - adjusted / np.where(raw > 0, raw, 1.0), 0.0)
    return Adjusted(control_m, treatment_m, slope, np.asarray(reduction, dtype=np.float64))


def _adjusted(s: Sums, slope: Array, x_mean: Array) -> Moments:
    """Sums of y - slope (x - m) and of its square, expanded: sum y - slope (sum x - n m), and
    sum y^2 - 2 slope (sum xy - m sum y) + slope^2 (sum x^2 - 2 m sum x + n m^2)."""
    n, x, x_sq, y, y_sq, xy = (np.asarray(v, dtype=np.float64) for v in (s.n, s.x, s.x_sq, s.y, s.y_sq, s.xy))
    total = y - slope * (x - n * x_mean)
    total_sq = y_sq - 2 * slope * (xy - x_mean * y) + slope**2 * (x_sq - 2 * x_mean * x + n * x_mean**2)
    return Moments(n, total, total_sq)


def _centred(cross: Array | float, a: Array | float, b: Array | float, n: Array | float) -> Array:
    """sum (a - mean a)(b - mean b) from the sums."""
    n_ = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(n_ > 0, np.asarray(cross) - np.asarray(a) * np.asarray(b) / np.where(n_ > 0, n_, 1),
                                   0.0), dtype=np.float64)


def _difference_variance(control: Moments, treatment: Moments) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where((control.n > 1) & (treatment.n > 1),
                                   control.variance() / np.maximum(control.n, 1)
                                   + treatment.variance() / np.maximum(treatment.n, 1), 0.0), dtype=np.float64)

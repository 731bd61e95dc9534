"""A causal A/B simulator, pure numpy: many experiments in which synthetic customers buy with a probability that
depends on the list they were shown, with a planted effect (0 is an A/A test). After every simulated day both
tests are looked at, as a live dashboard does, so their error rates under continuous monitoring can be counted.

Each day `customers_per_day` new customers arrive and are assigned to treatment with probability
`treatment_share`. Customer i has an affinity a_i = 5 base_rate Beta(c / 5, 4 c / 5) (mean `base_rate`; the
concentration c, default 10, i.e. Beta(2, 8), sets how much customers differ: smaller is more): shown the
control list they buy with probability a_i, shown the treatment list with a_i + effect (both potential outcomes
exist; the assignment picks which is seen, so the true effect on conversion is exactly `effect`). A buyer spends
a lognormal amount with mean `basket_mean` whatever the list, so the true effect on revenue per exposed customer
is `effect * basket_mean`. The tests are the ones `/ab/summary` uses (`experiments.always_valid`,
`experiments.statistics`, `experiments.cuped`).

CUPED's covariate: each customer's spend in the `pre_weeks` weeks before they arrive, a purchase a week with
probability a_i (their affinity, so the covariate predicts the outcome as a shop's history does), each a
lognormal basket like the outcome's. Every look also runs the tests on the CUPED-adjusted outcomes; the
variance reduction is reported at the horizon.

With `split="thompson"` each day's new customers are split by the guarded Thompson shares of `experiments.bandit`
instead of the fixed share: each arm's posterior probability of converting best as the posteriors stood at the
start of the day (the re-weighting interval is a day), at least `min_share` each. Regret is the conversions lost
against showing every customer the better list. An adaptive split breaks the tests' assumptions (the always-valid
test is for a fixed split), so its runs report regret, the treatment share and the error of the estimated effect
on conversion at the horizon: the plain difference of means (biased under an adaptive split) and the
inverse-probability-weighted one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from common.assignment import BUCKETS
from experiments.always_valid import Array, Moments, Sequential, best_rho, difference, fixed_horizon
from experiments.bandit import guarded_shares, ipw_mean
from experiments.cuped import Sums, adjust
from experiments.statistics import two_proportions

SIMULATED_DRAWS = 2_000  # posterior samples per run and day for the bandit's shares
BASKET_SIGMA = 0.8  # lognormal shape of what a buyer spends
AFFINITY_SPAN = 5  # affinity = base_rate * 5 * Beta(c / 5, 4 c / 5): mean base_rate, at most 5 * base_rate


@dataclass(frozen=True)
class Scenario:
    runs: int = 1000
    days: int = 28
    customers_per_day: int = 500
    treatment_share: float = 0.5
    base_rate: float = 0.10
    effect: float = 0.0
    basket_mean: float = 30.0
    alpha: float = 0.05
    min_effect: float = 0.01  # conversion points; revenue uses min_effect * basket_mean
    planned_customers: int | None = None  # where the always-valid interval is narrowest (default: the horizon)
    split: Literal["fixed", "thompson"] = "fixed"
    min_share: float = 0.1  # the bandit's floor per arm
    pre_weeks: int = 4  # CUPED's pre-period, in weeks of purchase chances
    concentration: float = 10.0  # of the customers' affinities: smaller, more different customers
    seed: int = 0

    def __post_init__(self) -> None:
        # every customer's chance to buy, affinity + effect, must stay a probability for the effect to be exact
        if not (self.base_rate > 0 and self.effect >= 0 and AFFINITY_SPAN * self.base_rate + self.effect <= 1):
            raise ValueError(f"need base_rate > 0, effect >= 0 and {AFFINITY_SPAN} * base_rate + effect <= 1")
        if not 0 < self.treatment_share < 1:
            raise ValueError("treatment_share must be in (0, 1)")

    @property
    def horizon(self) -> int:
        return self.days * self.customers_per_day


@dataclass
class MetricOutcome:
    """One metric over all runs: rates are shares of runs."""

    truth: float
    fixed_any_look: float  # the fixed-horizon test, p < alpha at some daily look (peeking)
    fixed_final: float  # ... looked at once, at the planned horizon (its proper use)
    always_valid_any_look: float  # the always-valid interval excluded 0 at some look (and the run stopped)
    stopped_better: float
    stopped_worse: float
    stopped_no_difference: float
    median_stop_day: float | None  # among runs the always-valid test stopped
    mean_decision_day: float  # over all runs: the day the always-valid test stopped, the horizon if it did not
    coverage_fixed_final: float  # the fixed 95% interval covers the truth at the horizon
    coverage_fixed_every_look: float  # ... at every daily look
    coverage_always_valid_every_look: float  # the always-valid interval covers the truth at every daily look
    rejections_by_day: dict[str, list[float]] = field(default_factory=dict)  # cumulative, for the plot


@dataclass
class Outcome:
    scenario: Scenario
    conversion: MetricOutcome
    revenue: MetricOutcome
    treatment_share: float  # of all customers, mean over runs
    regret: float  # expected conversions lost against showing everyone the better list, mean over runs
    conversion_cuped: MetricOutcome
    revenue_cuped: MetricOutcome
    variance_reduction: dict[str, float]  # CUPED's, at the horizon, mean over runs: conversion, revenue
    # The estimated effect on conversion at the horizon against the truth, over runs: bias and root mean square
    # error of the plain difference of means and of the inverse-probability-weighted one.
    estimate_error: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Totals:
    n: Array
    conv: Array
    rev: Array
    rev_sq: Array
    pre: Array  # CUPED's sums: x, x^2, x * conversion, x * revenue
    pre_sq: Array
    pre_conv: Array
    pre_rev: Array
    ipw_conv: Array  # sum of conversion / the share the customer's arm had when they were assigned

    @staticmethod
    def zeros(runs: int) -> _Totals:
        return _Totals(*(np.zeros(runs) for _ in range(9)))

    def sums(self) -> tuple[Sums, Sums]:
        """CUPED's sums for conversion and for revenue."""
        return (Sums(self.n, self.pre, self.pre_sq, self.conv, self.conv, self.pre_conv),
                Sums(self.n, self.pre, self.pre_sq, self.rev, self.rev_sq, self.pre_rev))


def simulate(scenario: Scenario, progress: Callable[[int], None] = lambda _day: None) -> Outcome:
    """Run `scenario.runs` experiments of `scenario.days` days, looking after every day."""
    rng = np.random.default_rng(scenario.seed)
    # the covariate's own stream: the raw tests' draws stay those of a simulator without CUPED
    pre_rng = np.random.default_rng([scenario.seed, 1])
    runs, days = scenario.runs, scenario.days
    rho = best_rho(scenario.planned_customers or scenario.horizon, scenario.alpha)
    totals = {g: _Totals.zeros(runs) for g in ("control", "treatment")}
    looks = {name: _Looks(runs, days, scenario.alpha) for name in ("conv", "rev", "conv_cuped", "rev_cuped")}
    mu = math.log(scenario.basket_mean) - BASKET_SIGMA**2 / 2
    rev_effect, rev_min = scenario.effect * scenario.basket_mean, scenario.min_effect * scenario.basket_mean
    reduction: tuple[Array, Array] = (np.zeros(runs), np.zeros(runs))
    for day in range(days):
        shape = (runs, scenario.customers_per_day)
        share = _treatment_share(rng, scenario, totals)  # per run, for today's new customers
        treated = rng.random(shape) < share[:, None]
        concentration = scenario.concentration
        affinity = (rng.beta(concentration / AFFINITY_SPAN, concentration * (1 - 1 / AFFINITY_SPAN), shape)
                    * AFFINITY_SPAN * scenario.base_rate)
        bought = rng.random(shape) < affinity + scenario.effect * treated
        spent = np.where(bought, rng.lognormal(mu, BASKET_SIGMA, shape), 0.0)
        pre = _pre_period_spend(pre_rng, affinity, scenario.pre_weeks, mu)
        for group, mask in (("control", ~treated), ("treatment", treated)):
            t = totals[group]
            t.n += mask.sum(axis=1)
            t.conv += (bought & mask).sum(axis=1)
            t.rev += (spent * mask).sum(axis=1)
            t.rev_sq += (spent**2 * mask).sum(axis=1)
            t.pre += (pre * mask).sum(axis=1)
            t.pre_sq += (pre**2 * mask).sum(axis=1)
            t.pre_conv += (pre * (bought & mask)).sum(axis=1)
            t.pre_rev += (pre * spent * mask).sum(axis=1)
            propensity = share if group == "treatment" else 1 - share
            t.ipw_conv += (bought & mask).sum(axis=1) / propensity
        c, t = totals["control"], totals["treatment"]
        conv_c, conv_t = Moments(c.n, c.conv, c.conv), Moments(t.n, t.conv, t.conv)
        looks["conv"].look(day, difference(conv_c, conv_t, alpha=scenario.alpha, rho=rho,
                                           min_effect=scenario.min_effect),
                           _pooled_fixed(c, t, scenario.alpha), scenario.effect)
        rev_c, rev_t = Moments(c.n, c.rev, c.rev_sq), Moments(t.n, t.rev, t.rev_sq)
        looks["rev"].look(day, difference(rev_c, rev_t, alpha=scenario.alpha, rho=rho, min_effect=rev_min),
                          fixed_horizon(rev_c, rev_t, alpha=scenario.alpha), rev_effect)
        (conv_sums_c, rev_sums_c), (conv_sums_t, rev_sums_t) = c.sums(), t.sums()
        adjusted = (adjust(conv_sums_c, conv_sums_t), adjust(rev_sums_c, rev_sums_t))
        for name, cuped, truth, min_effect in (("conv_cuped", adjusted[0], scenario.effect, scenario.min_effect),
                                               ("rev_cuped", adjusted[1], rev_effect, rev_min)):
            looks[name].look(day, difference(cuped.control, cuped.treatment, alpha=scenario.alpha, rho=rho,
                                             min_effect=min_effect),
                             fixed_horizon(cuped.control, cuped.treatment, alpha=scenario.alpha), truth)
        reduction = (adjusted[0].variance_reduction, adjusted[1].variance_reduction)
        progress(day + 1)
    treated_total, control_total = totals["treatment"].n, totals["control"].n
    return Outcome(scenario, looks["conv"].outcome(scenario.effect), looks["rev"].outcome(rev_effect),
                   treatment_share=float((treated_total / (treated_total + control_total)).mean()),
                   regret=float((scenario.effect * control_total).mean()),  # effect >= 0: treatment is better
                   conversion_cuped=looks["conv_cuped"].outcome(scenario.effect),
                   revenue_cuped=looks["rev_cuped"].outcome(rev_effect),
                   variance_reduction={"conversion": float(np.mean(reduction[0])),
                                       "revenue": float(np.mean(reduction[1]))},
                   estimate_error=_estimate_error(totals, scenario.effect))


def _estimate_error(totals: dict[str, _Totals], truth: float) -> dict[str, float]:
    c, t = totals["control"], totals["treatment"]
    plain = t.conv / np.maximum(t.n, 1) - c.conv / np.maximum(c.n, 1)
    weighted = ipw_mean(t.ipw_conv, t.n + c.n) - ipw_mean(c.ipw_conv, t.n + c.n)
    return {"plain_bias": float(np.mean(plain - truth)), "plain_rmse": float(np.sqrt(np.mean((plain - truth) ** 2))),
            "ipw_bias": float(np.mean(weighted - truth)), "ipw_rmse": float(np.sqrt(np.mean((weighted - truth) ** 2)))}


def _pre_period_spend(rng: np.random.Generator, affinity: Array, weeks: int, mu: float) -> Array:
    """Each customer's spend over `weeks` weekly purchase chances before they arrive, each taken with their
    affinity, each a lognormal basket."""
    spend = np.zeros(np.shape(affinity))
    for _ in range(weeks):
        buys = rng.random(np.shape(affinity)) < affinity
        spend += np.where(buys, rng.lognormal(mu, BASKET_SIGMA, np.shape(affinity)), 0.0)
    return spend


def _treatment_share(rng: np.random.Generator, scenario: Scenario, totals: dict[str, _Totals]) -> Array:
    """Treatment's share of today's new customers, per run: the fixed one, or the guarded Thompson share from
    each group's posterior at the start of the day."""
    runs = len(totals["control"].n)
    if scenario.split == "fixed":
        return np.full(runs, scenario.treatment_share)
    c, t = totals["control"], totals["treatment"]
    draws = (runs, SIMULATED_DRAWS)
    better = (rng.beta((1 + t.conv)[:, None], (1 + t.n - t.conv)[:, None], draws)
              > rng.beta((1 + c.conv)[:, None], (1 + c.n - c.conv)[:, None], draws)).mean(axis=1)
    return np.array([guarded_shares(np.array([1 - b, b]), scenario.min_share)[1] / BUCKETS for b in better])


def _pooled_fixed(c: _Totals, t: _Totals, alpha: float) -> tuple[Array, Array, Array, Array]:
    """The API's fixed-horizon conversion test (`two_proportions`, pooled z), per run."""
    rows = [two_proportions(int(cc), int(cn), int(tc), int(tn), alpha=alpha)
            for cc, cn, tc, tn in zip(c.conv, c.n, t.conv, t.n, strict=True)]
    return (np.array([r.absolute_uplift for r in rows]), np.array([r.ci_low for r in rows]),
            np.array([r.ci_high for r in rows]), np.array([1.0 if r.p_value is None else r.p_value for r in rows]))


class _Looks:
    """What each daily look said, per run; a run of the always-valid test stops at its first decision."""

    def __init__(self, runs: int, days: int, alpha: float) -> None:
        self.days, self.alpha = days, alpha
        self.stop_day = np.full(runs, -1)
        self.stop_decision = np.full(runs, "keep_running", dtype="<U32")
        self.fixed_first_reject = np.full(runs, -1)
        self.fixed_final = np.zeros(runs, dtype=bool)
        self.av_covers_always = np.ones(runs, dtype=bool)
        self.fixed_covers_always = np.ones(runs, dtype=bool)
        self.fixed_covers_final = np.zeros(runs, dtype=bool)

    def look(self, day: int, sequential: Sequential, fixed: tuple[Array, Array, Array, Array], truth: float) -> None:
        _, low, high, p_value = fixed
        rejected = p_value < self.alpha
        new_fixed = (self.fixed_first_reject < 0) & rejected
        self.fixed_first_reject[new_fixed] = day
        self.fixed_covers_always &= (low <= truth) & (truth <= high)
        self.av_covers_always &= (sequential.ci_low <= truth) & (truth <= sequential.ci_high)
        deciding = (self.stop_day < 0) & (sequential.decision != "keep_running")
        self.stop_day[deciding] = day
        self.stop_decision[deciding] = sequential.decision[deciding]
        if day == self.days - 1:
            self.fixed_final = rejected
            self.fixed_covers_final = (low <= truth) & (truth <= high)

    def outcome(self, truth: float) -> MetricOutcome:
        stopped = self.stop_day >= 0
        by_day = np.arange(self.days)
        decided = self.stop_decision != "no_practical_difference"
        return MetricOutcome(
            truth=truth,
            fixed_any_look=float((self.fixed_first_reject >= 0).mean()),
            fixed_final=float(self.fixed_final.mean()),
            always_valid_any_look=float((stopped & decided).mean()),
            stopped_better=float((self.stop_decision == "treatment_better").mean()),
            stopped_worse=float((self.stop_decision == "treatment_worse").mean()),
            stopped_no_difference=float((self.stop_decision == "no_practical_difference").mean()),
            median_stop_day=float(np.median(self.stop_day[stopped]) + 1) if stopped.any() else None,
            mean_decision_day=float(np.where(stopped, self.stop_day + 1, self.days).mean()),
            coverage_fixed_final=float(self.fixed_covers_final.mean()),
            coverage_fixed_every_look=float(self.fixed_covers_always.mean()),
            coverage_always_valid_every_look=float(self.av_covers_always.mean()),
            rejections_by_day={
                "fixed_peeking": [float(((self.fixed_first_reject >= 0) & (self.fixed_first_reject <= d)).mean())
                                  for d in by_day],
                "always_valid": [float((stopped & decided & (self.stop_day <= d)).mean()) for d in by_day],
            },
        )


def table(outcomes: list[Outcome]) -> str:
    """The README's table: per planted effect and metric, how often each test declared a difference (under
    daily peeking, and the fixed test once at the horizon), power, stopping day and coverage."""
    rows = ["| planted effect | metric | fixed test, daily peeking | fixed test, once at the horizon | always-valid, "
            "daily peeking | stopped: better / worse / no difference | median stop day | coverage: fixed at horizon "
            "/ fixed every day / always-valid every day |",
            "|---|---|---:|---:|---:|---|---:|---|"]
    for outcome in outcomes:
        s = outcome.scenario
        for name, m in (("conversion", outcome.conversion), ("revenue / exposed", outcome.revenue),
                        ("conversion, CUPED", outcome.conversion_cuped),
                        ("revenue / exposed, CUPED", outcome.revenue_cuped)):
            effect = f"{s.effect:+.3f} ({'A/A' if s.effect == 0 else 'conversion points'})"
            stop_day = "-" if m.median_stop_day is None else f"{m.median_stop_day:g}"
            rows.append(
                f"| {effect} | {name} (truth {m.truth:+.3g}) | {m.fixed_any_look:.1%} | {m.fixed_final:.1%} | "
                f"**{m.always_valid_any_look:.1%}** | {m.stopped_better:.1%} / {m.stopped_worse:.1%} / "
                f"{m.stopped_no_difference:.1%} | {stop_day} | {m.coverage_fixed_final:.1%} / "
                f"{m.coverage_fixed_every_look:.1%} / {m.coverage_always_valid_every_look:.1%} |")
    return "\n".join(rows)


def cuped_table(outcomes: list[Outcome]) -> str:
    """What CUPED buys per planted effect: the variance it removes, the always-valid test's rate of declaring a
    difference (the A/A false-positive rate at effect 0, power otherwise) and the mean day of its decision (the
    horizon for runs it never stopped), without and with it."""
    rows = ["| planted effect | metric | variance removed | always-valid, daily looks: declared a difference, raw / "
            "CUPED | mean decision day, raw / CUPED | days saved |", "|---|---|---:|---|---|---:|"]
    for outcome in outcomes:
        for name, key, raw, cuped in (("conversion", "conversion", outcome.conversion, outcome.conversion_cuped),
                                      ("revenue / exposed", "revenue", outcome.revenue, outcome.revenue_cuped)):
            rows.append(f"| {outcome.scenario.effect:+.3f} | {name} | {outcome.variance_reduction[key]:.1%} | "
                        f"{raw.always_valid_any_look:.1%} / {cuped.always_valid_any_look:.1%} | "
                        f"{raw.mean_decision_day:.1f} / {cuped.mean_decision_day:.1f} | "
                        f"{raw.mean_decision_day - cuped.mean_decision_day:+.1f} |")
    return "\n".join(rows)


def regret_table(fixed: list[Outcome], thompson: list[Outcome]) -> str:
    """Conversions lost against showing everyone the better list, and the error of the estimated effect on
    conversion at the horizon: the fixed split beside the guarded Thompson split."""
    rows = ["| planted effect | customers per run | fixed split: treatment share / conversions lost / RMSE of the "
            "difference | guarded Thompson: treatment share / conversions lost | Thompson, plain difference: bias / "
            "RMSE | Thompson, IPW: bias / RMSE |", "|---|---:|---|---|---|---|"]
    for f, t in zip(fixed, thompson, strict=True):
        e, fe = t.estimate_error, f.estimate_error
        rows.append(f"| {f.scenario.effect:+.3f} | {f.scenario.horizon:,} | {f.treatment_share:.1%} / {f.regret:,.1f} "
                    f"/ {fe['plain_rmse']:.4f} | {t.treatment_share:.1%} / {t.regret:,.1f} | "
                    f"{e['plain_bias']:+.4f} / {e['plain_rmse']:.4f} | {e['ipw_bias']:+.4f} / {e['ipw_rmse']:.4f} |")
    return "\n".join(rows)


def plot(outcomes: list[Outcome], path: Path) -> None:
    """Left: the A/A false-positive rate accumulating over the days of looking, fixed vs always-valid, against
    alpha. Right: share of runs that have declared treatment better by each day, per planted effect."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (aa, power) = plt.subplots(1, 2, figsize=(12, 4.5))
    for outcome in outcomes:
        days = np.arange(1, outcome.scenario.days + 1)
        curves = outcome.conversion.rejections_by_day
        if outcome.scenario.effect == 0:
            aa.plot(days, curves["fixed_peeking"], color="#d1495b", lw=2, label="fixed-horizon z-test, checked daily")
            aa.plot(days, curves["always_valid"], color="#00798c", lw=2, label="always-valid (mSPRT), checked daily")
            aa.axhline(outcome.scenario.alpha, color="black", ls="--", lw=1, label=f"alpha = {outcome.scenario.alpha}")
        else:
            effect = f"effect {outcome.scenario.effect:+g}"
            line = power.plot(days, curves["always_valid"], lw=2, label=f"always-valid, {effect}")
            power.axhline(outcome.conversion.fixed_final, color=line[0].get_color(), ls=":", lw=1.5,
                          label=f"fixed test once at day {outcome.scenario.days}, {effect}")
    aa.set(title=f"A/A: share of {outcomes[0].scenario.runs:,} runs that declared a winner", xlabel="days looked at",
           ylabel="false-positive rate")
    power.set(title="Planted effects: share of runs that stopped, treatment better", xlabel="day",
              ylabel="power", ylim=(0, 1))
    for ax in (aa, power):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

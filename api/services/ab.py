"""The A/B experiments as the stream has counted them: the list of experiments, the summary behind `/ab/summary`
(also the replay's result) and the daily series behind `/ab/timeline`. Each experiment has its own clock: a
replayed one runs on the history's event time, the live one on wall time; no answer mixes two experiments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import cast

import numpy as np
from pydantic import BaseModel

from api.schemas import (
    AbSummary,
    AbTimeline,
    AlwaysValid,
    ArmComparison,
    ArmInfo,
    BanditReport,
    BanditShares,
    CupedComparison,
    DailyConversion,
    DailyUplift,
    ExperimentInfo,
    Experiments,
    FixedHorizon,
    GroupResult,
    MetricComparison,
    Promoted,
    SampleRatioCheck,
)
from api.state import ApiState
from common.assignment import BUCKETS, is_replayed
from common.settings import Settings
from experiments.always_valid import (
    DECISION_WORDS,
    Decision,
    Moments,
    best_rho,
    difference,
    fixed_horizon,
    sample_ratio_mismatch,
)
from experiments.bandit import expected_shares, ipw_mean
from experiments.cuped import Sums, adjust
from experiments.plan import Plan
from experiments.statistics import proportion_interval, two_proportions

EPOCH = date(1970, 1, 1)


class UnknownExperiment(LookupError):
    """No exposure of this experiment has reached the stream (and it is not the live one); answered with 404."""


class ExperimentConflict(ValueError):
    """The action cannot be taken in the experiment's or the models' present state; answered with 409."""


class BadPlan(ValueError):
    """The arms or split asked for do not make an experiment; answered with 422."""


async def experiment_starts(state: ApiState) -> dict[str, float]:
    """Every registered experiment and its start (epoch seconds of event time)."""
    raw = cast(list[tuple[bytes, float]],
               await state.redis.zrange(state.keys.ab_experiments(), 0, -1, withscores=True))
    return {name.decode(): ts for name, ts in raw}


async def live_plan(state: ApiState) -> Plan:
    """The running managed experiment's plan, else the settings' experiment."""
    return state.plans.observe(cast(bytes | None, await state.redis.get(state.keys.ab_live_plan())))


async def plan_of(state: ApiState, experiment: str) -> Plan:
    """The experiment's stored plan; one without (the settings' experiment, a replay's) has the default arms."""
    raw = await state.redis.hget(state.keys.ab_plans(), experiment)
    if raw is not None:
        return Plan.model_validate_json(raw)
    return state.plans.default.model_copy(update={"name": experiment})


def arm_infos(plan: Plan) -> list[ArmInfo]:
    return [ArmInfo(name=arm.name, serves=arm.label, percent=share)
            for arm, share in zip(plan.arms, plan.split, strict=True)]


def started_info(plan: Plan) -> ExperimentInfo:
    """A plan just started: running, live, nobody exposed yet."""
    return ExperimentInfo(name=plan.name, started_at=datetime.fromtimestamp(plan.started_at, UTC), replayed=False,
                          live=True, managed=True, arms=arm_infos(plan), exposed_customers=0)


def _promoted(plan: Plan) -> Promoted | None:
    done = plan.promoted
    return None if done is None else Promoted(arm=done.arm, version=done.version,
                                              at=datetime.fromtimestamp(done.at, UTC))


async def list_experiments(state: ApiState) -> Experiments:
    live = (await live_plan(state)).name
    starts = await experiment_starts(state)
    plans = {name.decode(): Plan.model_validate_json(raw)
             for name, raw in cast(dict[bytes, bytes], await state.redis.hgetall(state.keys.ab_plans())).items()}
    pipe = state.redis.pipeline(transaction=False)
    for name in starts:
        for arm in _arms(state, plans, name):
            pipe.hget(state.keys.ab_group_counters(name, arm), "exposed_customers")
    pipe.hgetall(state.keys.ab_ended())
    *counts, ended_raw = await pipe.execute()
    per_arm = iter(counts)  # in the order queued: each experiment's arms in turn
    rows = [_info(state, plans, name, ts, live, sum(int(next(per_arm) or 0) for _ in _arms(state, plans, name)))
            for name, ts in starts.items()]
    for raw_name, raw in cast(dict[bytes, bytes], ended_raw).items():
        name, record = raw_name.decode(), EndedRecord.model_validate_json(raw)
        if record.summary is None or record.started_at is None:
            continue  # being stopped right now
        rows.append(_info(state, plans, name, record.started_at, live,
                          sum(g.exposed_customers for g in record.summary.groups.values())).model_copy(
            update={"state": "ended", "ended_at": datetime.fromtimestamp(record.ended_at, UTC)}))
    rows.sort(key=lambda e: (e.state == "ended", not e.live, -e.started_at.timestamp()))
    return Experiments(live=live, experiments=rows)


def _arms(state: ApiState, plans: dict[str, Plan], name: str) -> list[str]:
    return (plans.get(name, state.plans.default)).arm_names


def _info(state: ApiState, plans: dict[str, Plan], name: str, started: float, live: str,
          exposed: int) -> ExperimentInfo:
    plan = plans.get(name)
    replayed = is_replayed(name)
    arms = [] if replayed else arm_infos(plan or state.plans.default)
    return ExperimentInfo(name=name, started_at=datetime.fromtimestamp(started, UTC), replayed=replayed,
                          live=name == live, managed=plan is not None, arms=arms,
                          promoted=None if plan is None else _promoted(plan), exposed_customers=exposed)


class EndedRecord(BaseModel):
    """What an ended experiment keeps (`KeyLayout.ab_ended`): its final summary and timeline. While it is being
    stopped, `summary` is None: stopping it again finishes the job."""

    started_at: float | None
    ended_at: float
    summary: AbSummary | None = None
    timeline: AbTimeline | None = None


async def ended_record(state: ApiState, experiment: str) -> EndedRecord | None:
    raw = await state.redis.hget(state.keys.ab_ended(), experiment)
    return EndedRecord.model_validate_json(raw) if raw else None


async def _started_at(state: ApiState, plan: Plan, ended: EndedRecord | None) -> datetime | None:
    started = await state.redis.zscore(state.keys.ab_experiments(), plan.name)
    if started is None and ended is not None:
        started = ended.started_at
    if started is None and plan.name != state.settings.ab_experiment:
        raise UnknownExperiment(f"no exposures of experiment {plan.name!r} yet; GET /ab/experiments lists them")
    return None if started is None else datetime.fromtimestamp(started, UTC)


async def read_summary(state: ApiState, experiment: str | None = None) -> AbSummary:
    """Per arm: exposed and converted customers, attributed revenue; for each arm against the control, on
    conversion and revenue per exposed customer, the always-valid p-value, interval and decision beside the
    fixed-horizon z-test, each at alpha divided by the number of comparisons (Bonferroni); the sample-ratio
    check over all arms."""
    settings, keys = state.settings, state.keys
    plan = await plan_of(state, experiment or (await live_plan(state)).name)
    ended = await ended_record(state, plan.name)
    if ended is not None and ended.summary is not None:
        return ended.summary
    started_at = await _started_at(state, plan, ended)
    pipe = state.redis.pipeline(transaction=False)
    for arm in plan.arm_names:
        pipe.hgetall(keys.ab_group_counters(plan.name, arm))
    raw = await pipe.execute()
    groups: dict[str, GroupResult] = {}
    revenue: dict[str, Moments] = {}
    stored: dict[str, dict[str, float]] = {}
    for i, arm in enumerate(plan.arm_names):
        counters = stored[arm] = {k.decode(): float(v) for k, v in raw[i].items()}
        exposed, converted = int(counters.get("exposed_customers", 0)), int(counters.get("converted_customers", 0))
        money = counters.get("revenue_cents", 0) / 100
        groups[arm] = GroupResult(
            exposed_customers=exposed, converted_customers=converted, exposures=int(counters.get("exposures", 0)),
            converted_items=int(counters.get("converted_items", 0)), revenue=round(money, 2),
            conversion_rate=converted / exposed if exposed else 0.0,
            revenue_per_exposed=money / exposed if exposed else 0.0,
        )
        revenue[arm] = Moments.of(exposed, money, counters.get("revenue_sq_cents2", 0) / 10_000)
    alpha = comparison_alpha(settings.ab_alpha, plan)
    control = plan.control.name
    comparisons = {arm: ArmComparison(
        conversion=conversion_comparison(groups[control], groups[arm], settings, alpha),
        revenue_per_exposed=compare(revenue[control], revenue[arm], settings, alpha, settings.ab_min_revenue_effect),
        cuped=cuped_comparison((groups[control], stored[control]), (groups[arm], stored[arm]), settings, alpha))
        for arm in plan.arm_names[1:]}
    bandit = await bandit_report(state, plan, stored, groups) if plan.bandit is not None else None
    srm = sample_ratio_mismatch({arm: g.exposed_customers for arm, g in groups.items()},
                                _expected_shares(plan, bandit, groups), settings.ab_srm_alpha)
    return AbSummary(
        experiment=plan.name, replayed=is_replayed(plan.name), causal=not is_replayed(plan.name),
        bandit=bandit, managed=plan.managed, started_at=started_at, arms=arm_infos(plan),
        attribution_days=settings.ab_attribution_days, alpha=settings.ab_alpha, comparison_alpha=alpha,
        correction=correction_text(plan), groups=groups, comparisons=comparisons,
        sample_ratio=SampleRatioCheck(**srm.to_dict(), threshold=settings.ab_srm_alpha),
        exposures_lost=state.exposures.lost, promoted=_promoted(plan),
    )


async def bandit_report(state: ApiState, plan: Plan, stored: dict[str, dict[str, float]],
                        groups: dict[str, GroupResult]) -> BanditReport:
    """The bandit's splits over time and each arm's inverse-probability-weighted means (Horvitz-Thompson: the
    stream's sums of outcome / propensity, over every exposed customer)."""
    assert plan.bandit is not None
    history = [json.loads(raw) for raw in await state.redis.lrange(state.keys.ab_bandit_weights(plan.name), 0, -1)]
    everyone = sum(g.exposed_customers for g in groups.values())
    return BanditReport(
        interval_minutes=plan.bandit.interval_s / 60, min_share=plan.bandit.min_share,
        history=[BanditShares(interval=h["interval"], at=datetime.fromtimestamp(h["at"], UTC),
                              shares=dict(zip(plan.arm_names, h["shares"], strict=True)),
                              customers_before=sum(h["exposed"])) for h in history],
        ipw_conversion={arm: float(ipw_mean(stored[arm].get("ipw_converted", 0.0), everyone))
                        for arm in plan.arm_names},
        ipw_revenue_per_exposed={arm: float(ipw_mean(stored[arm].get("ipw_revenue_cents", 0.0) / 100, everyone))
                                 for arm in plan.arm_names})


def _expected_shares(plan: Plan, bandit: BanditReport | None,
                     groups: dict[str, GroupResult]) -> dict[str, float]:
    """The split the sample-ratio check expects: the plan's, or under a bandit each split weighted by the
    customers it dealt."""
    if bandit is None:
        return {arm.name: share / BUCKETS for arm, share in zip(plan.arms, plan.split, strict=True)}
    history = [([h.shares[arm] for arm in plan.arm_names], h.customers_before) for h in bandit.history]
    shares = expected_shares(history, sum(g.exposed_customers for g in groups.values()))
    return dict(zip(plan.arm_names, shares, strict=True))


def comparison_alpha(alpha: float, plan: Plan) -> float:
    """Bonferroni: each of the m comparisons with the control at alpha / m keeps the chance of any false
    positive at most alpha, whatever their dependence (they share the control)."""
    return alpha / (len(plan.arms) - 1)


def correction_text(plan: Plan) -> str:
    comparisons = len(plan.arms) - 1
    if comparisons == 1:
        return "one comparison with the control: no correction needed"
    return (f"Bonferroni: {comparisons} comparisons with the control, each at alpha / {comparisons}, so the chance "
            f"of any false positive stays at most alpha")


def cuped_sums(group: GroupResult, counters: dict[str, float]) -> tuple[Sums, Sums]:
    """An arm's CUPED sums, in money (the stream keeps cents): for conversion (y: converted or not) and for
    revenue per exposed customer (y: attributed revenue); x is the customer's pre-period spend."""
    n, x, x_sq = group.exposed_customers, counters.get("pre_cents", 0) / 100, counters.get("pre_sq_cents2", 0) / 1e4
    converted = group.converted_customers
    conversion = Sums(n, x, x_sq, converted, converted, counters.get("pre_conv_cents", 0) / 100)
    revenue = Sums(n, x, x_sq, counters.get("revenue_cents", 0) / 100, counters.get("revenue_sq_cents2", 0) / 1e4,
                   counters.get("pre_rev_cents2", 0) / 1e4)
    return conversion, revenue


def cuped_comparison(control: tuple[GroupResult, dict[str, float]], arm: tuple[GroupResult, dict[str, float]],
                     settings: Settings, alpha: float) -> CupedComparison:
    """The comparisons on the CUPED-adjusted outcomes (`experiments.cuped`), through the same tests."""
    (conversion_c, revenue_c), (conversion_t, revenue_t) = cuped_sums(*control), cuped_sums(*arm)
    conversion, money = adjust(conversion_c, conversion_t), adjust(revenue_c, revenue_t)
    return CupedComparison(
        conversion=compare(conversion.control, conversion.treatment, settings, alpha, settings.ab_min_effect),
        revenue_per_exposed=compare(money.control, money.treatment, settings, alpha, settings.ab_min_revenue_effect),
        conversion_variance_reduction=float(conversion.variance_reduction),
        revenue_variance_reduction=float(money.variance_reduction), pre_period_days=settings.ab_cuped_pre_days)


def conversion_comparison(control: GroupResult, treatment: GroupResult, settings: Settings,
                          alpha: float) -> MetricComparison:
    """Conversion: the always-valid test on the per-customer 0/1 outcome; the fixed-horizon test is the pooled
    two-proportion z-test."""
    moments = [Moments.of(g.exposed_customers, g.converted_customers, g.converted_customers)
               for g in (control, treatment)]
    comparison = compare(moments[0], moments[1], settings, alpha, settings.ab_min_effect)
    race = two_proportions(control.converted_customers, control.exposed_customers, treatment.converted_customers,
                           treatment.exposed_customers, alpha=alpha)
    return comparison.model_copy(update={"fixed_horizon": FixedHorizon(
        p_value=race.p_value, ci_low=_finite(race.ci_low), ci_high=_finite(race.ci_high))})


def compare(control: Moments, treatment: Moments, settings: Settings, alpha: float,
            min_effect: float) -> MetricComparison:
    sequential = difference(control, treatment, alpha=alpha, rho=best_rho(settings.ab_planned_customers, alpha),
                            min_effect=min_effect)
    _, low, high, p_value = fixed_horizon(control, treatment, alpha=alpha)
    control_mean, treatment_mean = float(control.mean()), float(treatment.mean())
    decision = cast(Decision, str(sequential.decision))
    return MetricComparison(
        control=control_mean, treatment=treatment_mean, difference=treatment_mean - control_mean,
        relative=(treatment_mean - control_mean) / control_mean if control_mean > 0 else None,
        always_valid=AlwaysValid(p_value=float(sequential.p_value), ci_low=_finite(float(sequential.ci_low)),
                                 ci_high=_finite(float(sequential.ci_high)), decision=decision,
                                 decision_text=DECISION_WORDS[decision], min_effect=min_effect),
        fixed_horizon=FixedHorizon(p_value=float(p_value) if np.isfinite(low) else None,
                                   ci_low=_finite(float(low)), ci_high=_finite(float(high))),
    )


async def read_timeline(state: ApiState, experiment: str | None = None) -> AbTimeline:
    """Conversion per arm over the experiment's days: cumulative customers exposed and converted (each counted
    on the day of their first exposure / first conversion), the rate and its 95% interval; and each arm's uplift
    over the control with the always-valid interval (at the summary's corrected alpha) as it stood each day."""
    settings, keys = state.settings, state.keys
    plan = await plan_of(state, experiment or (await live_plan(state)).name)
    ended = await ended_record(state, plan.name)
    if ended is not None and ended.timeline is not None:
        return ended.timeline
    await _started_at(state, plan, ended)
    pipe = state.redis.pipeline(transaction=False)
    for arm in plan.arm_names:
        pipe.hgetall(keys.ab_daily(plan.name, arm))
    daily = await pipe.execute()
    counts: dict[str, dict[int, dict[str, int]]] = {}
    for arm, raw in zip(plan.arm_names, daily, strict=True):
        counts[arm] = {}
        for field, value in raw.items():
            kind, day = field.decode().split(":")
            counts[arm].setdefault(int(day), {"exposed": 0, "converted": 0})[kind] = int(value)
    days = sorted(set().union(*counts.values()))
    series: dict[str, list[DailyConversion]] = {}
    cumulative: dict[str, Moments] = {}
    for arm in plan.arm_names:
        exposed = np.cumsum([counts[arm].get(d, {}).get("exposed", 0) for d in days]).astype(float)
        converted = np.cumsum([counts[arm].get(d, {}).get("converted", 0) for d in days]).astype(float)
        cumulative[arm] = Moments(exposed, converted, converted)
        series[arm] = [_daily(EPOCH + timedelta(days=d), int(n), int(x))
                       for d, n, x in zip(days, exposed, converted, strict=True) if d in counts[arm]]
    alpha = comparison_alpha(settings.ab_alpha, plan)
    uplift = {arm: _uplift(cumulative[plan.control.name], cumulative[arm], days, alpha, settings)
              for arm in plan.arm_names[1:]}
    return AbTimeline(experiment=plan.name, replayed=is_replayed(plan.name), series=series, uplift=uplift)


def _uplift(control: Moments, arm: Moments, days: list[int], alpha: float, settings: Settings) -> list[DailyUplift]:
    if not days:
        return []
    sequential = difference(control, arm, alpha=alpha, rho=best_rho(settings.ab_planned_customers, alpha),
                            min_effect=settings.ab_min_effect)
    return [DailyUplift(date=EPOCH + timedelta(days=d), difference=float(sequential.estimate[i]),
                        ci_low=_finite(float(sequential.ci_low[i])), ci_high=_finite(float(sequential.ci_high[i])))
            for i, d in enumerate(days)]


def _daily(day: date, exposed: int, converted: int) -> DailyConversion:
    low, high = proportion_interval(converted, exposed)
    return DailyConversion(date=day, exposed=exposed, converted=converted,
                           rate=converted / exposed if exposed else 0.0, ci_low=low, ci_high=high)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None

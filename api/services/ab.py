"""The A/B experiments as the stream has counted them: the list of experiments, the summary behind `/ab/summary`
(also the replay's result) and the daily series behind `/ab/timeline`. Each experiment has its own clock: a
replayed one runs on the history's event time, the live one on wall time; no answer mixes two experiments."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import cast

import numpy as np
from pydantic import BaseModel

from api.schemas import (
    AbSummary,
    AbTimeline,
    AlwaysValid,
    DailyConversion,
    DailyUplift,
    ExperimentInfo,
    Experiments,
    ExperimentStopped,
    FixedHorizon,
    GroupResult,
    MetricComparison,
    SampleRatioCheck,
)
from api.state import ApiState
from common.assignment import Group, is_replayed
from common.settings import Settings
from experiments.always_valid import (
    DECISION_WORDS,
    Array,
    Decision,
    Moments,
    best_rho,
    difference,
    fixed_horizon,
    sample_ratio_mismatch,
)
from experiments.statistics import proportion_interval, two_proportions

GROUPS: tuple[Group, Group] = ("control", "treatment")
EPOCH = date(1970, 1, 1)


class UnknownExperiment(LookupError):
    """No exposure of this experiment has reached the stream (and it is not the live one); answered with 404."""


UNLINK_AT_ONCE = 1000


async def experiment_starts(state: ApiState) -> dict[str, float]:
    """Every registered experiment and its start (epoch seconds of event time)."""
    raw = cast(list[tuple[bytes, float]],
               await state.redis.zrange(state.keys.ab_experiments(), 0, -1, withscores=True))
    return {name.decode(): ts for name, ts in raw}


async def list_experiments(state: ApiState) -> Experiments:
    live = state.settings.ab_experiment
    starts = await experiment_starts(state)
    pipe = state.redis.pipeline(transaction=False)
    for name in starts:
        for group in GROUPS:
            pipe.scard(state.keys.ab_exposed_customers(name, group))
    pipe.hgetall(state.keys.ab_ended())
    *counts, ended_raw = await pipe.execute()
    rows = [ExperimentInfo(name=name, started_at=datetime.fromtimestamp(ts, UTC), replayed=is_replayed(name),
                           live=name == live, exposed_customers=int(counts[2 * i]) + int(counts[2 * i + 1]))
            for i, (name, ts) in enumerate(starts.items())]
    for raw_name, raw in cast(dict[bytes, bytes], ended_raw).items():
        name, record = raw_name.decode(), EndedRecord.model_validate_json(raw)
        if record.summary is None or record.started_at is None:
            continue  # being stopped right now
        rows.append(ExperimentInfo(
            name=name, started_at=datetime.fromtimestamp(record.started_at, UTC), replayed=is_replayed(name),
            live=name == live, state="ended", ended_at=datetime.fromtimestamp(record.ended_at, UTC),
            exposed_customers=sum(g.exposed_customers for g in record.summary.groups.values())))
    rows.sort(key=lambda e: (e.state == "ended", not e.live, -e.started_at.timestamp()))
    return Experiments(live=live, experiments=rows)


class EndedRecord(BaseModel):
    """What an ended experiment keeps (`KeyLayout.ab_ended`): its final summary and timeline. While it is being
    stopped, `summary` is None: stopping it again finishes the job."""

    started_at: float | None
    ended_at: float
    summary: AbSummary | None = None
    timeline: AbTimeline | None = None


async def _ended(state: ApiState, experiment: str) -> EndedRecord | None:
    raw = await state.redis.hget(state.keys.ab_ended(), experiment)
    return EndedRecord.model_validate_json(raw) if raw else None


async def stop_experiment(state: ApiState, experiment: str) -> ExperimentStopped:
    """End an experiment: the stream stops attributing purchases to it and takes no more of its exposures (one
    MULTI: it leaves the registry, whose revision moves, and is marked ended); then its final summary and
    timeline are kept and every other key of it (per-customer exposures and conversions, the guard, counters)
    is freed. Stopping it again returns what was kept; a stop that was interrupted is finished."""
    keys = state.keys
    record = await _ended(state, experiment)
    if record is not None and record.summary is not None:
        return ExperimentStopped(experiment=experiment, already_ended=True, summary=record.summary, freed_keys=0,
                                 ended_at=datetime.fromtimestamp(record.ended_at, UTC))
    if record is None:
        started = await state.redis.zscore(keys.ab_experiments(), experiment)
        if started is None:
            raise UnknownExperiment(f"no running experiment {experiment!r}; GET /ab/experiments lists them")
        record = EndedRecord(started_at=started, ended_at=time.time())
        pipe = state.redis.pipeline(transaction=True)
        pipe.hset(keys.ab_ended(), experiment, record.model_dump_json())
        pipe.zrem(keys.ab_experiments(), experiment)
        pipe.incr(keys.ab_experiments_revision())
        await pipe.execute()
    ended_at = datetime.fromtimestamp(record.ended_at, UTC)
    summary = (await read_summary(state, experiment)).model_copy(update={"state": "ended", "ended_at": ended_at})
    record = record.model_copy(update={"summary": summary, "timeline": await read_timeline(state, experiment)})
    await state.redis.hset(keys.ab_ended(), experiment, record.model_dump_json())
    freed = await _free(state, experiment)
    return ExperimentStopped(experiment=experiment, already_ended=False, ended_at=ended_at, freed_keys=freed,
                             summary=summary)


async def _free(state: ApiState, experiment: str) -> int:
    """Delete every key of the experiment (UNLINK: Redis frees big ones in the background)."""
    freed = 0
    batch: list[bytes] = []
    async for key in state.redis.scan_iter(match=state.keys.ab_experiment_pattern(experiment), count=1000):
        batch.append(key)
        if len(batch) >= UNLINK_AT_ONCE:
            freed += await state.redis.unlink(*batch)
            batch = []
    if batch:
        freed += await state.redis.unlink(*batch)
    return freed


async def _started_at(state: ApiState, experiment: str, ended: EndedRecord | None) -> datetime | None:
    started = await state.redis.zscore(state.keys.ab_experiments(), experiment)
    if started is None and ended is not None:
        started = ended.started_at
    if started is None and experiment != state.settings.ab_experiment:
        raise UnknownExperiment(f"no exposures of experiment {experiment!r} yet; GET /ab/experiments lists them")
    return None if started is None else datetime.fromtimestamp(started, UTC)


async def read_summary(state: ApiState, experiment: str | None = None) -> AbSummary:
    """Per group: exposed and converted customers, attributed revenue; for conversion and revenue per exposed
    customer the always-valid p-value, interval and decision beside the fixed-horizon z-test; the sample-ratio
    check."""
    settings, keys = state.settings, state.keys
    experiment = experiment or settings.ab_experiment
    ended = await _ended(state, experiment)
    if ended is not None and ended.summary is not None:
        return ended.summary
    started_at = await _started_at(state, experiment, ended)
    pipe = state.redis.pipeline(transaction=False)
    for group in GROUPS:
        pipe.hgetall(keys.ab_group_counters(experiment, group))
        pipe.scard(keys.ab_exposed_customers(experiment, group))
        pipe.scard(keys.ab_converted_customers(experiment, group))
    raw = await pipe.execute()
    groups: dict[str, GroupResult] = {}
    revenue: dict[str, Moments] = {}
    for i, group in enumerate(GROUPS):
        counters = {k.decode(): float(v) for k, v in raw[3 * i].items()}
        exposed, converted = int(raw[3 * i + 1]), int(raw[3 * i + 2])
        money = counters.get("revenue_cents", 0) / 100
        groups[group] = GroupResult(
            exposed_customers=exposed, converted_customers=converted, exposures=int(counters.get("exposures", 0)),
            converted_items=int(counters.get("converted_items", 0)), revenue=round(money, 2),
            conversion_rate=converted / exposed if exposed else 0.0,
            revenue_per_exposed=money / exposed if exposed else 0.0,
        )
        revenue[group] = Moments.of(exposed, money, counters.get("revenue_sq_cents2", 0) / 10_000)
    c, t = groups["control"], groups["treatment"]
    srm = sample_ratio_mismatch(c.exposed_customers, t.exposed_customers, settings.ab_treatment_percent / 100,
                                settings.ab_srm_alpha)
    return AbSummary(
        experiment=experiment, replayed=is_replayed(experiment), causal=not is_replayed(experiment),
        started_at=started_at, treatment_percent=settings.ab_treatment_percent,
        attribution_days=settings.ab_attribution_days, alpha=settings.ab_alpha, groups=groups,
        conversion=conversion_comparison(c, t, settings),
        revenue_per_exposed=compare(revenue["control"], revenue["treatment"], settings, settings.ab_min_revenue_effect),
        sample_ratio=SampleRatioCheck(**srm.to_dict(), threshold=settings.ab_srm_alpha),
        exposures_lost=state.exposures.lost,
    )


def conversion_comparison(control: GroupResult, treatment: GroupResult, settings: Settings) -> MetricComparison:
    """Conversion: the always-valid test on the per-customer 0/1 outcome; the fixed-horizon test is the pooled
    two-proportion z-test."""
    moments = [Moments.of(g.exposed_customers, g.converted_customers, g.converted_customers)
               for g in (control, treatment)]
    comparison = compare(moments[0], moments[1], settings, settings.ab_min_effect)
    race = two_proportions(control.converted_customers, control.exposed_customers, treatment.converted_customers,
                           treatment.exposed_customers, alpha=settings.ab_alpha)
    return comparison.model_copy(update={"fixed_horizon": FixedHorizon(
        p_value=race.p_value, ci_low=_finite(race.ci_low), ci_high=_finite(race.ci_high))})


def compare(control: Moments, treatment: Moments, settings: Settings, min_effect: float) -> MetricComparison:
    sequential = difference(control, treatment, alpha=settings.ab_alpha,
                            rho=best_rho(settings.ab_planned_customers, settings.ab_alpha), min_effect=min_effect)
    _, low, high, p_value = fixed_horizon(control, treatment, alpha=settings.ab_alpha)
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
    """Conversion per group over the experiment's days: cumulative customers exposed and converted (each counted
    on the day of their first exposure / first conversion), the rate and its 95% interval; and the uplift with
    the always-valid interval as it stood each day."""
    settings, keys = state.settings, state.keys
    experiment = experiment or settings.ab_experiment
    ended = await _ended(state, experiment)
    if ended is not None and ended.timeline is not None:
        return ended.timeline
    await _started_at(state, experiment, ended)
    pipe = state.redis.pipeline(transaction=False)
    for group in GROUPS:
        pipe.hgetall(keys.ab_daily(experiment, group))
    daily = await pipe.execute()
    counts: dict[Group, dict[int, dict[str, int]]] = {}
    for group, raw in zip(GROUPS, daily, strict=True):
        counts[group] = {}
        for field, value in raw.items():
            kind, day = field.decode().split(":")
            counts[group].setdefault(int(day), {"exposed": 0, "converted": 0})[kind] = int(value)
    days = sorted(set(counts["control"]) | set(counts["treatment"]))
    series: dict[Group, list[DailyConversion]] = {}
    cumulative: dict[Group, tuple[Array, Array]] = {}
    for group in GROUPS:
        exposed = np.cumsum([counts[group].get(d, {}).get("exposed", 0) for d in days])
        converted = np.cumsum([counts[group].get(d, {}).get("converted", 0) for d in days])
        cumulative[group] = (exposed.astype(float), converted.astype(float))
        series[group] = [_daily(EPOCH + timedelta(days=d), int(n), int(x))
                         for d, n, x in zip(days, exposed, converted, strict=True) if d in counts[group]]
    (n_c, x_c), (n_t, x_t) = cumulative["control"], cumulative["treatment"]
    sequential = difference(Moments(n_c, x_c, x_c), Moments(n_t, x_t, x_t), alpha=settings.ab_alpha,
                            rho=best_rho(settings.ab_planned_customers, settings.ab_alpha),
                            min_effect=settings.ab_min_effect) if days else None
    uplift = [] if sequential is None else [
        DailyUplift(date=EPOCH + timedelta(days=d), difference=float(sequential.estimate[i]),
                    ci_low=_finite(float(sequential.ci_low[i])), ci_high=_finite(float(sequential.ci_high[i])))
        for i, d in enumerate(days)]
    return AbTimeline(experiment=experiment, replayed=is_replayed(experiment), series=series, uplift=uplift)


def _daily(day: date, exposed: int, converted: int) -> DailyConversion:
    low, high = proportion_interval(converted, exposed)
    return DailyConversion(date=day, exposed=exposed, converted=converted,
                           rate=converted / exposed if exposed else 0.0, ci_low=low, ci_high=high)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None

"""Starting, stopping and promoting experiments (the keyed routes behind `recsys ab start/stop/promote`). Each
change is one MULTI/EXEC, guarded with WATCH where it depends on what it read: the live plan (at most one managed
experiment runs), the published versions (an arm pins one), the `current` pointer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import ValidationError
from redis.exceptions import WatchError

from api.schemas import ArmPromoted, ExperimentStopped, StartExperiment
from api.services.ab import (
    BadPlan,
    EndedRecord,
    ExperimentConflict,
    UnknownExperiment,
    ended_record,
    read_summary,
    read_timeline,
)
from api.services.bandit import weights_entry
from api.state import ApiState
from common.assignment import is_replayed
from common.redis_clients import node_of
from experiments.plan import Arm, Bandit, Plan, Promotion, even_split

UNLINK_AT_ONCE = 1000


def plan_from(request: StartExperiment, salt: str, now: float) -> Plan:
    """The plan a start request asks for, or BadPlan saying what is wrong with it."""
    try:
        arms = [Arm.parse(text) for text in request.arms]
        split = request.split or even_split(len(arms))
        bandit = Bandit(interval_s=request.bandit_interval_minutes * 60, min_share=request.min_share) if (
            request.bandit) else None
        return Plan(name=request.name, arms=arms, split=split, salt=f"{salt}:{request.name}", started_at=now,
                    bandit=bandit)
    except (ValueError, ValidationError) as exc:
        raise BadPlan(str(exc)) from exc


async def start_experiment(state: ApiState, request: StartExperiment) -> Plan:
    """Register the experiment's plan and make it the live one: from the next request on, `/recommend` serves
    each customer their arm. Refused (ExperimentConflict) while another managed experiment runs, for a name that
    was used before or is the settings' or a replay's, and for an arm pinning a version that is not published."""
    keys, settings = state.keys, state.settings
    plan = plan_from(request, settings.ab_salt, time.time())
    if plan.name == settings.ab_experiment or is_replayed(plan.name):
        raise ExperimentConflict(f"{plan.name!r} is the settings' or a replay's experiment; pick another name")
    async with node_of(state.redis, keys.ab_live_plan()) as node, node.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.ab_live_plan(), keys.model_versions())
                running = await pipe.get(keys.ab_live_plan())
                if running is not None:
                    raise ExperimentConflict(
                        f"experiment {Plan.model_validate_json(running).name!r} is running; stop it first "
                        f"(`recsys ab stop`): /recommend serves one experiment at a time")
                if (await pipe.hexists(keys.ab_plans(), plan.name) or await pipe.hexists(keys.ab_ended(), plan.name)
                        or await pipe.zscore(keys.ab_experiments(), plan.name) is not None):
                    raise ExperimentConflict(f"an experiment named {plan.name!r} exists already; pick another name")
                for version in sorted(plan.pinned_versions()):
                    if await pipe.zscore(keys.model_versions(), version) is None:
                        raise ExperimentConflict(f"no published model version {version!r}; GET /model/versions "
                                                 f"lists the published ones")
                pipe.multi()  # type: ignore[no-untyped-call]
                encoded = plan.model_dump_json()
                pipe.hset(keys.ab_plans(), plan.name, encoded)
                pipe.set(keys.ab_live_plan(), encoded)
                pipe.zadd(keys.ab_experiments(), {plan.name: plan.started_at}, nx=True)
                pipe.incr(keys.ab_experiments_revision())
                if plan.bandit is not None:
                    zeros = [0] * len(plan.arms)
                    pipe.rpush(keys.ab_bandit_weights(plan.name),
                               weights_entry(0, plan.started_at, plan.split, zeros, zeros))
                await pipe.execute()
                return plan
            except WatchError:
                continue  # a publish, prune or another start moved what was read: check again


async def stop_experiment(state: ApiState, experiment: str) -> ExperimentStopped:
    """End an experiment: the stream stops attributing purchases to it and takes no more of its exposures, and
    `/recommend` goes back to the settings' experiment if it was the live one (one MULTI: it leaves the registry,
    whose revision moves, and is marked ended); then its final summary and timeline are kept and every other key
    of it (per-customer exposures and conversions, the guard, counters) is freed. Stopping it again returns what
    was kept; a stop that was interrupted is finished."""
    keys = state.keys
    record = await ended_record(state, experiment)
    if record is not None and record.summary is not None:
        return ExperimentStopped(experiment=experiment, already_ended=True, summary=record.summary, freed_keys=0,
                                 ended_at=datetime.fromtimestamp(record.ended_at, UTC))
    if record is None:
        record = await _mark_ended(state, experiment)
    ended_at = datetime.fromtimestamp(record.ended_at, UTC)
    summary = (await read_summary(state, experiment)).model_copy(update={"state": "ended", "ended_at": ended_at})
    record = record.model_copy(update={"summary": summary, "timeline": await read_timeline(state, experiment)})
    await state.redis.hset(keys.ab_ended(), experiment, record.model_dump_json())
    freed = await _free(state, experiment)
    return ExperimentStopped(experiment=experiment, already_ended=False, ended_at=ended_at, freed_keys=freed,
                             summary=summary)


async def _mark_ended(state: ApiState, experiment: str) -> EndedRecord:
    keys = state.keys
    async with node_of(state.redis, keys.ab_live_plan()) as node, node.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.ab_live_plan())
                started = await pipe.zscore(keys.ab_experiments(), experiment)
                if started is None:
                    raise UnknownExperiment(f"no running experiment {experiment!r}; GET /ab/experiments lists them")
                live = await pipe.get(keys.ab_live_plan())
                record = EndedRecord(started_at=started, ended_at=time.time())
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(keys.ab_ended(), experiment, record.model_dump_json())
                pipe.zrem(keys.ab_experiments(), experiment)
                pipe.incr(keys.ab_experiments_revision())
                if live is not None and Plan.model_validate_json(live).name == experiment:
                    pipe.delete(keys.ab_live_plan())
                await pipe.execute()
                return record
            except WatchError:
                continue


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


async def promote(state: ApiState, experiment: str, arm_name: str) -> ArmPromoted:
    """Make the version an arm serves the `current` one (running or ended experiment alike), in one MULTI with
    the promotion recorded in the plan. The experiment keeps running until stopped: after the promotion its
    `current` arm serves that version too."""
    keys = state.keys
    async with node_of(state.redis, keys.ab_live_plan()) as node, node.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.model_current(), keys.model_versions(), keys.ab_live_plan())
                raw = await pipe.hget(keys.ab_plans(), experiment)
                if raw is None:
                    raise UnknownExperiment(f"{experiment!r} was not started with `recsys ab start`; only such "
                                            f"experiments have arms to promote")
                plan = Plan.model_validate_json(raw)
                try:
                    arm = plan.arm(arm_name)
                except KeyError as exc:
                    raise UnknownExperiment(str(exc.args[0])) from exc
                current = await pipe.get(keys.model_current())
                previous = current.decode() if isinstance(current, bytes) else current
                if arm.strategy != "model":
                    raise ExperimentConflict(f"arm {arm_name!r} serves the best-sellers: it has no model version")
                version = arm.pinned_version or previous
                if version is None or await pipe.zscore(keys.model_versions(), version) is None:
                    raise ExperimentConflict(f"model version {version!r} is no longer published")
                promoted = plan.model_copy(update={"promoted": Promotion(arm=arm_name, version=version,
                                                                          at=time.time())})
                live = await pipe.get(keys.ab_live_plan())
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(keys.model_current(), version)
                pipe.hset(keys.ab_plans(), experiment, promoted.model_dump_json())
                if live is not None and Plan.model_validate_json(live).name == experiment:
                    pipe.set(keys.ab_live_plan(), promoted.model_dump_json())
                await pipe.execute()
                return ArmPromoted(experiment=experiment, arm=arm_name, version=version, previous=previous)
            except WatchError:
                continue


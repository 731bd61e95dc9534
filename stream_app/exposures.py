"""A/B exposures from the API: who was shown what, when, in which group, in which experiment. Applied exactly
once in effect (the request id is the guard), before the purchases of the same batch, so a purchase right after a
visit finds it. Each experiment's first exposure registers it (`KeyLayout.ab_experiments`) with its start."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from common.events import ExposureEvent
from common.keys import KeyLayout
from experiments.plan import arms_of
from stream_app.lua import APPLY_EXPOSURES, EXPOSURE_KEYS, ab_keys
from stream_app.state import Windows

EXPOSURE_GLOBAL_KEYS = 4  # the registry, its revision, the ended experiments, the stream stats


@dataclass(frozen=True)
class ExposureResult:
    applied: int = 0
    duplicates: int = 0
    late: int = 0  # older than the customer's newest exposure minus the guard's window
    after_end: int = 0  # of an ended experiment

    def __add__(self, other: ExposureResult) -> ExposureResult:
        return ExposureResult(self.applied + other.applied, self.duplicates + other.duplicates,
                              self.late + other.late, self.after_end + other.after_end)


class ExposureWriter:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout, windows: Windows | None = None) -> None:
        self._keys = keys
        self._windows = windows or Windows()
        self._client = client
        self._script: Any = client.register_script(APPLY_EXPOSURES)
        self._arms: dict[str, tuple[str, ...]] = {}  # per experiment, read once: a plan's arms never change

    async def apply(self, exposures: Sequence[ExposureEvent]) -> ExposureResult:
        """Over every experiment the exposures belong to (one call each)."""
        by_experiment: dict[str, list[ExposureEvent]] = {}
        for e in exposures:
            by_experiment.setdefault(e.experiment, []).append(e)
        total = ExposureResult()
        for experiment, mine in by_experiment.items():
            call_keys, args = exposures_call(self._keys, experiment, await self._arms_of(experiment), mine,
                                             self._windows)
            total += ExposureResult(*(int(n) for n in await self._script(keys=call_keys, args=args)))
        return total


    async def _arms_of(self, experiment: str) -> tuple[str, ...]:
        """The experiment's arms, from its plan. A plan is written before anything can be served from it, so an
        exposure's experiment without one has the default arms."""
        if experiment not in self._arms:
            self._arms[experiment] = arms_of(await self._client.hget(self._keys.ab_plans(), experiment))
        return self._arms[experiment]


def exposures_call(keys: KeyLayout, experiment: str, arms: Sequence[str], exposures: Sequence[ExposureEvent],
                   windows: Windows) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one experiment's exposures (pure: unit-tested without Redis)."""
    shared = ab_keys(keys, experiment, arms)
    call_keys = [keys.ab_experiments(), keys.ab_experiments_revision(), keys.ab_ended(), keys.stream_stats(),
                 *shared]
    for e in exposures:
        call_keys += [keys.ab_customer_exposures(experiment, e.customer_id), keys.ab_customer_purchases(e.customer_id),
                      keys.ab_customer_converted(experiment, e.customer_id),
                      keys.ab_customer_requests(experiment, e.customer_id)]
    payload = json.dumps([exposure_row(e) for e in exposures], separators=(",", ":"))
    return call_keys, [EXPOSURE_GLOBAL_KEYS + len(shared), EXPOSURE_KEYS, windows.guard_s,
                       windows.attribution_s, experiment, windows.keep_s, payload, json.dumps(list(arms)),
                       windows.pre_s]


def exposure_row(event: ExposureEvent) -> list[object]:
    """One exposure as the script reads it: the fields of `EXPOSURE_FIELDS`, in that order."""
    return [event.request_id, event.customer_id, event.group, int(event.event_time.timestamp()), event.product_ids,
            event.propensity or 0]

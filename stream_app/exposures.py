"""A/B exposures from the API: who was shown what, when, in which group, in which experiment. Applied exactly
once in effect (the request id is the guard), before the purchases of the same batch, so a purchase right after a
visit finds it: one script call per customer and experiment, which touches only the customer's slot, then the
shared step (stream_app.shared), where each experiment's first exposure registers it (`KeyLayout.ab_experiments`)
with its start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from common.events import ExposureEvent
from common.keys import KeyLayout
from common.redis_clients import AsyncRedis
from experiments.plan import arms_of
from stream_app.calls import call_each
from stream_app.lua import APPLY_EXPOSURES
from stream_app.shared import Entry, SharedWriter, entries_of
from stream_app.state import Windows


@dataclass(frozen=True)
class ExposureResult:
    applied: int = 0
    duplicates: int = 0
    late: int = 0  # older than the customer's newest exposure minus the guard's window
    after_end: int = 0  # of an ended experiment


class ExposureWriter:
    def __init__(self, client: AsyncRedis, keys: KeyLayout, windows: Windows | None = None, *,
                 latest_n: int = 100) -> None:
        self._keys = keys
        self._windows = windows or Windows()
        self._client = client
        self._script: Any = client.register_script(APPLY_EXPOSURES)
        self._shared = SharedWriter(client, keys, dead_letter_keep_s=self._windows.dead_letter_keep_s,
                                    latest_n=latest_n)
        self._arms: dict[str, tuple[str, ...]] = {}  # per experiment, read once: a plan's arms never change
        self._ended: set[str] = set()  # an experiment never runs again once ended

    async def apply(self, exposures: Sequence[ExposureEvent]) -> ExposureResult:
        """One call per customer and experiment, all in one round trip per Redis node; an ended experiment's
        exposures are counted (`exposures_after_end`) and not applied."""
        groups: dict[tuple[str, str], list[ExposureEvent]] = {}
        for e in exposures:
            groups.setdefault((e.experiment, e.customer_id), []).append(e)
        await self._learn({experiment for experiment, _ in groups})
        after_end = sum(len(mine) for (experiment, _), mine in groups.items() if experiment in self._ended)
        live = {key: mine for key, mine in groups.items() if key[0] not in self._ended}
        calls = [exposures_call(self._keys, experiment, customer, self._arms[experiment], mine, self._windows)
                 for (experiment, customer), mine in live.items()]
        applied = duplicates = late = unknown = crossed = 0
        entries: list[Entry] = []
        for (_, customer), answer in zip(live, await call_each(self._client, self._script, calls), strict=True):
            applied, duplicates, late = applied + int(answer[0]), duplicates + int(answer[1]), late + int(answer[2])
            unknown, crossed = unknown + int(answer[3]), crossed + int(answer[4])
            entries += entries_of(customer, answer[5])
        counts = {"exposures_late": late, "exposures_unknown_arm": unknown, "exposures_crossed_arms": crossed,
                  "exposures_after_end": after_end}
        await self._shared.apply(entries, counts={name: n for name, n in counts.items() if n})
        return ExposureResult(applied, duplicates, late, after_end)

    async def _learn(self, experiments: set[str]) -> None:
        """Each experiment's arms, from its plan (a plan is written before anything can be served from it, so an
        exposure's experiment without one has the default arms), and which have ended, in one round trip."""
        asked = sorted(experiments - self._ended)
        if not asked:
            return
        pipe = self._client.pipeline(transaction=False)
        for experiment in asked:
            pipe.hget(self._keys.ab_plans(), experiment)
            pipe.hexists(self._keys.ab_ended(), experiment)
        answers = await pipe.execute()
        for i, experiment in enumerate(asked):
            self._arms.setdefault(experiment, arms_of(answers[2 * i]))
            if answers[2 * i + 1]:
                self._ended.add(experiment)


def exposures_call(keys: KeyLayout, experiment: str, customer: str, arms: Sequence[str],
                   exposures: Sequence[ExposureEvent], windows: Windows) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one customer's exposures in one experiment (pure: unit-tested without Redis)."""
    call_keys = [keys.ab_customer_state(experiment, customer), keys.ab_customer_exposures(experiment, customer),
                 keys.ab_customer_purchases(customer), keys.ab_customer_converted(experiment, customer),
                 keys.ab_customer_requests(experiment, customer), keys.ab_customer_experiments(customer),
                 keys.customer_outbox(customer)]
    payload = orjson.dumps([exposure_row(e) for e in exposures]).decode()
    return call_keys, [customer, experiment, windows.guard_s, windows.attribution_s, windows.keep_s, windows.pre_s,
                       orjson.dumps(list(arms)).decode(), payload]


def exposure_row(event: ExposureEvent) -> list[object]:
    """One exposure as the script reads it: the fields of `EXPOSURE_FIELDS`, in that order."""
    return [event.request_id, event.customer_id, event.group, int(event.event_time.timestamp()), event.product_ids,
            event.propensity or 0]

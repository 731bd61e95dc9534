"""A/B exposures from the API: who was shown what, when, in which group, in which experiment. Applied exactly
once in effect (the request id is the guard), before the purchases of the same batch, so a purchase right after a
visit finds it. Each experiment's first exposure registers it (`KeyLayout.ab_experiments`) with its start."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from common.events import ExposureEvent
from common.keys import KeyLayout
from stream_app.lua import AB_KEY_COUNT, APPLY_EXPOSURES, EXPOSURE_KEYS, ab_keys


class ExposureWriter:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout, retention_s: int, attribution_s: int) -> None:
        self._keys = keys
        self._retention_s = retention_s
        self._attribution_s = attribution_s
        self._script: Any = client.register_script(APPLY_EXPOSURES)

    async def apply(self, exposures: Sequence[ExposureEvent]) -> tuple[int, int]:
        """(newly applied, duplicates), over every experiment the exposures belong to (one call each)."""
        by_experiment: dict[str, list[ExposureEvent]] = {}
        for e in exposures:
            by_experiment.setdefault(e.experiment, []).append(e)
        new = duplicates = 0
        for experiment, mine in by_experiment.items():
            call_keys, args = exposures_call(self._keys, experiment, mine, self._retention_s, self._attribution_s)
            applied, repeated = await self._script(keys=call_keys, args=args)
            new, duplicates = new + int(applied), duplicates + int(repeated)
        return new, duplicates


def exposures_call(keys: KeyLayout, experiment: str, exposures: Sequence[ExposureEvent], retention_s: int,
                   attribution_s: int) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one experiment's exposures (pure: unit-tested without Redis)."""
    call_keys = [keys.ab_applied_exposures(experiment), keys.ab_experiments(), *ab_keys(keys, experiment)]
    for e in exposures:
        call_keys += [keys.ab_customer_exposures(experiment, e.customer_id), keys.ab_customer_purchases(e.customer_id),
                      keys.ab_customer_converted(experiment, e.customer_id)]
    payload = json.dumps([exposure_row(e) for e in exposures], separators=(",", ":"))
    return call_keys, [2 + AB_KEY_COUNT, EXPOSURE_KEYS, retention_s, attribution_s, experiment, payload]


def exposure_row(event: ExposureEvent) -> list[object]:
    """One exposure as the script reads it: the fields of `EXPOSURE_FIELDS`, in that order."""
    return [event.request_id, event.customer_id, event.group, int(event.event_time.timestamp()), event.product_ids]

"""A/B exposures from the API: who was shown what, when, in which group. Applied exactly once in effect (the
request id is the guard), before the purchases of the same batch, so a purchase right after a visit finds it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from common.events import ExposureEvent
from common.keys import KeyLayout
from stream_app.lua import AB_KEY_COUNT, APPLY_EXPOSURES, EXPOSURE_KEYS, ab_keys


class ExposureWriter:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout, experiment: str, retention_s: int,
                 attribution_s: int) -> None:
        self._keys = keys
        self._experiment = experiment
        self._retention_s = retention_s
        self._attribution_s = attribution_s
        self._script: Any = client.register_script(APPLY_EXPOSURES)

    async def apply(self, exposures: Sequence[ExposureEvent]) -> tuple[int, int]:
        """(newly applied, duplicates). Exposures of another experiment are ignored."""
        mine = [e for e in exposures if e.experiment == self._experiment]
        if not mine:
            return 0, 0
        keys, exp = self._keys, self._experiment
        call_keys = [keys.ab_applied_exposures(exp), *ab_keys(keys, exp)]
        for e in mine:
            call_keys += [keys.ab_customer_exposures(exp, e.customer_id),
                          keys.ab_customer_purchases(exp, e.customer_id),
                          keys.ab_customer_converted(exp, e.customer_id)]
        payload = [exposure_row(e) for e in mine]
        new, duplicates = await self._script(keys=call_keys, args=[
            1 + AB_KEY_COUNT, EXPOSURE_KEYS, self._retention_s, self._attribution_s,
            json.dumps(payload, separators=(",", ":")),
        ])
        return int(new), int(duplicates)


def exposure_row(event: ExposureEvent) -> list[object]:
    """One exposure as the script reads it: the fields of `EXPOSURE_FIELDS`, in that order."""
    return [event.request_id, event.customer_id, event.group, int(event.event_time.timestamp()), event.product_ids]

"""Apply a batch of purchases to Redis in one atomic Lua call, exactly once in effect.

The idempotency guard is a per-customer sorted set of applied event ids (score = event time), checked and
updated inside the same script as the state it guards. It never looks at Kafka offsets, so a broker whose log
was wiped (offsets from 0 again) cannot make new events look old, and a replay or redelivery cannot count twice.
The guard keeps ids for `retention_s` of event time behind the customer's latest purchase; an event older than
that which is not in the guard is counted as `late` and not applied (the bound that keeps the guard small).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from common.events import PurchaseEvent
from common.keys import KeyLayout
from stream_app.lua import AB_KEY_COUNT, APPLY_PURCHASES, ab_keys

STREAM_KEYS = 7  # the stream's own global keys (the last is the experiments registry); then AB_KEY_COUNT each
CUSTOMER_KEYS = 8  # the customer's own keys; then its exposures and converted ids per experiment
HEADER_ARGS = 10
FRESHNESS_SAMPLES = 20_000
STALE_EXPERIMENTS = -1  # what the script answers when the registry changed since the caller read it


@dataclass(frozen=True)
class BatchResult:
    applied: int
    duplicates: int
    late: int
    dead_lettered: int


def to_cents(amount: float) -> int:
    """Money is summed in integer cents so Redis totals equal the source's exactly."""
    return round(amount * 100)


def dead_letter_id(partition: int, offset: int, raw: bytes) -> str:
    """Counts a dead letter once, even when its record is redelivered; contents included because a broker
    whose log was wiped reuses offsets."""
    return hashlib.blake2b(f"{partition}:{offset}:".encode() + raw, digest_size=12).hexdigest()


def day_of(ts: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ts))


def batch_call(
    keys: KeyLayout,
    events: Sequence[PurchaseEvent],
    dead_ids: Sequence[str],
    *,
    recent_n: int,
    retention_s: int,
    latest_n: int,
    experiments: Sequence[str],
    attribution_s: int,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one script call, events grouped by customer, attributed in each of `experiments` (all
    the registry holds) (pure: unit-tested without Redis)."""
    by_customer: dict[str, list[PurchaseEvent]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    # Only the newest `latest_n` can survive the LTRIM, so only those are serialised.
    shown = {id(event) for event in events[-latest_n:]}
    day_index: dict[str, int] = {}
    customer_keys: list[str] = []
    payload: list[tuple[str, list[tuple[str | int, ...]]]] = []
    for cid, mine in by_customer.items():
        customer_keys += [
            keys.customer_rfm(cid), keys.customer_orders(cid), keys.customer_product_units(cid),
            keys.customer_product_amount(cid), keys.customer_recent(cid), keys.customer_categories(cid),
            keys.customer_applied(cid), keys.ab_customer_purchases(cid),
        ]
        for experiment in experiments:
            customer_keys += [keys.ab_customer_exposures(experiment, cid), keys.ab_customer_converted(experiment, cid)]
        rows: list[tuple[str | int, ...]] = []
        payload.append((cid, rows))
        for event in mine:
            ts = int(event.event_time.timestamp())
            day = day_index.setdefault(day_of(ts), len(day_index) + 1)
            rows.append(purchase_row(event, ts, day, _latest_json(event) if id(event) in shown else ""))
    call_keys = [
        keys.product_popularity(), keys.product_categories(), keys.stream_stats(), keys.stream_latest(),
        keys.customers_index(), keys.stream_dead_letters(), keys.ab_experiments(),
        *(key for experiment in experiments for key in ab_keys(keys, experiment)),
        *(keys.product_popularity_day(day) for day in day_index),
        *customer_keys,
    ]
    header: list[str | int] = [STREAM_KEYS + AB_KEY_COUNT * len(experiments), CUSTOMER_KEYS + 2 * len(experiments),
                               len(by_customer), len(day_index), recent_n, retention_s, latest_n, attribution_s,
                               len(dead_ids), len(experiments)]
    # Events travel as one JSON argument: packing thousands of separate arguments cost more than the script.
    return call_keys, [*header, *dead_ids, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)]


def purchase_row(event: PurchaseEvent, ts: int, day: int, latest: str) -> tuple[str | int, ...]:
    """One event as the script reads it: the fields of `PURCHASE_FIELDS`, in that order."""
    return (event.event_id, event.order_id, event.product_id, event.category, event.units, to_cents(event.amount),
            ts, day, latest)


def _latest_json(event: PurchaseEvent) -> str:
    return json.dumps(
        {"customer_id": event.customer_id, "product_id": event.product_id, "category": event.category,
         "units": event.units, "amount": event.amount, "event_time": event.event_time.isoformat(),
         "order_id": event.order_id},
        separators=(",", ":"),
    )


class StateWriter:
    """Applies batches; one round trip per batch (plus one to read the experiments registry when it changed)."""

    def __init__(
        self, client: aioredis.Redis, keys: KeyLayout, *, recent_n: int = 20, retention_s: int = 400 * 86400,
        latest_n: int = 100, attribution_s: int = 7 * 86400,
    ) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_PURCHASES)
        self._recent_n = recent_n
        self._retention_s = retention_s
        self._latest_n = latest_n
        self._experiments: list[str] | None = None  # the registry as last read
        self._attribution_s = attribution_s

    async def apply(self, events: Sequence[PurchaseEvent], dead_ids: Sequence[str] = ()) -> BatchResult:
        if not events and not dead_ids:
            return BatchResult(0, 0, 0, 0)
        while True:
            if self._experiments is None:
                names = cast(list[bytes], await self._client.zrange(self._keys.ab_experiments(), 0, -1))
                self._experiments = [name.decode() for name in names]
            call_keys, args = batch_call(
                self._keys, events, dead_ids, recent_n=self._recent_n, retention_s=self._retention_s,
                latest_n=self._latest_n, experiments=self._experiments, attribution_s=self._attribution_s,
            )
            result = await self._script(keys=call_keys, args=args)
            if int(result[0]) != STALE_EXPERIMENTS:
                applied, duplicates, late, dead = result
                return BatchResult(int(applied), int(duplicates), int(late), int(dead))
            self._experiments = None  # an experiment started since: read the registry again

    async def record_progress(self, fields: Mapping[str, float | int | str], ages_ms: Sequence[float] = ()) -> None:
        """Live counters, plus the newest event-to-Redis ages (for freshness percentiles), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._keys.stream_stats(), mapping=cast(Any, dict(fields)))
        if ages_ms:
            pipe.rpush(self._keys.stream_freshness(), *(round(a, 1) for a in ages_ms))
            pipe.ltrim(self._keys.stream_freshness(), -FRESHNESS_SAMPLES, -1)
        await pipe.execute()

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
from common.settings import Settings
from experiments.plan import arms_of
from stream_app.lua import APPLY_PURCHASES, ab_keys

STREAM_KEYS = 8  # the stream's own global keys (the last two: the experiments registry and its revision)
CUSTOMER_KEYS = 8  # the customer's own keys; then its exposures and converted ids per experiment
HEADER_ARGS = 15
FRESHNESS_SAMPLES = 20_000
STALE_EXPERIMENTS = -1  # what the script answers when the registry changed since the caller read it
DAY_S = 86400


@dataclass(frozen=True)
class BatchResult:
    applied: int
    duplicates: int
    late: int
    dead_lettered: int
    refused: tuple[str, ...] = ()  # event ids whose customer's stored totals would pass the counter limit


@dataclass(frozen=True)
class Windows:
    """How long the stream keeps what it keeps, in seconds (every bound in the README's retention table that is a
    time): the guard's event ids behind the customer's newest purchase (and request ids behind their newest
    exposure: how late an event may arrive), the attribution window, and the dead-letter ids (wall time)."""

    guard_s: int = 400 * DAY_S
    attribution_s: int = 7 * DAY_S
    dead_letter_keep_s: int = 7 * DAY_S
    pre_s: int = 28 * DAY_S  # CUPED's pre-period before a customer's first exposure

    @property
    def keep_s(self) -> int:
        """A customer's exposures, converted ids and attributable purchases. As long as the guard: the two topics
        are consumed independently, and a replay at full speed reads them a whole replayed span apart (measured:
        a 45-day replay lost a fifth of its conversions with a 7-day window, one of 175 with 30 days)."""
        return self.attribution_s + self.guard_s

    @classmethod
    def of(cls, settings: Settings) -> Windows:
        return cls(guard_s=settings.guard_retention_days * DAY_S,
                   attribution_s=round(settings.ab_attribution_days * DAY_S),
                   dead_letter_keep_s=round(settings.dead_letter_keep_days * DAY_S),
                   pre_s=round(settings.ab_cuped_pre_days * DAY_S))


@dataclass(frozen=True)
class Registry:
    """The running experiments and their arms as the caller last read them, and the registry's revision then."""

    experiments: tuple[str, ...] = ()
    revision: str = "0"
    arms: tuple[tuple[str, ...], ...] = ()  # per experiment, in order


def to_cents(amount: float) -> int:
    """Money is summed in integer cents so Redis totals equal the source's exactly."""
    return round(amount * 100)


def dead_letter_id(partition: int, offset: int, raw: bytes) -> str:
    """Counts a dead letter once, even when its record is redelivered; contents included because a broker
    whose log was wiped reuses offsets."""
    return hashlib.blake2b(f"{partition}:{offset}:".encode() + raw, digest_size=12).hexdigest()


def batch_call(
    keys: KeyLayout,
    events: Sequence[PurchaseEvent],
    dead_ids: Sequence[str],
    *,
    recent_n: int,
    latest_n: int,
    windows: Windows,
    registry: Registry,
    now: int,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one script call, events grouped by customer, attributed in each running experiment of
    `registry` (pure: unit-tested without Redis)."""
    by_customer: dict[str, list[PurchaseEvent]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    # Only the newest `latest_n` can survive the LTRIM, so only those are serialised.
    shown = {id(event) for event in events[-latest_n:]}
    experiments = registry.experiments
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
        payload.append((cid, [purchase_row(event, _latest_json(event) if id(event) in shown else "")
                              for event in mine]))
    shared_ab = [key for experiment, arms in zip(experiments, registry.arms, strict=True)
                 for key in ab_keys(keys, experiment, arms)]
    call_keys = [
        keys.product_popularity(), keys.product_categories(), keys.stream_stats(), keys.stream_latest(),
        keys.customers_index(), keys.stream_dead_letters(), keys.ab_experiments(), keys.ab_experiments_revision(),
        *shared_ab, *customer_keys,
    ]
    header: list[str | int] = [STREAM_KEYS + len(shared_ab), CUSTOMER_KEYS + 2 * len(experiments),
                               len(by_customer), recent_n, windows.guard_s, latest_n, windows.attribution_s,
                               len(dead_ids), len(experiments), windows.keep_s, now, windows.dead_letter_keep_s,
                               registry.revision, json.dumps(registry.arms), windows.pre_s]
    # Events travel as one JSON argument: packing thousands of separate arguments cost more than the script.
    return call_keys, [*header, *dead_ids, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)]


def purchase_row(event: PurchaseEvent, latest: str) -> tuple[str | int, ...]:
    """One event as the script reads it: the fields of `PURCHASE_FIELDS`, in that order."""
    return (event.event_id, event.order_id, event.product_id, event.category, event.units, to_cents(event.amount),
            int(event.event_time.timestamp()), latest)


def _latest_json(event: PurchaseEvent) -> str:
    return json.dumps(
        {"customer_id": event.customer_id, "product_id": event.product_id, "category": event.category,
         "units": event.units, "amount": event.amount, "event_time": event.event_time.isoformat(),
         "order_id": event.order_id},
        separators=(",", ":"),
    )


async def read_registry(client: aioredis.Redis, keys: KeyLayout) -> Registry:
    """The running experiments, their arms and the revision they were read at, in one round trip. The revision is
    read first: a change between the reads leaves the older revision beside the newer list, which the script
    refuses, so the caller reads again (never the other way round, a stale list under a current revision). A
    plan is written before its experiment is registered, and its arms never change."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.ab_experiments_revision())
    pipe.zrange(keys.ab_experiments(), 0, -1)
    pipe.hgetall(keys.ab_plans())
    revision, names, plans = await pipe.execute()
    experiments = tuple(name.decode() for name in names)
    return Registry(experiments, revision.decode() if revision else "0",
                    tuple(arms_of(plans.get(name.encode())) for name in experiments))


class StateWriter:
    """Applies batches; one round trip per batch (plus one to read the experiments registry when it changed)."""

    def __init__(self, client: aioredis.Redis, keys: KeyLayout, windows: Windows | None = None, *,
                 recent_n: int = 20, latest_n: int = 100) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_PURCHASES)
        self._windows = windows or Windows()
        self._recent_n = recent_n
        self._latest_n = latest_n
        self._registry: Registry | None = None  # as last read

    async def apply(self, events: Sequence[PurchaseEvent], dead_ids: Sequence[str] = ()) -> BatchResult:
        if not events and not dead_ids:
            return BatchResult(0, 0, 0, 0)
        while True:
            if self._registry is None:
                self._registry = await read_registry(self._client, self._keys)
            call_keys, args = batch_call(
                self._keys, events, dead_ids, recent_n=self._recent_n, latest_n=self._latest_n,
                windows=self._windows, registry=self._registry, now=int(time.time()),
            )
            result = await self._script(keys=call_keys, args=args)
            if int(result[0]) != STALE_EXPERIMENTS:
                applied, duplicates, late, dead, refused = result
                return BatchResult(int(applied), int(duplicates), int(late), int(dead),
                                   tuple(r.decode() if isinstance(r, bytes) else str(r) for r in refused))
            self._registry = None  # an experiment started or stopped since: read the registry again

    async def record_progress(self, fields: Mapping[str, float | int | str], ages_ms: Sequence[float] = ()) -> None:
        """Live counters, plus the newest event-to-Redis ages (for freshness percentiles), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._keys.stream_stats(), mapping=cast(Any, dict(fields)))
        if ages_ms:
            pipe.rpush(self._keys.stream_freshness(), *(round(a, 1) for a in ages_ms))
            pipe.ltrim(self._keys.stream_freshness(), -FRESHNESS_SAMPLES, -1)
        await pipe.execute()

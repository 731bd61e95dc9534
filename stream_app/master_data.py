"""Master data into Redis: customer profiles (customers topic) and the product catalogue (products topic), both
compacted and keyed by id. A record replaces what Redis holds for its id and a tombstone (no value) deletes it, so
a changed city reaches `/customers/{id}` without a batch run. A profile is replaced in one script call in the
customer's slot; a catalogue batch is one MULTI/EXEC in the shared slot; within a batch the latest record per id
wins, as it would after compaction. Replaying a record again writes the same value, so
redelivery needs no guard."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import faust

from common.events import CustomerProfile, ProductInfo, Rejected, parse_event
from common.keys import KeyLayout
from common.profiles import profile_hash
from common.redis_clients import AsyncRedis, node_of
from common.settings import Settings
from stream_app.calls import call_each
from stream_app.lua import lua_source
from stream_app.state import dead_letter_id

HASH_FIELDS_PER_COMMAND = 1000
Record = TypeVar("Record", CustomerProfile, ProductInfo)
Change = tuple[str, Record | None]  # id, the new record or None for a tombstone


@dataclass(frozen=True)
class WorkerHooks:
    """What the worker's purchases agent already does, lent to these agents: dead-letter one record with a
    reason, count dead letters once, retry a Redis write while Redis is away, and stop the worker on a bug."""

    dead_letter: Callable[[faust.types.EventT[Any], str], Awaitable[None]]
    count_dead: Callable[[list[str]], Awaitable[object]]
    retry: Callable[[Callable[[], Awaitable[int]]], Awaitable[int]]
    stop: Callable[[Exception], Awaitable[None]]


class MasterDataWriter:
    def __init__(self, client: AsyncRedis, keys: KeyLayout) -> None:
        self._client = client
        self._keys = keys
        self._replace: Any = client.register_script(lua_source("replace_hash"))

    async def apply_profiles(self, changes: Sequence[Change[CustomerProfile]]) -> int:
        """Replace (or delete) each customer's profile; returns the records applied."""
        calls = [([self._keys.customer_profile(customer_id)],
                  [str(part) for item in (profile_hash(profile) if profile else {}).items() for part in item])
                 for customer_id, profile in dict(changes).items()]
        await call_each(self._client, self._replace, calls)
        await self._client.hincrby(self._keys.stream_stats(), "profiles_applied", len(changes))
        return len(changes)

    async def apply_products(self, changes: Sequence[Change[ProductInfo]]) -> int:
        """Upsert (or delete) catalogue entries and bump the catalogue's revision; returns the records applied."""
        latest = dict(changes)
        entries = [(pid, json.dumps({"name": p.name, "category": p.category}, ensure_ascii=False))
                   for pid, p in latest.items() if p is not None]
        gone = [pid for pid, p in latest.items() if p is None]
        catalogue = self._keys.product_catalogue()
        async with node_of(self._client, catalogue) as node:
            pipe = node.pipeline(transaction=True)
            for start in range(0, len(entries), HASH_FIELDS_PER_COMMAND):
                pipe.hset(catalogue, mapping=dict(entries[start:start + HASH_FIELDS_PER_COMMAND]))
            if gone:
                pipe.hdel(catalogue, *gone)
            pipe.incr(self._keys.product_catalogue_revision())
            pipe.hincrby(self._keys.stream_stats(), "products_applied", len(changes))
            await pipe.execute()
        return len(changes)


def add_master_data_agents(app: faust.App, settings: Settings, writer: MasterDataWriter, hooks: WorkerHooks) -> None:
    """One agent per master-data topic. The worker declares the topics compacted if they do not exist yet."""
    def topic(name: str) -> faust.types.TopicT:
        return app.topic(name, partitions=settings.topic_partitions, compacting=True, internal=True)

    async def consume(stream: faust.StreamT[bytes], model: type[Record], key_of: Callable[[Record], str],
                      apply: Callable[[list[Change[Record]]], Awaitable[int]]) -> AsyncIterator[None]:
        batches = cast(faust.Stream[bytes], stream).take_events(settings.stream_batch_size,
                                                                within=settings.stream_batch_within_s)
        async for batch in batches:
            try:
                changes, dead = await _changes(batch, model, key_of, hooks, settings.max_event_bytes)
                if dead:
                    await hooks.count_dead(dead)
                if changes:
                    await hooks.retry(partial(apply, changes))
            except Exception as exc:
                await hooks.stop(exc)
                raise
            yield None  # the batch is in Redis before take_events acknowledges it

    @app.agent(topic(settings.topic_customers), name="master-data-customers")
    async def profiles(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in consume(stream, CustomerProfile, lambda p: p.customer_id, writer.apply_profiles):
            yield done

    @app.agent(topic(settings.topic_products), name="master-data-products")
    async def products(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in consume(stream, ProductInfo, lambda p: p.product_id, writer.apply_products):
            yield done


async def _changes(
    batch: Sequence[faust.types.EventT[Any]], model: type[Record], key_of: Callable[[Record], str],
    hooks: WorkerHooks, max_bytes: int,
) -> tuple[list[Change[Record]], list[str]]:
    """The batch as (id, record or None) in arrival order, and the dead-letter ids of records that do not parse."""
    changes: list[Change[Record]] = []
    dead: list[str] = []
    for event in batch:
        key = event.key.decode(errors="replace") if isinstance(event.key, bytes) else None
        if event.value is None and key:
            changes.append((key, None))
            continue
        parsed = parse_event(model, event.value, max_bytes)
        if isinstance(parsed, Rejected):
            await hooks.dead_letter(event, parsed.detail)
            dead.append(dead_letter_id(event.message.partition, event.message.offset, event.value or b""))
        else:
            changes.append((key_of(parsed), parsed))
    return changes, dead

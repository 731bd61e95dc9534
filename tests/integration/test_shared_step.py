"""The shared step on real Redis: a worker that stops at any point of a batch (after the customers' calls, after
the shared step, after letting go) and the batch redelivered leave the shared state as one clean application."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from common.events import PurchaseEvent
from common.keys import KeyLayout
from stream_app.lua import APPLY_PURCHASES, APPLY_SHARED
from stream_app.shared import ENTRIES_PER_CALL, RELEASED_PER_CALL, Entry, SharedWriter, entries_of, shared_calls
from stream_app.state import StateWriter, Windows, customer_call, rows_by_customer
from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, tzinfo=UTC)
EVENTS = [PurchaseEvent(event_id=f"e{i}", order_id=f"o{i // 2}", customer_id=f"c{i % 3}", product_id=f"p{i % 4}",
                        category="k", units=1 + i % 2, amount=2.5, event_time=T0 + timedelta(hours=i))
          for i in range(12)]


async def _customer_calls(client: aioredis.Redis, keys: KeyLayout) -> list[Entry]:
    """What a worker's first round trip does: every customer's call, nothing after it."""
    script = client.register_script(APPLY_PURCHASES)
    entries: list[Entry] = []
    for customer, rows in rows_by_customer(EVENTS, 100).items():
        call_keys, args = customer_call(keys, customer, rows, [], recent_n=20, windows=Windows())
        answer: list[Any] = await script(keys=call_keys, args=args)
        entries += entries_of(customer, answer[4])
    return entries


async def _shared_only(client: aioredis.Redis, keys: KeyLayout, entries: list[Entry]) -> None:
    """The shared step without letting go, as a worker that stops right after it."""
    [(call_keys, args)] = shared_calls(keys, entries, [], {}, dead_letter_keep_s=60, latest_n=100)
    await client.register_script(APPLY_SHARED)(keys=call_keys, args=args)


async def _stops_after_customer_calls(client: aioredis.Redis, keys: KeyLayout) -> None:
    await _customer_calls(client, keys)


async def _stops_after_the_shared_step(client: aioredis.Redis, keys: KeyLayout) -> None:
    await _shared_only(client, keys, await _customer_calls(client, keys))


async def _a_late_worker_sends_what_was_let_go(client: aioredis.Redis, keys: KeyLayout) -> None:
    """A worker that lost its partitions after its customers' calls sends the shared step after another worker
    applied and let go the same entries."""
    entries = await _customer_calls(client, keys)
    await SharedWriter(client, keys, dead_letter_keep_s=60, latest_n=100).apply(entries)
    await _shared_only(client, keys, entries)


STOPS: dict[str, Callable[[aioredis.Redis, KeyLayout], Awaitable[None]]] = {
    "after the customers' calls": _stops_after_customer_calls,
    "after the shared step": _stops_after_the_shared_step,
    "a late worker": _a_late_worker_sends_what_was_let_go,
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_batch_redelivered_after_a_stop_counts_once(isolated: Isolated, stop: str) -> None:
    async def run() -> StateWriter:
        client = aioredis.from_url(isolated.settings.redis_url, decode_responses=True)
        try:
            await STOPS[stop](client, isolated.keys)
            writer = StateWriter(client, isolated.keys)
            await writer.apply(EVENTS)  # the redelivery: every event a duplicate by now
            return writer
        finally:
            await client.aclose()

    asyncio.run(run())
    keys, redis = isolated.keys, isolated.redis
    units: Counter[str] = Counter()
    for event in EVENTS:
        units[event.product_id] += event.units
    popularity = cast(list[tuple[str, float]], redis.zrange(keys.product_popularity(), 0, -1, withscores=True))
    assert {product: int(score) for product, score in popularity} == dict(units)
    assert int(redis.hget(keys.stream_stats(), "processed") or 0) == len(EVENTS)
    assert redis.zcard(keys.customers_index()) == 3
    assert redis.llen(keys.stream_latest()) == len(EVENTS)
    assert not any(redis.exists(keys.customer_outbox(f"c{i}")) for i in range(3))  # everything owed was let go
    records = cast(list[tuple[str, float]], redis.zrange(keys.stream_shared_applied(), 0, -1, withscores=True))
    assert len(records) == 3 and all(score != float("inf") for _, score in records)


def test_the_latest_purchases_are_newest_first_across_customers(isolated: Isolated) -> None:
    async def run() -> None:
        client = aioredis.from_url(isolated.settings.redis_url, decode_responses=True)
        try:
            await StateWriter(client, isolated.keys, latest_n=5).apply(EVENTS)
        finally:
            await client.aclose()

    asyncio.run(run())
    latest = [json.loads(row) for row in isolated.redis.lrange(isolated.keys.stream_latest(), 0, -1)]
    assert [(row["customer_id"], row["event_time"]) for row in latest] == [
        (e.customer_id, e.event_time.isoformat()) for e in reversed(EVENTS[-5:])]


def test_a_redis_that_lost_its_scripts_is_given_them_again(isolated: Isolated) -> None:
    """A restarted Redis has no scripts: the writer's calls answer NOSCRIPT, none runs, the script is loaded and
    the calls are sent again."""
    async def run() -> None:
        client = aioredis.from_url(isolated.settings.redis_url, decode_responses=True)
        try:
            writer = StateWriter(client, isolated.keys)
            await writer.apply(EVENTS[:6])
            await client.script_flush()
            await writer.apply(EVENTS[6:])
        finally:
            await client.aclose()

    asyncio.run(run())
    assert int(isolated.redis.hget(isolated.keys.stream_stats(), "processed") or 0) == len(EVENTS)
    assert int(isolated.redis.hget(isolated.keys.stream_stats(), "duplicates") or 0) == 0


def test_a_batch_of_more_entries_than_a_call_takes_is_applied_once_whole(isolated: Isolated) -> None:
    """The step in calls of ENTRIES_PER_CALL entries and releases of RELEASED_PER_CALL records: every customer's
    purchase counts once, also redelivered, every outbox is let go, and the latest purchases read newest first.
    Their times are not in the order of the customers, nor of the batch."""
    n = 2 * RELEASED_PER_CALL + 1
    assert n > 2 * ENTRIES_PER_CALL
    events = [PurchaseEvent(event_id=f"b{i}", order_id=f"o{i}", customer_id=f"k{i}", product_id=f"p{i % 7}",
                            category="k", units=1, amount=1.0, event_time=T0 + timedelta(minutes=(i * 400) % n))
              for i in range(n)]

    async def run() -> tuple[int, int]:
        client = aioredis.from_url(isolated.settings.redis_url, decode_responses=True)
        try:
            writer = StateWriter(client, isolated.keys, latest_n=5)
            first, again = await writer.apply(events), await writer.apply(events)
            return first.applied, again.duplicates
        finally:
            await client.aclose()

    assert asyncio.run(run()) == (n, n)
    keys, redis = isolated.keys, isolated.redis
    assert int(redis.hget(keys.stream_stats(), "processed") or 0) == n
    assert int(redis.hget(keys.stream_stats(), "duplicates") or 0) == n
    popularity = cast(list[tuple[str, float]], redis.zrange(keys.product_popularity(), 0, -1, withscores=True))
    assert {product: int(score) for product, score in popularity} == Counter(e.product_id for e in events)
    assert redis.exists(*(keys.customer_outbox(e.customer_id) for e in events)) == 0
    records = cast(list[tuple[str, float]], redis.zrange(keys.stream_shared_applied(), 0, -1, withscores=True))
    assert len(records) == n and all(score != float("inf") for _, score in records)
    latest = [json.loads(row)["event_time"] for row in redis.lrange(keys.stream_latest(), 0, -1)]
    assert latest == sorted((e.event_time.isoformat() for e in events[-5:]), reverse=True)  # the batch's last five


REFUSED = ["not JSON", "[1, 2]", '{"pop": null, "n": {"processed": 1}}',
           '{"pop": {"p1": 1e999}, "n": {"processed": 1}}',
           '{"ab": [["exp", "control", "exposures", "1.5"]]}', '{"ab": [["exp", "control", "exposures", "1e30"]]}',
           '{"ab": [5]}', '{"daily": [true]}', '{"start": [[null, 5]]}', '{"cust": "5"}', '{"latest": [[1, null]]}',
           '{"n": {"processed": 0.5}}', '{"pop": false}']


def test_an_entry_that_fails_the_check_is_counted_and_never_applied(isolated: Isolated) -> None:
    """Entries name their parts or leave the empty ones out, and the integer counters of a call's entries are
    added up; one that is not an object of parts of the types Redis takes where they go (not JSON, an array, a
    part or row of the wrong type, a number that is not finite, a fraction or a number past 2^53 for a counter
    Redis keeps as an integer) is recorded and counted (`shared_refused`), and changes nothing, also sent again,
    while the call's other entries are applied."""
    entries = [Entry("c1", "x:exp:r1", '{"ab": [["exp", "control", "exposures", "1"]]}'),
               Entry("c6", "x:exp:r6", '{"ab": [["exp", "control", "exposures", "2"], '
                                       '["exp", "control", "revenue_sq_cents2", "0.5"]], '
                                       '"daily": [["exp", "control", "exposed:20000", 1]]}'),
               Entry("c7", "p:e7", '{"pop": {"p2": 3}}'),  # no categories: popularity alone
               *(Entry(f"r{i}", f"p:r{i}", text) for i, text in enumerate(REFUSED))]

    async def run() -> list[tuple[int, int]]:
        client = aioredis.from_url(isolated.settings.redis_url, decode_responses=True)
        try:
            writer = SharedWriter(client, isolated.keys, dead_letter_keep_s=60, latest_n=100)
            return [((r := await writer.apply(entries)).fresh, r.before) for _ in range(2)]
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [(3, 0), (0, len(entries))]
    keys, redis = isolated.keys, isolated.redis
    assert redis.hgetall(keys.ab_group_counters("exp", "control")) == {"exposures": "3", "revenue_sq_cents2": "0.5"}
    assert redis.hgetall(keys.ab_daily("exp", "control")) == {"exposed:20000": "1"}
    stats = redis.hgetall(keys.stream_stats())
    assert (stats.get("shared_refused"), stats.get("processed")) == (str(len(REFUSED)), None)
    assert redis.zrange(keys.product_popularity(), 0, -1, withscores=True) == [("p2", 3.0)]
    assert redis.exists(keys.stream_latest(), keys.ab_experiments(), keys.customers_index()) == 0

"""Nothing an accepted event says can make Redis refuse a batch; what Redis refuses anyway is isolated and
dead-lettered; a Redis that is full or away is waited for (real redis-server, the real scripts)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.events import ID_MAX_LEN, EventBounds, ExposureEvent, PurchaseEvent, Rejected, parse_event
from common.keys import KeyLayout
from common.settings import Settings
from stack.local import redis_binary, redis_is_healthy
from stack.scratch import free_port
from stream_app.apply import apply_isolating, retry_transient
from stream_app.exposures import ExposureWriter
from stream_app.lua import COUNTER_LIMIT
from stream_app.state import BatchResult, StateWriter, to_cents
from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration

BOUNDS = EventBounds()
NOW = datetime.now(UTC)
identifiers = st.from_regex(rf"\A[A-Za-z0-9_.\-]{{1,{ID_MAX_LEN}}}\Z")
# Every purchase the contract accepts, out to its bounds: the largest units and amounts, the earliest and latest
# times, any category text (pipes, quotes, non-ASCII), ids with every allowed character.
purchases = st.builds(
    PurchaseEvent,
    event_id=identifiers, order_id=identifiers, customer_id=st.sampled_from(["c1", "c2", "c.3-x_"]),
    product_id=identifiers, category=st.text(max_size=128),
    units=st.integers(1, BOUNDS.max_units),
    amount=st.integers(0, int(BOUNDS.max_amount * 100)).map(lambda cents: cents / 100),
    event_time=st.datetimes(min_value=BOUNDS.earliest.replace(tzinfo=None),
                            max_value=(NOW + BOUNDS.max_future).replace(tzinfo=None), timezones=st.just(UTC)),
)
exposures = st.builds(
    ExposureEvent,
    request_id=identifiers, customer_id=st.sampled_from(["c1", "c2"]),
    experiment=st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z"), group=st.sampled_from(["control", "treatment"]),
    strategy=st.just("model"), model_version=st.just("v1"), product_ids=st.lists(identifiers, max_size=20),
    event_time=st.datetimes(min_value=BOUNDS.earliest.replace(tzinfo=None),
                            max_value=(NOW + BOUNDS.max_future).replace(tzinfo=None), timezones=st.just(UTC)),
)


def _accepted(event: PurchaseEvent | ExposureEvent) -> bool:
    parsed = parse_event(type(event), event.to_bytes(), 4096, BOUNDS, NOW)
    return not isinstance(parsed, Rejected)


async def _apply_all(url: str, shown: list[ExposureEvent], batches: list[list[PurchaseEvent]]) -> list[int]:
    client = aioredis.from_url(url)
    keys = KeyLayout(f"p{uuid.uuid4().hex[:12]}")
    try:
        await ExposureWriter(client, keys).apply(shown)
        applied = [(await StateWriter(client, keys).apply(batch)).applied for batch in batches]
        async for key in client.scan_iter(match=f"{keys.prefix}:*"):
            await client.delete(key)
        return applied
    finally:
        await client.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(purchases, min_size=1, max_size=30), min_size=1, max_size=4),
       shown=st.lists(exposures, max_size=10))
def test_every_event_the_contract_accepts_applies_without_a_redis_error(
    stack: Settings, batches: list[list[PurchaseEvent]], shown: list[ExposureEvent]
) -> None:
    batches = [[e for e in batch if _accepted(e)] for batch in batches]
    shown = [e for e in shown if _accepted(e)]
    applied = asyncio.run(_apply_all(stack.redis_url, shown, batches))  # raises on any Redis error
    assert len(applied) == len(batches)


def _line(i: int, customer: str, cents: int, at: datetime) -> PurchaseEvent:
    return PurchaseEvent(event_id=f"{customer}-e{i}", order_id=f"{customer}-o{i}", customer_id=customer,
                         product_id=f"p{i % 3}", category="k", units=1, amount=cents / 100, event_time=at)


def test_a_customer_whose_totals_would_pass_the_limit_is_refused_and_nothing_of_theirs_is_written(
    isolated: Isolated,
) -> None:
    keys, client = isolated.keys, isolated.redis
    at = datetime(2024, 1, 1, tzinfo=UTC)
    client.hset(keys.customer_rfm("rich"), mapping={"first_ts": 1, "last_ts": int(at.timestamp()), "orders": 1,
                                                    "lines": 1, "units": 1, "monetary_cents": COUNTER_LIMIT - 500})
    before = client.hgetall(keys.customer_rfm("rich"))
    events = [_line(1, "rich", 400, at), _line(2, "rich", 200, at), _line(3, "plain", 700, at)]

    result = asyncio.run(_write(isolated.settings.redis_url, keys, events))

    assert sorted(result.refused) == ["rich-e1", "rich-e2"] and result.applied == 1
    assert client.hgetall(keys.customer_rfm("rich")) == before
    assert not client.exists(keys.customer_product_units("rich"), keys.customer_applied("rich"))
    assert client.hget(keys.customer_rfm("plain"), "monetary_cents") == "700"
    popularity = dict(cast(list[tuple[str, float]], client.zrange(keys.product_popularity(), 0, -1, withscores=True)))
    assert popularity == {"p0": 1.0}  # the plain customer's line; none of the refused ones


async def _write(url: str, keys: KeyLayout, events: list[PurchaseEvent]) -> BatchResult:
    client = aioredis.from_url(url)
    try:
        return await StateWriter(client, keys).apply(events)
    finally:
        await client.aclose()


def test_a_batch_redis_refuses_is_split_and_only_the_refused_customer_is_left_out(isolated: Isolated) -> None:
    """A key of the wrong type under the prefix (written by something else) makes Redis refuse that customer's
    writes: halving the batch finds exactly their events; every other customer's state is exact."""
    keys, client = isolated.keys, isolated.redis
    at = datetime(2024, 1, 1, tzinfo=UTC)
    client.set(keys.customer_product_units("broken"), "not a hash")
    events = [_line(i, customer, 100 + i, at + timedelta(minutes=i))
              for i in range(12) for customer in ("a", "broken", "b")]

    isolated_batch = asyncio.run(_isolate(isolated.settings.redis_url, keys, events))

    assert sorted(e.event_id for e, _ in isolated_batch.refused) == sorted(
        e.event_id for e in events if e.customer_id == "broken")
    assert all("WRONGTYPE" in reason for _, reason in isolated_batch.refused)
    for customer in ("a", "b"):
        mine = [e for e in events if e.customer_id == customer]
        rfm = client.hgetall(keys.customer_rfm(customer))
        assert int(rfm["lines"]) == len(mine) and int(rfm["monetary_cents"]) == sum(to_cents(e.amount) for e in mine)
    assert client.type(keys.customer_product_units("broken")) == "string"


async def _isolate(url: str, keys: KeyLayout, events: list[PurchaseEvent]):  # type: ignore[no-untyped-def]
    client = aioredis.from_url(url)
    try:
        return await apply_isolating(StateWriter(client, keys).apply, events)
    finally:
        await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not redis_is_healthy("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def test_a_full_redis_stalls_the_write_until_there_is_room_then_applies_it_once(own_redis: str) -> None:
    """maxmemory with noeviction refuses writes (OOM): a write is waited for, never dead-lettered or skipped."""
    admin = redis.Redis.from_url(own_redis, decode_responses=True)
    keys = KeyLayout("oom")
    pipe = admin.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"ballast:{i}", "x" * 1000)
    pipe.execute()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", used - 1_000_000)  # half the ballast over the limit
    at = datetime(2024, 1, 1, tzinfo=UTC)
    events = [_line(i, "c", 100, at) for i in range(5)]

    async def scenario() -> tuple[bool, BatchResult]:
        client = aioredis.from_url(own_redis)
        try:
            write = asyncio.create_task(retry_transient(lambda: StateWriter(client, keys).apply(events)))
            await asyncio.sleep(1.0)
            stalled = not write.done()
            admin.delete(*(f"ballast:{i}" for i in range(2000)))
            return stalled, await asyncio.wait_for(write, 20)
        finally:
            await client.aclose()

    stalled, result = asyncio.run(scenario())
    assert stalled and result.applied == 5
    assert admin.hmget(keys.customer_rfm("c"), "lines", "monetary_cents") == ["5", "500"]
    admin.close()

"""The stream's writers on a local three-node Redis Cluster: the same history, with redeliveries, leaves exactly
the state it leaves on single Redis, key for key, and that state is spread over the nodes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.redis_clients import AsyncRedis, SyncRedis, async_client, sync_client
from common.settings import Settings
from stack import LocalStack
from stack.cluster import slot_ranges
from stack.scratch import start_worker, stop_worker
from stream_app.exposures import ExposureWriter
from stream_app.master_data import MasterDataWriter
from stream_app.state import StateWriter, Windows
from tests.integration.abkit import ab_history
from tests.integration.streamkit import differences, history, send, wait_for

pytestmark = pytest.mark.integration

WINDOWS = Windows(attribution_s=7 * 86400, pre_s=10 * 86400)
Steps = list[tuple[str, list[Any]]]


def _steps() -> Steps:
    exposures, purchases = ab_history(seed=5)
    half_x, third = len(exposures) // 2, len(purchases) // 3
    return [("exposures", exposures[:half_x]), ("purchases", purchases[:third]), ("exposures", exposures[half_x:]),
            ("purchases", purchases[third:2 * third]), ("purchases", purchases[2 * third:]),
            ("purchases", purchases[third:2 * third]), ("exposures", exposures[:half_x])]  # the last two redelivered


async def _apply(client: AsyncRedis, keys: KeyLayout, steps: Steps) -> None:
    purchases, exposures = StateWriter(client, keys, WINDOWS), ExposureWriter(client, keys, WINDOWS)
    try:
        for kind, batch in steps:
            if kind == "exposures":
                await exposures.apply(batch)
            else:
                await purchases.apply(batch)
        await MasterDataWriter(client, keys).apply_profiles([("c1", None), ("c2", None)])
    finally:
        await client.aclose()


def _dump(client: SyncRedis, prefix: str) -> dict[str, Any]:
    """Every key of the prefix (named without it) and its value; the shared step's records by member only (their
    scores are wall time), the latest purchases as a multiset (ties in event time may come in either order)."""
    out: dict[str, Any] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        name, kind = key[len(prefix):], client.type(key)
        if kind == "hash":
            out[name] = client.hgetall(key)
        elif kind == "zset" and name.startswith(":stream:shared_applied"):
            out[name] = sorted(client.zrange(key, 0, -1))  # ordered by score, wall time: compared as members
        elif kind == "zset":
            out[name] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[name] = client.smembers(key)
        elif kind == "list":
            out[name] = Counter(client.lrange(key, 0, -1))
        else:
            out[name] = client.get(key)
    return out


def test_the_cluster_holds_exactly_what_single_redis_holds(stack: Settings, cluster_stack: Settings) -> None:
    steps = _steps()
    single_prefix, cluster_prefix = f"s{uuid.uuid4().hex[:8]}", f"c{uuid.uuid4().hex[:8]}"
    asyncio.run(_apply(aioredis.from_url(stack.redis_url), KeyLayout(single_prefix), steps))
    asyncio.run(_apply(async_client(cluster_stack), KeyLayout(cluster_prefix), steps))
    single = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    cluster = redis.RedisCluster.from_url(cluster_stack.redis_url, decode_responses=True)
    try:
        on_single, on_cluster = _dump(single, single_prefix), _dump(cluster, cluster_prefix)
        assert len(on_single) > 200
        assert on_cluster == on_single
        slots = [key_slot(f"{cluster_prefix}{name}".encode()) for name in on_cluster]
        per_node = Counter(next(i for i, (first, last) in enumerate(slot_ranges(3)) if first <= slot <= last)
                           for slot in slots)
        assert len(per_node) == 3 and min(per_node.values()) > len(on_cluster) // 6
    finally:
        for client, prefix in ((single, single_prefix), (cluster, cluster_prefix)):
            for key in list(client.scan_iter(match=f"{prefix}:*", count=1000)):
                client.delete(key)
            client.close()


def test_purchases_attribute_and_count_on_the_cluster(cluster_stack: Settings) -> None:
    """A purchase of a shown product converts on the cluster (its customer's slot and the shared slot are on
    different nodes for most customers)."""
    shown = ab_history(seed=5)[0][0]
    bought = PurchaseEvent(event_id="conv-1", order_id="o-conv", customer_id=shown.customer_id,
                           product_id=shown.product_ids[0], category="k", units=1, amount=4.0,
                           event_time=shown.event_time + timedelta(hours=1))
    prefix = f"c{uuid.uuid4().hex[:8]}"
    keys = KeyLayout(prefix)
    steps: Steps = [("exposures", [shown]), ("purchases", [bought]), ("purchases", [bought])]
    asyncio.run(_apply(async_client(cluster_stack), keys, steps))
    cluster = sync_client(cluster_stack, decode_responses=True)
    try:
        counters = cluster.hgetall(keys.ab_group_counters(shown.experiment, shown.group))
        assert (counters["converted_items"], counters["revenue_cents"], counters["converted_customers"]) == (
            "1", "400", "1")
        assert cluster.hget(keys.stream_stats(), "processed") == "1"
        assert cluster.hget(keys.stream_stats(), "duplicates") == "1"
        assert cluster.zrange(keys.ab_experiments(), 0, -1) == [shown.experiment]
    finally:
        for key in list(cluster.scan_iter(match=f"{prefix}:*", count=1000)):
            cluster.delete(key)
        cluster.close()


def test_the_worker_on_the_cluster_waits_out_a_dead_node_and_loses_nothing(
    on_cluster: tuple[Settings, redis.RedisCluster], tmp_path: Path,
) -> None:
    """The real worker streams into the cluster; a node dies mid-stream: the worker stalls (nothing acked, Redis
    errors retried with back-off) until the node is back, then the state equals the ground truth, each event
    applied once."""
    settings, client = on_cluster
    keys, lines = KeyLayout(settings.key_prefix), history(tmp_path / "history", customers=300, lines=6_000)
    half = len(lines) // 2
    local = LocalStack(settings)
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        send(settings, lines.iloc[:half])
        wait_for(client, keys, processed=half)
        assert local.down(only=["redis-2"]) == ["redis-2"]
        send(settings, lines.iloc[half:])
        time.sleep(3)
        assert worker.poll() is None  # waiting, not dead
        local.up()  # the dead node only, with its append-only file
        final = wait_for(client, keys, processed=len(lines), timeout_s=180)
    finally:
        stop_worker(worker)
    assert final["processed"] == len(lines)
    assert differences(client, keys, lines) == []

"""The API's hot-path read on a Redis Cluster, against fake nodes: commands grouped by the node serving each
key's slot, replies back in the caller's order, MOVED followed at once, a dead node a ConnectionError."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from api.adapters.redis_cluster_multiplex import ClusterMultiplexedRedis
from common.resp import Command

HALF = 8192  # node A serves slots 0..8191, node B the rest


class FakeNode:
    """A node holding `data` (key -> value); answers GET, and CLUSTER SLOTS from the shared layout."""

    def __init__(self, cluster: FakeCluster, port: int) -> None:
        self.cluster, self.port = cluster, port
        self.batches: list[list[Command]] = []

    async def execute(self, *commands: Command) -> list[Any]:
        if self.port in self.cluster.dead:
            raise RedisConnectionError(f"Error 111 connecting to 127.0.0.1:{self.port}")
        self.batches.append(list(commands))
        if commands[0][0] == "CLUSTER":
            return [[[first, last, [b"127.0.0.1", port]] for first, last, port in self.cluster.layout]]
        replies = []
        for _, key in commands:
            name = str(key)
            owner = self.cluster.owner(key_slot(name.encode()))
            if owner != self.port:
                raise ResponseError(f"MOVED {key_slot(name.encode())} 127.0.0.1:{owner}")
            replies.append(f"{name}@{self.port}".encode())
        return replies

    async def aclose(self) -> None:
        pass


class FakeCluster:
    def __init__(self) -> None:
        self.layout = [(0, HALF - 1, 7001), (HALF, 16383, 7002)]
        self.nodes: dict[int, FakeNode] = {}
        self.dead: set[int] = set()

    def owner(self, slot: int) -> int:
        return next(port for first, last, port in self.layout if first <= slot <= last)

    def connect(self, url: str, _timeout_s: float) -> FakeNode:
        port = int(url.rsplit(":", 1)[1])
        return self.nodes.setdefault(port, FakeNode(self, port))


def keys_on_each_node() -> tuple[str, str]:
    names = (f"k{i}" for i in range(1000))
    on_a = next(k for k in names if key_slot(k.encode()) < HALF)
    on_b = next(k for k in names if key_slot(k.encode()) >= HALF)
    return on_a, on_b


def test_a_request_is_one_batch_per_node_and_its_replies_come_back_in_order() -> None:
    cluster = FakeCluster()
    client = ClusterMultiplexedRedis("redis://127.0.0.1:7001", 1.0, connect=cluster.connect)
    on_a, on_b = keys_on_each_node()
    replies = asyncio.run(client.execute(("GET", on_b), ("GET", on_a), ("GET", on_b)))
    assert replies == [f"{on_b}@7002".encode(), f"{on_a}@7001".encode(), f"{on_b}@7002".encode()]
    assert cluster.nodes[7002].batches == [[("GET", on_b), ("GET", on_b)]]
    assert cluster.nodes[7001].batches[-1] == [("GET", on_a)]


def test_a_moved_slot_is_followed_at_once() -> None:
    cluster = FakeCluster()
    client = ClusterMultiplexedRedis("redis://127.0.0.1:7001", 1.0, connect=cluster.connect)
    on_a, _ = keys_on_each_node()

    async def run() -> list[Any]:
        await client.execute(("GET", on_a))
        slot = key_slot(on_a.encode())
        cluster.layout = [(0, slot - 1, 7001), (slot, slot, 7002), (slot + 1, HALF - 1, 7001), (HALF, 16383, 7002)]
        return await client.execute(("GET", on_a))

    assert asyncio.run(run()) == [f"{on_a}@7002".encode()]


def test_a_dead_node_fails_only_the_requests_that_need_it() -> None:
    cluster = FakeCluster()
    client = ClusterMultiplexedRedis("redis://127.0.0.1:7001", 1.0, connect=cluster.connect)
    on_a, on_b = keys_on_each_node()

    async def run() -> list[Any]:
        await client.execute(("GET", on_a), ("GET", on_b))
        cluster.dead.add(7002)
        with pytest.raises(RedisConnectionError):
            await client.execute(("GET", on_b))
        return await client.execute(("GET", on_a))

    assert asyncio.run(run()) == [f"{on_a}@7001".encode()]

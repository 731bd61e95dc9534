"""The hot path's reads on a Redis Cluster: one shared connection per node (`MultiplexedRedis`), and a caller's
commands grouped by the node that serves each key's slot and sent to those nodes at once, so a request costs one
round trip per node it touches.

The slot map is read with CLUSTER SLOTS at the first call. A MOVED answer names the slot's new node, which the map
takes at once; a node that cannot be reached or does not answer in time, a slot no node serves and an ASK (a slot
being moved) make it read the map again (one read at a time, at most once per REFRESH_S); the call is then tried
once more. What still fails raises redis-py's errors, which the app answers with a 503 for that request: a
customer whose keys live on a dead node gets a 503 with a message, and the others are served as long as the
nodes their keys live on are up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from redis.crc import key_slot
from redis.exceptions import ClusterDownError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.adapters.redis_multiplex import MultiplexedRedis
from common.resp import Command

SLOTS = 16384
REFRESH_S = 1.0
Address = tuple[str, int]


class Node(Protocol):
    async def execute(self, *commands: Command) -> list[Any]: ...

    async def aclose(self) -> None: ...


class ClusterMultiplexedRedis:
    def __init__(self, url: str, timeout_s: float,
                 connect: Callable[[str, float], Node] = MultiplexedRedis) -> None:
        """`url`: any node of the cluster; its user and password are used for every node. `connect` makes a
        node's connection from its URL (a test gives fakes)."""
        self._url = urlsplit(url)
        self.timeout_s = timeout_s
        self._connect = connect
        self._nodes: dict[Address, Node] = {}
        self._owners: list[Address | None] = []  # per slot
        self._read_at = 0.0
        self._reading: asyncio.Future[None] | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """The replies, in order, as `MultiplexedRedis.execute` gives them; every command names one key, second."""
        if not self._owners:
            await self._read_slots()
        try:
            return await self._execute(commands)
        except (ResponseError, RedisConnectionError, RedisTimeoutError) as exc:
            message = str(exc)
            if message.startswith("MOVED"):
                _, slot, address = message.split()
                host, _, port = address.rpartition(":")
                self._owners[int(slot)] = (host, int(port))
            elif isinstance(exc, ResponseError) and not isinstance(exc, ClusterDownError) and (
                    not message.startswith("ASK")):
                raise
            else:
                await self._read_slots()
            return await self._execute(commands)

    async def aclose(self) -> None:
        for node in self._nodes.values():
            await node.aclose()
        self._nodes.clear()

    async def _execute(self, commands: Sequence[Command]) -> list[Any]:
        by_node: dict[Address, list[int]] = {}
        for i, command in enumerate(commands):
            key = command[1]
            owner = self._owners[key_slot(key if isinstance(key, bytes) else str(key).encode())]
            if owner is None:
                raise ClusterDownError(f"no Redis Cluster node serves the slot of {key!r}")
            by_node.setdefault(owner, []).append(i)
        answers = await asyncio.gather(*(self._node(address).execute(*(commands[i] for i in positions))
                                         for address, positions in by_node.items()), return_exceptions=True)
        replies: list[Any] = [None] * len(commands)
        for positions, answer in zip(by_node.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer
            for i, reply in zip(positions, answer, strict=True):
                replies[i] = reply
        return replies

    async def _read_slots(self) -> None:
        """One read at a time, which every caller meanwhile waits for; at most once per REFRESH_S, so a dead node
        is not asked about on every request."""
        if self._reading is None:
            if self._owners and time.monotonic() - self._read_at < REFRESH_S:
                return
            self._read_at = time.monotonic()
            self._reading = asyncio.ensure_future(self._read_map())
            self._reading.add_done_callback(self._read_done)
        await asyncio.shield(self._reading)

    def _read_done(self, reading: asyncio.Future[None]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: the callers waiting on it raise it

    async def _read_map(self) -> None:
        """The slot map from the first node that answers (the seed, then the nodes known)."""
        seed = (self._url.hostname or "localhost", self._url.port or 6379)
        error: Exception = ClusterDownError("no Redis Cluster node answered CLUSTER SLOTS")
        for address in [seed, *(a for a in self._nodes if a != seed)]:
            try:
                ranges, = await self._node(address).execute(("CLUSTER", "SLOTS"))
            except (RedisConnectionError, RedisTimeoutError) as exc:
                error = exc
                continue
            owners: list[Address | None] = [None] * SLOTS
            for first, last, master, *_ in ranges:
                host = master[0].decode() or address[0]
                for slot in range(int(first), int(last) + 1):
                    owners[slot] = (host, int(master[1]))
            self._owners = owners
            return
        raise error

    def _node(self, address: Address) -> Node:
        if address not in self._nodes:
            userinfo = self._url.netloc.rpartition("@")[0]
            netloc = f"{userinfo}@{address[0]}:{address[1]}" if userinfo else f"{address[0]}:{address[1]}"
            url = urlunsplit((self._url.scheme, netloc, "", "", ""))
            self._nodes[address] = self._connect(url, self.timeout_s)
        return self._nodes[address]

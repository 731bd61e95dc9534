"""The multiplexed connection's own logic on a fake transport: what it writes, and that replies go to the callers
in the order they asked, however the bytes are cut; failures reach every caller waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.adapters.redis_multiplex import MultiplexedRedis, SharedConnection, setup_commands
from common.resp import pack


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


def _connected() -> tuple[SharedConnection, FakeTransport]:
    connection = SharedConnection(asyncio.get_running_loop())
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport


def test_commands_are_packed_as_resp_arrays() -> None:
    assert pack([("GET", "k"), ("ZREVRANGE", b"r", 0, -1, "WITHSCORES")]) == (
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        b"*5\r\n$9\r\nZREVRANGE\r\n$1\r\nr\r\n$1\r\n0\r\n$2\r\n-1\r\n$10\r\nWITHSCORES\r\n")
    assert pack([("SET", "naïve", 1.5)]) == b"*3\r\n$3\r\nSET\r\n$6\r\nna\xc3\xafve\r\n$3\r\n1.5\r\n"


def test_callers_of_one_turn_share_a_write_and_get_their_own_replies_in_order() -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[bytes]]:
        connection, transport = _connected()
        deadline = asyncio.get_running_loop().time() + 5
        first = connection.send(pack([("GET", "a"), ("GET", "b")]), 2, deadline)
        second = connection.send(pack([("LRANGE", "c", 0, -1)]), 1, deadline)
        await asyncio.sleep(0)  # the write happens once the turn is over
        replies = b"$1\r\nA\r\n$-1\r\n*2\r\n$1\r\nx\r\n:7\r\n"
        for i in range(0, len(replies), 3):  # replies cut anywhere
            connection.data_received(replies[i:i + 3])
        return await first, await second, transport.written

    first, second, written = asyncio.run(scenario())
    assert first == [b"A", None]
    assert second == [[b"x", 7]]
    assert written == [pack([("GET", "a"), ("GET", "b")]) + pack([("LRANGE", "c", 0, -1)])]


def test_a_refused_command_is_its_callers_reply_only() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        connection, _ = _connected()
        deadline = asyncio.get_running_loop().time() + 5
        first = connection.send(pack([("HGET", "s", "f")]), 1, deadline)
        second = connection.send(pack([("GET", "k")]), 1, deadline)
        connection.data_received(b"-WRONGTYPE Operation against a key\r\n$2\r\nok\r\n")
        return await first, await second

    first, second = asyncio.run(scenario())
    assert isinstance(first[0], ResponseError) and "WRONGTYPE" in str(first[0])
    assert second == [b"ok"]


def test_a_lost_connection_fails_every_waiting_caller() -> None:
    async def scenario() -> list[BaseException | list[Any]]:
        connection, _ = _connected()
        deadline = asyncio.get_running_loop().time() + 5
        waiting = [connection.send(pack([("GET", f"k{i}")]), 1, deadline) for i in range(3)]
        connection.data_received(b"$1\r\nv\r\n")
        connection.connection_lost(ConnectionResetError("reset by peer"))
        return await asyncio.gather(*waiting, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == [b"v"]
    assert all(isinstance(r, RedisConnectionError) and "reset by peer" in str(r) for r in results[1:])


def test_a_late_reply_times_out_everyone_behind_it_and_drops_the_connection() -> None:
    async def scenario() -> tuple[list[BaseException | list[Any]], FakeTransport, bool]:
        connection, transport = _connected()
        now = asyncio.get_running_loop().time()
        waiting = [connection.send(pack([("GET", "slow")]), 1, now + 0.05),
                   connection.send(pack([("GET", "next")]), 1, now + 5)]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        return results, transport, connection.closed

    results, transport, closed = asyncio.run(scenario())
    assert all(isinstance(r, RedisTimeoutError) for r in results)
    assert transport.aborted and closed


def test_a_reply_nobody_asked_for_drops_the_connection() -> None:
    async def scenario() -> tuple[FakeTransport, bool]:
        connection, transport = _connected()
        connection.data_received(b"+OK\r\n")
        return transport, connection.closed

    transport, closed = asyncio.run(scenario())
    assert transport.aborted and closed


@pytest.mark.parametrize("url, setup", [
    ("redis://127.0.0.1:6379/0", []),
    ("redis://:s3cret@redis:6379/2", [("AUTH", "s3cret"), ("SELECT", 2)]),
    ("redis://app:s3cret@redis/0", [("AUTH", "app", "s3cret")]),
])
def test_connection_setup_follows_the_url(url: str, setup: list[tuple[object, ...]]) -> None:
    assert setup_commands(MultiplexedRedis(url, 1.0).options) == setup

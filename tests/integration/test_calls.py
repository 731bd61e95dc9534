"""`stream_app.calls` on the real redis-server: one round trip for many commands, read under one timeout."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.redis_clients import async_client
from stream_app.calls import send_each
from tests.integration.conftest import Isolated

# A script that holds Redis for `ARGV[1]` milliseconds of its clock before answering.
BUSY = ("local t = redis.call('TIME') local until_us = t[1] * 1e6 + t[2] + ARGV[1] * 1000 "
        "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= until_us return 1")


def test_replies_come_back_in_order_and_an_error_reply_is_raised_once_all_are_read(isolated: Isolated) -> None:
    key = isolated.keys.stream_stats()

    async def run() -> tuple[list[object], str, list[object]]:
        client = async_client(isolated.settings, socket_timeout=5.0, max_connections=1)
        try:
            commands = [("HINCRBY", key, f"f{i}", i) for i in range(300)]
            replies = await send_each(client, commands)
            with pytest.raises(ResponseError) as refused:
                await send_each(client, [("HINCRBY", key, "f1", 1), ("HGET", key), ("HINCRBY", key, "f2", 1)])
            return replies, str(refused.value), await send_each(client, [("HMGET", key, "f1", "f2")])
        finally:
            await client.aclose()

    replies, refused, after = asyncio.run(run())
    assert replies == list(range(300))
    assert "wrong number of arguments" in refused
    # the commands around the refused one ran, and the one connection stayed in step for the next round trip
    assert after == [[b"2", b"3"]]


def test_replies_later_than_the_socket_timeout_fail_the_round_trip_and_the_next_one_connects_again(
        isolated: Isolated) -> None:
    async def run() -> object:
        client = async_client(isolated.settings, socket_timeout=0.3)
        try:
            # Redis answers a round trip's commands together, once it has run them all: 0.6 s here
            with pytest.raises(RedisTimeoutError):
                await send_each(client, [("EVAL", BUSY, 0, 150) for _ in range(4)])
            await asyncio.sleep(0.5)  # the scripts finish
            return await send_each(client, [("EVAL", BUSY, 0, 1), ("PING",)])
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [1, b"PONG"]

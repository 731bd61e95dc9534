"""The hot path's shared Redis connection against a real redis-server: many concurrent callers on one connection,
each with its own replies; password and database from the URL; Redis stopped, paused and back."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.adapters.redis_multiplex import MultiplexedRedis
from stack.local import redis_binary
from stack.scratch import free_port
from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration
TEST_PASSWORD = "pw-for-tests"


def test_concurrent_callers_share_one_connection_and_get_their_own_replies(isolated: Isolated) -> None:
    prefix = isolated.settings.key_prefix
    isolated.redis.mset({f"{prefix}:k{i}": f"v{i}" for i in range(300)})
    isolated.redis.hset(f"{prefix}:h", "f", "x")

    async def scenario() -> tuple[list[list[object]], int, list[object]]:
        client = MultiplexedRedis(isolated.settings.redis_url, 2.0)
        before = int(isolated.redis.info("clients")["connected_clients"])
        replies = await asyncio.gather(*(client.execute(("GET", f"{prefix}:k{i}"), ("STRLEN", f"{prefix}:k{i}"))
                                         for i in range(300)))
        opened = int(isolated.redis.info("clients")["connected_clients"]) - before
        refused = await asyncio.gather(client.execute(("GET", f"{prefix}:h")), client.execute(("GET", f"{prefix}:k1")),
                                       return_exceptions=True)
        await client.aclose()
        return replies, opened, list(refused)

    replies, opened, refused = asyncio.run(scenario())
    assert replies == [[f"v{i}".encode(), len(f"v{i}")] for i in range(300)]
    assert opened == 1
    assert isinstance(refused[0], ResponseError) and "WRONGTYPE" in str(refused[0])
    assert refused[1] == [b"v1"]


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder), "--requirepass", TEST_PASSWORD],
                              stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=TEST_PASSWORD, socket_timeout=1)
    for _ in range(100):
        try:
            if client.ping():
                client.close()
                return server
        except redis.RedisError:
            time.sleep(0.05)
    server.terminate()
    raise AssertionError("redis-server did not start")


@pytest.fixture
def port_and_folder(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    yield free_port(), tmp_path


def test_down_paused_and_back(port_and_folder: tuple[int, Path]) -> None:
    port, folder = port_and_folder
    admin = redis.Redis(port=port, password=TEST_PASSWORD, db=3)

    async def scenario() -> None:
        client = MultiplexedRedis(f"redis://:{TEST_PASSWORD}@127.0.0.1:{port}/3", 0.3)
        with pytest.raises(RedisConnectionError):
            await client.execute(("PING",))
        server = _start_redis(port, folder)
        try:
            admin.set("k", "in db 3")
            assert await client.execute(("GET", "k")) == [b"in db 3"]  # authenticated, database 3
            admin.client_pause(800)
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await client.execute(("GET", "k"))
            assert time.monotonic() - started < 0.7
            await asyncio.sleep(0.8)
            assert await client.execute(("GET", "k")) == [b"in db 3"]  # connected again by itself
            server.terminate()
            server.wait()
            with pytest.raises(RedisConnectionError):
                await client.execute(("GET", "k"))
            server = _start_redis(port, folder)
            admin.set("k", "back")
            assert await client.execute(("GET", "k")) == [b"back"]
        finally:
            server.terminate()
            server.wait()
            await client.aclose()

    asyncio.run(scenario())
    admin.close()

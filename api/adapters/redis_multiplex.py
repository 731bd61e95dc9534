"""One Redis connection shared by every request on the hot path: each caller's commands are written as one
pipeline and the replies, which Redis sends back in order, are handed to the callers in the order they wrote.

Why not redis-py's pool here: with 32 concurrent tasks, `read_context`'s three commands cost 95 us of CPU per round
trip through redis-py's asyncio pipeline and blocking pool, and 10 us packed by hand and parsed by hiredis on one
shared connection (benchmarks/hot_path_parts.py). One connection also means no pool to size and no "Too many
connections" at any concurrency: Redis executes commands one at a time anyway. redis-py stays the client for
everything off the hot path.

Errors are redis-py's own exception classes, so the app's `RedisError` handler answers them with 503: a connection
that cannot be made or is lost fails the callers waiting on it with `ConnectionError`; a reply later than
`timeout_s` closes the connection and fails every caller waiting on it with `TimeoutError` (their replies are
queued behind the late one). The next call connects again."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.resp import Command, pack


class _Waiter:
    __slots__ = ("deadline", "expected", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int, deadline: float) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.deadline = deadline


class SharedConnection(asyncio.Protocol):
    """One connection's protocol: replies are parsed as they arrive and given to the oldest waiter."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.waiters: deque[_Waiter] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._unsent: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def send(self, packed: bytes, expected: int, deadline: float) -> asyncio.Future[list[Any]]:
        assert self.transport is not None
        waiter = _Waiter(self.loop.create_future(), expected, deadline)
        self.waiters.append(waiter)
        # Written once per event-loop turn for every caller of that turn: a socket write costs more than packing
        # a request's commands, and under load many requests reach this point in the same turn.
        if not self._unsent:
            self.loop.call_soon(self._write_unsent)
        self._unsent.append(packed)
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(deadline, self._check_deadline)
        return waiter.future

    def _write_unsent(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(self._unsent))
        self._unsent.clear()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not self.waiters:  # a reply nobody asked for: the stream is out of step
                self.fail(RedisConnectionError("unexpected reply from Redis"))
                return
            waiter = self.waiters[0]
            waiter.replies.append(reply)
            if len(waiter.replies) == waiter.expected:
                self.waiters.popleft()
                if not waiter.future.done():  # the caller may have been cancelled
                    waiter.future.set_result(waiter.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"Redis connection lost: {exc}" if exc else "Redis closed the connection"
        self._fail_waiters(RedisConnectionError(reason))

    def fail(self, exc: RedisError) -> None:
        """Closes the connection and fails everyone waiting on it."""
        self._fail_waiters(exc)
        if self.transport is not None:
            self.transport.abort()

    def _fail_waiters(self, exc: RedisError) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiters:
            future = self.waiters.popleft().future
            if not future.done():
                future.set_exception(exc)

    def _check_deadline(self) -> None:
        """One timer for the oldest waiter rather than one per call: every later reply queues behind it."""
        self._watchdog = None
        if not self.waiters:
            return
        oldest = self.waiters[0].deadline
        if oldest <= self.loop.time():
            self.fail(RedisTimeoutError("Timeout reading from Redis"))
        else:
            self._watchdog = self.loop.call_at(oldest, self._check_deadline)


class MultiplexedRedis:
    def __init__(self, url: str, timeout_s: float) -> None:
        """`url` as redis-py reads it (redis://, rediss://, unix://; user, password and db from it)."""
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.timeout_s = timeout_s
        self._connection: SharedConnection | None = None
        self._connecting: asyncio.Future[SharedConnection] | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """The replies, in order: bytes, int, None or lists of them, as Redis sent them. A command Redis
        refused raises its `ResponseError` (the other replies are dropped)."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connected()
        replies = await connection.send(pack(commands), len(commands), connection.loop.time() + self.timeout_s)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    async def aclose(self) -> None:
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = None

    async def _connected(self) -> SharedConnection:
        """Callers arriving while a connection is being made wait for that one rather than making their own."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        return await asyncio.shield(self._connecting)

    def _connect_done(self, connecting: asyncio.Future[SharedConnection]) -> None:
        self._connecting = None
        if not connecting.cancelled() and connecting.exception() is None:
            self._connection = connecting.result()

    async def _connect(self) -> SharedConnection:
        loop = asyncio.get_running_loop()
        options = self.options
        connection: SharedConnection | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if "path" in options:
                    _, connection = await loop.create_unix_connection(lambda: SharedConnection(loop), options["path"])
                else:
                    tls = ssl.create_default_context() if "connection_class" in options else None
                    _, connection = await loop.create_connection(
                        lambda: SharedConnection(loop), options.get("host", "localhost"), options.get("port", 6379),
                        ssl=tls)
                setup = setup_commands(options)
                if setup:
                    replies = await connection.send(pack(setup), len(setup), loop.time() + self.timeout_s)
                    refused = next((r for r in replies if isinstance(r, ResponseError)), None)
                    if refused is not None:
                        raise refused
        except BaseException as exc:
            if connection is not None:
                connection.fail(RedisConnectionError("Redis connection setup failed"))
            if isinstance(exc, TimeoutError):  # the builtin one, from asyncio.timeout
                raise RedisTimeoutError(f"Timeout connecting to Redis after {self.timeout_s}s") from exc
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error connecting to Redis: {exc}") from exc
            raise
        return connection


def setup_commands(options: dict[str, Any]) -> list[Command]:
    """What a new connection sends first, from redis-py's reading of the URL: AUTH, SELECT."""
    setup: list[Command] = []
    if options.get("password") is not None:
        username = options.get("username")
        setup.append(("AUTH", username, options["password"]) if username else ("AUTH", options["password"]))
    if options.get("db"):
        setup.append(("SELECT", options["db"]))
    return setup

"""How the worker meets Redis's failures: a Redis that is away, busy or full is waited for (the stream stalls,
nothing is acknowledged); a batch that Redis refuses is split until the events it refuses stand alone, so they
can be dead-lettered with Redis's reason while the rest is applied once."""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
MAX_BACKOFF_S = 5.0
# Error codes of a Redis that will answer differently later: full, read-only, loading, a script still running
# elsewhere, a snapshot that could not be written, replicas or cluster nodes missing.
TRANSIENT_CODES = frozenset({"OOM", "READONLY", "LOADING", "BUSY", "MISCONF", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN",
                             "CLUSTERDOWN"})
TRANSIENT = (ConnectionError, TimeoutError, OSError, OutOfMemoryError, ReadOnlyError, TryAgainError,
             ClusterDownError, MasterDownError)
# A write refused inside a script comes back wrapped: "Error running script (...): @user_script:175: ... -OOM ...".
# (Redis refuses a script's write for lack of memory only if it is the script's first, so nothing was applied.)
REDIS_CONNECTION_MODULE = str(Path("redis", "asyncio", "connection.py"))
SCRIPT_ERROR_CODE = re.compile(r"^Error running script.*?-([A-Z]+) ", re.DOTALL)


def is_transient(exc: BaseException) -> bool:
    """Redis is away, loading, full (maxmemory with noeviction), read-only or busy: waiting helps. A wrong
    password or a refused command does not."""
    if isinstance(exc, AuthenticationError | NoPermissionError):
        return False
    if isinstance(exc, TRANSIENT) or _lost_connection_in_redis_py(exc):
        return True
    if not isinstance(exc, ResponseError):
        return False
    message = str(exc)
    wrapped = SCRIPT_ERROR_CODE.match(message)
    return (wrapped.group(1) if wrapped else message.split(" ", 1)[0]) in TRANSIENT_CODES


def _lost_connection_in_redis_py(exc: BaseException) -> bool:
    """redis-py's asyncio connection, written to after the peer closed it, leaks the transport's AttributeError or
    TypeError instead of a ConnectionError (redis-py issue 4287; seen here when a cluster node came back while the
    worker's calls were reconnecting)."""
    if not isinstance(exc, AttributeError | TypeError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return any(frame.filename.endswith(REDIS_CONNECTION_MODULE) for frame in frames)


async def retry_transient(write: Callable[[], Awaitable[T]]) -> T:
    """Until Redis takes it: a transient failure is retried with back-off (0.1 s doubling to 5 s), so the stream
    stalls instead of acknowledging events that were never applied. Anything else is raised."""
    backoff = 0.1
    while True:
        try:
            return await write()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("Redis write failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)


@dataclass
class Isolated(Generic[T, R]):
    """What a batch came to: the results of the calls Redis took, and the items it refused, each with why."""

    results: list[R]
    refused: list[tuple[T, str]]


async def apply_isolating(apply: Callable[[Sequence[T]], Awaitable[R]], items: Sequence[T]) -> Isolated[T, R]:
    """`apply(items)`; if Redis refuses it (an error that waiting does not cure), the halves are applied on their
    own, recursively, until each refused item stands alone. The scripts are idempotent per item (event ids,
    request ids), so what a refused call had already applied counts once when its half is applied again."""
    try:
        return Isolated([await retry_transient(lambda: apply(items))], [])
    except ResponseError as exc:
        if len(items) <= 1:
            log.error("Redis refused an item (%s); it is dead-lettered", exc)
            return Isolated([], [(item, f"Redis refused it: {exc}") for item in items])
        half = len(items) // 2
        first = await apply_isolating(apply, items[:half])
        second = await apply_isolating(apply, items[half:])
        return Isolated(first.results + second.results, first.refused + second.refused)


async def apply_in_slices(apply: Callable[[Sequence[T]], Awaitable[R]],
                          slices: AsyncIterator[Sequence[T]]) -> Isolated[T, R]:
    """`apply_isolating` over each slice in turn, in order, one slice in Redis at a time: what one call holds (its
    scripts' round trip, the shared step's one script) and what the worker holds parsed stay bounded however many
    items a batch has. The next slice is made (parsed) while Redis applies the one before, as far as the maker
    gives the event loop a turn now and then (`stream_app.app._exposure_slices` does, after every record)."""
    whole: Isolated[T, R] = Isolated([], [])
    applying: asyncio.Task[Isolated[T, R]] | None = None
    try:
        async for part in slices:
            if applying is not None:
                pending, applying = applying, None
                _add(whole, await pending)
            applying = asyncio.ensure_future(apply_isolating(apply, part))
            await asyncio.sleep(0)  # the slice's task starts before the next slice is made
        if applying is not None:
            pending, applying = applying, None
            _add(whole, await pending)
    finally:
        if applying is not None:  # making a slice failed (or this was cancelled): the batch fails whole
            await _settle_slice(applying)
    return whole


async def _settle_slice(applying: asyncio.Task[Any]) -> None:
    """A slice left in Redis by a batch that failed: its round trip ends (cancelled) before the failure goes on,
    and an error of its own is logged, not lost."""
    if not applying.done():
        applying.cancel()
        await asyncio.wait({applying})
    if not applying.cancelled() and applying.exception() is not None:
        log.error("a slice of the failed batch had failed too: %r", applying.exception())


def _add(whole: Isolated[T, R], part: Isolated[T, R]) -> None:
    whole.results += part.results
    whole.refused += part.refused

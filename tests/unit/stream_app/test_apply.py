"""Which Redis failures the worker waits out, and how a refused batch is split (in memory, with a fake apply)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)

from stream_app.apply import apply_in_slices, apply_isolating, is_transient


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionError("refused"), True),
    (TimeoutError("slow"), True),
    (BusyLoadingError("loading"), True),
    (OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), True),
    (ReadOnlyError("replica"), True),
    (ResponseError("BUSY Redis is busy running a script"), True),
    (ResponseError("MISCONF Redis is configured to save RDB snapshots"), True),
    (OSError("reset"), True),
    (ResponseError("Error running script (call to f_336f): @user_script:175: @user_script: 175: -OOM command not "
                   "allowed when used memory > 'maxmemory'."), True),
    (ResponseError("Error running script (call to f_336f): @user_script:90: WRONGTYPE Operation against a key "
                   "holding the wrong kind of value"), False),
    (AuthenticationError("invalid password"), False),
    (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
    (ResponseError("ERR value is not an integer or out of range"), False),
    (ValueError("a bug"), False),
])
def test_only_failures_that_waiting_cures_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_refused_batch_is_halved_until_each_refused_item_stands_alone() -> None:
    calls: list[list[int]] = []

    async def apply(items: Sequence[int]) -> int:
        calls.append(list(items))
        if any(i in (3, 9) for i in items):
            raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
        return len(items)

    result = asyncio.run(apply_isolating(apply, list(range(12))))
    assert [item for item, _ in result.refused] == [3, 9]
    assert all(reason.startswith("Redis refused it: WRONGTYPE") for _, reason in result.refused)
    assert sum(result.results) == 10  # every other item applied, each once
    assert len(calls) <= 2 * 2 * 4 + 1  # O(refused x log n) calls, not one per item


def test_a_transient_failure_is_retried_not_split() -> None:
    attempts = []

    async def apply(items: Sequence[int]) -> int:
        attempts.append(len(items))
        if len(attempts) < 3:
            raise ConnectionError("away")
        return len(items)

    result = asyncio.run(apply_isolating(apply, [1, 2, 3]))
    assert attempts == [3, 3, 3] and result.results == [3] and result.refused == []


def _raised_in(filename: str, error: type[Exception]) -> Exception:
    """An exception as if raised by code in `filename`."""
    namespace: dict[str, Any] = {}
    exec(compile(f"def write():\n    raise {error.__name__}('writelines')", filename, "exec"), namespace)
    try:
        namespace["write"]()
    except error as exc:
        return exc
    raise AssertionError("not raised")


@pytest.mark.parametrize("error", [AttributeError, TypeError])
def test_redis_pys_leaked_transport_errors_are_transient_and_nothing_else_of_their_kind(error: type[Exception]
                                                                                        ) -> None:
    assert is_transient(_raised_in("/venv/site-packages/redis/asyncio/connection.py", error))
    assert not is_transient(_raised_in("/work/stream_app/state.py", error))


def test_a_long_batch_is_applied_in_bounded_slices_in_order_with_refusals_kept() -> None:
    calls: list[list[int]] = []

    async def apply(items: Sequence[int]) -> int:
        calls.append(list(items))
        if 7 in items:
            raise ResponseError("ERR refused")
        return len(items)

    result = asyncio.run(apply_in_slices(apply, _slices(list(range(10)), 4)))
    assert [c for c in calls if 7 not in c][:2] == [[0, 1, 2, 3], [4, 5]]  # the second slice halved around 7
    assert max(len(c) for c in calls) == 4
    assert [i for c in calls if 7 not in c for i in c] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert sum(result.results) == 9 and [item for item, _ in result.refused] == [7]


async def _slices(items: list[int], size: int, made: list[tuple[str, int]] | None = None,
                  ) -> AsyncIterator[list[int]]:
    for start in range(0, len(items), size):
        await asyncio.sleep(0)  # as the worker's maker gives the loop a turn after every record
        if made is not None:
            made.append(("made", start))
        yield items[start:start + size]


def test_the_next_slice_is_made_while_redis_applies_the_one_before_and_slices_never_overlap() -> None:
    log: list[tuple[str, int]] = []

    async def apply(items: Sequence[int]) -> int:
        await asyncio.sleep(0)  # a first round trip before the calls go out (ExposureWriter reads the plans)
        log.append(("start", items[0]))
        await asyncio.sleep(0.01)
        log.append(("end", items[0]))
        return len(items)

    result = asyncio.run(apply_in_slices(apply, _slices(list(range(10)), 4, log)))
    assert log == [("made", 0), ("start", 0), ("made", 4), ("end", 0), ("start", 4), ("made", 8), ("end", 4),
                   ("start", 8), ("end", 8)]
    assert result.results == [4, 4, 2]


def test_a_slice_that_cannot_be_made_fails_the_batch_and_cancels_the_slice_in_redis() -> None:
    cancelled: list[int] = []

    async def apply(items: Sequence[int]) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(items[0])
            raise
        return len(items)

    async def slices() -> AsyncIterator[list[int]]:
        yield [0, 1]
        raise ValueError("unreadable")

    async def batch() -> list[int]:
        with pytest.raises(ValueError, match="unreadable"):
            await apply_in_slices(apply, slices())
        await asyncio.sleep(0)  # the cancel is delivered; asyncio.run's own clean-up comes later
        return list(cancelled)

    assert asyncio.run(batch()) == [0]


def test_a_slice_that_failed_while_the_next_could_not_be_made_is_logged_not_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    async def apply(items: Sequence[int]) -> int:
        raise ValueError("slice refused")

    async def slices() -> AsyncIterator[list[int]]:
        yield [0, 1]
        await asyncio.sleep(0.01)  # the slice fails meanwhile
        raise KeyError("unreadable")

    with pytest.raises(KeyError, match="unreadable"):
        asyncio.run(apply_in_slices(apply, slices()))
    assert [r.getMessage() for r in caplog.records] == [
        "a slice of the failed batch had failed too: ValueError('slice refused')"]

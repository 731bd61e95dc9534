"""The worker's inline message delivery (stream_app/transport.py) behaves as a task would, only cheaper."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from common.settings import Settings
from stream_app.app import create_app
from stream_app.transport import Consumer, start_eagerly


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_coroutine_that_never_waits_finishes_inline_without_a_task() -> None:
    async def deliver() -> str:
        return "delivered"

    async def scenario() -> tuple[tuple[bool, Any], int, int]:
        before = len(asyncio.all_tasks())
        outcome = start_eagerly(deliver())
        return outcome, before, len(asyncio.all_tasks())

    outcome, before, after = run(scenario())
    assert outcome == (True, "delivered")
    assert after == before


def test_a_coroutine_that_waits_is_finished_by_a_task_with_the_awaited_values() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        seen: list[str] = []
        first: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def deliver() -> list[str]:
            seen.append("started")
            seen.append(await first)
            await asyncio.sleep(0)  # a bare yield, as asyncio.sleep(0) makes
            seen.append(await asyncio.sleep(0.01, result="slept"))
            return seen

        finished, task = start_eagerly(deliver())
        assert seen == ["started"]  # ran inline up to its first wait
        first.set_result("resumed")
        return finished, await task

    finished, seen = run(scenario())
    assert not finished
    assert seen == ["started", "resumed", "slept"]


def test_the_awaited_error_reaches_the_coroutine() -> None:
    async def scenario() -> str:
        failing: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def deliver() -> str:
            try:
                return await failing
            except ValueError as exc:
                return f"handled {exc}"

        _, task = start_eagerly(deliver())
        failing.set_exception(ValueError("boom"))
        result: str = await task
        return result

    assert run(scenario()) == "handled boom"


def test_an_error_before_the_first_wait_is_raised_inline() -> None:
    async def deliver() -> None:
        raise KeyError("no callback")

    async def scenario() -> None:
        start_eagerly(deliver())

    with pytest.raises(KeyError, match="no callback"):
        run(scenario())


def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        cleanup: list[str] = []
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def deliver() -> None:
            try:
                await never
            finally:
                cleanup.append("cleaned up")

        _, task = start_eagerly(deliver())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled(), cleanup

    assert run(scenario()) == (True, ["cleaned up"])


@contextmanager
def _consumer() -> Iterator[Consumer]:
    """The worker's consumer, never started (no broker needed)."""
    consumer = create_app(Settings(_env_file=None)).consumer
    assert isinstance(consumer, Consumer)
    try:
        yield consumer
    finally:
        consumer._thread.thread_loop.close()  # made for the consumer thread, which never started


def test_consumer_delivery_that_does_not_wait_wins_at_once() -> None:
    async def scenario() -> Any:
        async def deliver() -> str:
            return "queued"

        with _consumer() as consumer:
            return await consumer.wait_first(deliver(), consumer.suspend_flow.wait())

    results = run(scenario())
    assert results.results == ["queued"]
    assert not results.stopped


def test_consumer_delivery_blocked_on_a_full_buffer_is_abandoned_when_flow_is_suspended() -> None:
    async def scenario() -> tuple[Any, bool]:
        buffer_has_room = asyncio.Event()
        abandoned = False

        async def deliver() -> None:
            nonlocal abandoned
            try:
                await buffer_has_room.wait()
            except asyncio.CancelledError:
                abandoned = True
                raise

        with _consumer() as consumer:
            asyncio.get_running_loop().call_later(0.01, consumer.suspend_flow.set)
            waiting = consumer.wait_first(deliver(), consumer.suspend_flow.wait())
            results = await asyncio.wait_for(waiting, timeout=5)  # a delivery that hung would fail here
            await asyncio.sleep(0)
        return results, abandoned

    results, abandoned = run(scenario())
    assert results.results == [True]  # the suspension won
    assert abandoned


def test_consumer_delivery_error_propagates_and_the_race_is_cleaned_up() -> None:
    async def scenario() -> None:
        async def deliver() -> None:
            raise LookupError("no stream for this partition")

        with _consumer() as consumer:
            await consumer.wait_first(deliver(), consumer.suspend_flow.wait())

    with pytest.raises(LookupError, match="no stream"):
        run(scenario())
    gc.collect()  # an unclosed suspend_flow.wait() would warn "never awaited" here, failing the test


def _record(size: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(value=b"x" * size))


def test_the_stream_buffer_weighs_a_record_by_its_bytes_so_records_of_many_exposures_fill_it_sooner() -> None:
    async def scenario() -> None:
        app = create_app(Settings(_env_file=None, stream_buffer_maxsize=40))
        buffer = app.FlowControlQueue(maxsize=40, clear_on_resume=True)
        pressure: list[str] = []
        for size in (0, 300, 1024, 1025):  # one purchase-sized record weighs one; a KB and a byte weigh two
            buffer.put_nowait_enhanced(_record(size), on_pressure_high=lambda: pressure.append("high"),
                                       on_pressure_drop=lambda: pressure.append("drop"))
        assert (buffer.qsize(), buffer.full(), pressure) == (5, False, [])
        for _ in range(2):  # two records of 100 exposures (16 KB each): past 40 / 1.25, Faust pauses the fetch
            buffer.put_nowait_enhanced(_record(16_384), on_pressure_high=lambda: pressure.append("high"),
                                       on_pressure_drop=lambda: pressure.append("drop"))
        assert (buffer.qsize(), buffer.full(), pressure) == (37, False, [])
        buffer.put_nowait_enhanced(_record(300), on_pressure_high=lambda: pressure.append("high"),
                                   on_pressure_drop=lambda: pressure.append("drop"))
        assert pressure == ["high"]
        assert buffer.full() is False and buffer.qsize() == 38
        buffer.force_put_nowait(_record(2048))
        assert buffer.full() is True
        taken = [len(buffer.get_nowait().message.value) for _ in range(5)]
        assert taken == [0, 300, 1024, 1025, 16_384]
        assert buffer.qsize() == 19  # 16 + 1 + 2 left
        buffer.clear()
        assert buffer.qsize() == 0 and buffer.empty()

    run(scenario())

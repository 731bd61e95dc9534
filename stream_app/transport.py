"""The Faust app class with the two consumer changes this worker needs on the local broker.

1. Fetch wait. Faust's aiokafka driver hard-codes fetch_max_wait_ms=1500. Tansu answers a fetch that found no data
   only when that wait runs out, even if records arrive meanwhile, so an idle-then-busy partition delays events by
   up to 1.5 s (measured: freshness p50 ~0.7 s, p99 ~2 s at 1,000 events/s). A shorter wait bounds that delay.

2. Delivery cost. For every message, Faust's fetch loop hands it to the streams with
   ``wait_first(callback(message), suspend_flow.wait())``: four tasks, an ``asyncio.wait`` and three
   cancellations, about three event-loop turns per message, although the callback almost never has to wait (it
   only waits while a rebalance suspends the flow or a stream buffer is full). Here the callback first runs inline;
   only when it really blocks does the rest of it become a task raced against suspension as before. Measured in
   ``benchmarks/stream_throughput.py``.

3. Buffer weight. Faust bounds a stream's buffer in records (``stream_buffer_maxsize``), but a record of the
   exposures topic holds up to 100 exposures (up to 16 KB). Here a record weighs one per started KB of its value,
   so the buffer holds at most about ``stream_buffer_maxsize`` KB of records (32 MB at the default) however many
   exposures each holds: measured catching up on a backlog of exposures, see docs/scaling.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, ClassVar, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults
from mode.utils.queues import ThrowableQueue


class _Blocked:
    """Awaiting this yields the future a half-run coroutine is waiting on, to the task that now runs it."""

    def __init__(self, waiting_on: Any) -> None:
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, None]:
        yield self.waiting_on


async def _finish(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Drive a coroutine that already ran up to its first suspension, exactly as a task would have."""
    while True:
        error: BaseException | None = None
        try:
            await _Blocked(waiting_on)
        except BaseException as exc:  # cancellation or the awaited future's error: the coroutine decides
            error = exc
        try:
            waiting_on = coro.send(None) if error is None else coro.throw(error)
        except StopIteration as stop:
            return stop.value


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` until it finishes or first suspends: ``(True, result)``, or ``(False, task finishing it)``.

    Errors raised before the first suspension propagate here, as they would from awaiting the task.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, asyncio.ensure_future(_finish(coro, waiting_on))


def _close(waits: list[Any]) -> None:
    for wait in waits:
        if asyncio.iscoroutine(wait):
            wait.close()  # never started: closing it is all the cleanup it needs


class Consumer(faust_aiokafka.Consumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        delivery, *others = coros
        if timeout is not None or not asyncio.iscoroutine(delivery):
            return await super().wait_first(*coros, timeout=timeout)
        try:
            finished, outcome = start_eagerly(delivery)
        except BaseException:
            _close(others)
            raise
        if not finished:
            return await super().wait_first(outcome, *others)
        _close(others)
        stopped = self._stopped.is_set() or self._crashed.is_set()
        return WaitResults([], [], True) if stopped else WaitResults([delivery], [outcome], False)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read when the consumer starts its fetcher
        consumer._fetch_max_wait_ms = cast(StreamApp, self.app).fetch_max_wait_ms
        return consumer


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = Consumer


RECORD_WEIGHT_BYTES = 1024


def weight_of(event: Any) -> int:
    """A buffered record's share of ``stream_buffer_maxsize``: one per started KB of its value, at least one."""
    value = getattr(getattr(event, "message", None), "value", None)  # a local channel's item may have no record
    return max(1, -(-len(value) // RECORD_WEIGHT_BYTES)) if isinstance(value, bytes) else 1


class WeighedQueue(ThrowableQueue[Any]):
    """Faust's stream buffer, its size (what ``full()`` and the fetch's pause and resume read) the sum of its
    records' weights instead of their number."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.weight = 0
        super().__init__(*args, **kwargs)

    def qsize(self) -> int:
        return self.weight

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.weight += weight_of(item)

    def _get(self) -> Any:
        item = super()._get()
        self.weight -= weight_of(item)
        return item

    def clear(self) -> None:
        super().clear()
        self.weight = 0


class StreamApp(faust.App):
    """``faust.App`` consuming through :class:`Transport`, its stream buffers weighed (:class:`WeighedQueue`)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def FlowControlQueue(self, maxsize: int | None = None, *,  # Faust's name
                         clear_on_resume: bool = False) -> ThrowableQueue[Any]:
        return WeighedQueue(maxsize=maxsize, flow_control=self.flow_control, clear_on_resume=clear_on_resume)

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

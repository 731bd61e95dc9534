"""Replay a purchase history into the purchases topic, one event per order line, in event-time order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from aiokafka import AIOKafkaProducer

from common.archive import Archive, first_of_each_id
from common.events import PurchaseEvent, purchase_event_id
from common.settings import Settings

FLUSH_EVERY = 2000


@dataclass(frozen=True)
class Pace:
    """speed: seconds of history per wall-clock second (86400 = a day per second); max_rate: events/s cap.
    Neither: as fast as possible."""

    speed: float | None = None
    max_rate: float | None = None


@dataclass
class ReplaySummary:
    sent: int
    seconds: float
    first_event: str
    last_event: str
    interrupted: bool

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def select(lines: pd.DataFrame, start: datetime | None = None, limit: int | None = None,
           until: datetime | None = None) -> pd.DataFrame:
    """Lines in [start, until), then the first `limit` of them."""
    if start is not None:
        lines = lines[lines["event_time"] >= pd.Timestamp(start).tz_localize(None)]
    if until is not None:
        lines = lines[lines["event_time"] < pd.Timestamp(until).tz_localize(None)]
    if limit is not None:
        lines = lines.head(limit)
    return lines


def to_events(lines: pd.DataFrame) -> Iterator[PurchaseEvent]:
    """Canonical lines (already in event-time order) as events with deterministic ids."""
    columns = ["customer_id", "order_id", "line_no", "product_id", "category", "units", "amount", "event_time"]
    for cid, order, line_no, product, category, units, amount, ts in lines[columns].itertuples(index=False):
        yield PurchaseEvent(
            event_id=purchase_event_id(order, product, int(line_no)), order_id=order, customer_id=cid,
            product_id=product, category=category, units=int(units), amount=float(amount),
            event_time=ts.to_pydatetime().replace(tzinfo=UTC),
        )


def archived_events(location: str, start: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None) -> list[PurchaseEvent]:
    """The archive's purchases in [start, until), in event-time order, each once and with the event id it was
    archived under (a client's own id is kept, so the stream's guard recognises what it has applied)."""
    rows = first_of_each_id(Archive(location).read()).to_pylist()
    low = start.replace(tzinfo=start.tzinfo or UTC) if start else None
    high = until.replace(tzinfo=until.tzinfo or UTC) if until else None
    events = [PurchaseEvent(**row) for row in rows
              if (low is None or row["event_time"] >= low) and (high is None or row["event_time"] < high)]
    events.sort(key=lambda e: e.event_time)
    return events[:limit]


class Pacer:
    """Maps event time to wall time (speed) and/or caps the send rate."""

    def __init__(self, pace: Pace, clock: Callable[[], float] = time.monotonic) -> None:
        self._pace = pace
        self._clock = clock
        self._start_wall: float | None = None
        self._start_event: float | None = None
        self._sent = 0

    def delay(self, event_ts: float) -> float:
        """Seconds to wait before sending the event with this event time."""
        now = self._clock()
        if self._start_wall is None:
            self._start_wall, self._start_event = now, event_ts
        assert self._start_event is not None
        due = self._start_wall
        if self._pace.speed:
            due = max(due, self._start_wall + (event_ts - self._start_event) / self._pace.speed)
        if self._pace.max_rate:
            due = max(due, self._start_wall + self._sent / self._pace.max_rate)
        self._sent += 1
        return max(0.0, due - now)


ProgressFn = Callable[[int, datetime], None]
BeforeOrder = Callable[[PurchaseEvent], Awaitable[None]]


async def replay_until_signal(
    settings: Settings, events: Iterator[PurchaseEvent], pace: Pace, progress: ProgressFn | None = None,
    before_order: BeforeOrder | None = None,
) -> ReplaySummary:
    """For the command line: Ctrl-C or SIGTERM stops after flushing what was sent."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await replay(settings, events, pace, progress, stop, before_order)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def replay(
    settings: Settings, events: Iterator[PurchaseEvent], pace: Pace, progress: ProgressFn | None = None,
    stop: asyncio.Event | None = None, before_order: BeforeOrder | None = None,
) -> ReplaySummary:
    """`before_order` runs before the first line of each order is sent (the simulated visit)."""
    stop = stop or asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1)
    await producer.start()
    pacer = Pacer(pace)
    sent, first, last = 0, "", ""
    started = time.perf_counter()
    pending: list[asyncio.Future[object]] = []
    previous_order = None
    try:
        for event in events:
            if stop.is_set():
                break
            if before_order is not None and event.order_id != previous_order:
                await before_order(event)
            previous_order = event.order_id
            wait = pacer.delay(event.event_time.timestamp())
            if wait > 0:
                await _flush(pending)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # not `wait_for`, which on 3.11 can swallow a cancel
                        await stop.wait()
                if stop.is_set():
                    break
            pending.append(await producer.send(
                settings.topic_purchases, value=event.to_bytes(), key=event.customer_id.encode()
            ))
            sent += 1
            first = first or event.event_time.isoformat()
            last = event.event_time.isoformat()
            if len(pending) >= FLUSH_EVERY:
                await _flush(pending)
            if progress is not None:
                progress(sent, event.event_time)
        await _flush(pending)
    finally:
        await producer.stop()
    return ReplaySummary(sent, time.perf_counter() - started, first, last, stop.is_set())


async def _flush(pending: list[asyncio.Future[object]]) -> None:
    """Wait for the broker's acknowledgements, so a failed send surfaces here and Ctrl-C loses nothing sent."""
    if pending:
        await asyncio.gather(*pending)
        pending.clear()

"""Exposure events go to Kafka without holding up the response: a request only appends a tuple to an in-memory
queue; one background task lets 20 ms of them gather, encodes them (orjson) and sends them as
record batches. A broker outage loses exposures once the queue is full; each one lost is counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import deque
from datetime import datetime
from typing import NamedTuple

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from api.kafka_start import start_or_close
from common.events import ExposureEvent

log = logging.getLogger(__name__)
# At most this many exposures are encoded between two awaits, so a queue that grew while the broker was away
# is sent without holding the event loop (and the requests on it) for long.
DRAIN_AT_ONCE = 500
START_TIMEOUT_S = 5.0
SCHEMA_VERSION = ExposureEvent.model_fields["schema_version"].default
LINGER_S = 0.02  # how long the sender lets exposures gather before sending a batch, unless asked to flush


class Exposure(NamedTuple):
    """One served list as a request queues it: building an `ExposureEvent` (pydantic) per request cost more than
    the rest of the queueing; the sender writes the same JSON (`to_bytes`)."""

    request_id: str
    customer_id: str
    experiment: str
    group: str
    strategy: str
    model_version: str
    product_ids: list[str]
    event_time: datetime

    def to_bytes(self) -> bytes:
        """The `ExposureEvent` JSON the stream worker parses."""
        return orjson.dumps({
            "schema_version": SCHEMA_VERSION, "request_id": self.request_id, "customer_id": self.customer_id,
            "experiment": self.experiment, "group": self.group, "strategy": self.strategy,
            "model_version": self.model_version, "product_ids": self.product_ids, "event_time": self.event_time,
        })


class ExposurePublisher:
    def __init__(self, bootstrap_servers: str, topic: str, max_queued: int) -> None:
        """Beyond `max_queued` waiting exposures (the broker is away), a new one is dropped and counted."""
        self.topic = topic
        self.max_queued = max_queued
        self.bootstrap_servers = bootstrap_servers
        self.producer: AIOKafkaProducer | None = None
        self.sent = 0
        self.lost = 0
        self._queue: deque[Exposure] = deque()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._connected = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run())

    def publish(self, event: Exposure) -> None:
        """Never blocks, never raises."""
        if len(self._queue) >= self.max_queued:
            self.lost += 1
            return
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def flush(self) -> None:
        """Wait until everything published so far is delivered or counted as lost."""
        self._hurry.set()
        await self._idle.wait()

    async def stop(self) -> None:
        if self._connected.is_set() and self._queue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), 5)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner  # a connection attempt in progress closes its producer
        self.lost += len(self._queue)
        if self.producer is not None:
            await self.producer.stop()

    async def _run(self) -> None:
        producer = await self._connect()
        partitions = sorted(await producer.partitions_for(self.topic))
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._hurry.is_set():  # one batch for many requests rather than one each
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), LINGER_S)
            self._hurry.clear()
            while self._queue:
                await self._send(producer, partitions)
            self._idle.set()

    async def _connect(self) -> AIOKafkaProducer:
        """Keeps trying: the API serves while the broker is away (exposures queue meanwhile)."""
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=5, acks=1,
                                        request_timeout_ms=int(START_TIMEOUT_S * 1000))
            try:
                await start_or_close(producer)
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning("exposures: broker unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.producer = producer
            self._connected.set()
            return producer

    async def _send(self, producer: AIOKafkaProducer, partitions: list[int]) -> None:
        """One record batch per partition for everything queued (up to DRAIN_AT_ONCE), keyed by customer."""
        taken = [self._queue.popleft() for _ in range(min(len(self._queue), DRAIN_AT_ONCE))]
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for event in taken:
            key = event.customer_id.encode()
            by_partition.setdefault(partitions[zlib.crc32(key) % len(partitions)], []).append(
                (key, event.to_bytes()))
        deliveries: list[tuple[int, asyncio.Future[object]]] = []
        for partition, events in by_partition.items():
            while events:
                batch = producer.create_batch()
                n = 0
                while n < len(events) and batch.append(key=events[n][0], value=events[n][1],
                                                       timestamp=None) is not None:
                    n += 1
                if n == 0:  # larger than a whole batch: cannot be sent
                    self.lost += 1
                    events = events[1:]
                    continue
                deliveries.append((n, await producer.send_batch(batch, self.topic, partition=partition)))
                events = events[n:]
        for n, delivery in deliveries:
            try:
                await delivery
                self.sent += n
            except (KafkaError, OSError) as exc:
                self.lost += n
                log.warning("exposures lost: %d (%s)", n, exc)

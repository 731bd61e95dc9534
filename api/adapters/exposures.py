"""Exposure events go to Kafka without holding up the response: a request only appends a tuple to an in-memory
queue; one background task lets 20 ms of them gather, encodes them (orjson) and sends them as records of many
exposures each (`common.events.exposure_record`). The task outlives the broker: on any failure it closes its
producer, puts back what was not delivered (the stream's request-id guard makes a second delivery harmless), backs
off and connects again. A broker outage loses exposures only once the queue is full; each one lost is counted, and
the sender's state is in `/ready` and `/metrics`."""

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

from api.adapters.kafka_start import start_or_close
from common.events import MAX_EXPOSURES_PER_RECORD, ExposureEvent, exposure_record

log = logging.getLogger(__name__)
# At most this many exposures are encoded between two awaits, so a queue that grew while the broker was away
# is sent without holding the event loop (and the requests on it) for long.
DRAIN_AT_ONCE = 500
SCHEMA_VERSION = ExposureEvent.model_fields["schema_version"].default
LINGER_S = 0.02  # how long the sender lets exposures gather before sending a batch, unless asked to flush
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 10.0
RECORD_BYTES = 16_384  # aiokafka's default batch size (a batch always takes its first record, whatever its size)


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
    propensity: float | None = None  # under a bandit: the arm's share of new customers

    def to_bytes(self) -> bytes:
        """The `ExposureEvent` JSON the stream worker parses."""
        return orjson.dumps({
            "schema_version": SCHEMA_VERSION, "request_id": self.request_id, "customer_id": self.customer_id,
            "experiment": self.experiment, "group": self.group, "strategy": self.strategy,
            "model_version": self.model_version, "product_ids": self.product_ids, "event_time": self.event_time,
            "propensity": self.propensity,
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
        self.errors = 0  # broker failures the sender recovered from
        self.last_error: str | None = None
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

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def running(self) -> bool:
        """The sender task is alive (it ends only with `stop`)."""
        return self._runner is not None and not self._runner.done()

    async def connected(self, timeout_s: float) -> bool:
        await linger(self._connected, timeout_s)
        return self._connected.is_set()

    async def flush(self) -> None:
        """Wait until everything published so far is delivered or counted as lost."""
        self._hurry.set()
        await self._idle.wait()

    async def stop(self) -> None:
        if self._connected.is_set() and self._queue:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):  # not `wait_for`: see `linger`
                    await self.flush()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner  # a connection attempt in progress closes its producer
        self.lost += len(self._queue)
        if self.producer is not None:
            await self.producer.stop()

    async def _run(self) -> None:
        """Connect, send until the broker fails, then close, back off and connect again, until `stop`."""
        delay = RECONNECT_MIN_S
        while True:
            producer = await self._connect()
            sent_before = self.sent
            try:
                await self._serve(producer)
            except Exception as exc:  # the sender must outlive whatever the client raises, not only KafkaError
                if self.sent > sent_before:  # it worked for a while: the next attempt need not wait long
                    delay = RECONNECT_MIN_S
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._connected.clear()
                self.producer = None
                log.warning("exposures: broker failure (%s); reconnecting in %.1fs", self.last_error, delay)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _serve(self, producer: AIOKafkaProducer) -> None:
        partitions = sorted(await producer.partitions_for(self.topic))
        self._connected.set()
        while True:
            if not self._queue:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            await linger(self._hurry, LINGER_S)  # one batch for many requests rather than one each
            self._hurry.clear()
            while self._queue:
                await self._send(producer, partitions)

    async def _connect(self) -> AIOKafkaProducer:
        """Keeps trying: the API serves while the broker is away (exposures queue meanwhile)."""
        delay = RECONNECT_MIN_S
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=5, acks=1,
                                        request_timeout_ms=5000)
            try:
                await start_or_close(producer)
            except (KafkaError, OSError) as exc:
                await producer.stop()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("exposures: broker unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            self.producer = producer
            return producer

    async def _send(self, producer: AIOKafkaProducer, partitions: list[int]) -> None:
        """Everything queued (up to DRAIN_AT_ONCE) as records of several exposures each (`records_of`), in record
        batches per partition; a customer's exposures always go to the same partition. What the broker did not
        take is put back at the head of the queue and the failure raised (the sender reconnects)."""
        taken = [self._queue.popleft() for _ in range(min(len(self._queue), DRAIN_AT_ONCE))]
        by_partition: dict[int, list[Exposure]] = {}
        for event in taken:
            by_partition.setdefault(partitions[zlib.crc32(event.customer_id.encode()) % len(partitions)],
                                    []).append(event)
        deliveries: list[tuple[list[Exposure], asyncio.Future[object]]] = []
        unsent: list[Exposure] = []
        try:
            for partition, events in by_partition.items():
                records = records_of(events)
                while records:
                    batch = producer.create_batch()
                    n = 0  # a batch always takes its first record, whatever its size
                    while n < len(records) and batch.append(key=None, value=records[n][1], timestamp=None) is not None:
                        n += 1
                    delivery = await producer.send_batch(batch, self.topic, partition=partition)
                    deliveries.append(([e for chunk, _ in records[:n] for e in chunk], delivery))
                    records = records[n:]
        except BaseException:
            handed = {id(e) for chunk, _ in deliveries for e in chunk}
            unsent = [e for e in taken if id(e) not in handed]
            raise
        finally:
            failed = await self._settle(deliveries)
            self._put_back(failed + unsent)
        if failed:
            raise KafkaError(f"{len(failed)} exposures not acknowledged")

    async def _settle(self, deliveries: list[tuple[list[Exposure], asyncio.Future[object]]]) -> list[Exposure]:
        """Wait for every handed batch; the exposures of those the broker did not acknowledge."""
        failed: list[Exposure] = []
        for events, delivery in deliveries:
            try:
                await delivery
                self.sent += len(events)
            except Exception as exc:  # not only KafkaError: whatever the client raises, they go back, not astray
                failed += events
                log.warning("exposures not acknowledged: %d (%s: %s)", len(events), type(exc).__name__, exc)
        return failed

    def _put_back(self, events: list[Exposure]) -> None:
        """At the head of the queue, in their order, as far as the queue's bound allows (the rest is lost)."""
        room = max(0, self.max_queued - len(self._queue))
        kept = events[:room]
        self.lost += len(events) - len(kept)
        self._queue.extendleft(reversed(kept))


async def linger(hurry: asyncio.Event, seconds: float) -> None:
    """Until `hurry` is set or `seconds` have passed. Not `asyncio.wait_for`: on Python 3.11 it swallows a cancel
    that lands as the event is set, and the sender, cancelled by `stop` just as a flush asked it to hurry, then
    waited for work forever (in 6 of 15 paced rounds of 30,000 exposures; in none of 14 since)."""
    if hurry.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await hurry.wait()


def records_of(events: list[Exposure]) -> list[tuple[list[Exposure], bytes]]:
    """Consecutive exposures (of one partition) gathered into records of at most `MAX_EXPOSURES_PER_RECORD`, and
    of at most `RECORD_BYTES` unless one exposure alone is larger: each record with the exposures it holds."""
    records: list[tuple[list[Exposure], bytes]] = []
    chunk: list[Exposure] = []
    encoded: list[bytes] = []
    size = 1  # a record's bytes: '[', then each exposure and the ',' or ']' after it
    for event in events:
        raw = event.to_bytes()
        if chunk and (len(chunk) == MAX_EXPOSURES_PER_RECORD or size + len(raw) + 1 > RECORD_BYTES):
            records.append((chunk, exposure_record(encoded)))
            chunk, encoded, size = [], [], 1
        chunk.append(event)
        encoded.append(raw)
        size += len(raw) + 1
    if chunk:
        records.append((chunk, exposure_record(encoded)))
    return records

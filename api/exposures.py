"""Exposure events go to Kafka without holding up the response; a broker outage loses them, counted."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.events import ExposureEvent

log = logging.getLogger(__name__)
MAX_PENDING = 10_000  # sends in flight; beyond this an exposure is dropped (and counted) instead of queued


class ExposurePublisher:
    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self.producer: AIOKafkaProducer | None = None
        self.sent = 0
        self.lost = 0
        self._pending: set[asyncio.Task[None]] = set()
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connecting = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        """Keeps trying in the background: the API serves while the broker is away."""
        delay = 0.5
        while self.producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=5, acks=1,
                                        request_timeout_ms=5000)
            try:
                await producer.start()
                self.producer = producer
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning("exposures: broker unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def publish(self, event: ExposureEvent) -> None:
        """Fire and forget; never raises."""
        if self.producer is None or len(self._pending) >= MAX_PENDING:
            self.lost += 1
            return
        task = asyncio.create_task(self._send(self.producer, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, producer: AIOKafkaProducer, event: ExposureEvent) -> None:
        try:
            await producer.send_and_wait(self.topic, event.to_bytes(), key=event.customer_id.encode())
            self.sent += 1
        except (KafkaError, OSError) as exc:
            self.lost += 1
            log.debug("exposure lost: %s", exc)

    async def connected(self, timeout_s: float) -> bool:
        """Wait for the broker connection (the replay's simulated visits need it before they start)."""
        if self._connecting is not None:
            await asyncio.wait({self._connecting}, timeout=timeout_s)
        return self.producer is not None

    async def flush(self) -> None:
        """Wait until every exposure published so far is delivered or counted as lost."""
        if self._pending:
            await asyncio.wait(set(self._pending))

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)
        if self.producer is not None:
            await self.producer.stop()

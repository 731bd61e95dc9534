"""Starting an aiokafka producer from a background task that may be cancelled (the API stops while the broker is
away). aiokafka leaks its bootstrap connection when `start()` is cancelled midway, which shows as an unclosed
producer; so a cancelled start is let finish (within a bound) and the producer closed before the cancellation
goes on."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

START_TIMEOUT_S = 10.0


async def start_or_close(producer: AIOKafkaProducer) -> None:
    """`await producer.start()`, except that a cancellation closes the producer before it propagates."""
    starting = asyncio.ensure_future(producer.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait([starting], timeout=START_TIMEOUT_S)
        if starting.done() and not starting.cancelled():
            starting.exception()  # retrieved: the attempt's outcome no longer matters
        starting.cancel()
        await producer.stop()
        raise

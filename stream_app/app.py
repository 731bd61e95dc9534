"""The Faust worker: purchases -> validated -> one atomic Redis script per batch; bad events -> dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import faust
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.events import DeadLetter, ExposureEvent, PurchaseEvent, Rejected, parse_event
from common.keys import KeyLayout
from common.settings import Settings
from stream_app.exposures import ExposureWriter
from stream_app.master_data import MasterDataWriter, WorkerHooks, add_master_data_agents
from stream_app.meter import RateMeter, freshness_summary, lag
from stream_app.state import StateWriter, dead_letter_id
from stream_app.transport import StreamApp

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", ExposureEvent, PurchaseEvent)
MAX_BACKOFF_S = 5.0


def create_app(settings: Settings, redis_client: aioredis.Redis | None = None) -> faust.App:
    app = StreamApp(
        settings.stream_app_id,
        fetch_max_wait_ms=settings.stream_fetch_max_wait_ms,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        web_enabled=False,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
    )
    # One stream over purchases and exposures, so a batch's exposures are applied before its purchases.
    purchases = app.topic(settings.topic_purchases, settings.topic_exposures, partitions=settings.topic_partitions)
    dead_letters = app.topic(settings.topic_dead_letters, partitions=settings.topic_partitions)
    client = redis_client or aioredis.from_url(settings.redis_url)
    writer = StateWriter(
        client, KeyLayout(settings.key_prefix), recent_n=settings.recent_products,
        retention_s=settings.guard_retention_days * 86400, attribution_s=round(settings.ab_attribution_days * 86400),
    )
    exposure_writer = ExposureWriter(client, KeyLayout(settings.key_prefix), settings.guard_retention_days * 86400,
                                     round(settings.ab_attribution_days * 86400))
    meter = RateMeter()
    positions: dict[Any, int] = {}
    add_master_data_agents(app, settings, MasterDataWriter(client, KeyLayout(settings.key_prefix)), WorkerHooks(
        dead_letter=partial(_dead_letter, dead_letters, max_raw=settings.dead_letter_max_raw_bytes),
        count_dead=partial(writer.apply, []), retry=_retry, stop=partial(_stop_worker, app),
    ))

    @app.agent(purchases)
    async def process(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.stream_batch_size, within=settings.stream_batch_within_s
        )
        writing: asyncio.Task[None] | None = None
        try:
            async for batch in batches:
                # take_events acks a batch as soon as we hand it back. One more reference per message keeps its
                # offset uncommitted until the batch is in Redis, so Redis can apply this batch while the worker
                # takes the next one, and nothing is lost if the worker dies in between.
                for event in batch:
                    event.message.incref()
                shown = [e for e in batch if e.message.topic == settings.topic_exposures]
                events = [e for e in batch if e.message.topic != settings.topic_exposures]
                exposures, _ = await _parse_or_dead_letter(shown, ExposureEvent, dead_letters, settings)
                good, dead = await _parse_or_dead_letter(events, PurchaseEvent, dead_letters, settings)
                dead_ids = [dead_letter_id(e.message.partition, e.message.offset, e.value or b"") for e in dead]
                if writing is not None:
                    await writing  # one batch in flight, so batches reach Redis in order
                writing = asyncio.create_task(write(stream, batch, exposures, events, good, dead_ids))
                yield None
        except Exception as exc:
            await _stop_worker(app, exc)
            raise
        finally:
            if writing is not None and not writing.done():
                writing.cancel()  # its events stay unacked: redelivered, and the event-id guard drops repeats

    async def write(
        stream: faust.StreamT[bytes], batch: Sequence[faust.types.EventT[Any]], exposures: list[ExposureEvent],
        events: Sequence[faust.types.EventT[Any]], good: list[PurchaseEvent], dead_ids: list[str],
    ) -> None:
        try:
            await _retry(partial(exposure_writer.apply, exposures))  # before the purchases they may convert
            result = await _retry(partial(writer.apply, good, dead_ids))
        except Exception as exc:
            await _stop_worker(app, exc)
            raise
        for event in batch:
            await stream.ack(event)
        for event in events:
            positions[event.message.tp] = event.message.offset
        meter.add(len(events))
        ages = [time.time() * 1000 - e.message.timestamp * 1000 for e in events]
        await _publish_progress(writer, app, meter, positions, ages)
        log.debug("batch of %d: %s", len(events), result)

    return app


async def _parse_or_dead_letter(
    events: Sequence[faust.types.EventT[Any]], model: type[E], dead_letters: faust.types.TopicT,
    settings: Settings,
) -> tuple[list[E], list[faust.types.EventT[Any]]]:
    """The events that parse, and the events sent to the dead-letter topic (with the reason) instead."""
    parsed: list[E] = []
    dead: list[faust.types.EventT[Any]] = []
    for event in events:
        outcome = parse_event(model, event.value, settings.max_event_bytes)
        if isinstance(outcome, Rejected):
            await _dead_letter(dead_letters, event, outcome.detail, settings.dead_letter_max_raw_bytes)
            dead.append(event)
        else:
            parsed.append(outcome)
    return parsed, dead


async def _dead_letter(
    dead_letters: faust.types.TopicT, event: faust.types.EventT[Any], reason: str, max_raw: int
) -> None:
    m = event.message
    letter = DeadLetter.of(event.value or b"", reason, m.topic, m.partition, m.offset, max_raw)
    key = event.key[:max_raw] if isinstance(event.key, bytes) else None  # keys are customer ids; a huge one is junk
    await dead_letters.send(key=key, value=letter.to_bytes())


async def _stop_worker(app: faust.App, exc: Exception) -> None:
    """Fail-stop: a batch that hit an unexpected error keeps its messages unacknowledged. Carrying on would let
    later commits move past it (its events silently lost); stopping leaves its offsets uncommitted, so a restarted
    worker reads the batch again and the event-id guard drops whatever part of it had been applied."""
    if app.crashed:
        return  # the write task and the agent both report the write's error
    log.critical("stopping the worker after an unexpected error: %r", exc)
    await app.consumer.crash(exc)  # a crashed consumer stops without waiting for the batch's acknowledgements
    await app.crash(exc)


async def _retry(write: Callable[[], Awaitable[T]]) -> T:
    """Redis down stalls the stream instead of acknowledging events that were never applied."""
    backoff = 0.1
    while True:
        try:
            return await write()
        except (RedisError, OSError) as exc:
            log.warning("Redis write failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)


async def _publish_progress(
    writer: StateWriter, app: faust.App, meter: RateMeter, positions: dict[Any, int], ages: list[float]
) -> None:
    highwaters: dict[Any, int | None] = {}
    for tp in positions:
        try:
            highwaters[tp] = app.consumer.highwater(tp)
        except (KeyError, AttributeError, AssertionError):
            highwaters[tp] = None
    current_lag = lag(highwaters, positions)
    fields: dict[str, float | int | str] = {
        "rate_eps": round(meter.rate, 1),
        "last_batch_at": round(time.time(), 3),
        "lag": "" if current_lag is None else current_lag,
        **freshness_summary(ages),
    }
    try:
        await writer.record_progress(fields, ages)
    except (RedisError, OSError) as exc:
        log.warning("could not publish progress: %s", exc)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Blocking: run one worker until SIGINT/SIGTERM."""
    from faust.worker import Worker

    app = create_app(settings)
    Worker(app, loglevel=loglevel).execute_from_commandline()

"""The Faust worker: purchases -> validated -> one atomic Redis script per batch; bad events -> dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast

import faust
from redis.exceptions import RedisError

from common.collector import settle
from common.events import DeadLetter, ExposureEvent, PurchaseEvent, Rejected, exposure_payloads, parse_event
from common.health import beat
from common.keys import KeyLayout
from common.redis_clients import AsyncRedis, async_client
from common.settings import Settings
from stream_app.apply import Isolated, apply_in_slices, apply_isolating, retry_transient
from stream_app.exposures import ExposureResult, ExposureWriter
from stream_app.lua import COUNTER_LIMIT
from stream_app.master_data import MasterDataWriter, WorkerHooks, add_master_data_agents
from stream_app.meter import RateMeter, freshness_summary, lag
from stream_app.state import BatchResult, StateWriter, Windows, dead_letter_id
from stream_app.transport import StreamApp

log = logging.getLogger(__name__)
HEARTBEAT_S = 10.0  # `recsys health stream` (a container's healthcheck) reads it
E = TypeVar("E", ExposureEvent, PurchaseEvent)
T = TypeVar("T")

REDIS_TIMEOUT_S = 30.0
# A batch is counted in records, and a record of the exposures topic holds up to 100 exposures: parsed and applied
# in slices of about this many (what a batch of single-exposure records held), the shared step's one script never
# holds Redis long and the worker never holds a whole batch's exposures parsed (about 5 KB each).
EXPOSURES_PER_APPLY = 1000


def create_app(settings: Settings, redis_client: AsyncRedis | None = None) -> faust.App:
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
    # A reply later than this is given up on (and the batch retried): a call must not linger for minutes and run
    # after another worker took its customers over.
    client = redis_client or async_client(settings, socket_timeout=REDIS_TIMEOUT_S,
                                          socket_connect_timeout=REDIS_TIMEOUT_S)
    keys, windows = KeyLayout(settings.key_prefix), Windows.of(settings)
    writer = StateWriter(client, keys, windows, recent_n=settings.recent_products)
    exposure_writer = ExposureWriter(client, keys, windows)
    meter = RateMeter()
    positions: dict[Any, int] = {}
    dead_letter = partial(_dead_letter, dead_letters, max_raw=settings.dead_letter_max_raw_bytes)
    add_master_data_agents(app, settings, MasterDataWriter(client, keys), WorkerHooks(
        dead_letter=dead_letter, count_dead=partial(writer.apply, []), retry=retry_transient,
        stop=partial(_stop_worker, app),
    ))

    progress: dict[str, float | int | str | None] = {"last_batch_at": None, "lag": None}

    @app.timer(interval=HEARTBEAT_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def heartbeat() -> None:
        beat(settings.run_dir, "stream", **progress)

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
                good, dead = await _parse_or_dead_letter(events, PurchaseEvent, dead_letter, settings)
                # The first slice is parsed while the batch before is written; the rest while Redis applies it.
                exposures = _exposure_slices(shown, dead_letter, settings, EXPOSURES_PER_APPLY)
                first = await anext(exposures, None)
                if writing is not None:
                    await writing  # one batch in flight, so batches reach Redis in order
                writing = asyncio.create_task(write(stream, batch, _ahead(first, exposures), events, good, dead))
                del first  # the write holds it, until it is applied
                yield None
        except Exception as exc:
            await _stop_worker(app, exc)
            raise
        finally:
            if writing is not None and not writing.done():
                writing.cancel()  # its events stay unacked: redelivered, and the event-id guard drops repeats

    async def write(
        stream: faust.StreamT[bytes], batch: Sequence[faust.types.EventT[Any]],
        exposures: AsyncIterator[list[Parsed[ExposureEvent]]], events: Sequence[faust.types.EventT[Any]],
        good: list[Parsed[PurchaseEvent]], dead: list[Source],
    ) -> None:
        try:
            # exposures before the purchases they may convert
            shown = await apply_in_slices(partial(_apply_exposures, exposure_writer), exposures)
            applied = await apply_isolating(partial(writer.apply, dead_ids=_ids_of(dead)),
                                            [e for _, _, e in good])
            refused = _refused(applied, good) + [((record, raw), reason) for (record, raw, _), reason in shown.refused]
            for (record, raw), reason in refused:
                await dead_letter(record, reason, raw)
            if refused:
                await retry_transient(partial(writer.apply, [], _ids_of([source for source, _ in refused])))
        except Exception as exc:
            await _stop_worker(app, exc)
            raise
        for event in batch:
            await stream.ack(event)
        for event in events:
            positions[event.message.tp] = event.message.offset
        meter.add(len(events))
        ages = [time.time() * 1000 - e.message.timestamp * 1000 for e in events]
        progress.update(last_batch_at=round(time.time(), 1),
                        lag=await _publish_progress(writer, app, meter, positions, ages))
        log.debug("batch of %d: %s, exposures %s", len(events), applied.results, shown.results)

    return app


Source = tuple[faust.types.EventT[Any], bytes]  # a record and one event's bytes in it (a record may hold several)
Parsed = tuple[faust.types.EventT[Any], bytes, E]  # a record, one event's bytes in it, and what they parsed to


def _ids_of(sources: Sequence[Source]) -> list[str]:
    return [dead_letter_id(record.message.partition, record.message.offset, raw) for record, raw in sources]


def _sources_of(refused: list[tuple[E, str]], parsed: list[Parsed[E]]) -> list[tuple[Source, str]]:
    """Where the events Redis refused came from, each with its reason."""
    source = {id(event): (record, raw) for record, raw, event in parsed}
    return [(source[id(event)], reason) for event, reason in refused]


def _refused(applied: Isolated[PurchaseEvent, BatchResult],
             good: list[Parsed[PurchaseEvent]]) -> list[tuple[Source, str]]:
    """Where the purchases Redis refused came from (with its reason), and those whose customer's stored totals
    would pass the counter limit: each is dead-lettered and counted once."""
    by_id = {event.event_id: (record, raw) for record, raw, event in good}
    out = _sources_of(applied.refused, good)
    over = {event_id for result in applied.results for event_id in result.refused}
    out += [(by_id[event_id], f"units/amount: the customer's stored totals would pass {COUNTER_LIMIT:,} "
                              "(the stream's counter limit)") for event_id in sorted(over)]
    return out


DeadLetterer = Callable[[faust.types.EventT[Any], str, bytes | None], Awaitable[None]]


async def _parse_or_dead_letter(
    events: Sequence[faust.types.EventT[Any]], model: type[E], dead_letter: DeadLetterer, settings: Settings,
) -> tuple[list[Parsed[E]], list[Source]]:
    """The events that parse (with their records), and the records sent to the dead-letter topic (with the
    reason) instead: malformed, or out of the contract's bounds."""
    parsed: list[Parsed[E]] = []
    dead: list[Source] = []
    bounds, now = settings.event_bounds, datetime.now(UTC)
    for event in events:
        raw = event.value or b""
        outcome = parse_event(model, raw, settings.max_event_bytes, bounds, now)
        if isinstance(outcome, Rejected):
            await dead_letter(event, outcome.detail, raw)
            dead.append((event, raw))
        else:
            parsed.append((event, raw, outcome))
    return parsed, dead


async def _exposure_slices(records: Sequence[faust.types.EventT[Any]], dead_letter: DeadLetterer,
                           settings: Settings, size: int) -> AsyncIterator[list[Parsed[ExposureEvent]]]:
    """The exposures that parse, of records holding one or many (`common.events.exposure_payloads`), in slices of
    whole records holding at least `size` (the last one fewer). One that does not parse is dead-lettered on its
    own, with its reason, and the rest of its record is applied; a record that cannot be read at all is
    dead-lettered whole."""
    part: list[Parsed[ExposureEvent]] = []
    bounds, now = settings.event_bounds, datetime.now(UTC)
    for record in records:
        payloads = exposure_payloads(record.value, settings.max_event_bytes)
        if isinstance(payloads, Rejected):
            await dead_letter(record, payloads.detail, record.value or b"")
            continue
        for raw in payloads:
            outcome = parse_event(ExposureEvent, raw, settings.max_event_bytes, bounds, now)
            if isinstance(outcome, Rejected):
                await dead_letter(record, outcome.detail, raw)
            else:
                part.append((record, raw, outcome))
        await asyncio.sleep(0)  # a turn for the slice being applied: its calls go out after a first round trip
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


async def _ahead(first: T | None, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """`first` (taken from `rest` already, None when `rest` was empty), then the rest."""
    if first is None:
        return
    yield first
    first = None  # not held while the rest is made
    async for item in rest:
        yield item


async def _apply_exposures(writer: ExposureWriter, parsed: Sequence[Parsed[ExposureEvent]]) -> ExposureResult:
    return await writer.apply([event for _, _, event in parsed])


async def _dead_letter(dead_letters: faust.types.TopicT, event: faust.types.EventT[Any], reason: str,
                       raw: bytes | None = None, *, max_raw: int) -> None:
    """`raw`: the letter's payload, when the record holds more than the one event refused (default: the record's
    whole value)."""
    m = event.message
    letter = DeadLetter.of(event.value or b"" if raw is None else raw, reason, m.topic, m.partition, m.offset,
                           max_raw)
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


async def _publish_progress(
    writer: StateWriter, app: faust.App, meter: RateMeter, positions: dict[Any, int], ages: list[float]
) -> int | None:
    """The live counters into Redis; returns the consumer lag (None when unknown)."""
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
    return current_lag


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Blocking: run one worker until SIGINT/SIGTERM."""
    from faust.worker import Worker

    app = create_app(settings)
    settle()  # common.collector
    Worker(app, loglevel=loglevel).execute_from_commandline()

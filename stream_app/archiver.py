"""The archiver: its own consumer group on `purchases`, every valid purchase written once to the Parquet archive
(`common/archive.py`).

Exactly once by event id: a replay re-sends old events at new offsets and a crash redelivers what was not
committed, so offsets cannot tell what is archived. Each event is checked against the ids already in its date
partition (read from the archive on first use, the least recently used partitions dropped beyond a bound) and
against what is buffered. Offsets are committed only after the buffered events are in files that have been
renamed into place; a crash before that redelivers them, and the id check drops what was written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from common.archive import Archive, event_day, events_table
from common.events import EventBounds, PurchaseEvent, Rejected, parse_event
from common.health import beat
from common.settings import Settings

log = logging.getLogger(__name__)
FETCH_RECORDS = 5000
HEARTBEAT_S = 5.0  # `recsys health archive` (a container's healthcheck) reads it


class KnownIds:
    """Event ids already archived, per date partition, read from the archive when a partition is first needed.
    Beyond `max_ids` held, the least recently used partitions are dropped (and read again if needed)."""

    def __init__(self, archive: Archive, max_ids: int) -> None:
        self.archive = archive
        self.max_ids = max_ids
        self.loads = 0
        self._days: OrderedDict[str, set[str]] = OrderedDict()
        self._held = 0

    def of(self, day: str) -> set[str]:
        ids = self._days.get(day)
        if ids is None:
            ids = self.archive.event_ids(day)
            self.loads += 1
            self._days[day] = ids
            self._held += len(ids)
            self._evict(keep=day)
        else:
            self._days.move_to_end(day)
        return ids

    def add(self, day: str, ids: list[str]) -> None:
        """Ids just written; a partition not held is read whole when next needed."""
        held = self._days.get(day)
        if held is not None:
            before = len(held)
            held.update(ids)
            self._held += len(held) - before
            self._evict(keep=day)

    @property
    def held(self) -> int:
        return self._held

    def _evict(self, keep: str) -> None:
        while self._held > self.max_ids and len(self._days) > 1:
            day = next(iter(self._days))
            if day == keep:
                self._days.move_to_end(day)
                continue
            self._held -= len(self._days.pop(day))


@dataclass
class ArchiverCounts:
    consumed: int = 0
    archived: int = 0
    duplicates: int = 0
    invalid: int = 0
    files: int = 0
    flushes: int = 0
    compactions: int = 0


class Archiver:
    """Buffers new valid purchases by date partition and writes them out on `flush`."""

    def __init__(self, archive: Archive, max_known_ids: int, max_event_bytes: int, compact_files: int,
                 bounds: EventBounds | None = None) -> None:
        self.archive = archive
        self.known = KnownIds(archive, max_known_ids)
        self.max_event_bytes = max_event_bytes
        self.bounds = bounds or EventBounds()
        self.compact_files = compact_files
        self.counts = ArchiverCounts()
        self._buffer: dict[str, list[PurchaseEvent]] = {}
        self._buffered_ids: set[str] = set()

    @property
    def buffered(self) -> int:
        return len(self._buffered_ids)

    def add(self, raw: bytes | None) -> None:
        """One record of the topic. Invalid ones are counted only: the stream worker dead-letters them."""
        self.counts.consumed += 1
        event = parse_event(PurchaseEvent, raw, self.max_event_bytes, self.bounds)
        if isinstance(event, Rejected):
            self.counts.invalid += 1
            return
        day = event_day(event)
        if event.event_id in self._buffered_ids or event.event_id in self.known.of(day):
            self.counts.duplicates += 1
            return
        self._buffer.setdefault(day, []).append(event)
        self._buffered_ids.add(event.event_id)

    def flush(self) -> int:
        """Write what is buffered, one file per date partition, each renamed into place; returns events written.
        A partition left with more than `compact_files` files is merged into one."""
        written = 0
        for day, events in sorted(self._buffer.items()):
            self.archive.write(day, events_table(events))
            self.known.add(day, [e.event_id for e in events])
            self.counts.files += 1
            written += len(events)
            if len(self.archive.files(day)) > self.compact_files:
                self.archive.compact(day)
                self.counts.compactions += 1
        self.counts.archived += written
        self.counts.flushes += 1
        self._buffer.clear()
        self._buffered_ids.clear()
        return written


class FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions taken away in a rebalance: flush and commit first, so their new owner starts after what is
    written."""

    def __init__(self, flush: Callable[[], object]) -> None:
        self._flush = flush

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            await self._flush()  # type: ignore[misc]

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("archiver assigned %s", sorted(tp.partition for tp in assigned))


async def restart_wiped_partitions(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Read again from the start of any partition whose log now ends before our position: the local broker
    restarted with an empty log. Kafka would answer such a fetch with OffsetOutOfRange (and the reset policy
    applies); Tansu answers with nothing, so the archiver would wait there for ever. Re-reading is safe: what is
    archived already is dropped by event id."""
    wiped = []
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None and await consumer.position(tp) > end:
            wiped.append(tp)
    if wiped:
        log.warning("archive: the log of %s ends before our position (broker restarted?): reading it again",
                    sorted(tp.partition for tp in wiped))
        await consumer.seek_to_beginning(*wiped)
    return wiped


async def run_archiver(settings: Settings, stop: asyncio.Event) -> ArchiverCounts:
    """Consume until `stop` is set, flushing at least every `archive_flush_s`; a final flush and commit on stop."""
    archive = Archive(settings.archive_location)
    removed = await asyncio.to_thread(archive.clean_leftovers)
    if removed:
        log.warning("archive: deleted %d temporary file(s) left by an interrupted write", removed)
    archiver = Archiver(archive, settings.archive_known_ids_max, settings.max_event_bytes,
                        settings.archive_compact_files, settings.event_bounds)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=settings.archive_group, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=settings.stream_fetch_max_wait_ms,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        rebalance_timeout_ms=int(settings.broker_rebalance_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
    )
    uncommitted = False
    flushing = asyncio.Lock()  # the buffer: the rebalance listener flushes from the consumer's own task

    async def flush_and_commit() -> None:
        nonlocal uncommitted
        async with flushing:
            if not uncommitted:
                return
            started = time.perf_counter()
            written = await asyncio.to_thread(archiver.flush)  # off the loop: heartbeats go on during the write
            await consumer.commit()  # everything consumed is now written or was a duplicate / invalid
            uncommitted = False
        c = archiver.counts
        log.info("archived %d in %.2fs; totals: consumed %d, archived %d, duplicates %d, invalid %d, files %d",
                 written, time.perf_counter() - started, c.consumed, c.archived, c.duplicates, c.invalid, c.files)

    consumer.subscribe([settings.topic_purchases], listener=FlushOnRevoke(flush_and_commit))
    await consumer.start()
    log.info("archiving %s to %s", settings.topic_purchases, archive.uri)
    due = time.monotonic() + settings.archive_flush_s
    beaten = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - beaten >= HEARTBEAT_S:
                c = archiver.counts
                beat(settings.run_dir, "archive", consumed=c.consumed, archived=c.archived, buffered=archiver.buffered)
                beaten = time.monotonic()
            wait_s = max(0.0, min(1.0, due - time.monotonic()))
            batches = await consumer.getmany(timeout_ms=int(wait_s * 1000), max_records=FETCH_RECORDS)
            async with flushing:  # not while a rebalance's flush is writing the buffer out
                for records in batches.values():
                    for record in records:
                        archiver.add(record.value)
                        uncommitted = True
            if archiver.buffered >= settings.archive_flush_rows or time.monotonic() >= due:
                await flush_and_commit()
                due = time.monotonic() + settings.archive_flush_s
                await restart_wiped_partitions(consumer)
        await flush_and_commit()
    finally:
        await consumer.stop()
    return archiver.counts

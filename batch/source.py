"""Training data: the purchase history from a file, the `purchases` topic, the Parquet archive (`common/archive.py`),
or, by default, the topic plus whatever the archive holds that the topic no longer does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition

from batch.master_data import MasterData, join_master_data, read_master_data
from common.archive import Archive
from common.data.load import CUSTOMER_COLUMNS, LINE_COLUMNS, DataOrigin, LoadedData, load_history
from common.data.mapping import load_mapping
from common.data.membership import is_in
from common.data.report import CleaningReport
from common.events import EventBounds, PurchaseEvent, Rejected, parse_event
from common.settings import Settings

# Tansu, the local broker, under-reports end offsets when the last record batch holds several records
# (docs/architecture.md, Batch), so reaching them is not the end: the topic counts as exhausted only after this
# long with nothing new.
DEFAULT_IDLE_S = 2.0
FETCH_RECORDS = 5000


@dataclass
class TopicRead:
    records: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    events: list[PurchaseEvent] = field(default_factory=list)


def from_file(path: Path, preset: str | None, mapping_file: Path | None, customers: Path | None,
              bounds: EventBounds | None = None) -> LoadedData:
    return load_history(path, load_mapping(preset, mapping_file), customers, bounds)


def from_topic(settings: Settings, progress: Callable[[int], None], idle_s: float = DEFAULT_IDLE_S) -> LoadedData:
    """The purchases topic, with the master-data topics (profiles, catalogue, source reports) joined on."""
    read, master = asyncio.run(_read_all(settings, progress, idle_s))
    events = events_frame(read.events)
    report = _report(f"topic {settings.topic_purchases}", read.records, read.invalid, kept=len(events))
    loaded = _loaded(events, report, DataOrigin("topic", settings.topic_purchases, {"lines": len(events)}))
    return join_master_data(loaded, master)


async def _read_all(settings: Settings, progress: Callable[[int], None], idle_s: float
                    ) -> tuple[TopicRead, MasterData]:
    purchases, master = await asyncio.gather(read_topic(settings, progress, idle_s),
                                             read_master_data(settings, idle_s))
    return purchases, master


@dataclass
class ArchiveRead:
    events: pd.DataFrame  # one row per event id, with an `event_id` column
    rows: int  # rows in the files, duplicates included
    uri: str

    @property
    def duplicates(self) -> int:
        return self.rows - len(self.events)


def read_archive(location: str, last_days: int | None = None) -> ArchiveRead:
    """Every archived purchase once (of the newest `last_days` date partitions, if given: the older ones are not
    read at all): the archiver writes each id once, but a crash in the middle of a compaction can leave a copy for
    a while, so repeated ids are dropped here too (the first kept)."""
    archive = Archive(location)
    frame = archive.read(last_days).to_pandas()
    events = frame.drop_duplicates("event_id", keep="first").reset_index(drop=True)
    return ArchiveRead(events=events, rows=len(frame), uri=archive.uri)


def archive_lines(location: str) -> pd.DataFrame:
    """The archive's purchases as canonical lines (LINE_COLUMNS), for any engine that takes a pandas frame; an
    engine that reads Parquet itself (Spark) can read `Archive(location).uri`, ignoring names starting with '.'."""
    return _to_lines(read_archive(location).events)


def from_archive(settings: Settings) -> LoadedData:
    read = read_archive(settings.archive_location, settings.batch_history_days)
    report = _report(f"archive {read.uri}", read.rows, {}, kept=len(read.events))
    return _loaded(read.events, report, DataOrigin("archive", read.uri, {"lines": len(read.events)}))


def from_history(settings: Settings, progress: Callable[[int], None], idle_s: float = DEFAULT_IDLE_S) -> LoadedData:
    """The nightly default. The topic alone while it holds the whole history; once the archive holds purchases the
    topic no longer does (retention expired, or the local broker restarted with an empty log), both, each event
    once."""
    read, master = asyncio.run(_read_all(settings, progress, idle_s))
    topic = events_frame(read.events)
    archive = Archive(settings.archive_location)
    archived = read_archive(settings.archive_location, settings.batch_history_days) if archive.exists() else None
    only_archived = 0 if archived is None else int((~is_in(archived.events["event_id"], topic["event_id"])).sum())
    if archived is None or only_archived == 0:
        report = _report(f"topic {settings.topic_purchases}", read.records, read.invalid, kept=len(topic))
        loaded = _loaded(topic, report, DataOrigin("topic", settings.topic_purchases, {"lines": len(topic)}))
        return join_master_data(loaded, master)
    newer = topic[~is_in(topic["event_id"], archived.events["event_id"])]
    if settings.batch_history_days is not None and len(archived.events):  # the topic's lines of the same window
        since = archived.events["event_time"].max() - pd.Timedelta(days=settings.batch_history_days)
        newer = newer[newer["event_time"] >= since]
    events = pd.concat([archived.events[topic.columns], newer], ignore_index=True)
    source = f"archive {archived.uri} + topic {settings.topic_purchases}"
    report = _report(source, archived.rows + read.records, read.invalid, kept=len(events))
    counts = {"lines": len(events), "from_archive": len(archived.events), "only_in_archive": only_archived,
              "only_in_topic": len(newer)}
    return join_master_data(_loaded(events, report, DataOrigin("archive+topic", source, counts)), master)


def _report(source: str, records: int, invalid: dict[str, int], kept: int) -> CleaningReport:
    report = CleaningReport(source=source, mapping="events", raw_rows=records)
    n_invalid = sum(invalid.values())
    report.record("invalid_event", removed=n_invalid, kept=records - n_invalid)
    report.record("duplicate", removed=records - n_invalid - kept, kept=kept)
    for reason, count in invalid.items():
        report.filled[f"invalid: {reason}"] = count
    return report


def _loaded(events: pd.DataFrame, report: CleaningReport, origin: DataOrigin) -> LoadedData:
    return LoadedData(lines=_to_lines(events), customers=_customers(events), report=report, origin=origin)


def _customers(events: pd.DataFrame) -> pd.DataFrame:
    """Customers known only by their purchases: the customers table's columns, profile fields missing."""
    ids = sorted(set(events["customer_id"]))
    frame = pd.DataFrame({"customer_id": pd.array(ids, dtype="string")})
    for column in ("region", "city", "gender"):
        frame[column] = pd.array([pd.NA] * len(ids), dtype="string")
    frame["birth_date"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    frame["age"] = pd.array([pd.NA] * len(ids), dtype="Int64")
    return frame[CUSTOMER_COLUMNS]


async def read_topic(settings: Settings, progress: Callable[[int], None], idle_s: float) -> TopicRead:
    """Every record of the topic from offset 0, without a consumer group (nothing is committed). Replays put
    the same event on the topic more than once; the event id keeps one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=200)
    await consumer.start()
    read = TopicRead()
    seen: set[str] = set()
    try:
        if settings.topic_purchases not in await consumer.topics():  # also loads the topic's metadata
            return read
        partitions = consumer.partitions_for_topic(settings.topic_purchases) or set()
        assigned = [TopicPartition(settings.topic_purchases, p) for p in sorted(partitions)]
        if not assigned:
            return read
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        quiet_since = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for records in batches.values():
                for record in records:
                    _take(record.value, settings.max_event_bytes, settings.event_bounds, read, seen)
            if any(batches.values()):
                quiet_since = time.monotonic()
                progress(read.records)
            at_end = all([await consumer.position(tp) >= ends[tp] for tp in assigned])
            if at_end and time.monotonic() - quiet_since >= idle_s:
                return read
    finally:
        await consumer.stop()


def _take(raw: bytes | None, max_bytes: int, bounds: EventBounds, read: TopicRead, seen: set[str]) -> None:
    read.records += 1
    parsed = parse_event(PurchaseEvent, raw, max_bytes, bounds)
    if isinstance(parsed, Rejected):
        read.invalid[parsed.counted_as] = read.invalid.get(parsed.counted_as, 0) + 1
    elif parsed.event_id in seen:
        read.duplicates += 1
    else:
        seen.add(parsed.event_id)
        read.events.append(parsed)


def events_frame(events: list[PurchaseEvent]) -> pd.DataFrame:
    """Events as columns, as the archive stores them."""
    return pd.DataFrame({
        "event_id": [e.event_id for e in events],
        "order_id": [e.order_id for e in events],
        "customer_id": [e.customer_id for e in events],
        "product_id": [e.product_id for e in events],
        "category": [e.category for e in events],
        "units": pd.array([e.units for e in events], dtype="int64"),
        "amount": pd.array([e.amount for e in events], dtype="float64"),
        "event_time": pd.to_datetime([e.event_time for e in events], utc=True),
    })


def events_to_lines(events: list[PurchaseEvent]) -> pd.DataFrame:
    return _to_lines(events_frame(events))


def _to_lines(events: pd.DataFrame) -> pd.DataFrame:
    """Event columns -> the canonical line table, in event-time order (ties keep arrival order)."""
    frame = pd.DataFrame(
        {
            "customer_id": events["customer_id"].astype("string"),
            "order_id": events["order_id"].astype("string"),
            "product_id": events["product_id"].astype("string"),
            "category": events["category"].astype("string"),
            "units": events["units"].astype("int64"),
            "amount": events["amount"].astype("float64"),
            "event_time": pd.to_datetime(events["event_time"], utc=True).dt.tz_localize(None),
        }
    )
    frame["product_name"] = frame["product_id"]
    frame = frame.sort_values(["event_time", "order_id"], kind="stable").reset_index(drop=True)
    frame["line_no"] = frame.groupby("order_id", sort=False).cumcount().astype("int64")
    frame["event_time"] = frame["event_time"].astype("datetime64[ns]")
    return frame[LINE_COLUMNS]

"""Training data: the purchase history from a file, or from the `purchases` topic (the system of record)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition

from batch.master_data import MasterData, join_master_data, read_master_data
from common.data.load import CUSTOMER_COLUMNS, LINE_COLUMNS, LoadedData, load_history
from common.data.mapping import load_mapping
from common.data.report import CleaningReport
from common.events import PurchaseEvent, Rejected, parse_event
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


def from_file(path: Path, preset: str | None, mapping_file: Path | None, customers: Path | None) -> LoadedData:
    return load_history(path, load_mapping(preset, mapping_file), customers)


def from_topic(settings: Settings, progress: Callable[[int], None], idle_s: float = DEFAULT_IDLE_S) -> LoadedData:
    """The purchases topic, with the master-data topics (profiles, catalogue, source reports) joined on."""
    read, master = asyncio.run(_read_all(settings, progress, idle_s))
    report = CleaningReport(source=f"topic {settings.topic_purchases}", mapping="events", raw_rows=read.records)
    invalid = sum(read.invalid.values())
    report.record("invalid_event", removed=invalid, kept=read.records - invalid)
    report.record("duplicate", removed=read.duplicates, kept=read.records - invalid - read.duplicates)
    for reason, count in read.invalid.items():
        report.filled[f"invalid: {reason}"] = count
    loaded = LoadedData(lines=events_to_lines(read.events), customers=_customers(read.events), report=report)
    return join_master_data(loaded, master)


async def _read_all(settings: Settings, progress: Callable[[int], None], idle_s: float
                    ) -> tuple[TopicRead, MasterData]:
    purchases, master = await asyncio.gather(read_topic(settings, progress, idle_s),
                                             read_master_data(settings, idle_s))
    return purchases, master


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
                    _take(record.value, settings.max_event_bytes, read, seen)
            if any(batches.values()):
                quiet_since = time.monotonic()
                progress(read.records)
            at_end = all([await consumer.position(tp) >= ends[tp] for tp in assigned])
            if at_end and time.monotonic() - quiet_since >= idle_s:
                return read
    finally:
        await consumer.stop()


def _take(raw: bytes | None, max_bytes: int, read: TopicRead, seen: set[str]) -> None:
    read.records += 1
    parsed = parse_event(PurchaseEvent, raw, max_bytes)
    if isinstance(parsed, Rejected):
        read.invalid[parsed.counted_as] = read.invalid.get(parsed.counted_as, 0) + 1
    elif parsed.event_id in seen:
        read.duplicates += 1
    else:
        seen.add(parsed.event_id)
        read.events.append(parsed)


def events_to_lines(events: list[PurchaseEvent]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([e.customer_id for e in events], dtype="string"),
            "order_id": pd.array([e.order_id for e in events], dtype="string"),
            "product_id": pd.array([e.product_id for e in events], dtype="string"),
            "category": pd.array([e.category for e in events], dtype="string"),
            "units": [e.units for e in events],
            "amount": [e.amount for e in events],
            "event_time": pd.to_datetime([e.event_time for e in events], utc=True).tz_localize(None),
        }
    )
    frame["product_name"] = frame["product_id"]
    frame = frame.sort_values(["event_time", "order_id"], kind="stable").reset_index(drop=True)
    frame["line_no"] = frame.groupby("order_id", sort=False).cumcount().astype("int64")
    frame["units"] = frame["units"].astype("int64")
    frame["event_time"] = frame["event_time"].astype("datetime64[ns]")
    return frame[LINE_COLUMNS]


def _customers(events: list[PurchaseEvent]) -> pd.DataFrame:
    """Customers known only by their purchases: the customers table's columns, profile fields missing."""
    ids = sorted({e.customer_id for e in events})
    frame = pd.DataFrame({"customer_id": pd.array(ids, dtype="string")})
    for column in ("region", "city", "gender"):
        frame[column] = pd.array([pd.NA] * len(ids), dtype="string")
    frame["birth_date"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    frame["age"] = pd.array([pd.NA] * len(ids), dtype="Int64")
    return frame[CUSTOMER_COLUMNS]

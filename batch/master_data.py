"""The master-data topics as the batch reads them: the latest record per key of the customers, products and
data-reports topics (what compaction keeps), joined onto the purchase history read from the purchases topic."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition

from common.data.catalogue import CATALOGUE_COLUMNS, names_of, product_catalogue
from common.data.load import CUSTOMER_COLUMNS, LoadedData, ages_at, consistency
from common.data.membership import is_in
from common.events import CustomerProfile, ProductInfo, Rejected, SourceReport, parse_event
from common.settings import Settings

FETCH_RECORDS = 5000
M = TypeVar("M", CustomerProfile, ProductInfo, SourceReport)


@dataclass
class MasterData:
    profiles: list[CustomerProfile] = field(default_factory=list)
    products: list[ProductInfo] = field(default_factory=list)
    source_reports: list[SourceReport] = field(default_factory=list)
    invalid: dict[str, int] = field(default_factory=dict)


async def read_master_data(settings: Settings, idle_s: float) -> MasterData:
    latest = await read_latest(settings, [settings.topic_customers, settings.topic_products,
                                          settings.topic_data_reports], idle_s)
    master = MasterData()
    master.profiles = _parsed(latest[settings.topic_customers], CustomerProfile, settings, master.invalid)
    master.products = _parsed(latest[settings.topic_products], ProductInfo, settings, master.invalid)
    # Reports can be bigger than one event; they are our own records, so only the oversized check is relaxed.
    master.source_reports = _parsed(latest[settings.topic_data_reports], SourceReport,
                                    settings.model_copy(update={"max_event_bytes": 1 << 24}), master.invalid)
    return master


async def read_latest(settings: Settings, topics: list[str], idle_s: float) -> dict[str, dict[bytes, bytes | None]]:
    """The latest value per key of each topic (None for a tombstone), from offset 0 without a consumer group;
    exhausted when every partition reached its reported end and nothing arrived for `idle_s` (Tansu
    under-reports end offsets, see batch/source.py)."""
    latest: dict[str, dict[bytes, bytes | None]] = {topic: {} for topic in topics}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=200)
    await consumer.start()
    try:
        existing = await consumer.topics()
        assigned = [TopicPartition(topic, p) for topic in topics if topic in existing
                    for p in sorted(consumer.partitions_for_topic(topic) or set())]
        if not assigned:
            return latest
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        quiet_since = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for tp, records in batches.items():
                for record in records:
                    if record.key is not None:
                        latest[tp.topic][record.key] = record.value
            if any(batches.values()):
                quiet_since = time.monotonic()
            at_end = all([await consumer.position(tp) >= ends[tp] for tp in assigned])
            if at_end and time.monotonic() - quiet_since >= idle_s:
                return latest
    finally:
        await consumer.stop()


def _parsed(
    values: Mapping[bytes, bytes | None], model: type[M], settings: Settings, invalid: dict[str, int]
) -> list[M]:
    out = []
    for raw in values.values():
        if raw is None:
            continue  # a tombstone: deleted
        parsed = parse_event(model, raw, settings.max_event_bytes)
        if isinstance(parsed, Rejected):
            reason = f"invalid {model.__name__}: {parsed.counted_as}"
            invalid[reason] = invalid.get(reason, 0) + 1
        else:
            out.append(parsed)
    return out


def join_master_data(loaded: LoadedData, master: MasterData) -> LoadedData:
    """Names from the catalogue onto the lines, profiles as the customers table (ages at the data's end), the
    two tables' consistency and the recorded source reports in the cleaning report."""
    lines = loaded.lines
    table = pd.DataFrame([(p.product_id, p.name, p.category) for p in master.products], columns=CATALOGUE_COLUMNS)
    if not table.empty:
        lines["product_name"] = lines["product_id"].map(names_of(table)).fillna(lines["product_id"]).astype("string")
    report = loaded.report
    for reason, count in master.invalid.items():
        report.filled[reason] = count
    customers = loaded.customers
    if master.profiles:
        customers = profiles_frame(master.profiles, lines["event_time"].max())
        bought = pd.Series(lines["customer_id"].unique())
        report.customers = consistency(bought[~is_in(bought, customers["customer_id"])], customers["customer_id"],
                                       lines) | {"profiles": len(customers),
                                                 "with_purchases": int(is_in(customers["customer_id"], bought).sum())}
    reports = sorted((r.model_dump(mode="json") for r in master.source_reports), key=lambda r: r["recorded_at"])
    return LoadedData(lines=lines, customers=customers, report=report,
                      products=product_catalogue(lines, table if not table.empty else None), source_reports=reports,
                      origin=loaded.origin)


def profiles_frame(profiles: list[CustomerProfile], reference: pd.Timestamp) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": pd.array([p.customer_id for p in profiles], dtype="string"),
        "region": pd.array([p.region for p in profiles], dtype="string"),
        "city": pd.array([p.city for p in profiles], dtype="string"),
        "gender": pd.array([p.gender for p in profiles], dtype="string"),
        "birth_date": pd.to_datetime(pd.Series([p.birth_date for p in profiles], dtype=object)).astype(
            "datetime64[ns]"),
    })
    frame["age"] = ages_at(frame["birth_date"], reference)
    return frame[CUSTOMER_COLUMNS]


"""Master data from a source into its compacted topics, keyed by id: customer profiles (customers), the product
catalogue (products) and the source file's cleaning report (data-reports). Sent before the purchases, and again
whenever the source changes: the latest record per key wins, so a changed city is one new record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from common.data.catalogue import product_catalogue
from common.data.load import LoadedData
from common.events import CustomerProfile, ProductInfo, SourceReport
from common.settings import Settings

TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS
FLUSH_EVERY = 5000


@dataclass
class MasterDataSummary:
    profiles: int = 0
    products: int = 0
    invalid: dict[str, int] = field(default_factory=dict)  # not sent, by what was wrong


def master_topics(settings: Settings) -> list[str]:
    return [settings.topic_customers, settings.topic_products, settings.topic_data_reports]


async def ensure_topics(settings: Settings) -> None:
    """Create the master-data topics compacted (a broker would otherwise auto-create them with deletion)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics([
            NewTopic(name, settings.topic_partitions, 1, topic_configs={"cleanup.policy": "compact"})
            for name in master_topics(settings)
        ])
        failed = [(topic, code, message) for topic, code, message, *_ in response.topic_errors
                  if code not in (0, TOPIC_EXISTS)]
        if failed:
            raise RuntimeError(f"could not create the master-data topics: {failed}")
    finally:
        await admin.close()


def profile_events(customers: pd.DataFrame, invalid: dict[str, int]) -> Iterator[CustomerProfile]:
    """The cleaned customers table as profile events; a row that is not a valid profile is counted, not sent."""
    columns = ["customer_id", "region", "city", "gender", "birth_date"]
    present = customers.reindex(columns=columns)
    for customer_id, region, city, gender, birth in present.itertuples(index=False):
        try:
            yield CustomerProfile.model_validate({
                "customer_id": str(customer_id), "region": _text(region), "city": _text(city),
                "gender": _text(gender), "birth_date": None if pd.isna(birth) else pd.Timestamp(birth).date()})
        except ValidationError as exc:
            _count(invalid, "profile", exc)


def product_events(catalogue: pd.DataFrame, invalid: dict[str, int]) -> Iterator[ProductInfo]:
    for product_id, name, category in catalogue[["product_id", "name", "category"]].itertuples(index=False):
        try:
            yield ProductInfo(product_id=str(product_id), name=str(name), category=str(category or ""))
        except ValidationError as exc:
            _count(invalid, "product", exc)


def source_report(loaded: LoadedData, replayed: dict[str, Any]) -> SourceReport:
    return SourceReport(source=loaded.report.source, recorded_at=datetime.now(UTC),
                        cleaning=loaded.report.to_dict(), replayed=replayed)


async def send_master_data(settings: Settings, loaded: LoadedData, replayed: dict[str, Any]) -> MasterDataSummary:
    """Profiles, catalogue and the cleaning report, each keyed by its id; waits for the broker's acknowledgements."""
    await ensure_topics(settings)
    summary = MasterDataSummary()
    catalogue = loaded.products if loaded.products is not None else product_catalogue(loaded.lines)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1)
    await producer.start()
    try:
        summary.profiles = await _send(producer, settings.topic_customers,
                                       ((p.customer_id, p.to_bytes()) for p in
                                        profile_events(loaded.customers, summary.invalid)))
        summary.products = await _send(producer, settings.topic_products,
                                       ((p.product_id, p.to_bytes()) for p in
                                        product_events(catalogue, summary.invalid)))
        report = source_report(loaded, replayed)
        await _send(producer, settings.topic_data_reports, [(report.source, report.to_bytes())])
    finally:
        await producer.stop()
    return summary


async def _send(producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[str, bytes]]) -> int:
    pending = []
    sent = 0
    for key, value in records:
        pending.append(await producer.send(topic, value=value, key=key.encode()))
        sent += 1
        if len(pending) >= FLUSH_EVERY:
            for future in pending:
                await future
            pending.clear()
    for future in pending:
        await future
    return sent


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


def _count(invalid: dict[str, int], kind: str, error: ValidationError) -> None:
    where = ".".join(str(p) for p in error.errors(include_url=False)[0]["loc"])
    reason = f"{kind}: {where}"
    invalid[reason] = invalid.get(reason, 0) + 1

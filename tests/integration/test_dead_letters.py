"""Every kind of bad event lands in the dead-letter topic with its reason; good events around them apply."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer

from common.events import DeadLetter
from producers.replay import to_events
from stack.scratch import start_worker, stop_worker
from tests.integration.conftest import Isolated
from tests.integration.streamkit import differences, history, wait_for

pytestmark = pytest.mark.integration

GOOD = {
    "event_id": "bad0", "order_id": "1", "customer_id": "c1", "product_id": "p1", "category": "x",
    "units": 1, "amount": 1.0, "event_time": "2023-01-01T00:00:00Z",
}
BAD: dict[str, bytes] = {
    "not JSON": b"{this is not json",
    "not a JSON object": b"[1, 2, 3]",
    "product_id: Field required": json.dumps({k: v for k, v in GOOD.items() if k != "product_id"}).encode(),
    "units: Input should be a valid integer": json.dumps(GOOD | {"units": "2"}).encode(),
    "units: Input should be greater than 0": json.dumps(GOOD | {"units": -3}).encode(),
    "amount": json.dumps(GOOD | {"amount": float("inf")}).encode(),
    "unknown schema version": json.dumps(GOOD | {"schema_version": 2}).encode(),
    "oversized payload": json.dumps(GOOD | {"category": "x" * 100, "padding": "y" * 5000}).encode(),
    # Its letter keeps only the head: the whole payload would not fit in one produce request.
    "oversized payload ": b"z" * 800_000,
    "empty payload": b"",
    # Lines that parse but break the contract's bounds: each would overflow Redis's integers or move the clock.
    "units: 1e+30 is above the limit": json.dumps(GOOD | {"event_id": "huge-units", "units": 10**30}).encode(),
    "amount: 1e+300 is above the limit": json.dumps(GOOD | {"event_id": "huge-amount", "amount": 1e300}).encode(),
    "event_time: 9999-12-31T00:00:00+00:00 is later than": json.dumps(
        GOOD | {"event_id": "far-future", "event_time": "9999-12-31T00:00:00Z"}).encode(),
    "event_time: 0001-01-01T00:00:00+00:00 is before": json.dumps(
        GOOD | {"event_id": "far-past", "event_time": "0001-01-01T00:00:00Z"}).encode(),
}


def test_bad_events_are_dead_lettered_with_reason(isolated: Isolated, tmp_path: Path) -> None:
    settings = isolated.settings
    good_lines: pd.DataFrame = history(tmp_path / "data", customers=50, lines=600).head(200)
    good = [e.to_bytes() for e in to_events(good_lines)]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    payloads = list(good[:100]) + list(BAD.values()) + list(good[100:])
    for i, payload in enumerate(payloads):
        producer.send(settings.topic_purchases, key=f"k{i % 5}".encode(), value=payload)
    producer.flush()
    producer.close()

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        final = wait_for(isolated.redis, isolated.keys, processed=len(good), dead_lettered=len(BAD))
    finally:
        stop_worker(worker)
    assert final["processed"] == len(good) and final["dead_lettered"] == len(BAD)
    assert differences(isolated.redis, isolated.keys, good_lines) == []
    # The stream's clock (what every recency is measured from) is the latest good purchase.
    last_event = int(isolated.redis.hget(isolated.keys.stream_stats(), "last_event_ts") or 0)
    assert last_event == int(good_lines["event_time"].max().timestamp())

    consumer = KafkaConsumer(
        settings.topic_dead_letters, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    letters = [DeadLetter.model_validate_json(record.value) for record in consumer]
    consumer.close()
    assert len(letters) == len(BAD)
    by_raw = {letter.raw: letter for letter in letters}
    for expected_reason, raw in BAD.items():
        letter = by_raw[raw[: settings.dead_letter_max_raw_bytes]]
        assert expected_reason.strip() in letter.reason, (expected_reason, letter.reason)
        assert letter.source_topic == settings.topic_purchases and letter.offset >= 0
        assert letter.raw_size == len(raw) and letter.truncated == (len(raw) > settings.dead_letter_max_raw_bytes)

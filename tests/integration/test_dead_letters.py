"""Every kind of bad event lands in the dead-letter topic with its reason; good events around them apply."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer

from common.events import DeadLetter, ExposureEvent, exposure_record
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


def test_a_bad_exposure_is_dead_lettered_alone_and_the_rest_of_its_record_applied(isolated: Isolated,
                                                                                  tmp_path: Path) -> None:
    settings, keys = isolated.settings, isolated.keys
    shown_at = datetime.now(UTC)
    good = [ExposureEvent(request_id=f"r{i}", customer_id=f"c{i}", experiment="rec-v1", group="control",
                          strategy="best_sellers", model_version="v1", product_ids=["p1"],
                          event_time=shown_at).to_bytes() for i in range(3)]
    bad = json.dumps(json.loads(good[0]) | {"request_id": "r-bad", "group": "a:b"}).encode()
    unreadable = b'[{"request_id": '
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    producer.send(settings.topic_exposures, value=exposure_record([good[0], bad, good[1]]))  # as the API sends
    producer.send(settings.topic_exposures, value=unreadable)
    producer.send(settings.topic_exposures, key=b"c2", value=good[2])  # one exposure per record
    producer.flush()
    producer.close()

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 120
        applied: list[object] = []
        while time.monotonic() < deadline:
            applied = [isolated.redis.zrange(keys.ab_customer_requests("rec-v1", f"c{i}"), 0, -1) for i in range(3)]
            if all(applied):
                break
            time.sleep(0.25)
    finally:
        stop_worker(worker)
    assert applied == [["r0"], ["r1"], ["r2"]]  # not "r-bad", whose customer is c0

    consumer = KafkaConsumer(settings.topic_dead_letters, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    letters = {DeadLetter.model_validate_json(record.value).raw: DeadLetter.model_validate_json(record.value)
               for record in consumer}
    consumer.close()
    alone = json.dumps(json.loads(bad), separators=(",", ":")).encode()  # its own JSON, not the whole record's
    assert sorted(letters) == sorted([alone, unreadable])
    assert letters[alone].reason.startswith("group: String should match pattern")
    assert letters[unreadable].reason.startswith("not JSON")
    assert {letter.source_topic for letter in letters.values()} == {settings.topic_exposures}


def test_a_backlog_of_records_of_many_exposures_is_applied_whole_across_slices(isolated: Isolated,
                                                                             tmp_path: Path) -> None:
    """2,500 exposures in records of 100, waiting before the worker starts: more than one slice of a batch
    (`EXPOSURES_PER_APPLY`), with a bad exposure deep in it. Each good one counts once, in its arm."""
    settings, keys = isolated.settings, isolated.keys
    shown_at = datetime.now(UTC)
    arms = ("control", "treatment")
    good = [ExposureEvent(request_id=f"r{i}", customer_id=f"c{i % 500}", experiment="rec-v1", group=arms[i % 500 % 2],
                          strategy="best_sellers", model_version="v1", product_ids=["p1", "p2"],
                          event_time=shown_at).to_bytes() for i in range(2500)]
    bad = json.dumps(json.loads(good[0]) | {"request_id": "r-bad", "product_ids": "p1"}).encode()
    payloads = [*good[:1700], bad, *good[1700:]]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for start in range(0, len(payloads), 100):
        producer.send(settings.topic_exposures, value=exposure_record(payloads[start:start + 100]))
    producer.flush()
    producer.close()

    def exposures_counted() -> list[int]:
        return [int(isolated.redis.hget(keys.ab_group_counters("rec-v1", arm), "exposures") or 0) for arm in arms]

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and sum(exposures_counted()) < 2500:
            time.sleep(0.25)
        time.sleep(1)  # anything counted twice would show by now
    finally:
        stop_worker(worker)
    assert exposures_counted() == [1250, 1250]
    customers = [int(isolated.redis.hget(keys.ab_group_counters("rec-v1", arm), "exposed_customers") or 0)
                 for arm in arms]
    assert customers == [250, 250]
    assert sorted(isolated.redis.zrange(keys.ab_customer_requests("rec-v1", "c7"), 0, -1)) == sorted(
        f"r{i}" for i in range(7, 2500, 500))

    consumer = KafkaConsumer(settings.topic_dead_letters, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    letters = [DeadLetter.model_validate_json(record.value) for record in consumer]
    consumer.close()
    assert [letter.reason.split(":")[0] for letter in letters] == ["product_ids"]

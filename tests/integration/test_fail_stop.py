"""A batch that hits an unexpected error stops the worker with the batch uncommitted; `--restart-on-failure`
starts it again; once the cause is fixed, a restart applies the batch."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer

from producers.replay import to_events
from stack.scratch import start_worker, stop_worker
from tests.integration.conftest import Isolated
from tests.integration.streamkit import differences, history, stats, wait_for

pytestmark = pytest.mark.integration
HUGE = b"z" * 800_000  # dead-lettered as an oversized payload


def test_a_failing_batch_stops_the_worker_and_is_applied_once_fixed(isolated: Isolated, tmp_path: Path) -> None:
    settings = isolated.settings
    lines: pd.DataFrame = history(tmp_path / "data", customers=50, lines=600).head(300)
    good = [e.to_bytes() for e in to_events(lines)]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for i, payload in enumerate([*good[:150], HUGE, *good[150:]]):
        producer.send(settings.topic_purchases, key=f"k{i % 5}".encode(), value=payload)
    producer.flush()
    producer.close()

    # Misconfigured: letters keep the whole payload, so this one is too big to produce and dead-lettering fails.
    misconfigured = settings.model_copy(update={"dead_letter_max_raw_bytes": len(HUGE)})
    log = tmp_path / "misconfigured.log"
    worker = start_worker(misconfigured, log, "--restart-on-failure")
    try:
        deadline = time.monotonic() + 150
        while log.read_text().count("starting it again") < 2 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
    finally:
        stop_worker(worker)
    text = log.read_text()
    assert text.count("starting it again") >= 2, text[-2000:]  # failed, was started again, failed again
    assert "stopping the worker after an unexpected error" in text and "MessageSizeTooLarge" in text
    assert worker.returncode is not None and stats(isolated.redis, isolated.keys).get("dead_lettered", 0) == 0

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        wait_for(isolated.redis, isolated.keys, processed=len(good), dead_lettered=1)
    finally:
        stop_worker(worker)
    assert differences(isolated.redis, isolated.keys, lines) == []
    consumer = KafkaConsumer(
        settings.topic_dead_letters, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    sizes = [len(record.value) for record in consumer]
    consumer.close()
    assert len(sizes) == 1 and sizes[0] < 100_000

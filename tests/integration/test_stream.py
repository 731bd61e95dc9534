"""The stream against the real broker and Redis: ground truth, crash, replays, broker wipe, rebalance."""

from __future__ import annotations

import json
import random
import signal
import threading
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaProducer

from producers.replay import Pace
from stack import LocalStack
from stack.scratch import stack_settings, start_worker, stop_worker
from tests.integration.conftest import Isolated
from tests.integration.streamkit import differences, history, send, stats, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return history(tmp_path_factory.mktemp("history"))


def test_state_equals_ground_truth_and_a_second_replay_changes_nothing(
    isolated: Isolated, lines: pd.DataFrame, tmp_path: Path
) -> None:
    worker = start_worker(isolated.settings, tmp_path / "worker.log")
    try:
        assert send(isolated.settings, lines) == len(lines)
        wait_for(isolated.redis, isolated.keys, processed=len(lines))
        assert differences(isolated.redis, isolated.keys, lines) == []

        send(isolated.settings, lines)  # the whole history again
        final = wait_for(isolated.redis, isolated.keys, duplicates=len(lines))
    finally:
        stop_worker(worker)
    assert final["processed"] == len(lines)
    assert differences(isolated.redis, isolated.keys, lines) == []


# The hostile lines of issue 22: each parses, and each would overflow Redis's integers or move the stream's clock.
LINE: dict[str, object] = {"order_id": "p", "customer_id": "c1", "product_id": "p1", "units": 1, "amount": 1.0,
                           "event_time": "2023-01-01T00:00:00Z"}
HOSTILE: list[dict[str, object]] = [{"units": 10**30}, {"amount": 1e300}, {"event_time": "9999-12-31T00:00:00Z"},
                                    {"event_time": "0001-01-01T00:00:00Z"}]
POISON = [json.dumps(LINE | {"event_id": f"poison-{i}"} | change).encode() for i, change in enumerate(HOSTILE)]
POISON += [b"{not json", b""]


def test_sigkill_mid_stream_then_restart(isolated: Isolated, lines: pd.DataFrame, tmp_path: Path) -> None:
    """Chaos: a SIGKILL mid-stream (redelivery of what was not committed) with poison lines in the stream; every
    good event applied once, every poison line dead-lettered and counted once, the clock unmoved."""
    log = tmp_path / "worker.log"
    worker = start_worker(isolated.settings, log)
    sender = threading.Thread(target=send, args=(isolated.settings, lines, Pace(max_rate=6000)))
    sender.start()
    kill_at = random.Random().randint(len(lines) // 5, len(lines) * 3 // 5)
    try:
        wait_for(isolated.redis, isolated.keys, processed=kill_at // 2)
        producer = KafkaProducer(bootstrap_servers=isolated.settings.bootstrap_servers)
        for payload in POISON:
            producer.send(isolated.settings.topic_purchases, key=b"c1", value=payload)
        producer.flush()
        producer.close()
        wait_for(isolated.redis, isolated.keys, processed=kill_at)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = stats(isolated.redis, isolated.keys)["processed"]
        assert killed_at < len(lines)
        worker = start_worker(isolated.settings, log)
        sender.join()
        wait_for(isolated.redis, isolated.keys, processed=len(lines), timeout_s=180)
    finally:
        sender.join()
        stop_worker(worker)
    final = wait_for(isolated.redis, isolated.keys, dead_lettered=len(POISON))
    assert final["processed"] == len(lines) and final["dead_lettered"] == len(POISON)
    assert differences(isolated.redis, isolated.keys, lines) == []
    last_event = int(isolated.redis.hget(isolated.keys.stream_stats(), "last_event_ts") or 0)
    assert last_event == int(lines["event_time"].max().timestamp())


def test_rebalance_when_workers_join_and_leave(isolated: Isolated, lines: pd.DataFrame, tmp_path: Path) -> None:
    first = start_worker(isolated.settings, tmp_path / "first.log")
    sender = threading.Thread(target=send, args=(isolated.settings, lines, Pace(max_rate=5000)))
    sender.start()
    second = None
    try:
        wait_for(isolated.redis, isolated.keys, processed=len(lines) // 5)
        second = start_worker(isolated.settings, tmp_path / "second.log")  # joins: partitions move
        wait_for(isolated.redis, isolated.keys, processed=len(lines) // 2)
        stop_worker(first)  # leaves: its partitions move to the second
        sender.join()
        wait_for(isolated.redis, isolated.keys, processed=len(lines), timeout_s=180)
    finally:
        sender.join()
        stop_worker(first)
        if second is not None:
            stop_worker(second)
    assert stats(isolated.redis, isolated.keys)["processed"] == len(lines)
    assert differences(isolated.redis, isolated.keys, lines) == []


def test_broker_restart_wipes_the_log_and_new_events_still_count(lines: pd.DataFrame, tmp_path: Path) -> None:
    """Offsets start again from 0 after the wipe; a guard keyed on offsets would drop the new slice."""
    import redis

    from common.keys import KeyLayout

    settings = stack_settings(tmp_path / "run")
    local = LocalStack(settings)
    local.up()
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    first_slice, second_slice = lines.iloc[: len(lines) * 3 // 5], lines.iloc[len(lines) * 2 // 5:]
    overlap = len(first_slice) + len(second_slice) - len(lines)
    try:
        worker = start_worker(settings, tmp_path / "worker.log")
        send(settings, first_slice)
        wait_for(client, keys, processed=len(first_slice))
        stop_worker(worker)

        local.down(only=["broker"])
        local.up()  # a fresh, empty log: offsets restart at 0

        worker = start_worker(settings, tmp_path / "worker.log")
        send(settings, second_slice)
        final = wait_for(client, keys, processed=len(lines), duplicates=overlap)
        stop_worker(worker)
        assert final["processed"] == len(lines)
        assert final["duplicates"] == overlap
        assert differences(client, keys, lines) == []
    finally:
        client.close()
        local.down()

"""Nothing lost on restart. On a stack of its own (it kills the servers): replay part of a history, `kill -9` the
broker, Redis, the stream worker and the archiver, start them again (the broker with an empty log: the local one
keeps memory only), replay an overlapping slice. Then Redis equals the pandas ground truth, the archive holds each
event once, the nightly run reads archive + topic and says so, and a batch from the archive equals a batch from
the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import RunResult, run
from batch.source import from_archive, from_file, from_history, read_archive
from batch.stages import Stages
from common.data.load import LoadedData
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import settings_env, stack_settings, start_archiver, start_worker, stop_worker
from stack.system import RECSYS
from tests.integration.streamkit import differences, history, send, stats

pytestmark = pytest.mark.integration
IDLE_BEFORE_KILL_S = 1.5  # appendfsync everysec: a crash may lose the last second of writes


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[Settings, LocalStack]]:
    settings = stack_settings(tmp_path / "run", archive_flush_s=0.5)
    local = LocalStack(settings)
    local.up()
    yield settings, local
    local.down()


def wait_until_archived(settings: Settings, rows: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        archived = read_archive(settings.archive_location).rows
        if archived >= rows:
            return archived
        time.sleep(0.25)
    raise AssertionError(f"the archive holds {archived} rows, expected {rows}")


def wait_until_idle(client: redis.Redis, keys: KeyLayout, processed: int, timeout_s: float = 120) -> None:
    """Every event applied and no batch written for IDLE_BEFORE_KILL_S."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last_batch_at = float(client.hget(keys.stream_stats(), "last_batch_at") or 0)
        if stats(client, keys).get("processed", 0) >= processed and time.time() - last_batch_at > IDLE_BEFORE_KILL_S:
            return
        time.sleep(0.1)
    raise AssertionError(f"stream not idle with {processed} processed: {stats(client, keys)}")


def batch(loaded: LoadedData, out: Path) -> RunResult:
    return run(loaded, EvaluationOptions(case_study=False), out, None, KeyLayout("unused"), Stages(),
               progress=lambda _m: None)


def test_kill_everything_restart_and_replay_an_overlap(own_stack: tuple[Settings, LocalStack], tmp_path: Path) -> None:
    settings, local = own_stack
    lines = history(tmp_path / "shop", customers=300, lines=6000)
    first, second = lines.iloc[: len(lines) * 6 // 10], lines.iloc[len(lines) * 4 // 10:]
    overlap = len(first) + len(second) - len(lines)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    logs = tmp_path / "logs"
    logs.mkdir()

    worker, archiver = start_worker(settings, logs / "worker.log"), start_archiver(settings, logs / "archiver.log")
    try:
        send(settings, first)
        wait_until_idle(client, keys, processed=len(first))
        assert wait_until_archived(settings, len(first)) == len(first)
        servers = {s.name: s.pid for s in local.status()}
        for pid in (*servers.values(), worker.pid, archiver.pid):
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        worker.wait()
        archiver.wait()
        assert not any(s.running for s in local.status())

        assert all(s.healthy for s in local.up())
        assert differences(client, keys, first) == []  # Redis came back from its append-only file
        worker, archiver = start_worker(settings, logs / "worker.log"), start_archiver(settings, logs / "archiver.log")
        send(settings, second)  # to a broker whose log and consumer offsets are gone
        wait_until_idle(client, keys, processed=len(lines))
        wait_until_archived(settings, len(lines))
        time.sleep(1 + 2 * settings.archive_flush_s)  # an overlapping event written twice would be there by now
    finally:
        stop_worker(worker)
        stop_worker(archiver)

    assert differences(client, keys, lines) == []
    counters = stats(client, keys)
    assert (counters["processed"], counters["duplicates"]) == (len(lines), overlap)
    archived = read_archive(settings.archive_location)
    assert (archived.rows, archived.duplicates) == (len(lines), 0)  # each event once, in the files themselves
    assert set(archived.events["order_id"]) == set(lines["order_id"])

    nightly = from_history(settings, progress=lambda _n: None, idle_s=1.0)  # the topic holds only `second`
    assert nightly.origin is not None and nightly.origin.kind == "archive+topic"
    assert nightly.origin.counts == {"lines": len(lines), "from_archive": len(lines),
                                     "only_in_archive": len(lines) - len(second), "only_in_topic": 0}

    from_file_lines = from_file(tmp_path / "shop", "case_study", None, None)
    archive_run, file_run = batch(from_archive(settings), tmp_path / "a"), batch(from_file_lines, tmp_path / "f")
    assert archive_run.evaluation.table == file_run.evaluation.table
    for name in ("segments.csv", f"{archive_run.evaluation.served}/model.json"):
        assert (archive_run.folder / name).read_text() == (file_run.folder / name).read_text(), name
    card = json.loads((archive_run.folder / "model_card.json").read_text())
    assert card["source"]["kind"] == "archive" and card["source"]["lines"] == len(lines)
    assert card["source"]["window"] == {"start": str(lines["event_time"].min()), "end": str(lines["event_time"].max())}
    # The archive holds purchases; product names are master data (the catalogue topic), joined on elsewhere.
    pd.testing.assert_frame_equal(from_archive(settings).lines.drop(columns="product_name"),
                                  from_file_lines.lines.drop(columns="product_name"))

    client.flushdb()  # Redis lost everything: the archive rebuilds it through the stream
    worker = start_worker(settings, logs / "worker.log")
    try:
        replayed = subprocess.run([RECSYS, "replay", "--from-archive"], env=settings_env(settings),
                                  capture_output=True, text=True, timeout=300)
        assert replayed.returncode == 0 and f"{len(lines):,} events" in replayed.stdout, replayed.stderr[-2000:]
        wait_until_idle(client, keys, processed=len(lines))
    finally:
        stop_worker(worker)
    assert differences(client, keys, lines) == []
    client.close()


def test_stack_down_then_up_keeps_redis_and_reset_deletes_it(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "run")
    local = LocalStack(settings)
    client = redis.Redis.from_url(settings.redis_url)
    local.up()
    try:
        client.set("kept", "yes")
        local.down()
        local.up()
        assert client.get("kept") == b"yes"
        (Path(settings.archive_location) / "date=2024-01-01").mkdir(parents=True)
        reset = subprocess.run([RECSYS, "stack", "reset", "--yes"], env=settings_env(settings), capture_output=True,
                               text=True, timeout=120)
        assert reset.returncode == 0 and "deleted:" in reset.stdout, reset.stderr
        assert not Path(settings.archive_location).exists()
        local.up()
        assert client.get("kept") is None
    finally:
        local.down()
        client.close()

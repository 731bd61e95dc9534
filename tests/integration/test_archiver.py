"""`recsys archive` on a stack of its own: every purchase once whatever is replayed, and it carries on by itself
after the local broker restarts with an empty log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.source import read_archive
from common.settings import Settings
from stack import LocalStack
from stack.scratch import stack_settings, start_archiver, stop_worker
from tests.integration.streamkit import history, send

pytestmark = pytest.mark.integration


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[Settings, LocalStack]]:
    settings = stack_settings(tmp_path / "run", archive_flush_s=0.5)
    local = LocalStack(settings)
    local.up()
    yield settings, local
    local.down()


def archived_when_settled(settings: Settings, at_least: int, timeout_s: float = 60) -> tuple[int, int]:
    """(rows, distinct ids) once at least `at_least` rows are there and two more flushes changed nothing."""
    deadline = time.monotonic() + timeout_s
    rows = -1
    while time.monotonic() < deadline:
        read = read_archive(settings.archive_location)
        if read.rows >= at_least and read.rows == rows:
            return read.rows, len(read.events)
        rows = read.rows if read.rows >= at_least else -1
        time.sleep(1 + 2 * settings.archive_flush_s)
    raise AssertionError(f"the archive holds {rows} rows, expected at least {at_least}")


def test_replays_and_a_broker_restart_archive_each_purchase_once(
    own_stack: tuple[Settings, LocalStack], tmp_path: Path,
) -> None:
    settings, local = own_stack
    lines = history(tmp_path / "shop", customers=100, lines=1500)
    old, new = lines.iloc[:1000], lines.iloc[1000:]  # after the restart the log ends before the old positions
    archiver = start_archiver(settings, tmp_path / "archiver.log")
    try:
        send(settings, old)
        send(settings, old.iloc[:300])  # a replay of the beginning, at new offsets
        assert archived_when_settled(settings, len(old)) == (len(old), len(old))
        local.down(only=["broker"])
        local.up()  # memory storage: the log and the committed offsets are gone
        send(settings, new)
        send(settings, old.iloc[-100:])  # old purchases arriving again in the new log
        assert archived_when_settled(settings, len(lines)) == (len(lines), len(lines))
    finally:
        stop_worker(archiver)
    # Two ways back, depending on timing: the consumer kept its place and found the log ending before it
    # ("reading it again", restart_wiped_partitions), or it lost its session, rejoined the new broker's empty group
    # and started from the beginning. Either way every purchase is archived once (above).
    log = (tmp_path / "archiver.log").read_text()
    assert "reading it again" in log or log.count("archiver assigned") >= 2
    assert set(read_archive(settings.archive_location).events["order_id"]) == set(lines["order_id"])

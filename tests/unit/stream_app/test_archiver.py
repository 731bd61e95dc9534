"""The archiver's exactly-once-by-event-id logic against a real archive folder: replays, redeliveries after a
crash, invalid records, the bounded memory of known ids, and compaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import TopicPartition

from common.archive import Archive, events_table
from common.events import PurchaseEvent
from stream_app.archiver import Archiver, KnownIds, restart_wiped_partitions

DAY0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def raw(n: int, day: int = 0) -> bytes:
    return PurchaseEvent(event_id=f"e{n}", order_id=f"o{n}", customer_id=f"c{n % 5}", product_id="p1", units=1,
                         amount=2.0, event_time=DAY0 + timedelta(days=day)).to_bytes()


def archiver(folder: Path, max_known_ids: int = 1000, compact_files: int = 32) -> Archiver:
    return Archiver(Archive(str(folder)), max_known_ids, 4096, compact_files)


def archived_ids(folder: Path) -> list[str]:
    ids: list[str] = Archive(str(folder)).read().column("event_id").to_pylist()
    return ids


def test_a_replay_adds_nothing_and_invalid_records_are_only_counted(tmp_path: Path) -> None:
    first = archiver(tmp_path)
    for n in range(10):
        first.add(raw(n, day=n % 3))
    first.add(b"not json")
    first.add(raw(3, day=0))  # a redelivery inside the same buffer
    assert first.buffered == 10 and first.flush() == 10
    for n in range(10):  # the whole history replayed at new offsets
        first.add(raw(n, day=n % 3))
    assert first.flush() == 0
    c = first.counts
    assert (c.consumed, c.archived, c.duplicates, c.invalid, c.files) == (22, 10, 11, 1, 3)
    assert sorted(archived_ids(tmp_path)) == sorted(f"e{n}" for n in range(10))


def test_after_a_crash_a_new_archiver_drops_what_is_already_written(tmp_path: Path) -> None:
    crashed = archiver(tmp_path)
    for n in range(6):
        crashed.add(raw(n))
    crashed.flush()  # written, but the offsets were never committed: all six come again, with two new ones
    restarted = archiver(tmp_path)
    for n in range(8):
        restarted.add(raw(n))
    assert restarted.flush() == 2 and restarted.counts.duplicates == 6
    assert sorted(archived_ids(tmp_path)) == sorted(f"e{n}" for n in range(8))


def test_known_ids_are_bounded_and_reread_when_needed(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path))
    for day in range(4):
        archive.write(f"2024-05-0{day + 1}", events_table([PurchaseEvent.from_bytes(raw(10 * day + i, day))
                                                           for i in range(3)]))
    known = KnownIds(archive, max_ids=6)
    for day in range(4):
        assert len(known.of(f"2024-05-0{day + 1}")) == 3
    assert known.held == 6 and known.loads == 4
    assert "e1" in known.of("2024-05-01") and known.loads == 5  # dropped earlier, read again
    known.add("2024-05-01", ["e99"])
    assert "e99" in known.of("2024-05-01") and known.loads == 5


def test_a_partition_with_too_many_files_is_compacted(tmp_path: Path) -> None:
    small = archiver(tmp_path, compact_files=3)
    for n in range(5):
        small.add(raw(n))
        small.flush()
    assert small.counts.compactions == 1
    assert len(Archive(str(tmp_path)).files("2024-05-01")) == 2  # 4 merged into 1, then the fifth
    assert sorted(archived_ids(tmp_path)) == [f"e{n}" for n in range(5)]


class WipedBrokerConsumer:
    """The consumer calls `restart_wiped_partitions` makes, on a broker that restarted with an empty log for
    partition 1 (its end is now behind our position) while partition 0 kept up."""

    def __init__(self) -> None:
        self.ends = {TopicPartition("purchases", 0): 40, TopicPartition("purchases", 1): 3}
        self.positions = {TopicPartition("purchases", 0): 40, TopicPartition("purchases", 1): 25}
        self.rewound: list[TopicPartition] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> int:
        return self.ends[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.rewound.extend(partitions)


def test_a_partition_whose_log_ends_before_our_position_is_read_again() -> None:
    consumer = WipedBrokerConsumer()
    wiped = asyncio.run(restart_wiped_partitions(consumer))
    assert wiped == consumer.rewound == [TopicPartition("purchases", 1)]

"""The Parquet archive on a local folder: date partitions, files visible only once complete, leftovers of a crashed
write deleted, compaction that never loses a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from common.archive import SCHEMA, Archive, event_day, events_table, first_of_each_id
from common.events import PurchaseEvent

START = datetime(2024, 1, 31, 22, 0, tzinfo=UTC)


def purchase(n: int, hours: float = 0.0) -> PurchaseEvent:
    return PurchaseEvent(event_id=f"e{n}", order_id=f"o{n}", customer_id="c1", product_id=f"p{n % 3}",
                         category="tea", units=n % 4 + 1, amount=round(1.1 * n, 2),
                         event_time=START + timedelta(hours=hours))


def test_partitions_by_utc_event_date_and_reads_back_every_value(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path / "archive"))
    assert not archive.exists() and archive.read().num_rows == 0
    events = [purchase(n, hours=n) for n in range(5)]  # 22:00 .. 02:00 next day
    by_day: dict[str, list[PurchaseEvent]] = {}
    for event in events:
        by_day.setdefault(event_day(event), []).append(event)
    for day, group in by_day.items():
        archive.write(day, events_table(group))
    assert archive.days() == ["2024-01-31", "2024-02-01"]
    assert archive.event_ids("2024-01-31") == {"e0", "e1"}
    table = archive.read()
    assert table.schema == SCHEMA
    back = [PurchaseEvent(**row) for row in table.to_pylist()]
    assert back == events


def test_a_temporary_file_is_invisible_and_deleted_as_a_leftover(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path))
    final = archive.write("2024-02-01", events_table([purchase(1)]))
    crashed = Path(archive.partition("2024-02-01")) / ".part-crashed.parquet"
    pq.write_table(events_table([purchase(2)]), crashed)
    assert archive.files("2024-02-01") == [final]
    assert archive.event_ids("2024-02-01") == {"e1"} and archive.read().num_rows == 1
    assert archive.clean_leftovers() == 1
    assert not crashed.exists() and Path(final).exists()


def test_compaction_merges_files_and_drops_repeated_ids_keeping_the_first(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path))
    day = "2024-02-01"
    archive.write(day, events_table([purchase(1), purchase(2)]))
    archive.write(day, events_table([purchase(3)]))
    archive.write(day, events_table([purchase(2), purchase(4)]))  # e2 again: as a crashed compaction would leave
    result = archive.compact(day)
    assert (result.files_before, result.rows, result.duplicates) == (3, 4, 1)
    assert len(archive.files(day)) == 1
    assert archive.read().column("event_id").to_pylist() == ["e1", "e2", "e3", "e4"]


def test_first_of_each_id_keeps_order() -> None:
    table = pa.table({"event_id": ["b", "a", "b", "c", "a"], "n": [0, 1, 2, 3, 4]})
    assert first_of_each_id(table).column("n").to_pylist() == [0, 1, 3]


def test_a_file_url_is_a_pyarrow_filesystem_location(tmp_path: Path) -> None:
    archive = Archive(f"file://{tmp_path}/by-url")
    archive.write("2024-02-01", events_table([purchase(1)]))
    assert Archive(str(tmp_path / "by-url")).event_ids("2024-02-01") == {"e1"}
    assert archive.uri == str(tmp_path / "by-url")  # a local path, which Spark reads as well


def test_the_newest_days_are_read_without_opening_older_partitions(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path / "archive"))
    for n in range(10):  # one event a day, 2024-01-31 .. 2024-02-09
        event = purchase(n, hours=24 * n)
        archive.write(event_day(event), events_table([event]))
    recent = archive.read(last_days=3)
    assert [row["event_id"] for row in recent.to_pylist()] == ["e7", "e8", "e9"]
    for path in archive.files("2024-01-31"):
        Path(path).write_bytes(b"not parquet")  # an old partition the window never opens
    assert archive.read(last_days=3).num_rows == 3

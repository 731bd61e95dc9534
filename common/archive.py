"""The purchase archive: every valid purchase once, as Parquet partitioned by event date
(`<root>/date=YYYY-MM-DD/part-*.parquet`), in a local folder or anywhere pyarrow opens from a URL (s3://, gs://,
hdfs://, file://).

Files appear whole. Each is written under a name starting with '.' and then moved into place: readers skip such
names (pyarrow datasets and Spark ignore names starting with '.' or '_'), a local or HDFS move is an atomic rename,
and an object store's copy becomes visible only once complete. Leftover temporary files of a crashed writer are
deleted when the archiver starts. The archiver (`stream_app/archiver.py`) writes; the batch reads
(`batch/source.py`).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common.events import PurchaseEvent

PARTITION = "date"
HIDDEN_PREFIXES = (".", "_")
SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("order_id", pa.string()),
    ("customer_id", pa.string()),
    ("product_id", pa.string()),
    ("category", pa.string()),
    ("units", pa.int64()),
    ("amount", pa.float64()),
    ("event_time", pa.timestamp("us", tz="UTC")),
])


def event_day(event: PurchaseEvent) -> str:
    """The date partition of an event: its UTC event date."""
    return event.event_time.astimezone(UTC).date().isoformat()


def open_location(location: str) -> tuple[pafs.FileSystem, str]:
    """A URL through pyarrow's filesystems; anything else is a local folder."""
    if "://" in location:
        filesystem, path = pafs.FileSystem.from_uri(location)
        return filesystem, path.rstrip("/")
    return pafs.LocalFileSystem(), str(Path(location).resolve())


def events_table(events: list[PurchaseEvent]) -> pa.Table:
    return pa.table({
        "event_id": [e.event_id for e in events],
        "order_id": [e.order_id for e in events],
        "customer_id": [e.customer_id for e in events],
        "product_id": [e.product_id for e in events],
        "category": [e.category for e in events],
        "units": [e.units for e in events],
        "amount": [e.amount for e in events],
        "event_time": [e.event_time for e in events],
    }, schema=SCHEMA)


@dataclass(frozen=True)
class Compaction:
    day: str
    files_before: int
    rows: int
    duplicates: int


class Archive:
    """One archive location. Not safe for two writers at once (one archiver per location)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.filesystem, self.root = open_location(location)
        self._local = isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def uri(self) -> str:
        """Where another engine (Spark) reads the whole archive: a folder path or the URL it was given."""
        return self.root if self._local else self.location

    def partition(self, day: str) -> str:
        return f"{self.root}/{PARTITION}={day}"

    def exists(self) -> bool:
        return bool(self.days())

    def days(self) -> list[str]:
        """The date partitions present, oldest first."""
        prefix = f"{PARTITION}="
        return sorted(info.base_name[len(prefix):] for info in self._list(self.root)
                      if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix))

    def files(self, day: str) -> list[str]:
        """The visible (complete) files of one date partition, in the order they were written."""
        return sorted(info.path for info in self._list(self.partition(day))
                      if info.type == pafs.FileType.File and not info.base_name.startswith(HIDDEN_PREFIXES))

    def event_ids(self, day: str) -> set[str]:
        ids: set[str] = set()
        for path in self.files(day):
            column = pq.read_table(path, columns=["event_id"], filesystem=self.filesystem).column(0)
            ids.update(column.to_pylist())
        return ids

    def write(self, day: str, table: pa.Table) -> str:
        """A new file in the day's partition, visible only once complete. Names sort in the order written."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        folder = self.partition(day)
        self.filesystem.create_dir(folder, recursive=True)
        temporary, final = f"{folder}/.{name}", f"{folder}/{name}"
        pq.write_table(table, temporary, filesystem=self.filesystem)
        if self._local:
            _fsync(temporary)
        self.filesystem.move(temporary, final)
        if self._local:
            _fsync(folder)  # the rename itself survives a machine crash
        return final

    def clean_leftovers(self) -> int:
        """Delete temporary files a crashed writer left behind; returns how many."""
        removed = 0
        for day in self.days():
            for info in self._list(self.partition(day)):
                if info.type == pafs.FileType.File and info.base_name.startswith("."):
                    self.filesystem.delete_file(info.path)
                    removed += 1
        return removed

    def compact(self, day: str) -> Compaction:
        """Merge a partition's files into one (duplicate ids dropped). The merged file is moved into place before
        the old ones are deleted, so a crash in between leaves duplicates (which readers drop and the next
        compaction removes), never a gap."""
        files = self.files(day)
        merged = pa.concat_tables([pq.read_table(path, filesystem=self.filesystem, schema=SCHEMA)
                                   for path in files]) if files else SCHEMA.empty_table()
        unique = first_of_each_id(merged)
        if len(files) > 1:
            self.write(day, unique)
            for path in files:
                self.filesystem.delete_file(path)
        return Compaction(day, len(files), unique.num_rows, merged.num_rows - unique.num_rows)

    def dataset(self) -> ds.Dataset:
        return ds.dataset(self.root, filesystem=self.filesystem, format="parquet",
                          schema=SCHEMA.append(pa.field(PARTITION, pa.string())),
                          partitioning=ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive"),
                          ignore_prefixes=list(HIDDEN_PREFIXES))

    def read(self, last_days: int | None = None) -> pa.Table:
        """Every archived row, partitions oldest first and files in the order written (duplicates kept). With
        `last_days`, only the partitions of that many days up to the newest one: the others are never opened."""
        days = self.days()
        if not days:
            return SCHEMA.empty_table()
        if last_days is None:
            return self.dataset().to_table(columns=SCHEMA.names)
        since = (date.fromisoformat(days[-1]) - timedelta(days=last_days - 1)).isoformat()
        return self.dataset().to_table(columns=SCHEMA.names, filter=ds.field(PARTITION) >= since)

    def _list(self, folder: str) -> list[pafs.FileInfo]:
        infos: list[pafs.FileInfo] = self.filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        return infos


def first_of_each_id(table: pa.Table) -> pa.Table:
    """The table without repeated event ids, each id's first row kept, in the original order."""
    if table.num_rows == 0:
        return table
    index = pa.array(range(table.num_rows), type=pa.int64())
    first = (pa.table({"event_id": table.column("event_id"), "row": index})
             .group_by("event_id", use_threads=False).aggregate([("row", "min")])
             .column("row_min"))
    return table.take(first.take(pc.sort_indices(first)))


def _fsync(path: str) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

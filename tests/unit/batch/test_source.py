"""The archive as a batch source: the same lines as the topic gives for the same events, each event once, and the
model card naming the source and window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from batch.evaluation.reports import source_card
from batch.source import archive_lines, events_to_lines, read_archive
from common.archive import Archive, event_day, events_table
from common.data.load import LINE_COLUMNS, DataOrigin
from common.events import PurchaseEvent

START = datetime(2024, 6, 1, 23, 0, tzinfo=UTC)


def history() -> list[PurchaseEvent]:
    return [PurchaseEvent(event_id=f"e{n}", order_id=f"o{n // 3}", customer_id=f"c{n % 4}",
                          product_id=f"p{n % 5}", category="tea" if n % 2 else "", units=n % 3 + 1,
                          amount=round(0.37 * n + 1, 2), event_time=START + timedelta(minutes=40 * (n // 3)))
            for n in range(30)]


def write(folder: Path, events: list[PurchaseEvent]) -> None:
    archive = Archive(str(folder))
    by_day: dict[str, list[PurchaseEvent]] = {}
    for event in events:
        by_day.setdefault(event_day(event), []).append(event)
    for day, group in by_day.items():
        archive.write(day, events_table(group))


def test_archive_lines_equal_the_topic_lines_for_the_same_events(tmp_path: Path) -> None:
    events = history()
    write(tmp_path, events[:17])  # two flushes: an order and a day split across files
    write(tmp_path, events[17:])
    from_archive = archive_lines(str(tmp_path))
    assert list(from_archive.columns) == LINE_COLUMNS
    pd.testing.assert_frame_equal(from_archive, events_to_lines(events))


def test_repeated_ids_are_read_once(tmp_path: Path) -> None:
    events = history()
    write(tmp_path, events)
    write(tmp_path, events[5:9])  # as a compaction interrupted between its rename and its deletes leaves them
    read = read_archive(str(tmp_path))
    assert (read.rows, len(read.events), read.duplicates) == (34, 30, 4)
    pd.testing.assert_frame_equal(archive_lines(str(tmp_path)), events_to_lines(events))


def test_the_model_card_names_source_location_window_and_counts() -> None:
    window = {"start": "2024-06-01 23:00:00", "end": "2024-06-02 05:40:00"}
    origin = DataOrigin("archive+topic", "archive /a + topic purchases", {"lines": 30, "only_in_archive": 20})
    assert source_card(origin, window) == {"kind": "archive+topic", "location": "archive /a + topic purchases",
                                           "window": window, "lines": 30, "only_in_archive": 20}

from __future__ import annotations

from datetime import UTC, datetime

from batch.schedule import next_run_after


def test_later_today_or_tomorrow() -> None:
    assert next_run_after(datetime(2026, 1, 5, 1, 0, tzinfo=UTC), "02:00") == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    assert next_run_after(datetime(2026, 1, 5, 2, 0, tzinfo=UTC), "02:00") == datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
    assert next_run_after(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "00:30") == datetime(
        2027, 1, 1, 0, 30, tzinfo=UTC)

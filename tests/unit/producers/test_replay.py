from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from common.archive import Archive, events_table
from common.events import PurchaseEvent
from producers.replay import Pace, Pacer, archived_events, select, to_events


def test_pacer_maps_event_time_to_wall_time() -> None:
    now = [100.0]
    pacer = Pacer(Pace(speed=86400), clock=lambda: now[0])
    assert pacer.delay(0) == 0
    assert pacer.delay(86400) == 1.0  # a day of history per second
    now[0] = 101.5
    assert pacer.delay(86400) == 0


def test_pacer_caps_the_rate() -> None:
    pacer = Pacer(Pace(max_rate=10), clock=lambda: 0.0)
    delays = [pacer.delay(0) for _ in range(3)]
    assert delays == [0.0, 0.1, 0.2]


def test_unpaced_never_waits() -> None:
    pacer = Pacer(Pace(), clock=lambda: 0.0)
    assert {pacer.delay(ts) for ts in (0, 1e6, 5)} == {0.0}


def test_events_have_stable_ids_and_select_filters() -> None:
    lines = pd.DataFrame({
        "customer_id": ["a", "b"], "order_id": ["1", "2"], "line_no": [0, 0], "product_id": ["x", "y"],
        "category": ["k", "k"], "units": [1, 2], "amount": [1.5, 2.5],
        "event_time": pd.to_datetime(["2023-01-01", "2023-02-01"]),
    })
    first = [e.event_id for e in to_events(lines)]
    assert first == [e.event_id for e in to_events(lines)]
    assert len(select(lines, start=datetime(2023, 1, 15))) == 1
    assert len(select(lines, limit=1)) == 1


def test_archived_events_come_back_once_in_event_time_order_with_their_own_ids(tmp_path: Path) -> None:
    def event(event_id: str, hour: int) -> PurchaseEvent:
        return PurchaseEvent(event_id=event_id, order_id=f"o{hour}", customer_id="c", product_id="p", units=1,
                             amount=1.0, event_time=datetime(2024, 3, 1, hour, tzinfo=UTC))

    archive = Archive(str(tmp_path))
    archive.write("2024-03-01", events_table([event("client-id-9", 9), event("a", 3)]))
    archive.write("2024-03-01", events_table([event("a", 3), event("b", 5)]))  # "a" twice: read once
    assert [e.event_id for e in archived_events(str(tmp_path))] == ["a", "b", "client-id-9"]
    window = archived_events(str(tmp_path), start=datetime(2024, 3, 1, 4), until=datetime(2024, 3, 1, 9))
    assert [e.event_id for e in window] == ["b"]
    assert archived_events(str(tmp_path), limit=1)[0] == event("a", 3)

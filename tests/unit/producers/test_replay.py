from datetime import datetime

import pandas as pd

from producers.replay import Pace, Pacer, select, to_events


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

import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from common.events import ExposureEvent, PurchaseEvent, Rejected, parse_event
from common.keys import KeyLayout
from producers.replay import Pace, Pacer, select, to_events
from stream_app.exposures import exposure_row
from stream_app.lua import EXPOSURE_FIELDS, PURCHASE_FIELDS, lua_source
from stream_app.meter import RateMeter, freshness_summary, lag
from stream_app.state import GLOBAL_KEYS, HEADER_ARGS, KEYS_PER_CUSTOMER, batch_call, to_cents


def _event(i: int, customer: str = "c1") -> PurchaseEvent:
    return PurchaseEvent(
        event_id=f"e{i}", order_id="o1", customer_id=customer, product_id=f"p{i}", category="k", units=2,
        amount=10.05, event_time=datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_batch_call_groups_events_by_customer() -> None:
    keys = KeyLayout("t")
    events = [_event(1), _event(2, "c2"), _event(3)]
    call_keys, args = batch_call(keys, events, ["d1"], recent_n=5, retention_s=99, latest_n=7, experiment="x",
                                 attribution_s=600)
    assert len(call_keys) == GLOBAL_KEYS + 1 + 2 * KEYS_PER_CUSTOMER  # one day key, two customers
    assert call_keys[GLOBAL_KEYS] == keys.product_popularity_day("20230102")
    assert call_keys[GLOBAL_KEYS + 1] == keys.customer_rfm("c1")
    assert call_keys[GLOBAL_KEYS + 1 + KEYS_PER_CUSTOMER] == keys.customer_rfm("c2")
    assert call_keys[GLOBAL_KEYS + KEYS_PER_CUSTOMER - 2: GLOBAL_KEYS + KEYS_PER_CUSTOMER + 1] == [
        keys.ab_customer_exposures("x", "c1"), keys.ab_customer_purchases("x", "c1"),
        keys.ab_customer_converted("x", "c1")]
    assert args[:HEADER_ARGS + 1] == [GLOBAL_KEYS, KEYS_PER_CUSTOMER, 2, 1, 5, 99, 7, 600, 1, "d1"]
    assert len(args) == HEADER_ARGS + 2
    payload = json.loads(str(args[-1]))
    assert [cid for cid, _ in payload] == ["c1", "c2"]
    first = dict(zip(PURCHASE_FIELDS, payload[0][1][0], strict=True))
    assert first | {"latest": ""} == {"event_id": "e1", "order_id": "o1", "product_id": "p1", "category": "k",
                                      "units": 2, "cents": 1005, "ts": 1672628645, "day": 1, "latest": ""}
    assert json.loads(first["latest"])["product_id"] == "p1"
    assert [row[0] for row in payload[0][1]] == ["e1", "e3"]


def test_exposure_rows_follow_the_field_table() -> None:
    exposure = ExposureEvent(request_id="r1", customer_id="c1", experiment="x", group="treatment", strategy="model",
                             model_version="v1", product_ids=["p1", "p2"],
                             event_time=datetime(2023, 1, 2, tzinfo=UTC))
    assert dict(zip(EXPOSURE_FIELDS, exposure_row(exposure), strict=True)) == {
        "request_id": "r1", "customer_id": "c1", "group": "treatment", "ts": 1672617600,
        "product_ids": ["p1", "p2"]}


@pytest.mark.parametrize(("table", "fields"), [("P", PURCHASE_FIELDS), ("X", EXPOSURE_FIELDS)])
def test_scripts_read_only_fields_the_table_names(table: str, fields: tuple[str, ...]) -> None:
    """A misspelt field would read as nil inside Redis; every `P.name` / `X.name` in the Lua must exist."""
    used = set()
    for name in ("count_first", "attribution", "apply_purchases", "apply_exposures"):
        used |= set(re.findall(rf"\b{table}\.([a-z_]+)", lua_source(name)))
    assert used and used <= set(fields), used - set(fields)


def test_cents_are_exact() -> None:
    assert to_cents(0.1) + to_cents(0.2) == 30
    assert to_cents(15.30) == 1530
    assert to_cents(20952000.0) == 2_095_200_000


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


def test_rate_meter() -> None:
    now = [0.0]
    meter = RateMeter(window_s=10, clock=lambda: now[0])
    for _ in range(5):
        meter.add(100)
        now[0] += 1
    assert meter.rate == 100.0


def test_lag_sums_partitions_and_admits_unknown() -> None:
    assert lag({"p0": 10, "p1": 5}, {"p0": 4, "p1": 4}) == 5 + 0
    assert lag({"p0": None}, {"p0": 4}) is None


def test_freshness_summary() -> None:
    summary = freshness_summary([float(i) for i in range(1, 101)])
    assert summary == {"freshness_p50_ms": 50.5, "freshness_p99_ms": 100.0}


def test_oversized_payload_is_rejected_before_parsing() -> None:
    assert parse_event(PurchaseEvent, b"x" * 11, max_bytes=10) == Rejected(
        "oversized", "oversized payload (11 bytes > 10)")

"""POST /events/purchases body parsing: the stream's contract per line, ids derived for retries, every bad line
named by index and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.services.ingest import InvalidPurchases, body_schema, parse_purchases
from common.events import EventBounds, purchase_event_id

BOUNDS = EventBounds()

LINE = {"order_id": "o-1", "customer_id": "c-1", "product_id": "p-1", "category": "tea", "units": 2,
        "amount": 7.5, "event_time": "2024-03-01T09:30:00Z", "line_no": 0}


def parse(body: Any, max_lines: int = 1000) -> list[Any]:
    return parse_purchases(json.dumps(body).encode(), max_lines, 4096, BOUNDS)


def errors(body: Any, max_lines: int = 1000) -> list[dict[str, Any]]:
    with pytest.raises(InvalidPurchases) as caught:
        parse(body, max_lines)
    return [e.detail() for e in caught.value.errors]


def test_one_object_or_a_list_and_ids_are_derived_as_the_replay_derives_them() -> None:
    one = parse(LINE)
    assert len(one) == 1 and one[0].event_id == purchase_event_id("o-1", "p-1", 0)
    many = parse([LINE, LINE | {"product_id": "p-2", "line_no": 1}, LINE | {"event_id": "client-id-7"}])
    assert [e.event_id for e in many] == [purchase_event_id("o-1", "p-1", 0), purchase_event_id("o-1", "p-2", 1),
                                          "client-id-7"]
    assert many[1].units == 2 and many[1].event_time.isoformat() == "2024-03-01T09:30:00+00:00"


def test_a_retried_body_gets_the_same_ids() -> None:
    body = [LINE | {"line_no": n, "product_id": f"p-{n}"} for n in range(5)]
    assert [e.event_id for e in parse(body)] == [e.event_id for e in parse(body)]


@pytest.mark.parametrize(("change", "field"), [
    ({"units": 0}, "units"),
    ({"units": "2"}, "units"),  # strict, as on the stream: a number sent as text is malformed
    ({"amount": -1}, "amount"),
    ({"customer_id": "has space"}, "customer_id"),
    ({"event_time": "yesterday"}, "event_time"),
    ({"order_id": 17}, "order_id"),  # the id cannot be derived: the contract names the field
    ({"product_id": None}, "product_id"),
])
def test_a_bad_line_is_named_by_index_and_field(change: dict[str, Any], field: str) -> None:
    found = errors([LINE, LINE | change])
    assert len(found) == 1 and found[0]["loc"] == ["body", 1, field] and found[0]["type"] == "invalid_field"
    assert field in found[0]["msg"]


def test_without_event_id_the_line_number_is_required() -> None:
    found = errors([{k: v for k, v in LINE.items() if k != "line_no"}, LINE | {"line_no": -1},
                    LINE | {"line_no": True}])
    assert [e["loc"] for e in found] == [["body", i, "line_no"] for i in range(3)]
    assert "retried request gets the same event id" in found[0]["msg"]


def test_every_bad_line_is_reported() -> None:
    found = errors([LINE | {"units": 0}, LINE, LINE | {"amount": "x"}, 5])
    assert [e["loc"] for e in found] == [["body", 0, "units"], ["body", 2, "amount"], ["body", 3]]
    assert found[2]["type"] == "not_object"


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "body is not JSON"),
    (b'{"amount": NaN}', "body is not JSON"),
    (b"[]", "the list is empty"),
    (b'"text"', "a purchase object or a list of them"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_a_bad_body_is_named(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPurchases) as caught:
        parse_purchases(body, 10, 4096, BOUNDS)
    (error,) = caught.value.errors
    assert error.detail()["loc"] == ["body"] and message in error.message


def test_at_most_max_lines() -> None:
    assert len(parse([LINE | {"line_no": n} for n in range(3)], max_lines=3)) == 3
    (error,) = errors([LINE | {"line_no": n} for n in range(4)], max_lines=3)
    assert "at most 3 purchases" in error["msg"]


def test_an_oversized_line_is_refused_like_on_the_stream() -> None:
    (error,) = errors([LINE | {"category": "x" * 100}, LINE | {"padding": "y" * 5000}])
    assert error["loc"] == ["body", 1] and error["type"] == "oversized"


def test_the_documented_body_lets_the_event_id_be_left_out() -> None:
    schema = body_schema(1000, BOUNDS)
    line, many = schema["oneOf"]
    assert "event_id" not in line["required"] and {"order_id", "customer_id", "units"} <= set(line["required"])
    assert "line_no" in line["properties"] and many["maxItems"] == 1000
    assert line["properties"]["units"]["maximum"] == BOUNDS.max_units


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"units": 10**30}, "units", "above the limit of 1,000,000"),
    ({"amount": 1e300}, "amount", "above the limit of 1,000,000,000"),
    ({"event_time": "9999-12-31T00:00:00Z"}, "event_time", "later than the receiver's clock"),
    ({"event_time": "0001-01-01T00:00:00Z"}, "event_time", "before 2000-01-01"),
])
def test_a_line_out_of_bounds_is_named_and_nothing_is_accepted(change: dict[str, Any], field: str, words: str) -> None:
    (error,) = errors([LINE, LINE | {"line_no": 1} | change])
    assert error["loc"] == ["body", 1, field] and error["type"] == "out_of_bounds"
    assert words in error["msg"]

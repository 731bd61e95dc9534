import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from pydantic import ValidationError

from common.events import (
    MAX_EXPOSURES_PER_RECORD,
    CustomerProfile,
    DeadLetter,
    EventBounds,
    ExposureEvent,
    PurchaseEvent,
    Rejected,
    describe_validation_error,
    exposure_payloads,
    exposure_record,
    parse_event,
    purchase_event_id,
)

GOOD = {
    "event_id": "e1", "order_id": "36260001", "customer_id": "a" * 32, "product_id": "101",
    "category": "Galletas", "units": 2, "amount": 15030.0, "event_time": "2023-01-05T00:00:00Z",
}


def test_round_trip() -> None:
    event = PurchaseEvent.from_bytes(json.dumps(GOOD).encode())
    again = PurchaseEvent.from_bytes(event.to_bytes())
    assert again == event
    assert again.event_time == datetime(2023, 1, 5, tzinfo=UTC)


def test_naive_time_is_utc() -> None:
    event = PurchaseEvent.from_bytes(json.dumps(GOOD | {"event_time": "2023-01-05T10:00:00"}).encode())
    assert event.event_time.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"units": -1}, "units"),
        ({"units": 0}, "units"),
        ({"units": "2"}, "units"),
        ({"amount": "NaN"}, "amount"),
        ({"schema_version": 2}, "schema_version"),
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "x" * 65}, "customer_id"),
        ({"event_time": "yesterday"}, "event_time"),
    ],
)
def test_invalid_purchases_are_rejected_with_the_field(change: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PurchaseEvent.from_bytes(json.dumps(GOOD | change).encode())
    assert describe_validation_error(caught.value).startswith(where)


def test_non_finite_amount_in_json() -> None:
    raw = json.dumps(GOOD).replace("15030.0", "Infinity").encode()
    with pytest.raises(ValidationError, match="amount"):
        PurchaseEvent.from_bytes(raw)


def test_missing_field() -> None:
    body = dict(GOOD)
    del body["product_id"]
    with pytest.raises(ValidationError) as caught:
        PurchaseEvent.from_bytes(json.dumps(body).encode())
    assert describe_validation_error(caught.value) == "product_id: Field required"


def test_event_id_is_deterministic_and_line_specific() -> None:
    assert purchase_event_id("1", "2", 0) == purchase_event_id("1", "2", 0)
    assert purchase_event_id("1", "2", 0) != purchase_event_id("1", "2", 1)
    assert purchase_event_id("1", "23", 0) != purchase_event_id("12", "3", 0)


def test_dead_letter_keeps_raw_bytes() -> None:
    letter = DeadLetter.of(b"\xffnot json", "not JSON", "purchases", 3, 42, max_raw=100)
    again = DeadLetter.model_validate_json(letter.to_bytes())
    assert again.raw == b"\xffnot json" and again.partition == 3 and again.offset == 42
    assert again.raw_size == 9 and not again.truncated


def test_dead_letter_keeps_the_head_of_a_huge_payload_and_its_size() -> None:
    letter = DeadLetter.of(b"abcdef" * 1000, "oversized payload", "purchases", 0, 7, max_raw=4)
    again = DeadLetter.model_validate_json(letter.to_bytes())
    assert again.raw == b"abcd" and again.raw_size == 6000 and again.truncated


@pytest.mark.parametrize("group", ["cust", "groups", "a:b", "a.b", "", "x" * 33])
def test_an_exposures_arm_is_a_name_the_key_layout_can_hold(group: str) -> None:
    with pytest.raises(ValidationError):
        ExposureEvent(request_id="r", customer_id="c", experiment="x", group=group, strategy="s",
                      model_version="v1", product_ids=[], event_time=datetime.now(UTC))


@pytest.mark.parametrize(
    ("raw", "code", "field", "detail_starts"),
    [
        (b"", "empty", None, "empty payload"),
        (None, "empty", None, "empty payload"),
        (b"x" * 5000, "oversized", None, "oversized payload (5000 bytes > 4096)"),
        (b"{not json", "not_json", None, "not JSON: "),
        (b"[1, 2]", "not_object", None, "not a JSON object"),
        (json.dumps(GOOD | {"schema_version": 2}).encode(), "unknown_schema_version", "schema_version",
         "unknown schema version: schema_version"),
        (json.dumps(GOOD | {"units": 0}).encode(), "invalid_field", "units", "units: Input should be greater than 0"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "order_id"}).encode(), "invalid_field", "order_id",
         "order_id: Field required"),
    ],
)
def test_parse_event_rejects_with_a_code_and_the_field(
    raw: bytes | None, code: str, field: str | None, detail_starts: str
) -> None:
    rejected = parse_event(PurchaseEvent, raw, max_bytes=4096)
    assert isinstance(rejected, Rejected)
    assert (rejected.code, rejected.field) == (code, field)
    assert rejected.detail.startswith(detail_starts)
    assert rejected.counted_as == (code if field is None else f"{code} ({field})")


def test_parse_event_returns_the_event_of_the_model_asked_for() -> None:
    raw = json.dumps(GOOD).encode()
    assert parse_event(PurchaseEvent, raw, 4096) == PurchaseEvent.from_bytes(raw)
    exposure = {"request_id": "r1", "customer_id": "c1", "experiment": "x", "group": "control", "strategy": "s",
                "model_version": "v1", "product_ids": ["p1"], "event_time": "2023-01-05T00:00:00Z"}
    parsed = parse_event(ExposureEvent, json.dumps(exposure).encode(), 4096)
    assert isinstance(parsed, ExposureEvent) and parsed.product_ids == ["p1"]
    rejected = parse_event(ExposureEvent, json.dumps(exposure | {"group": "a:b"}).encode(), 4096)
    assert isinstance(rejected, Rejected) and rejected.field == "group"


def test_oversized_payload_is_rejected_before_parsing() -> None:
    assert parse_event(PurchaseEvent, b"x" * 11, max_bytes=10) == Rejected(
        "oversized", "oversized payload (11 bytes > 10)")


def test_profiles_accept_known_genders_and_iso_dates_only() -> None:
    good = parse_event(CustomerProfile, b'{"customer_id": "c1", "gender": "F", "birth_date": "1990-01-31"}', 4096)
    assert isinstance(good, CustomerProfile) and str(good.birth_date) == "1990-01-31"
    bad_gender = parse_event(CustomerProfile, b'{"customer_id": "c1", "gender": "X"}', 4096)
    assert isinstance(bad_gender, Rejected) and bad_gender.field == "gender"
    bad_date = parse_event(CustomerProfile, b'{"customer_id": "c1", "birth_date": "31/01/1990"}', 4096)
    assert isinstance(bad_date, Rejected) and bad_date.field == "birth_date"


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("change", "field"), [
    ({"units": 10**30}, "units"),
    ({"units": 1_000_001}, "units"),
    ({"amount": 1e300}, "amount"),
    ({"amount": 1e9 + 0.01}, "amount"),
    ({"event_time": "9999-12-31T00:00:00Z"}, "event_time"),
    ({"event_time": (NOW + timedelta(hours=1, seconds=1)).isoformat()}, "event_time"),
    ({"event_time": "0001-01-01T00:00:00Z"}, "event_time"),
    ({"event_time": "1999-12-31T23:59:59Z"}, "event_time"),
])
def test_a_line_out_of_bounds_is_rejected_naming_the_field(change: dict[str, object], field: str) -> None:
    rejected = parse_event(PurchaseEvent, json.dumps(GOOD | change).encode(), 4096, EventBounds(), NOW)
    assert isinstance(rejected, Rejected) and rejected.code == "out_of_bounds" and rejected.field == field
    assert rejected.detail.startswith(f"{field}: ")


def test_a_line_at_the_bounds_is_accepted() -> None:
    edge = GOOD | {"units": 1_000_000, "amount": 1e9, "event_time": (NOW + timedelta(hours=1)).isoformat()}
    assert isinstance(parse_event(PurchaseEvent, json.dumps(edge).encode(), 4096, EventBounds(), NOW), PurchaseEvent)
    old = GOOD | {"event_time": "2000-01-01T00:00:00Z"}
    assert isinstance(parse_event(PurchaseEvent, json.dumps(old).encode(), 4096, EventBounds(), NOW), PurchaseEvent)


def test_exposures_are_bounded_in_time_and_their_experiment_follows_the_id_pattern() -> None:
    exposure = {"request_id": "r1", "customer_id": "c1", "experiment": "rec-v1", "group": "control",
                "strategy": "best_sellers", "model_version": "v", "product_ids": ["p1"],
                "event_time": "9999-01-01T00:00:00Z"}
    rejected = parse_event(ExposureEvent, json.dumps(exposure).encode(), 4096, EventBounds(), NOW)
    assert isinstance(rejected, Rejected) and rejected.field == "event_time"
    spaced = exposure | {"experiment": "a:b*", "event_time": "2026-01-01T00:00:00Z"}
    rejected = parse_event(ExposureEvent, json.dumps(spaced).encode(), 4096, EventBounds(), NOW)
    assert isinstance(rejected, Rejected) and rejected.field == "experiment"


EXPOSURE = {"request_id": "r1", "customer_id": "c1", "experiment": "rec-v1", "group": "control",
            "strategy": "best_sellers", "model_version": "v1", "product_ids": ["p1"],
            "event_time": "2024-01-01T00:00:00Z"}


def test_a_record_of_exposures_gives_each_ones_own_json_back() -> None:
    first, second = json.dumps(EXPOSURE).encode(), json.dumps(EXPOSURE | {"request_id": "r2"}).encode()
    payloads = exposure_payloads(exposure_record([first, second]), 4096)
    assert [json.loads(p) for p in cast(list[bytes], payloads)] == [json.loads(first), json.loads(second)]
    assert exposure_payloads(first, 4096) == [first]  # one exposure per record, as other producers send it
    assert exposure_payloads(None, 4096) == [b""]  # and parse_event says why that is no exposure


@pytest.mark.parametrize(("raw", "code", "detail_starts"), [
    (b"[{\"request_id\": ", "not_json", "not JSON"),
    (b" []", "empty", "an empty array of exposures"),
    (exposure_record([b"{}"] * (MAX_EXPOSURES_PER_RECORD + 1)), "oversized",
     f"{MAX_EXPOSURES_PER_RECORD + 1} exposures"),
    (b"[" + b" " * (64 * MAX_EXPOSURES_PER_RECORD) + b"]", "oversized", "oversized record of exposures"),
])
def test_an_unreadable_record_of_exposures_is_refused_whole(raw: bytes, code: str, detail_starts: str) -> None:
    refused = exposure_payloads(raw, 64)
    assert isinstance(refused, Rejected) and refused.code == code and refused.detail.startswith(detail_starts)

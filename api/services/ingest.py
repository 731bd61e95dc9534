"""POST /events/purchases: a request body -> validated purchase events, by the stream's own contract
(`common.events.parse_event` on each line), with the event id derived when the client sends an order line
number instead."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.adapters.purchases import BrokerUnavailable
from api.state import ApiState
from common.events import EventBounds, PurchaseEvent, Rejected, parse_event, purchase_event_id

ERRORS_SHOWN = 20
BODY_SLACK_BYTES = 65_536  # brackets, separators and whitespace around the lines


@dataclass(frozen=True)
class LineError:
    index: int | None  # the line in the request; None: the body as a whole
    field: str | None
    message: str
    code: str

    def detail(self) -> dict[str, Any]:
        """One entry in the shape of FastAPI's own validation errors."""
        location: list[str | int] = ["body"]
        if self.index is not None:
            location.append(self.index)
        if self.field:
            location += self.field.split(".")
        return {"loc": location, "msg": self.message, "type": self.code}


class InvalidPurchases(Exception):
    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


class BodyTooLarge(Exception):
    pass


def body_schema(max_lines: int, bounds: EventBounds) -> dict[str, Any]:
    """The request body in the OpenAPI document: one purchase, or a list of them, within the default bounds."""
    line = PurchaseEvent.model_json_schema()
    line["properties"]["event_id"]["description"] = "Optional: derived from order_id, product_id and line_no."
    line["properties"]["line_no"] = {"type": "integer", "minimum": 0,
                                     "description": "The line's number in its order; required without event_id."}
    line["required"] = [name for name in line["required"] if name != "event_id"]
    line["properties"]["units"]["maximum"] = bounds.max_units
    line["properties"]["amount"]["maximum"] = bounds.max_amount
    return {"oneOf": [line, {"type": "array", "items": line, "minItems": 1, "maxItems": max_lines}]}


async def read_body(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The whole body, refused as soon as it passes `max_bytes` (never held whole in memory beyond that)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body over {max_bytes:,} bytes")
    return bytes(body)


def max_body_bytes(max_lines: int, max_event_bytes: int) -> int:
    return max_lines * max_event_bytes + BODY_SLACK_BYTES


def parse_purchases(body: bytes, max_lines: int, max_event_bytes: int, bounds: EventBounds) -> list[PurchaseEvent]:
    """All lines, or InvalidPurchases naming each bad line (index) and field: nothing is accepted from a request
    with a bad line, so the client fixes it and sends the whole request again. Each line is checked against the
    contract's bounds (units, amount, event time) as the stream worker checks it."""
    lines = _lines(body, max_lines)
    events: list[PurchaseEvent] = []
    errors: list[LineError] = []
    now = datetime.now(UTC)
    for index, line in enumerate(lines):
        outcome = parse_line(line, max_event_bytes, bounds, now)
        if isinstance(outcome, Rejected):
            errors.append(LineError(index, outcome.field, outcome.detail, outcome.code))
        else:
            events.append(outcome)
    if errors:
        raise InvalidPurchases(errors[:ERRORS_SHOWN])
    return events


def parse_line(line: object, max_event_bytes: int, bounds: EventBounds, now: datetime) -> PurchaseEvent | Rejected:
    if isinstance(line, dict) and "event_id" not in line:
        line_no = line.get("line_no")
        if isinstance(line_no, bool) or not isinstance(line_no, int) or line_no < 0:
            return Rejected("invalid_field", "line_no: required when event_id is not given: the line's number in its "
                                             "order (0, 1, ...), so a retried request gets the same event id",
                            "line_no")
        order_id, product_id = line.get("order_id"), line.get("product_id")
        if isinstance(order_id, str) and isinstance(product_id, str):
            line = line | {"event_id": purchase_event_id(order_id, product_id, line_no)}
        else:
            line = line | {"event_id": "underivable"}  # so the contract names the bad order_id / product_id
    raw = json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode()
    return parse_event(PurchaseEvent, raw, max_event_bytes, bounds, now)


def _lines(body: bytes, max_lines: int) -> list[object]:
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPurchases([LineError(None, None, f"body is not JSON: {exc}", "not_json")]) from None
    except RecursionError:  # a deeply nested body: no purchase is shaped like that
        raise InvalidPurchases([LineError(None, None, "body is nested too deeply to be a purchase or a list of them",
                                          "not_object")]) from None
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list):
        raise InvalidPurchases([LineError(None, None, "body: a purchase object or a list of them", "not_object")])
    if not payload:
        raise InvalidPurchases([LineError(None, None, "body: the list is empty", "empty")])
    if len(payload) > max_lines:
        raise InvalidPurchases([LineError(None, None, f"body: at most {max_lines:,} purchases per request, got "
                                                      f"{len(payload):,}", "too_many")])
    return payload


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


class NotAccepted(Exception):
    """The broker did not acknowledge every line: nothing of the request counts as accepted."""


async def send_purchases(state: ApiState, events: list[PurchaseEvent]) -> None:
    """Every line on the purchases topic, acknowledged by the broker (acks=all), or `NotAccepted`."""
    try:
        await state.purchases.send(events)
    except BrokerUnavailable as exc:
        raise NotAccepted(str(exc)) from None

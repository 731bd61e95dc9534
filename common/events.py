"""Event schemas on the wire (JSON on Kafka, key = customer id)."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

ID_MAX_LEN = 64
EXPERIMENT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"  # experiment names become part of Redis key names
# Names the A/B key layout uses beside experiments (`ab:cust:...`, `ab:experiments`, `ab:ended`): an experiment
# with one of them would share keys with every customer's purchases or the registry.
RESERVED_EXPERIMENT_NAMES = frozenset({"cust", "experiments", "ended", "plans", "live"})
# An arm's name becomes part of its experiment's key names (`ab:<experiment>:<arm>:counters`), beside the
# experiment's own keys (`ab:<experiment>:groups`, `...:revenue`, `...:cust:<customer>:...`).
ARM_PATTERN = r"^[A-Za-z0-9_\-]{1,32}$"
RESERVED_ARM_NAMES = frozenset({"cust", "groups", "revenue", "pre", "propensity", "weights"})


def experiment_name(value: str) -> str:
    if value in RESERVED_EXPERIMENT_NAMES:
        raise ValueError(f"{value!r} is reserved by the key layout; pick another experiment name")
    return value


def arm_name(value: str) -> str:
    if value in RESERVED_ARM_NAMES:
        raise ValueError(f"{value!r} is reserved by the key layout; pick another arm name")
    return value


ArmName = Annotated[str, Field(pattern=ARM_PATTERN), AfterValidator(arm_name)]


def _utc(value: datetime) -> datetime:
    """Event times are compared across sources, so a naive time is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LEN, pattern=r"^[A-Za-z0-9_.\-]+$")]
UtcTime = Annotated[datetime, AfterValidator(_utc)]


class _Event(BaseModel):
    # strict: a number sent as a string (or a bool as a number) is a malformed event, not something to coerce.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class PurchaseEvent(_Event):
    """One order line."""

    schema_version: Literal[1] = 1
    event_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    product_id: Identifier
    category: str = Field(default="", max_length=128)
    units: int = Field(gt=0)
    amount: Annotated[float, AfterValidator(_finite)] = Field(ge=0)
    event_time: UtcTime

    @classmethod
    def from_bytes(cls, raw: bytes) -> PurchaseEvent:
        """Trusted bytes (our own); untrusted ones go through `parse_event`."""
        return cls.model_validate_json(raw)


class DeadLetter(_Event):
    """A payload that could not be applied, with why and where it came from.

    A letter keeps at most ``max_raw`` bytes of the payload (a letter must fit in one produce request); the whole
    payload stays in the source topic at ``partition``/``offset``.
    """

    raw_b64: str
    raw_size: int = Field(ge=0)  # of the whole payload
    reason: str
    source_topic: str
    partition: int
    offset: int
    dead_lettered_at: UtcTime

    @classmethod
    def of(cls, raw: bytes, reason: str, topic: str, partition: int, offset: int, max_raw: int) -> DeadLetter:
        return cls(
            raw_b64=base64.b64encode(raw[:max_raw]).decode(),
            raw_size=len(raw),
            reason=reason,
            source_topic=topic,
            partition=partition,
            offset=offset,
            dead_lettered_at=datetime.now(UTC),
        )

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64)

    @property
    def truncated(self) -> bool:
        return len(self.raw) < self.raw_size


class ExposureEvent(_Event):
    """One recommendation list shown to one customer."""

    schema_version: Literal[1] = 1
    request_id: Identifier
    customer_id: Identifier
    experiment: Annotated[str, Field(pattern=EXPERIMENT_PATTERN), AfterValidator(experiment_name)]
    group: ArmName  # the experiment's arm the customer is in
    strategy: str = Field(min_length=1, max_length=64)
    model_version: str = Field(max_length=64)
    product_ids: list[Identifier] = Field(max_length=100)
    event_time: UtcTime
    # Under a bandit: the share the customer's arm had when they were assigned (the stream keeps the first).
    # the share of the arm; at least one bucket of common.assignment's 100, so 1 / propensity stays finite
    propensity: float | None = Field(default=None, ge=0.01, le=1)


class CustomerProfile(_Event):
    """A customer's master data on the compacted customers topic (key = customer id): the newest record of a
    customer replaces the profile; a tombstone (no value) deletes it."""

    schema_version: Literal[1] = 1
    customer_id: Identifier
    region: str | None = Field(default=None, max_length=128)
    city: str | None = Field(default=None, max_length=128)
    gender: Literal["F", "M"] | None = None
    birth_date: date | None = None


class ProductInfo(_Event):
    """One catalogue entry on the compacted products topic (key = product id)."""

    schema_version: Literal[1] = 1
    product_id: Identifier
    name: str = Field(min_length=1, max_length=256)
    category: str = Field(default="", max_length=128)


class SourceReport(_Event):
    """A source file's cleaning report as recorded when it was replayed (key = the source), so what the producer
    removed before anything reached the purchases topic stays visible downstream."""

    schema_version: Literal[1] = 1
    source: str = Field(min_length=1, max_length=1024)
    recorded_at: UtcTime
    cleaning: dict[str, Any]
    replayed: dict[str, Any] = Field(default_factory=dict)


def purchase_event_id(order_id: str, product_id: str, line_no: int) -> str:
    """Same order line -> same id on every replay, whatever the replay speed or start point."""
    digest = hashlib.blake2b(f"{order_id}\x1f{product_id}\x1f{line_no}".encode(), digest_size=10)
    return digest.hexdigest()


RejectCode = Literal["empty", "oversized", "not_json", "not_object", "unknown_schema_version", "invalid_field",
                     "out_of_bounds"]
Event = TypeVar("Event", bound=_Event)


@dataclass(frozen=True)
class Rejected:
    """Why raw bytes are not an event. `code` is what to count by; `detail` is the one-line reason a dead letter,
    a report or a 422 shows; `field` is the first offending field for `invalid_field`."""

    code: RejectCode
    detail: str
    field: str | None = None

    @property
    def counted_as(self) -> str:
        """The bucket a cleaning report counts this under, e.g. 'invalid_field (units)'."""
        return self.code if self.field is None else f"{self.code} ({self.field})"


# Hard ceilings of the configurable bounds: one line's cents stay below 2^53 (exact in a Lua number and in a
# float64), so no configuration can make a single line unsafe for the stream's arithmetic.
UNITS_CEILING = 10**9
AMOUNT_CEILING = 10.0**12


@dataclass(frozen=True)
class EventBounds:
    """What one order line may say, beyond its types: at most `max_units` units and `max_amount` of money, and an
    event time between `earliest` and the receiver's clock plus `max_future`. Checked on every way in (POST, the
    replay, the worker, the archiver, the batch's topic reader), so a line that could overflow a Redis integer or
    move the stream's clock is refused with its field named, and a replay of old history still passes."""

    max_units: int = 1_000_000
    max_amount: float = 1e9
    max_future: timedelta = timedelta(hours=1)
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def check(self, event: _Event, now: datetime) -> Rejected | None:
        """The first bound the event breaks, or None. Exposures carry only a time."""
        if isinstance(event, PurchaseEvent):
            if event.units > self.max_units:
                return self._breaks("units", f"{event.units:.6g} is above the limit of {self.max_units:,} per line "
                                             "(RECSYS_EVENT_MAX_UNITS)")
            if event.amount > self.max_amount:
                return self._breaks("amount", f"{event.amount:.6g} is above the limit of {self.max_amount:,.0f} per "
                                              "line (RECSYS_EVENT_MAX_AMOUNT)")
        at = getattr(event, "event_time", None)
        if isinstance(at, datetime):
            if at > now + self.max_future:
                return self._breaks("event_time", f"{at.isoformat()} is later than the receiver's clock "
                                                  f"({now.isoformat(timespec='seconds')}) plus "
                                                  f"{self.max_future.total_seconds():g} s (RECSYS_EVENT_MAX_FUTURE_S)")
            if at < self.earliest:
                return self._breaks("event_time", f"{at.isoformat()} is before {self.earliest.date().isoformat()} "
                                                  "(RECSYS_EVENT_EARLIEST)")
        return None

    @staticmethod
    def _breaks(field: str, why: str) -> Rejected:
        return Rejected("out_of_bounds", f"{field}: {why}", field)


def parse_event(model: type[Event], raw: bytes | None, max_bytes: int, bounds: EventBounds | None = None,
                now: datetime | None = None) -> Event | Rejected:
    """Raw bytes from a topic or a request body -> the event, or a typed rejection. The one parser every entry
    point uses (stream worker, batch source, ingestion endpoint), so all reject the same payloads the same way.
    With `bounds`, an event that parses but breaks one is rejected too (`now`: the receiver's clock)."""
    if not raw:
        return Rejected("empty", "empty payload")
    if len(raw) > max_bytes:
        return Rejected("oversized", f"oversized payload ({len(raw)} bytes > {max_bytes})")
    try:
        event = model.model_validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc)
    if bounds is not None:
        broken = bounds.check(event, now or datetime.now(UTC))
        if broken is not None:
            return broken
    return event


def _rejection(error: ValidationError) -> Rejected:
    errors = error.errors(include_url=False)
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds:
        return Rejected("not_json", "not JSON: " + describe_validation_error(error))
    if "model_type" in kinds:
        return Rejected("not_object", "not a JSON object")
    if any(e["loc"][:1] == ("schema_version",) for e in errors):
        return Rejected("unknown_schema_version", f"unknown schema version: {describe_validation_error(error)}",
                        "schema_version")
    field = ".".join(str(p) for p in errors[0]["loc"]) or None
    return Rejected("invalid_field", describe_validation_error(error), field)


def describe_validation_error(error: ValidationError) -> str:
    """A one-line reason for the dead-letter topic, e.g. 'units: Input should be greater than 0'."""
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# The API sends its exposures as JSON arrays, one record per partition and flush (at most this many in one):
# the broker and the stream worker pay for every record, and one exposure per record was most of the worker's
# CPU beside a loaded API. A record holding one exposure object is read as well.
MAX_EXPOSURES_PER_RECORD = 100


def exposure_record(exposures: list[bytes]) -> bytes:
    """Exposures' JSON objects -> one record's value."""
    return b"[" + b",".join(exposures) + b"]"


def exposure_payloads(raw: bytes | None, max_event_bytes: int) -> list[bytes] | Rejected:
    """A record of the exposures topic -> each exposure's own JSON (for `parse_event`), or why the record as a
    whole is unreadable. A record that is not an array is one exposure, passed on as it is."""
    if not raw or raw.lstrip()[:1] != b"[":
        return [raw or b""]
    if len(raw) > max_event_bytes * MAX_EXPOSURES_PER_RECORD:
        return Rejected("oversized", f"oversized record of exposures ({len(raw)} bytes > "
                                     f"{max_event_bytes * MAX_EXPOSURES_PER_RECORD})")
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("not_json", f"not JSON: {exc}")
    if not items:
        return Rejected("empty", "an empty array of exposures")
    if len(items) > MAX_EXPOSURES_PER_RECORD:
        return Rejected("oversized", f"{len(items)} exposures in one record (at most {MAX_EXPOSURES_PER_RECORD})")
    return [orjson.dumps(item) for item in items]

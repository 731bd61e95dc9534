"""Apply a batch of purchases to Redis, exactly once in effect: one atomic Lua call per customer, which touches only
the customer's slot, then the shared step (stream_app.shared) for what the calls owe the shared state.

The idempotency guard is a per-customer sorted set of applied event ids (score = event time), checked and
updated inside the same script as the state it guards. It never looks at Kafka offsets, so a broker whose log
was wiped (offsets from 0 again) cannot make new events look old, and a replay or redelivery cannot count twice.
The guard keeps ids for `retention_s` of event time behind the customer's latest purchase; an event older than
that which is not in the guard is counted as `late` and not applied (the bound that keeps the guard small).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.redis_clients import AsyncRedis
from common.settings import Settings
from stream_app.calls import call_each
from stream_app.lua import APPLY_PURCHASES
from stream_app.shared import Entry, SharedWriter, entries_of

CUSTOMER_KEYS = 10  # the customer's own keys; then their state, exposures and converted ids per experiment
HEADER_ARGS = 7
MISSING_EXPERIMENTS = -1  # what the script answers when the customer is in an experiment the caller did not name
REGISTRY_TTL_S = 1.0  # how long the running experiments, as read, are taken as the ones to name
FRESHNESS_SAMPLES = 20_000
STALE_EXPERIMENTS = -1  # what the script answers when the registry changed since the caller read it
DAY_S = 86400


@dataclass(frozen=True)
class BatchResult:
    applied: int
    duplicates: int
    late: int
    dead_lettered: int
    refused: tuple[str, ...] = ()  # event ids whose customer's stored totals would pass the counter limit


@dataclass(frozen=True)
class Windows:
    """How long the stream keeps what it keeps, in seconds (every bound in the README's retention table that is a
    time): the guard's event ids behind the customer's newest purchase (and request ids behind their newest
    exposure: how late an event may arrive), the attribution window, and the dead-letter ids (wall time)."""

    guard_s: int = 400 * DAY_S
    attribution_s: int = 7 * DAY_S
    dead_letter_keep_s: int = 7 * DAY_S
    pre_s: int = 28 * DAY_S  # CUPED's pre-period before a customer's first exposure

    @property
    def keep_s(self) -> int:
        """A customer's exposures, converted ids and attributable purchases. As long as the guard: the two topics
        are consumed independently, and a replay at full speed reads them a whole replayed span apart (measured:
        a 45-day replay lost a fifth of its conversions with a 7-day window, one of 175 with 30 days)."""
        return self.attribution_s + self.guard_s

    @classmethod
    def of(cls, settings: Settings) -> Windows:
        return cls(guard_s=settings.guard_retention_days * DAY_S,
                   attribution_s=round(settings.ab_attribution_days * DAY_S),
                   dead_letter_keep_s=round(settings.dead_letter_keep_days * DAY_S),
                   pre_s=round(settings.ab_cuped_pre_days * DAY_S))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def to_cents(amount: float) -> int:
    """Money is summed in integer cents so Redis totals equal the source's exactly."""
    return round(amount * 100)


def dead_letter_id(partition: int, offset: int, raw: bytes) -> str:
    """Counts a dead letter once, even when its record is redelivered; contents included because a broker
    whose log was wiped reuses offsets."""
    return hashlib.blake2b(f"{partition}:{offset}:".encode() + raw, digest_size=12).hexdigest()


def customer_call(keys: KeyLayout, customer: str, rows: Sequence[tuple[str | int, ...]], experiments: Sequence[str],
                  *, recent_n: int, windows: Windows) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one customer's call, attributed in each of `experiments` the customer is in (pure:
    unit-tested without Redis)."""
    call_keys = [
        keys.customer_rfm(customer), keys.customer_orders(customer), keys.customer_product_units(customer),
        keys.customer_product_amount(customer), keys.customer_recent(customer), keys.customer_categories(customer),
        keys.customer_applied(customer), keys.ab_customer_purchases(customer), keys.customer_outbox(customer),
        keys.ab_customer_experiments(customer),
    ]
    for experiment in experiments:
        call_keys += [keys.ab_customer_state(experiment, customer), keys.ab_customer_exposures(experiment, customer),
                      keys.ab_customer_converted(experiment, customer)]
    header: list[str | int] = [customer, recent_n, windows.guard_s, windows.attribution_s, windows.keep_s,
                               windows.pre_s, len(experiments)]
    # Events travel as one JSON argument: packing thousands of separate arguments cost more than the script.
    return call_keys, [*header, *experiments, orjson.dumps(rows).decode()]


def rows_by_customer(events: Sequence[PurchaseEvent], latest_n: int) -> dict[str, list[tuple[str | int, ...]]]:
    """The events as the script's rows, grouped by customer; only the newest `latest_n` can survive the latest
    list's trim, so only those carry their JSON."""
    shown = {id(event) for event in events[-latest_n:]}
    rows: dict[str, list[tuple[str | int, ...]]] = {}
    for event in events:
        rows.setdefault(event.customer_id, []).append(
            purchase_row(event, _latest_json(event) if id(event) in shown else ""))
    return rows


def purchase_row(event: PurchaseEvent, latest: str) -> tuple[str | int, ...]:
    """One event as the script reads it: the fields of `PURCHASE_FIELDS`, in that order."""
    return (event.event_id, event.order_id, event.product_id, event.category, event.units, to_cents(event.amount),
            int(event.event_time.timestamp()), latest)


def _latest_json(event: PurchaseEvent) -> str:
    return json.dumps(
        {"customer_id": event.customer_id, "product_id": event.product_id, "category": event.category,
         "units": event.units, "amount": event.amount, "event_time": event.event_time.isoformat(),
         "order_id": event.order_id},
        separators=(",", ":"),
    )


class StateWriter:
    """Applies batches: one script call per customer (all in one round trip per Redis node), then the shared step
    (stream_app.shared) for what they owe the shared state."""

    def __init__(self, client: AsyncRedis, keys: KeyLayout, windows: Windows | None = None, *,
                 recent_n: int = 20, latest_n: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_PURCHASES)
        self._windows = windows or Windows()
        self._recent_n = recent_n
        self._latest_n = latest_n
        self._shared = SharedWriter(client, keys, dead_letter_keep_s=self._windows.dead_letter_keep_s,
                                    latest_n=latest_n)
        self._clock = clock
        self._running: tuple[tuple[str, ...], float] | None = None  # the running experiments, and when read

    async def apply(self, events: Sequence[PurchaseEvent], dead_ids: Sequence[str] = ()) -> BatchResult:
        if not events and not dead_ids:
            return BatchResult(0, 0, 0, 0)
        rows = rows_by_customer(events, self._latest_n)
        running = await self._running_experiments()
        answers = await self._call_customers({customer: running for customer in rows}, rows)
        applied = duplicates = late = 0
        refused: list[str] = []
        entries: list[Entry] = []
        for customer, (n_applied, n_duplicates, n_late, refused_ids, outbox) in answers.items():
            applied, duplicates, late = applied + int(n_applied), duplicates + int(n_duplicates), late + int(n_late)
            refused += [_text(r) for r in refused_ids]
            entries += entries_of(customer, outbox)
        shared = await self._shared.apply(entries, dead_ids, {"processed": 0, "duplicates": duplicates, "late": late})
        return BatchResult(applied, duplicates, late, shared.dead_lettered, tuple(refused))

    async def _call_customers(self, experiments: dict[str, Sequence[str]],
                              rows: Mapping[str, list[tuple[str | int, ...]]]) -> dict[str, list[Any]]:
        """Every customer's call, pipelined; a customer in an experiment that was not named is called again with
        it (the script changed nothing of theirs)."""
        answers: dict[str, list[Any]] = {}
        while experiments:
            calls = [customer_call(self._keys, customer, rows[customer], names, recent_n=self._recent_n,
                                   windows=self._windows) for customer, names in experiments.items()]
            again: dict[str, Sequence[str]] = {}
            answered = await call_each(self._client, self._script, calls)
            for (customer, names), answer in zip(experiments.items(), answered, strict=True):
                if int(answer[0]) == MISSING_EXPERIMENTS:
                    again[customer] = [*names, *(_text(name) for name in answer[1])]
                    self._running = None  # an experiment started since the registry was read
                else:
                    answers[customer] = answer
            experiments = again
        return answers

    async def _running_experiments(self) -> tuple[str, ...]:
        if self._running is None or self._clock() - self._running[1] > REGISTRY_TTL_S:
            names = cast(list[bytes], await self._client.zrange(self._keys.ab_experiments(), 0, -1))
            self._running = (tuple(_text(name) for name in names), self._clock())
        return self._running[0]

    async def record_progress(self, fields: Mapping[str, float | int | str], ages_ms: Sequence[float] = ()) -> None:
        """Live counters, plus the newest event-to-Redis ages (for freshness percentiles), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._keys.stream_stats(), mapping=cast(Any, dict(fields)))
        if ages_ms:
            pipe.rpush(self._keys.stream_freshness(), *(round(a, 1) for a in ages_ms))
            pipe.ltrim(self._keys.stream_freshness(), -FRESHNESS_SAMPLES, -1)
        await pipe.execute()

"""Write one model version into Redis, then flip the `current` pointer in one step; prune old versions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from common.keys import KeyLayout, customer_slot
from common.redis_clients import SyncRedis
from common.settings import Settings
from experiments.plan import Plan

HASH_FIELDS_PER_COMMAND = 1000
PRUNED_KEYS_PER_ROUND_TRIP = 1000


@dataclass(frozen=True)
class Publishing:
    """How a version is written: in round trips of at most `round_trip_bytes` (or one hash chunk or string, when
    that alone is bigger), no faster than `bytes_per_s` (0: as fast as Redis takes them), and busy (building a
    round trip, sending it, waiting for Redis) at most `busy_share` of the time (1: no limit), so that the
    requests Redis and the machine serve meanwhile find room between them (docs/scaling.md, publishing a model
    under load). Bytes alone do not measure the work: the last tenth of a version's bytes, its segments and cycles,
    is half of its hash fields and two thirds of its commands."""

    keep: int = 3  # the newest versions never pruned
    bytes_per_s: float = 8e6
    busy_share: float = 0.2
    round_trip_bytes: int = 256 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> Publishing:
        return cls(keep=settings.batch_keep_versions, bytes_per_s=settings.publish_mb_per_s * 1e6,
                   busy_share=settings.publish_busy_share)


UNPACED = Publishing(bytes_per_s=0, busy_share=1.0)


@dataclass
class ModelBundle:
    """Everything the API reads, already shaped as it will be served."""

    version: str
    card: dict[str, Any]
    topn: dict[str, str]  # common.toplist strings
    popular: list[dict[str, Any]]
    rules: dict[str, list[dict[str, Any]]]
    category_rules: list[dict[str, Any]]
    segments: dict[str, dict[str, Any]]
    segment_summary: list[dict[str, Any]]
    products: dict[str, dict[str, Any]]
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)  # segment -> what to offer it
    cut_points: dict[str, Any] | None = None  # the RFM quintile edges, for scoring live RFM
    cohorts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cohort key -> best-sellers
    cycles: dict[str, str] = field(default_factory=dict)  # customer -> JSON of their buy cycles (batch.cycles)


@dataclass
class PublishResult:
    version: str
    keys: int
    round_trips: int
    seconds: float
    bytes: int = 0
    pruned: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int, int, int], None]  # (bytes written, entries written, entries in all)


def publish_progress(report: Callable[[str], None], parts: int = 10) -> ProgressCallback:
    """Reports the publish each time another `1/parts` of its entries (strings and hash fields) is written."""
    shown = 0

    def on_progress(written: int, done: int, total: int) -> None:
        nonlocal shown
        part = parts * done // total if total else parts
        if part > shown:
            shown = part
            report(f"  published {done:,} of {total:,} entries ({done / max(total, 1):.0%}), {written / 1e6:,.1f} MB")

    return on_progress


def new_version(now: datetime | None = None) -> str:
    """Sortable UTC timestamp, e.g. 20261126T133501Z."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def publish(client: SyncRedis, keys: KeyLayout, bundle: ModelBundle, options: Publishing | None = None,
            on_progress: ProgressCallback | None = None, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.perf_counter) -> PublishResult:
    """Write the version's keys (it is invisible until the flip) in paced round trips, then SET current + ZADD
    versions in one MULTI/EXEC. Readers that loaded the old version keep working: the old keys stay until pruned,
    and the newest `keep` versions are never pruned."""
    options = options or Publishing()
    started = time.perf_counter()
    version = bundle.version
    if client.zscore(keys.model_versions(), version) is not None:
        raise ValueError(f"model version {version} is already published")
    strings, hashes = _version_keys(keys, bundle)
    trips = _RoundTrips(client.pipeline(transaction=False), len(strings) + sum(len(h) for h in hashes.values()),
                        options, on_progress, sleep, clock)
    for write in _writes(strings, hashes, options.round_trip_bytes):  # made one at a time: a model can be GBs
        trips.add(write)
    trips.flush()
    flip = client.pipeline(transaction=True)
    flip.set(keys.model_current(), version)
    flip.zadd(keys.model_versions(), {version: time.time()})
    flip.execute()
    pruned = prune(client, keys, options.keep, trips.busy)  # paced like the writes
    return PublishResult(version=version, keys=len(strings) + sum(1 for h in hashes.values() if h),
                         round_trips=trips.sent + 2, seconds=time.perf_counter() - started,
                         bytes=trips.written, pruned=pruned)


class _RoundTrips:
    """Queues the writes on one pipeline and sends it before it would pass `round_trip_bytes`; after each round
    trip, waits until the bytes written so far fit the pace, and at least long enough that the time spent since
    the last wait is `busy_share` of the whole. After Redis was slow (a rewrite of its append-only file), it
    catches up by at most `CATCH_UP_S` of writes, not all at once."""

    CATCH_UP_S = 0.5

    def __init__(self, pipe: Any, entries: int, options: Publishing, on_progress: ProgressCallback | None,
                 sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.pipe, self.entries, self.options = pipe, entries, options
        self.on_progress, self.sleep, self.clock = on_progress, sleep, clock
        self.started = clock()
        self.busy = _Busy(options.busy_share, sleep, clock)
        self.written = self.done = self.sent = 0
        self.pending_bytes = self.pending_entries = 0

    def add(self, write: _Write) -> None:
        if self.pending_bytes and self.pending_bytes + write.size > self.options.round_trip_bytes:
            self.flush()
        write.queue(self.pipe)
        self.pending_bytes += write.size
        self.pending_entries += write.entries

    def flush(self) -> None:
        if not self.pending_bytes:
            return
        self.pipe.execute()
        self.written += self.pending_bytes
        self.done += self.pending_entries
        self.pending_bytes = self.pending_entries = 0
        self.sent += 1
        if self.on_progress is not None:
            self.on_progress(self.written, self.done, self.entries)
        now, rate = self.clock(), self.options.bytes_per_s
        ahead = 0.0
        if rate > 0:
            self.started = max(self.started, now - self.written / rate - self.CATCH_UP_S)
            ahead = self.written / rate - (now - self.started)
        self.busy.rest(at_least=ahead)


class _Busy:
    """Keeps work to at most `share` of the time: `rest` waits as long as the share asks for the work done since the
    last rest (and at least `at_least`)."""

    def __init__(self, share: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.share, self.sleep, self.clock = share, sleep, clock
        self.since = clock()

    def rest(self, at_least: float = 0.0) -> None:
        pause = max((self.clock() - self.since) * (1 / self.share - 1), at_least)
        if pause > 0:
            self.sleep(pause)
        self.since = self.clock()


def _version_keys(keys: KeyLayout, bundle: ModelBundle) -> tuple[dict[str, Any], dict[str, Mapping[str, Any]]]:
    version = bundle.version
    strings = {
        keys.model_card(version): bundle.card,
        keys.model_popular(version): bundle.popular,
        keys.model_category_rules(version): bundle.category_rules,
        keys.model_segment_summary(version): bundle.segment_summary,
    }
    if bundle.cut_points is not None:
        strings[keys.model_rfm_cut_points(version)] = bundle.cut_points
    hashes: dict[str, Mapping[str, Any]] = {
        keys.model_rules(version): bundle.rules,
        keys.model_products(version): bundle.products,
        keys.model_segment_offers(version): bundle.offers,
        keys.model_cohorts(version): bundle.cohorts,
    }
    for key_of, per_customer in ((keys.model_topn, bundle.topn), (keys.model_segments, bundle.segments),
                                 (keys.model_cycles, bundle.cycles)):
        hashes.update(_by_slot(version, key_of, per_customer))
    return strings, hashes


def _by_slot(version: str, key_of: Callable[[str, str], str], per_customer: Mapping[str, Any]
             ) -> dict[str, dict[str, Any]]:
    """A per-customer part of the version split into its hashes, one per slot of the customers in it (each key
    built once per slot: building it per customer was a third of the publisher's CPU)."""
    by_slot: dict[int, dict[str, Any]] = {}
    for customer, value in per_customer.items():
        by_slot.setdefault(customer_slot(customer), {})[customer] = value
    return {key_of(version, next(iter(customers))): customers for customers in by_slot.values()}


@dataclass(frozen=True)
class _Write:
    """A SET of a string's JSON, or an HSET of a chunk of a hash's fields; `size` in bytes, `entries` written."""

    key: str
    value: str | dict[str, str | bytes]
    size: int
    entries: int

    def queue(self, pipe: Any) -> None:
        if isinstance(self.value, str):
            pipe.set(self.key, self.value)
        else:
            pipe.hset(self.key, mapping=self.value)


def _writes(strings: Mapping[str, Any], hashes: Mapping[str, Mapping[str, Any]], max_bytes: int) -> Iterator[_Write]:
    """SETs, and HSETs of at most HASH_FIELDS_PER_COMMAND fields and about `max_bytes` each. A hash's values are
    encoded with orjson (hundreds of thousands of them: json.dumps was a fifth of the publisher's CPU)."""
    for key, value in strings.items():
        text = json.dumps(value)
        yield _Write(key, text, len(key) + len(text), 1)
    for key, mapping in hashes.items():
        chunk: dict[str, str | bytes] = {}
        size = 0
        for field_name, value in mapping.items():
            encoded = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
            chunk[field_name] = encoded
            size += len(field_name) + len(encoded)
            if len(chunk) == HASH_FIELDS_PER_COMMAND or size >= max_bytes:
                yield _Write(key, chunk, len(key) + size, len(chunk))
                chunk, size = {}, 0
        if chunk:
            yield _Write(key, chunk, len(key) + size, len(chunk))


def prune(client: SyncRedis, keys: KeyLayout, keep: int, busy: _Busy | None = None) -> list[str]:
    """Delete every version older than the newest `keep`, never the current one nor one an arm of the running
    experiment serves. A version leaves the published list before its keys go, in a MULTI watching the live plan
    and the pointer (an experiment starting or a promotion in between makes it look again); starting an
    experiment watches the list in turn."""
    versions = [_text(v) for v in client.zrange(keys.model_versions(), 0, -1)]
    pruned = []
    for version in versions[:-keep] if keep > 0 else []:
        if _unlist(client, keys, version):
            doomed = keys.model_version_keys(version)
            for start in range(0, len(doomed), PRUNED_KEYS_PER_ROUND_TRIP):  # short commands: serving goes between
                client.unlink(*doomed[start:start + PRUNED_KEYS_PER_ROUND_TRIP])
                if busy is not None:
                    busy.rest()
            pruned.append(version)
    return pruned


def _unlist(client: SyncRedis, keys: KeyLayout, version: str) -> bool:
    """Take the version off the published list unless it is in use; True when it was taken off."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(keys.ab_live_plan(), keys.model_current())
                live, current = pipe.get(keys.ab_live_plan()), pipe.get(keys.model_current())
                in_use = (current is not None and version == _text(current)) or (
                    live is not None and version in Plan.model_validate_json(live).pinned_versions())
                if in_use:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.zrem(keys.model_versions(), version)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def read_per_customer(client: SyncRedis, keys: KeyLayout, version: str, part: str) -> dict[str, str]:
    """A published per-customer part ('topn', 'segments', 'cycles') whole, from its hashes (one per slot)."""
    out: dict[str, str] = {}
    for key in client.scan_iter(match=keys.model_per_customer_pattern(version, part), count=1000):
        out.update({_text(k): _text(v) for k, v in client.hgetall(key).items()})
    return out


def current_version(client: SyncRedis, keys: KeyLayout) -> str | None:
    value = client.get(keys.model_current())
    return _text(value) if value is not None else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_card(client: SyncRedis, keys: KeyLayout, version: str) -> dict[str, Any] | None:
    raw = client.get(keys.model_card(version))
    return json.loads(raw) if raw is not None else None

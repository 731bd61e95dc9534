"""Write one model version into Redis, then flip the `current` pointer in one step; prune old versions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from common.keys import KeyLayout
from experiments.plan import Plan

HASH_FIELDS_PER_COMMAND = 1000
COMMANDS_PER_ROUND_TRIP = 200


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
    pruned: list[str] = field(default_factory=list)


def new_version(now: datetime | None = None) -> str:
    """Sortable UTC timestamp, e.g. 20261126T133501Z."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def publish(client: redis.Redis, keys: KeyLayout, bundle: ModelBundle, keep: int = 3) -> PublishResult:
    """Write the version's keys (it is invisible until the flip), then SET current + ZADD versions in one
    MULTI/EXEC. Readers that loaded the old version keep working: the old keys stay until pruned, and the
    newest `keep` versions are never pruned."""
    started = time.perf_counter()
    version = bundle.version
    if client.zscore(keys.model_versions(), version) is not None:
        raise ValueError(f"model version {version} is already published")
    strings = {
        keys.model_card(version): bundle.card,
        keys.model_popular(version): bundle.popular,
        keys.model_category_rules(version): bundle.category_rules,
        keys.model_segment_summary(version): bundle.segment_summary,
    }
    if bundle.cut_points is not None:
        strings[keys.model_rfm_cut_points(version)] = bundle.cut_points
    hashes: dict[str, Mapping[str, Any]] = {
        keys.model_topn(version): bundle.topn,
        keys.model_rules(version): bundle.rules,
        keys.model_segments(version): bundle.segments,
        keys.model_products(version): bundle.products,
        keys.model_segment_offers(version): bundle.offers,
        keys.model_cohorts(version): bundle.cohorts,
        keys.model_cycles(version): bundle.cycles,
    }
    round_trips = 1
    pipe = client.pipeline(transaction=False)
    queued = 0
    for command in _commands(strings, hashes):
        command(pipe)
        queued += 1
        if queued == COMMANDS_PER_ROUND_TRIP:
            pipe.execute()
            round_trips += 1
            queued = 0
    if queued:
        pipe.execute()
        round_trips += 1
    flip = client.pipeline(transaction=True)
    flip.set(keys.model_current(), version)
    flip.zadd(keys.model_versions(), {version: time.time()})
    flip.execute()
    pruned = prune(client, keys, keep)
    return PublishResult(version=version, keys=len(strings) + sum(1 for h in hashes.values() if h),
                         round_trips=round_trips + 1, seconds=time.perf_counter() - started, pruned=pruned)


def _commands(strings: Mapping[str, Any], hashes: Mapping[str, Mapping[str, Any]]) -> Iterator[Any]:
    for key, value in strings.items():
        yield lambda pipe, key=key, value=value: pipe.set(key, json.dumps(value))
    for key, mapping in hashes.items():
        items = [(field_name, value if isinstance(value, str) else json.dumps(value))
                 for field_name, value in mapping.items()]
        for start in range(0, len(items), HASH_FIELDS_PER_COMMAND):
            chunk = dict(items[start:start + HASH_FIELDS_PER_COMMAND])
            yield lambda pipe, key=key, chunk=chunk: pipe.hset(key, mapping=chunk)


def prune(client: redis.Redis, keys: KeyLayout, keep: int) -> list[str]:
    """Delete every version older than the newest `keep`, never the current one nor one an arm of the running
    experiment serves. A version leaves the published list before its keys go, in a MULTI watching the live plan
    and the pointer (an experiment starting or a promotion in between makes it look again); starting an
    experiment watches the list in turn."""
    versions = [_text(v) for v in client.zrange(keys.model_versions(), 0, -1)]
    pruned = []
    for version in versions[:-keep] if keep > 0 else []:
        if _unlist(client, keys, version):
            doomed = list(client.scan_iter(match=keys.model_pattern(version), count=1000))
            if doomed:
                client.unlink(*doomed)
            pruned.append(version)
    return pruned


def _unlist(client: redis.Redis, keys: KeyLayout, version: str) -> bool:
    """Take the version off the published list unless it is in use; True when it was taken off."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(keys.ab_live_plan(), keys.model_current())  # type: ignore[no-untyped-call]
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


def current_version(client: redis.Redis, keys: KeyLayout) -> str | None:
    value = client.get(keys.model_current())
    return _text(value) if value is not None else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_card(client: redis.Redis, keys: KeyLayout, version: str) -> dict[str, Any] | None:
    raw = client.get(keys.model_card(version))
    return json.loads(raw) if raw is not None else None

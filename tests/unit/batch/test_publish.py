"""The publish's writes: bounded commands and round trips, paced to the configured rate, progress every tenth."""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from batch.publish import (
    HASH_FIELDS_PER_COMMAND,
    UNPACED,
    ModelBundle,
    Publishing,
    _writes,
    publish,
    publish_progress,
)
from common.keys import KeyLayout


def test_hash_chunks_hold_every_field_once_and_stay_within_the_bounds() -> None:
    big = {f"c{i}": "x" * 90 for i in range(5000)}  # ~95 bytes a field
    writes = list(_writes({"card": {"v": 1}}, {"topn": big, "empty": {}}, max_bytes=10_000))
    assert writes[0].key == "card" and writes[0].value == json.dumps({"v": 1})
    chunks = [w.value for w in writes[1:]]
    assert all(isinstance(chunk, dict) for chunk in chunks)
    merged: dict[str, str | bytes] = {}
    for chunk in chunks:
        assert isinstance(chunk, dict) and len(chunk) <= HASH_FIELDS_PER_COMMAND
        assert not set(chunk) & set(merged)
        merged |= chunk
    assert merged == big
    assert all(10_000 <= w.size < 10_000 + 100 for w in writes[1:-1])  # over the bound by at most one field
    assert {w.key for w in writes} == {"card", "topn"}  # nothing written for an empty hash


class FakeRedis:
    """Records what a publish sends and when (its clock advances only by the injected sleep)."""

    def __init__(self) -> None:
        self.round_trips: list[int] = []  # commands per non-transactional round trip
        self.data: dict[str, Any] = {}
        self.clock: Clock | None = None  # when set, each round trip takes `trip_s` of it
        self.trip_s = 0.0

    def zscore(self, key: str, member: str) -> None:
        return None

    def pipeline(self, transaction: bool) -> FakePipe:
        return FakePipe(self, transaction)

    def zrange(self, key: str, start: int, end: int) -> list[str]:
        return []


class FakePipe:
    def __init__(self, owner: FakeRedis, transaction: bool) -> None:
        self.owner, self.transaction, self.queued = owner, transaction, 0

    def set(self, key: str, value: str) -> None:
        self.owner.data[key] = value
        self.queued += 1

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.owner.data.setdefault(key, {}).update(mapping)
        self.queued += 1

    def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self.queued += 1

    def execute(self) -> None:
        if not self.transaction:
            self.owner.round_trips.append(self.queued)
            if self.owner.clock is not None:
                self.owner.clock.now += self.owner.trip_s
        self.queued = 0


def _bundle(customers: int) -> ModelBundle:
    return ModelBundle(version="v1", card={"version": "v1"}, topn={f"c{i}": "p1:0.5," * 12 for i in range(customers)},
                       popular=[], rules={}, category_rules=[], segments={}, segment_summary=[], products={})


class Clock:
    """Time that passes only when the publish sleeps."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, list[float]()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _lists(client: FakeRedis) -> int:
    """Top-N lists written, over the version's hashes (one per slot)."""
    return sum(len(value) for key, value in client.data.items() if key.startswith("t:model:v1:topn:"))


def test_the_publish_sleeps_so_that_its_bytes_never_run_ahead_of_the_rate() -> None:
    client, clock = FakeRedis(), Clock()
    reports: list[tuple[int, int, int]] = []
    result = publish(cast(redis.Redis, client), KeyLayout("t"), _bundle(20_000),
                     Publishing(bytes_per_s=1e6, round_trip_bytes=50_000),
                     on_progress=lambda *report: reports.append(report), sleep=clock.sleep, clock=clock)
    assert _lists(client) == 20_000
    assert client.data[KeyLayout("t").model_current()] == "v1"
    assert result.bytes == reports[-1][0] > 1_000_000
    assert reports[-1][1:] == (20_004, 20_004)  # every field and the four strings
    assert len(client.round_trips) == len(reports) == result.round_trips - 2
    # each sleep brings the elapsed time up to bytes written / rate (the fake Redis answers instantly)
    assert abs(sum(clock.slept) - result.bytes / 1e6) < 0.01 * result.bytes / 1e6
    steps = [b[0] - a[0] for a, b in zip([(0, 0, 0), *reports], reports, strict=False)]
    assert all(0 < step < 50_000 + 200 for step in steps)  # the bound, or one chunk passing it by a field


def test_after_a_stall_the_publish_catches_up_by_half_a_second_at_most() -> None:
    client, clock = FakeRedis(), Clock()
    sent_at: list[tuple[float, int]] = []

    def stall_once(written: int, done: int, total: int) -> None:
        if not sent_at:
            clock.now += 5.0  # Redis took 5 s to answer the first round trip
        sent_at.append((clock.now, written))

    publish(cast(redis.Redis, client), KeyLayout("t"), _bundle(20_000),
            Publishing(bytes_per_s=1e6, round_trip_bytes=50_000), on_progress=stall_once, sleep=clock.sleep,
            clock=clock)
    stalled_at, stalled_bytes = sent_at[0]
    for at, written in sent_at[1:]:  # from the stall on: no more than 0.5 s of writes ahead of the rate
        assert written - stalled_bytes <= (at - stalled_at + 0.5) * 1e6 + 50_200


def test_the_publish_keeps_busy_at_most_its_share_of_the_time() -> None:
    client, clock = FakeRedis(), Clock()
    client.clock, client.trip_s = clock, 0.01  # Redis takes 10 ms a round trip; the bytes' pace asks for less
    publish(cast(redis.Redis, client), KeyLayout("t"), _bundle(20_000),
            Publishing(bytes_per_s=1e9, busy_share=0.25, round_trip_bytes=50_000), sleep=clock.sleep, clock=clock)
    busy = 0.01 * len(client.round_trips)
    assert len(client.round_trips) > 10
    assert abs(sum(clock.slept) - 3 * busy) < 1e-6  # a quarter of the time busy: three times as long resting


def test_an_unpaced_publish_never_sleeps() -> None:
    client, slept = FakeRedis(), list[float]()
    publish(cast(redis.Redis, client), KeyLayout("t"), _bundle(2_000), UNPACED, sleep=slept.append)
    assert slept == [] and _lists(client) == 2_000


def test_progress_is_told_every_tenth_and_at_the_end() -> None:
    lines: list[str] = []
    report = publish_progress(lines.append)
    for done in range(0, 40_001, 1_300):
        report(done * 1_000, done, 40_000)
    report(40_000_000, 40_000, 40_000)
    assert len(lines) == 10
    assert lines[0] == "  published 5,200 of 40,000 entries (13%), 5.2 MB"
    assert lines[-1] == "  published 40,000 of 40,000 entries (100%), 40.0 MB"


def test_every_key_a_publish_writes_is_one_pruning_deletes_by_name() -> None:
    client, keys = FakeRedis(), KeyLayout("t")
    bundle = ModelBundle(
        version="v1", card={"version": "v1"}, topn={f"c{i}": "p1:0.5" for i in range(3_000)}, popular=[],
        rules={"p1": []}, category_rules=[], segments={f"c{i}": {"segment": "a"} for i in range(3_000)},
        segment_summary=[], products={"p1": {"name": "x"}}, offers={"a": {}}, cut_points={"r": []},
        cohorts={"k": []}, cycles={f"c{i}": "[]" for i in range(3_000)})
    publish(cast(redis.Redis, client), keys, bundle, UNPACED)
    written = {key for key in client.data if key.startswith("t:model:v1:")}
    assert len(written) > 3 * 2_500  # the per-customer hashes of thousands of slots
    assert written <= set(keys.model_version_keys("v1"))

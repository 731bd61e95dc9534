"""The shared step: what customers' script calls owe the state every customer shares (popularity, the stream's
counters, the latest purchases, the customer index, the experiments' counters and registry), applied exactly once.

A customer's call writes only the customer's slot and keeps what it owes in the customer's outbox
(`KeyLayout.customer_outbox`), returning every entry still there. This step applies them in the shared slot,
recording each entry applied (`KeyLayout.stream_shared_applied`), and then lets them go: the entries leave the
outboxes, and their records are trimmed a while later. Whatever stops the worker in between, the redelivered batch
finds the entries in the outboxes again, and the records make applying one twice a no-op (stream_app/lua/
apply_shared.lua).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from common.keys import KeyLayout
from common.redis_clients import AsyncRedis
from stream_app.calls import Call, call_each, send_then_call_each
from stream_app.lua import APPLY_SHARED, lua_source

RELEASED_KEEP_S = 120  # how long an entry's record outlives its outbox entry: past a worker that lost its partitions
# A call of the step holds Redis while it runs, and the API's reads wait behind it: a batch's thousand entries in one
# call held it about 5 ms (SLOWLOG p50; up to 14 ms) under /recommend load on Online Retail with the worker running.
# Calls of at most this many entries (and releases of at most RELEASED_PER_CALL records) hold it about half a
# millisecond each, and still go in one round trip: Redis serves other clients between them (docs/scaling.md).
ENTRIES_PER_CALL = 32
RELEASED_PER_CALL = 128


@dataclass(frozen=True)
class Entry:
    """One outbox entry: whose, its id, and what it owes (JSON, see stream_app/lua/outbox.lua)."""

    customer: str
    entry_id: str
    owed: str


@dataclass(frozen=True)
class SharedResult:
    fresh: int  # entries applied by this call
    before: int  # entries an earlier call had applied (redelivered)
    dead_lettered: int  # dead-letter ids not counted before


def entries_of(customer: str, flat: Sequence[bytes | str]) -> list[Entry]:
    """A customer call's outbox answer (id, JSON, id, JSON, ...) as entries."""
    text = [item.decode() if isinstance(item, bytes) else item for item in flat]
    return [Entry(customer, text[i], text[i + 1]) for i in range(0, len(text), 2)]


def shared_keys(keys: KeyLayout) -> list[str]:
    """The shared keys every call of the step touches, in the order apply_shared.lua reads them."""
    return [keys.product_popularity(), keys.product_categories(), keys.stream_stats(), keys.stream_latest(),
            keys.customers_index(), keys.stream_dead_letters(), keys.stream_shared_applied(), keys.ab_experiments(),
            keys.ab_experiments_revision(), keys.ab_ended()]


def shared_calls(keys: KeyLayout, entries: Sequence[Entry], dead_ids: Sequence[str], counts: Mapping[str, int], *,
                 dead_letter_keep_s: int, latest_n: int) -> list[Call]:
    """KEYS and ARGV of the step's calls (pure: unit-tested without Redis), of at most ENTRIES_PER_CALL entries
    each; the dead letters and counts go with the last. Split, the entries go in the order of their newest
    purchase, so the latest purchases, which each call pushes newest last, still read newest first across the
    calls (on a single Redis, which runs them in order; a cluster client sends them concurrently, and the order
    then holds within each call)."""
    parsed = [(entry, _owed(entry.owed)) for entry in entries]  # once: the order and each call's arms
    if len(parsed) > ENTRIES_PER_CALL:
        parsed.sort(key=lambda item: _newest_purchase(item[1]))
    parts = [parsed[i:i + ENTRIES_PER_CALL] for i in range(0, len(parsed), ENTRIES_PER_CALL)] or [[]]
    return [_call(keys, part, dead_ids if last else (), counts if last else {},
                  dead_letter_keep_s=dead_letter_keep_s, latest_n=latest_n)
            for part, last in zip(parts, [False] * (len(parts) - 1) + [True], strict=True)]


def _owed(text: str) -> Mapping[str, Any]:
    """An entry's parts as far as this side needs them. One that is not an object of parts is sent as it is, for
    the script to refuse and count (this side must not stop the batch over it)."""
    try:
        owed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return owed if isinstance(owed, dict) else {}


def _items(owed: Mapping[str, Any], part: str) -> list[list[Any]]:
    """A part's rows that are lists (Lua's cjson writes an empty list as {})."""
    rows = owed.get(part)
    return [row for row in rows if isinstance(row, list) and len(row) >= 2] if isinstance(rows, list) else []


def _newest_purchase(owed: Mapping[str, Any]) -> float:
    return max((item[0] for item in _items(owed, "latest") if isinstance(item[0], int | float)), default=0.0)


def _arm_pairs(owed: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The (experiment, arm) pairs whose counters or daily series the entries change, in first-seen order."""
    found: dict[tuple[str, str], None] = {}
    for one in owed:
        for item in [*_items(one, "ab"), *_items(one, "daily")]:
            if isinstance(item[0], str) and isinstance(item[1], str):
                found[(item[0], item[1])] = None
    return list(found)


def _call(keys: KeyLayout, entries: Sequence[tuple[Entry, Mapping[str, Any]]], dead_ids: Sequence[str],
          counts: Mapping[str, int], *, dead_letter_keep_s: int, latest_n: int) -> Call:
    pairs = _arm_pairs(owed for _, owed in entries)
    call_keys = [*shared_keys(keys),
                 *(key for experiment, arm in pairs
                   for key in (keys.ab_group_counters(experiment, arm), keys.ab_daily(experiment, arm)))]
    args: list[str | int] = [dead_letter_keep_s, latest_n, RELEASED_KEEP_S, orjson.dumps(pairs).decode(),
                             orjson.dumps(dict(counts)).decode(), len(dead_ids), *dead_ids]
    for entry, _ in entries:
        args += [entry.customer, entry.entry_id, entry.owed]
    return call_keys, args


class SharedWriter:
    def __init__(self, client: AsyncRedis, keys: KeyLayout, *, dead_letter_keep_s: int, latest_n: int) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_SHARED)
        self._release_script: Any = client.register_script(lua_source("release"))
        self._dead_letter_keep_s = dead_letter_keep_s
        self._latest_n = latest_n

    async def apply(self, entries: Sequence[Entry], dead_ids: Sequence[str] = (),
                    counts: Mapping[str, int] | None = None) -> SharedResult:
        """Apply the entries (each once, ever), count the dead letters (each id once) and add `counts` to the
        stream's counters; then let the entries go."""
        if not entries and not dead_ids and not any((counts or {}).values()):
            return SharedResult(0, 0, 0)
        calls = shared_calls(self._keys, entries, dead_ids, counts or {},
                             dead_letter_keep_s=self._dead_letter_keep_s, latest_n=self._latest_n)
        # packed by hand (`stream_app.calls`): redis-py packs a call of thousands of arguments slowly
        answers = await call_each(self._client, self._script, calls)
        await self._release(entries)
        return SharedResult(*(sum(int(answer[i]) for answer in answers) for i in range(3)))

    async def _release(self, entries: Sequence[Entry]) -> None:
        """Out of the outboxes first, then the records start their clock: a record never ages out while its entry
        can still be sent."""
        if not entries:
            return
        by_customer: dict[str, list[str]] = {}
        for entry in entries:
            by_customer.setdefault(entry.customer, []).append(entry.entry_id)
        records = [f"{entry.customer}|{entry.entry_id}" for entry in entries]
        await send_then_call_each(self._client, [("HDEL", self._keys.customer_outbox(customer), *ids)
                                                 for customer, ids in by_customer.items()],
                                  self._release_script, [([self._keys.stream_shared_applied()],
                                                          records[i:i + RELEASED_PER_CALL])
                                                         for i in range(0, len(records), RELEASED_PER_CALL)])

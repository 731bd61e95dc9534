"""Apply a batch of purchases to Redis in one atomic Lua call, exactly once in effect.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from common.events import PurchaseEvent
from common.keys import KeyLayout

GLOBAL_KEYS = 6
KEYS_PER_EVENT = 8
ARGS_PER_EVENT = 9
HEADER_ARGS = 5

APPLY_BATCH_LUA = """
local n_events = tonumber(ARGV[1])
local recent_n = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local latest_n = tonumber(ARGV[4])
local n_dead = tonumber(ARGV[5])
local pop, prodcat, stats, latest, customers, dead_ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local dead_new = 0
for d = 1, n_dead do
  dead_new = dead_new + redis.call('SADD', dead_ids, ARGV[5 + d])
end

local applied, duplicates, late, max_ts = 0, 0, 0, 0
local a0 = 5 + n_dead
for i = 0, n_events - 1 do
  local k = 6 + i * 8
  local rfm, orders, units_h, amount_h, recent, cats, guard, pop_day =
    KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4], KEYS[k+5], KEYS[k+6], KEYS[k+7], KEYS[k+8]
  local a = a0 + i * 9
  local event_id, order_id, customer, product, category =
    ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5]
  local units, cents, ts, latest_json = tonumber(ARGV[a+6]), tonumber(ARGV[a+7]), tonumber(ARGV[a+8]), ARGV[a+9]

  local last = tonumber(redis.call('HGET', rfm, 'last_ts') or '-1')
  if redis.call('ZSCORE', guard, event_id) then
    duplicates = duplicates + 1
  elseif last >= 0 and ts < last - retention then
    late = late + 1
  else
    redis.call('ZADD', guard, ts, event_id)
    local first = tonumber(redis.call('HGET', rfm, 'first_ts') or '-1')
    if first < 0 or ts < first then redis.call('HSET', rfm, 'first_ts', ts) end
    if ts > last then
      redis.call('HSET', rfm, 'last_ts', ts)
      redis.call('ZREMRANGEBYSCORE', guard, '-inf', '(' .. (ts - retention))
    end
    if redis.call('SADD', orders, order_id) == 1 then redis.call('HINCRBY', rfm, 'orders', 1) end
    redis.call('HINCRBY', rfm, 'lines', 1)
    redis.call('HINCRBY', rfm, 'units', units)
    redis.call('HINCRBY', rfm, 'monetary_cents', cents)
    redis.call('HINCRBY', units_h, product, units)
    redis.call('HINCRBY', amount_h, product, cents)
    redis.call('ZADD', recent, 'GT', ts, product)
    redis.call('ZREMRANGEBYRANK', recent, 0, -(recent_n + 1))
    redis.call('HINCRBY', cats, category, 1)
    redis.call('ZINCRBY', pop, units, product)
    redis.call('ZINCRBY', pop_day, units, product)
    redis.call('HSET', prodcat, product, category)
    redis.call('ZADD', customers, 'GT', ts, customer)
    redis.call('LPUSH', latest, latest_json)
    applied = applied + 1
    if ts > max_ts then max_ts = ts end
  end
end
if applied > 0 then redis.call('LTRIM', latest, 0, latest_n - 1) end
redis.call('HINCRBY', stats, 'processed', applied)
redis.call('HINCRBY', stats, 'duplicates', duplicates)
redis.call('HINCRBY', stats, 'late', late)
redis.call('HINCRBY', stats, 'dead_lettered', dead_new)
local prev = tonumber(redis.call('HGET', stats, 'last_event_ts') or '0')
if max_ts > prev then redis.call('HSET', stats, 'last_event_ts', max_ts) end
return {applied, duplicates, late, dead_new}
"""


@dataclass(frozen=True)
class BatchResult:
    applied: int
    duplicates: int
    late: int
    dead_lettered: int


def to_cents(amount: float) -> int:
    """Money is summed in integer cents so Redis totals equal the source's exactly."""
    return round(amount * 100)


def dead_letter_id(partition: int, offset: int, raw: bytes) -> str:
    """Counts a dead letter once, even when its record is redelivered; contents included because a broker
    whose log was wiped reuses offsets."""
    return hashlib.blake2b(f"{partition}:{offset}:".encode() + raw, digest_size=12).hexdigest()


def day_of(ts: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ts))


def batch_call(
    keys: KeyLayout,
    events: Sequence[PurchaseEvent],
    dead_ids: Sequence[str],
    *,
    recent_n: int,
    retention_s: int,
    latest_n: int,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one script call (pure: unit-tested without Redis)."""
    call_keys = [
        keys.product_popularity(), keys.product_categories(), keys.stream_stats(), keys.stream_latest(),
        keys.customers_index(), keys.stream_dead_letters(),
    ]
    args: list[str | int] = [len(events), recent_n, retention_s, latest_n, len(dead_ids), *dead_ids]
    for event in events:
        ts = int(event.event_time.timestamp())
        cid = event.customer_id
        call_keys += [
            keys.customer_rfm(cid), keys.customer_orders(cid), keys.customer_product_units(cid),
            keys.customer_product_amount(cid), keys.customer_recent(cid), keys.customer_categories(cid),
            keys.customer_applied(cid), keys.product_popularity_day(day_of(ts)),
        ]
        latest = json.dumps(
            {"customer_id": cid, "product_id": event.product_id, "category": event.category, "units": event.units,
             "amount": event.amount, "event_time": event.event_time.isoformat(), "order_id": event.order_id},
            separators=(",", ":"),
        )
        args += [event.event_id, event.order_id, cid, event.product_id, event.category, event.units,
                 to_cents(event.amount), ts, latest]
    return call_keys, args


class StateWriter:
    """Applies batches; one round trip per batch."""

    def __init__(
        self, client: aioredis.Redis, keys: KeyLayout, *, recent_n: int = 20, retention_s: int = 400 * 86400,
        latest_n: int = 100,
    ) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_BATCH_LUA)
        self._recent_n = recent_n
        self._retention_s = retention_s
        self._latest_n = latest_n

    async def apply(self, events: Sequence[PurchaseEvent], dead_ids: Sequence[str] = ()) -> BatchResult:
        if not events and not dead_ids:
            return BatchResult(0, 0, 0, 0)
        call_keys, args = batch_call(
            self._keys, events, dead_ids, recent_n=self._recent_n, retention_s=self._retention_s,
            latest_n=self._latest_n,
        )
        applied, duplicates, late, dead = await self._script(keys=call_keys, args=args)
        return BatchResult(int(applied), int(duplicates), int(late), int(dead))

    async def record_progress(self, fields: Mapping[str, float | int | str]) -> None:
        await self._client.hset(self._keys.stream_stats(), mapping=cast(Any, dict(fields)))

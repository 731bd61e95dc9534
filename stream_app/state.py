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
from stream_app.lua import COUNT_FIRST_LUA

GLOBAL_KEYS = 15
KEYS_PER_CUSTOMER = 10
HEADER_ARGS = 7
FRESHNESS_SAMPLES = 20_000

# Lua's redis.call cost dominates (~3.5 us a call measured here), so the script works per customer and per
# product: one guard lookup (ZMSCORE) and one write per field for all of a customer's events in the batch, and
# popularity increments summed over the batch before they are written.
APPLY_BATCH_LUA = COUNT_FIRST_LUA + """
local function chunked(cmd, key, values, prefix)
  for i = 1, #values, 1000 do
    local part = {unpack(values, i, math.min(i + 999, #values))}
    if prefix then redis.call(cmd, key, prefix, unpack(part)) else redis.call(cmd, key, unpack(part)) end
  end
end

local G, C = $GLOBAL_KEYS, $KEYS_PER_CUSTOMER  -- key counts, from the Python constants
local n_customers, n_days = tonumber(ARGV[1]), tonumber(ARGV[2])
local recent_n, retention, latest_n, n_dead = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local attribution = tonumber(ARGV[7])
local pop, prodcat, stats, latest, customers, dead_ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ab_groups = KEYS[7]
local ab_counters = {control = KEYS[8], treatment = KEYS[9]}
local ab_converted = {control = KEYS[10], treatment = KEYS[11]}
local ab_daily = {control = KEYS[12], treatment = KEYS[13]}
local ab_first = {control = KEYS[14], treatment = KEYS[15]}


local dead_new = 0
if n_dead > 0 then
  for d = 1, n_dead do dead_new = dead_new + redis.call('SADD', dead_ids, ARGV[7 + d]) end
end

local applied, duplicates, late, max_ts = 0, 0, 0, 0
local pop_incr, day_incr, categories, latest_vals = {}, {}, {}, {}
local batch = cjson.decode(ARGV[8 + n_dead])
for c = 0, n_customers - 1 do
  local k = G + n_days + c * C
  local rfm, orders, units_h, amount_h, recent, cats, guard =
    KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4], KEYS[k+5], KEYS[k+6], KEYS[k+7]
  local exposed, ab_bought, converted_ids = KEYS[k+8], KEYS[k+9], KEYS[k+10]
  local customer, evs = batch[c + 1][1], batch[c + 1][2]
  local n = #evs
  local ids = {}
  for e = 1, n do ids[e] = evs[e][1] end
  local known = redis.call('ZMSCORE', guard, unpack(ids))
  local state = redis.call('HMGET', rfm, 'first_ts', 'last_ts')
  local first, last = tonumber(state[1] or '-1'), tonumber(state[2] or '-1')
  local new_first, new_last = first, last
  local seen, guard_args, order_ids, recent_ts, cat_incr = {}, {}, {}, {}, {}
  local bought = {}  -- applied events, for A/B attribution
  local lines, units_sum, cents_sum = 0, 0, 0
  for e = 1, n do
    local ev = evs[e]
    local id, ts = ev[1], ev[7]
    if known[e] or seen[id] then
      duplicates = duplicates + 1
    elseif last >= 0 and ts < last - retention then
      late = late + 1
    else
      seen[id] = true
      local order_id, product, category = ev[2], ev[3], ev[4]
      local units, cents, day = ev[5], ev[6], ev[8]
      guard_args[#guard_args + 1] = ts
      guard_args[#guard_args + 1] = id
      order_ids[#order_ids + 1] = order_id
      bought[#bought + 1] = ev
      lines, units_sum, cents_sum = lines + 1, units_sum + units, cents_sum + cents
      redis.call('HINCRBY', units_h, product, units)
      redis.call('HINCRBY', amount_h, product, cents)
      if not recent_ts[product] or ts > recent_ts[product] then recent_ts[product] = ts end
      cat_incr[category] = (cat_incr[category] or 0) + 1
      pop_incr[product] = (pop_incr[product] or 0) + units
      day_incr[day] = day_incr[day] or {}
      day_incr[day][product] = (day_incr[day][product] or 0) + units
      categories[product] = category
      if ev[9] ~= '' then latest_vals[#latest_vals + 1] = ev[9] end
      if new_first < 0 or ts < new_first then new_first = ts end
      if ts > new_last then new_last = ts end
    end
  end
  if lines > 0 then
    applied = applied + lines
    chunked('ZADD', guard, guard_args)
    redis.call('HSET', rfm, 'first_ts', new_first, 'last_ts', new_last)
    if new_last > last then redis.call('ZREMRANGEBYSCORE', guard, '-inf', '(' .. (new_last - retention)) end
    local new_orders = 0
    for i = 1, #order_ids, 1000 do
      new_orders = new_orders + redis.call('SADD', orders, unpack(order_ids, i, math.min(i + 999, #order_ids)))
    end
    if new_orders > 0 then redis.call('HINCRBY', rfm, 'orders', new_orders) end
    redis.call('HINCRBY', rfm, 'lines', lines)
    redis.call('HINCRBY', rfm, 'units', units_sum)
    redis.call('HINCRBY', rfm, 'monetary_cents', cents_sum)
    local recent_args = {}
    for product, ts in pairs(recent_ts) do
      recent_args[#recent_args + 1] = ts
      recent_args[#recent_args + 1] = product
    end
    chunked('ZADD', recent, recent_args, 'GT')
    redis.call('ZREMRANGEBYRANK', recent, 0, -(recent_n + 1))
    for category, count in pairs(cat_incr) do redis.call('HINCRBY', cats, category, count) end
    redis.call('ZADD', customers, 'GT', new_last, customer)
    if new_last > max_ts then max_ts = new_last end
    -- A/B attribution. A purchase of a product shown to this customer within the attribution window before it
    -- (event time) converts for the customer's group. The exposures script does the same check from its side,
    -- so the result does not depend on which topic is processed first; `converted` counts each purchase once.
    local bought_args = {}
    for i = 1, #bought do
      bought_args[#bought_args + 1] = bought[i][7]
      bought_args[#bought_args + 1] = bought[i][3] .. '|' .. bought[i][1] .. '|' .. bought[i][6]
    end
    chunked('ZADD', ab_bought, bought_args)
    if new_last > last then redis.call('ZREMRANGEBYSCORE', ab_bought, '-inf', '(' .. (new_last - retention)) end
    if redis.call('EXISTS', exposed) == 1 then
      local lo, hi = math.huge, 0
      for i = 1, #bought do lo, hi = math.min(lo, bought[i][7]), math.max(hi, bought[i][7]) end
      local shown = redis.call('ZRANGEBYSCORE', exposed, lo - attribution, hi, 'WITHSCORES')
      local shown_at = {}
      for j = 1, #shown, 2 do
        local product = string.match(shown[j], '^(.*)|[^|]*$')
        shown_at[product] = shown_at[product] or {}
        table.insert(shown_at[product], tonumber(shown[j + 1]))
      end
      local group = redis.call('HGET', ab_groups, customer)
      if group and ab_counters[group] then
        for i = 1, #bought do
          local ev = bought[i]
          for _, at in ipairs(shown_at[ev[3]] or {}) do
            if at <= ev[7] and ev[7] - at <= attribution then
              if redis.call('SADD', converted_ids, ev[1]) == 1 then
                redis.call('HINCRBY', ab_counters[group], 'converted_items', 1)
                redis.call('HINCRBY', ab_counters[group], 'revenue_cents', ev[6])
                redis.call('SADD', ab_converted[group], customer)
                count_first(ab_first[group], ab_daily[group], 'converted', customer, ev[7])
              end
              break
            end
          end
        end
      end
    end
  end
end

local cat_args = {}
for product, units in pairs(pop_incr) do
  redis.call('ZINCRBY', pop, units, product)
  cat_args[#cat_args + 1] = product
  cat_args[#cat_args + 1] = categories[product]
end
for day, products in pairs(day_incr) do
  for product, units in pairs(products) do redis.call('ZINCRBY', KEYS[G + day], units, product) end
end
if #cat_args > 0 then chunked('HSET', prodcat, cat_args) end
if #latest_vals > 0 then
  local from = math.max(1, #latest_vals - latest_n + 1)
  redis.call('LPUSH', latest, unpack(latest_vals, from, #latest_vals))
  redis.call('LTRIM', latest, 0, latest_n - 1)
end
redis.call('HINCRBY', stats, 'processed', applied)
redis.call('HINCRBY', stats, 'duplicates', duplicates)
redis.call('HINCRBY', stats, 'late', late)
redis.call('HINCRBY', stats, 'dead_lettered', dead_new)
local prev = tonumber(redis.call('HGET', stats, 'last_event_ts') or '0')
if max_ts > prev then redis.call('HSET', stats, 'last_event_ts', max_ts) end
return {applied, duplicates, late, dead_new}
""".replace("$GLOBAL_KEYS", str(GLOBAL_KEYS)).replace("$KEYS_PER_CUSTOMER", str(KEYS_PER_CUSTOMER))


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
    experiment: str,
    attribution_s: int,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for one script call, events grouped by customer (pure: unit-tested without Redis)."""
    by_customer: dict[str, list[PurchaseEvent]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    # Only the newest `latest_n` can survive the LTRIM, so only those are serialised.
    shown = {id(event) for event in events[-latest_n:]}
    day_index: dict[str, int] = {}
    customer_keys: list[str] = []
    payload: list[tuple[str, list[tuple[str | int, ...]]]] = []
    for cid, mine in by_customer.items():
        customer_keys += [
            keys.customer_rfm(cid), keys.customer_orders(cid), keys.customer_product_units(cid),
            keys.customer_product_amount(cid), keys.customer_recent(cid), keys.customer_categories(cid),
            keys.customer_applied(cid), keys.ab_customer_exposures(experiment, cid),
            keys.ab_customer_purchases(experiment, cid), keys.ab_customer_converted(experiment, cid),
        ]
        rows: list[tuple[str | int, ...]] = []
        payload.append((cid, rows))
        for event in mine:
            ts = int(event.event_time.timestamp())
            day = day_index.setdefault(day_of(ts), len(day_index) + 1)
            latest = _latest_json(event) if id(event) in shown else ""
            rows.append((event.event_id, event.order_id, event.product_id, event.category, event.units,
                         to_cents(event.amount), ts, day, latest))
    call_keys = [
        keys.product_popularity(), keys.product_categories(), keys.stream_stats(), keys.stream_latest(),
        keys.customers_index(), keys.stream_dead_letters(), keys.ab_customer_groups(experiment),
        keys.ab_group_counters(experiment, "control"), keys.ab_group_counters(experiment, "treatment"),
        keys.ab_converted_customers(experiment, "control"), keys.ab_converted_customers(experiment, "treatment"),
        keys.ab_daily(experiment, "control"), keys.ab_daily(experiment, "treatment"),
        keys.ab_first_times(experiment, "control"), keys.ab_first_times(experiment, "treatment"),
        *(keys.product_popularity_day(day) for day in day_index),
        *customer_keys,
    ]
    header: list[str | int] = [len(by_customer), len(day_index), recent_n, retention_s, latest_n, len(dead_ids),
                               attribution_s]
    # Events travel as one JSON argument: packing thousands of separate arguments cost more than the script.
    return call_keys, [*header, *dead_ids, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)]


def _latest_json(event: PurchaseEvent) -> str:
    return json.dumps(
        {"customer_id": event.customer_id, "product_id": event.product_id, "category": event.category,
         "units": event.units, "amount": event.amount, "event_time": event.event_time.isoformat(),
         "order_id": event.order_id},
        separators=(",", ":"),
    )


class StateWriter:
    """Applies batches; one round trip per batch."""

    def __init__(
        self, client: aioredis.Redis, keys: KeyLayout, *, recent_n: int = 20, retention_s: int = 400 * 86400,
        latest_n: int = 100, experiment: str = "rec-v1", attribution_s: int = 7 * 86400,
    ) -> None:
        self._client = client
        self._keys = keys
        self._script: Any = client.register_script(APPLY_BATCH_LUA)
        self._recent_n = recent_n
        self._retention_s = retention_s
        self._latest_n = latest_n
        self._experiment = experiment
        self._attribution_s = attribution_s

    async def apply(self, events: Sequence[PurchaseEvent], dead_ids: Sequence[str] = ()) -> BatchResult:
        if not events and not dead_ids:
            return BatchResult(0, 0, 0, 0)
        call_keys, args = batch_call(
            self._keys, events, dead_ids, recent_n=self._recent_n, retention_s=self._retention_s,
            latest_n=self._latest_n, experiment=self._experiment, attribution_s=self._attribution_s,
        )
        applied, duplicates, late, dead = await self._script(keys=call_keys, args=args)
        return BatchResult(int(applied), int(duplicates), int(late), int(dead))

    async def record_progress(self, fields: Mapping[str, float | int | str], ages_ms: Sequence[float] = ()) -> None:
        """Live counters, plus the newest event-to-Redis ages (for freshness percentiles), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._keys.stream_stats(), mapping=cast(Any, dict(fields)))
        if ages_ms:
            pipe.rpush(self._keys.stream_freshness(), *(round(a, 1) for a in ages_ms))
            pipe.ltrim(self._keys.stream_freshness(), -FRESHNESS_SAMPLES, -1)
        await pipe.execute()

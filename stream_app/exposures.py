"""A/B exposures from the API: who was shown what, when, in which group. Applied exactly once in effect (the
request id is the guard), before the purchases of the same batch, so a purchase right after a visit finds it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.events import ExposureEvent, describe_validation_error
from common.keys import KeyLayout
from stream_app.lua import COUNT_FIRST_LUA

APPLY_EXPOSURES_LUA = COUNT_FIRST_LUA + """
local applied, groups = KEYS[1], KEYS[2]
local counters = {control = KEYS[3], treatment = KEYS[4]}
local exposed_customers = {control = KEYS[5], treatment = KEYS[6]}
local converted_customers = {control = KEYS[7], treatment = KEYS[8]}
local daily = {control = KEYS[9], treatment = KEYS[10]}
local first = {control = KEYS[11], treatment = KEYS[12]}

local retention, attribution = tonumber(ARGV[1]), tonumber(ARGV[2])
local batch = cjson.decode(ARGV[3])
local new, duplicates, max_ts = 0, 0, 0
for i, e in ipairs(batch) do
  local id, customer, group, ts, products = e[1], e[2], e[3], e[4], e[5]
  local exposed, bought, converted = KEYS[10 + 3 * i], KEYS[11 + 3 * i], KEYS[12 + 3 * i]
  if redis.call('ZADD', applied, 'NX', ts, id) == 1 then
    new = new + 1
    redis.call('HINCRBY', counters[group], 'exposures', 1)
    redis.call('SADD', exposed_customers[group], customer)
    count_first(first[group], daily[group], 'exposed', customer, ts)
    redis.call('HSET', groups, customer, group)
    local args, shown = {}, {}
    for _, product in ipairs(products) do
      args[#args + 1] = ts
      args[#args + 1] = product .. '|' .. id
      shown[product] = true
    end
    if #args > 0 then
      redis.call('ZADD', exposed, unpack(args))
      redis.call('ZREMRANGEBYSCORE', exposed, '-inf', '(' .. (ts - retention))
    end
    -- Purchases the stream applied before this exposure arrived, within the window after it, convert too.
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', bought, ts, ts + attribution)) do
      local product, event_id, cents = string.match(member, '^(.*)|([^|]*)|([^|]*)$')
      if shown[product] and redis.call('SADD', converted, event_id) == 1 then
        redis.call('HINCRBY', counters[group], 'converted_items', 1)
        redis.call('HINCRBY', counters[group], 'revenue_cents', tonumber(cents))
        redis.call('SADD', converted_customers[group], customer)
        count_first(first[group], daily[group], 'converted', customer, tonumber(redis.call('ZSCORE', bought, member)))
      end
    end
    if ts > max_ts then max_ts = ts end
  else
    duplicates = duplicates + 1
  end
end
if max_ts > 0 then redis.call('ZREMRANGEBYSCORE', applied, '-inf', '(' .. (max_ts - retention)) end
return {new, duplicates}
"""


def parse_exposure(raw: bytes | None, max_bytes: int) -> ExposureEvent | str:
    if not raw:
        return "empty payload"
    if len(raw) > max_bytes:
        return f"oversized payload ({len(raw)} bytes > {max_bytes})"
    try:
        return ExposureEvent.model_validate_json(raw)
    except ValidationError as exc:
        return f"invalid exposure: {describe_validation_error(exc)}"


class ExposureWriter:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout, experiment: str, retention_s: int,
                 attribution_s: int) -> None:
        self._keys = keys
        self._experiment = experiment
        self._retention_s = retention_s
        self._attribution_s = attribution_s
        self._script: Any = client.register_script(APPLY_EXPOSURES_LUA)

    async def apply(self, exposures: Sequence[ExposureEvent]) -> tuple[int, int]:
        """(newly applied, duplicates). Exposures of another experiment are ignored."""
        mine = [e for e in exposures if e.experiment == self._experiment]
        if not mine:
            return 0, 0
        keys, exp = self._keys, self._experiment
        call_keys = [
            keys.ab_applied_exposures(exp), keys.ab_customer_groups(exp),
            keys.ab_group_counters(exp, "control"), keys.ab_group_counters(exp, "treatment"),
            keys.ab_exposed_customers(exp, "control"), keys.ab_exposed_customers(exp, "treatment"),
            keys.ab_converted_customers(exp, "control"), keys.ab_converted_customers(exp, "treatment"),
            keys.ab_daily(exp, "control"), keys.ab_daily(exp, "treatment"),
            keys.ab_first_times(exp, "control"), keys.ab_first_times(exp, "treatment"),
        ]
        for e in mine:
            call_keys += [keys.ab_customer_exposures(exp, e.customer_id),
                          keys.ab_customer_purchases(exp, e.customer_id),
                          keys.ab_customer_converted(exp, e.customer_id)]
        payload = [[e.request_id, e.customer_id, e.group, int(e.event_time.timestamp()), e.product_ids]
                   for e in mine]
        new, duplicates = await self._script(keys=call_keys, args=[self._retention_s, self._attribution_s,
                                                                      json.dumps(payload)])
        return int(new), int(duplicates)

-- Apply a batch of A/B exposures (who was shown what, when, in which group), exactly once in effect: the request
-- id is the guard. Applied before the purchases of the same batch, so a purchase right after a visit finds it.
--
-- One call per experiment; the experiment is registered with its start (the earliest exposure time seen).
--
-- KEYS: G global keys (the applied-exposures guard, the experiments registry, then the experiment's A/B keys),
--       then C keys per exposure.
-- ARGV: G, C, retention_s, attribution_s, experiment, the exposures as one JSON argument: [row, ...], each laid
--       out as X.

local G, C = tonumber(ARGV[1]), tonumber(ARGV[2])
local retention, attribution = tonumber(ARGV[3]), tonumber(ARGV[4])
local experiment = ARGV[5]
local batch = cjson.decode(ARGV[6])
local applied_ids, registry = KEYS[1], KEYS[2]
local ab = ab_keys(3)

local new, duplicates, max_ts, min_ts = 0, 0, 0, math.huge
for i, e in ipairs(batch) do
  local id, customer, group, ts = e[X.request_id], e[X.customer_id], e[X.group], e[X.ts]
  local k = G + (i - 1) * C
  local exposed, bought, converted_ids = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  if redis.call('ZADD', applied_ids, 'NX', ts, id) == 1 then
    new = new + 1
    redis.call('HINCRBY', ab.counters[group], 'exposures', 1)
    redis.call('SADD', ab.exposed[group], customer)
    count_first(ab.first[group], ab.daily[group], 'exposed', customer, ts)
    redis.call('HSET', ab.groups, customer, group)
    local args, shown = {}, {}
    for _, product in ipairs(e[X.product_ids]) do
      args[#args + 1] = ts
      args[#args + 1] = product .. '|' .. id
      shown[product] = true
    end
    if #args > 0 then
      redis.call('ZADD', exposed, unpack(args))
      redis.call('ZREMRANGEBYSCORE', exposed, '-inf', '(' .. (ts - retention))
    end
    attribute_exposure(ab, group, customer, shown, ts, bought, converted_ids, attribution)
    if ts > max_ts then max_ts = ts end
    if ts < min_ts then min_ts = ts end
  else
    duplicates = duplicates + 1
  end
end
if max_ts > 0 then redis.call('ZREMRANGEBYSCORE', applied_ids, '-inf', '(' .. (max_ts - retention)) end
if new > 0 then redis.call('ZADD', registry, 'LT', min_ts, experiment) end  -- LT keeps the earliest start
return {new, duplicates}

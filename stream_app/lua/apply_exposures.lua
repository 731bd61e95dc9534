-- Apply a batch of A/B exposures (who was shown what, when, in which group), exactly once in effect: the request
-- id is the guard. Applied before the purchases of the same batch, so a purchase right after a visit finds it.
--
-- One call per experiment; the experiment is registered with its start (the earliest exposure time seen), and
-- the registry's revision moves so the purchases side attributes to it. An ended experiment takes no more
-- exposures (counted in the stream stats as `exposures_after_end`).
--
-- Bounded: the guard keeps request ids for `guard_s` of event time behind the newest exposure, and an exposure
-- older than that is late (counted, not applied: a redelivery could no longer be told from a new one). A
-- customer's exposures and converted ids are kept for `keep_s` (the attribution window plus the guard window)
-- behind their newest exposure, and expire after as many seconds of wall time without one.
--
-- KEYS: G global keys (the guard, the experiments registry, its revision, the ended experiments, the stream
--       stats, then the experiment's A/B keys), then C keys per exposure.
-- ARGV: G, C, guard_s, attribution_s, experiment, keep_s, the exposures as one JSON argument: [row, ...], each
--       laid out as X.

local G, C = tonumber(ARGV[1]), tonumber(ARGV[2])
local guard_s, attribution, experiment, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local batch = cjson.decode(ARGV[7])
local applied_ids, registry, revision, ended, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('HEXISTS', ended, experiment) == 1 then
  redis.call('HINCRBY', stats, 'exposures_after_end', #batch)
  return {0, 0, 0, #batch}
end
local ab = ab_keys(6)

local newest = redis.call('ZRANGE', applied_ids, -1, -1, 'WITHSCORES')
local max_ts = tonumber(newest[2] or '0')
local new, duplicates, late, min_ts = 0, 0, 0, math.huge
for i, e in ipairs(batch) do
  local id, customer, group, ts = e[X.request_id], e[X.customer_id], e[X.group], e[X.ts]
  local k = G + (i - 1) * C
  local exposed, bought, converted_ids = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  if max_ts > 0 and ts < max_ts - guard_s then
    late = late + 1
  elseif redis.call('ZADD', applied_ids, 'NX', ts, id) == 1 then
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
      redis.call('ZREMRANGEBYSCORE', exposed, '-inf', '(' .. (ts - keep))
      redis.call('EXPIRE', exposed, keep)
    end
    attribute_exposure(ab, group, customer, shown, ts, bought, converted_ids, attribution, keep)
    redis.call('ZREMRANGEBYSCORE', converted_ids, '-inf', '(' .. (ts - keep))
    if ts > max_ts then max_ts = ts end
    if ts < min_ts then min_ts = ts end
  else
    duplicates = duplicates + 1
  end
end
if new > 0 then
  redis.call('ZREMRANGEBYSCORE', applied_ids, '-inf', '(' .. (max_ts - guard_s))
  if redis.call('ZADD', registry, 'LT', min_ts, experiment) == 1 then redis.call('INCR', revision) end
end
if late > 0 then redis.call('HINCRBY', stats, 'exposures_late', late) end
return {new, duplicates, late, 0}

-- Apply a batch of A/B exposures (who was shown what, when, in which group), exactly once in effect: the request
-- id is the guard, kept per customer. Applied before the purchases of the same batch, so a purchase right after a
-- visit finds it.
--
-- One call per experiment; the experiment is registered with its start (the earliest exposure time seen), and
-- the registry's revision moves so the purchases side attributes to it. An ended experiment takes no more
-- exposures (counted in the stream stats as `exposures_after_end`).
--
-- Bounded per customer, whose exposures arrive in order (keyed by customer, one partition): the guard keeps their
-- newest MAX_KEPT request ids within `lateness` of event time behind their newest exposure (the purchases' guard
-- window), and an exposure older than that is late (counted in the stream stats, not applied: a redelivery could
-- no longer be told from a new one). Their exposures are kept for `keep` (the attribution window plus the same)
-- behind their newest exposure, at most MAX_KEPT exposed products, and every key of theirs expires after `keep`
-- seconds of wall time without an exposure. Stopping the experiment frees them all.
--
-- An exposure in an arm the experiment does not have is not applied (counted in the stream stats as
-- `exposures_unknown_arm`): its counters do not exist.
--
-- KEYS: G global keys (the experiments registry, its revision, the ended experiments, the stream stats, then the
--       experiment's A/B keys), then C keys per exposure.
-- ARGV: G, C, lateness_s, attribution_s, experiment, keep_s, the exposures as one JSON argument: [row, ...], each
--       laid out as X, the experiment's arms as JSON [arm, ...], the pre-period of CUPED's covariate (seconds).

local MAX_KEPT = 1000
local G, C = tonumber(ARGV[1]), tonumber(ARGV[2])
local lateness, attribution, experiment, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local batch, arms, pre = cjson.decode(ARGV[7]), cjson.decode(ARGV[8]), tonumber(ARGV[9])
local registry, revision, ended, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('HEXISTS', ended, experiment) == 1 then
  redis.call('HINCRBY', stats, 'exposures_after_end', #batch)
  return {0, 0, 0, #batch}
end
local ab = ab_keys(5, arms)

local new, duplicates, late, unknown, crossed, min_ts = 0, 0, 0, 0, 0, math.huge
for i, e in ipairs(batch) do
  local id, customer, group, ts = e[X.request_id], e[X.customer_id], e[X.group], e[X.ts]
  -- A customer counts in the arm first recorded for them (intention to treat): a bandit that re-weighted before
  -- the stream recorded their first exposure may have served them another arm since.
  local assigned = redis.call('HGET', ab.groups, customer)
  if assigned and assigned ~= group and ab.counters[assigned] then
    group = assigned
    crossed = crossed + 1
  end
  local k = G + (i - 1) * C
  local exposed, bought, converted_ids, requests = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local newest = redis.call('ZRANGE', requests, -1, -1, 'WITHSCORES')
  if not ab.counters[group] then
    unknown = unknown + 1
  elseif newest[2] and ts < tonumber(newest[2]) - lateness then
    late = late + 1
  elseif redis.call('ZADD', requests, 'NX', ts, id) == 1 then
    new = new + 1
    redis.call('HINCRBY', ab.counters[group], 'exposures', 1)
    redis.call('SADD', ab.exposed[group], customer)
    if count_first(ab.first[group], ab.daily[group], 'exposed', customer, ts) then
      set_pre(ab, group, customer, pre_period_spend(bought, ts, pre))
    end
    redis.call('HSET', ab.groups, customer, group)
    if e[X.propensity] > 0 then redis.call('HSETNX', ab.propensity, customer, e[X.propensity]) end
    local args, shown = {}, {}
    for _, product in ipairs(e[X.product_ids]) do
      args[#args + 1] = ts
      args[#args + 1] = product .. '|' .. id
      shown[product] = true
    end
    if #args > 0 then
      redis.call('ZADD', exposed, unpack(args))
      redis.call('ZREMRANGEBYSCORE', exposed, '-inf', '(' .. (ts - keep))
      redis.call('ZREMRANGEBYRANK', exposed, 0, -(MAX_KEPT + 1))
      redis.call('EXPIRE', exposed, keep)
    end
    attribute_exposure(ab, group, customer, shown, ts, bought, converted_ids, attribution, keep)
    redis.call('ZREMRANGEBYSCORE', converted_ids, '-inf', '(' .. (ts - keep))
    local latest = math.max(ts, tonumber(newest[2] or ts))
    redis.call('ZREMRANGEBYSCORE', requests, '-inf', '(' .. (latest - lateness))
    redis.call('ZREMRANGEBYRANK', requests, 0, -(MAX_KEPT + 1))
    redis.call('EXPIRE', requests, keep)
    if ts < min_ts then min_ts = ts end
  else
    duplicates = duplicates + 1
  end
end
if new > 0 and redis.call('ZADD', registry, 'LT', min_ts, experiment) == 1 then redis.call('INCR', revision) end
if late > 0 then redis.call('HINCRBY', stats, 'exposures_late', late) end
if unknown > 0 then redis.call('HINCRBY', stats, 'exposures_unknown_arm', unknown) end
if crossed > 0 then redis.call('HINCRBY', stats, 'exposures_crossed_arms', crossed) end
return {new, duplicates, late, 0}

-- Apply one customer's A/B exposures of a batch in one experiment (who was shown what, when, in which group),
-- exactly once in effect: the request id is the guard, kept per customer. Applied before the purchases of the
-- same batch, so a purchase right after a visit finds it. Only the customer's slot is touched: what the exposures
-- add to the experiment's counters and daily series, and its start (the earliest exposure), goes to the
-- customer's outbox (outbox.lua). The caller leaves out the exposures of an ended experiment.
--
-- Bounded per customer, whose exposures arrive in order (keyed by customer, one partition): the guard keeps their
-- newest MAX_KEPT request ids within `lateness` of event time behind their newest exposure (the purchases' guard
-- window), and an exposure older than that is late (counted in the stream stats, not applied: a redelivery could
-- no longer be told from a new one). Their exposures are kept for `keep` (the attribution window plus the same)
-- behind their newest exposure, at most MAX_KEPT_SHOWN of them, and those keys expire after `keep` seconds of
-- wall time without an exposure (63/64 of it at the least: see keep_alive). An exposure is one member,
-- '<request id> <product> <product> ...' (see shown_products): one member per product made a list of ten a ZADD
-- of ten members, a fifth of this script's Redis time. Stopping the experiment frees them all, and their state.
--
-- An exposure in an arm the experiment does not have is not applied (counted in the stream stats as
-- `exposures_unknown_arm`): its counters do not exist.
--
-- KEYS: the customer's state in the experiment, exposures, purchase log, converted ids, request ids, set of
--       experiments, outbox.
-- ARGV: customer, experiment, lateness_s, attribution_s, keep_s, pre-period (s), the experiment's arms as JSON
--       [arm, ...], the exposures as one JSON argument: [row, ...], each laid out as X.
-- Returns {applied, duplicates, late, unknown arm, crossed arms, outbox entries (flat: id, JSON, ...)}.

local MAX_KEPT = 1000
local MAX_KEPT_SHOWN = 100
local customer, experiment, lateness, attribution = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local keep, pre, arms, batch = tonumber(ARGV[5]), tonumber(ARGV[6]), cjson.decode(ARGV[7]), cjson.decode(ARGV[8])
local ab = ab_customer(experiment, KEYS[1], KEYS[2], KEYS[4])
local bought, requests, joined, outbox = KEYS[3], KEYS[5], KEYS[6], KEYS[7]
local known_arm = {}
for _, arm in ipairs(arms) do known_arm[arm] = true end

-- A key's expiry, set again only once it has run down by a 64th of `keep`: not a write per exposure.
local function keep_alive(key)
  if redis.call('TTL', key) < keep - keep / 64 then redis.call('EXPIRE', key, keep) end
end

local out = new_out()
local state = redis.call('HMGET', ab.state, 'group', 'exposed_at', 'propensity')
local assigned, exposed_at, has_propensity = state[1], tonumber(state[2] or '-1'), state[3]
local newest_at = redis.call('ZRANGE', requests, -1, -1, 'WITHSCORES')[2]
local newest = newest_at and tonumber(newest_at) or -math.huge
local new, duplicates, late, unknown, crossed, first_id, start_ts, shown_any = 0, 0, 0, 0, 0, '', math.huge, false
for _, e in ipairs(batch) do
  local id, group, ts = e[X.request_id], e[X.group], e[X.ts]
  -- A customer counts in the arm first recorded for them (intention to treat): a bandit that re-weighted before
  -- the stream recorded their first exposure may have served them another arm since.
  if assigned and assigned ~= group and known_arm[assigned] then
    group = assigned
    crossed = crossed + 1
  end
  if not known_arm[group] then
    unknown = unknown + 1
  elseif ts < newest - lateness then
    late = late + 1
  elseif redis.call('ZADD', requests, 'NX', ts, id) == 1 then
    new = new + 1
    newest = math.max(newest, ts)
    if first_id == '' then first_id = 'x:' .. experiment .. ':' .. id end
    add_counter(out, experiment, group, 'exposures', 1)
    if not assigned then
      add_counter(out, experiment, group, 'exposed_customers', 1)
      redis.call('HSET', ab.state, 'group', group)
      redis.call('SADD', joined, experiment)
      assigned = group
    end
    -- The experiment starts at its customers' earliest exposure: only a customer's new earliest can move it.
    if count_first(out, ab, group, 'exposed', ts, exposed_at) then
      exposed_at, start_ts = ts, math.min(start_ts, ts)
      set_pre(out, ab, group, pre_period_spend(bought, ts, pre))
    end
    if e[X.propensity] > 0 and not has_propensity then
      redis.call('HSETNX', ab.state, 'propensity', e[X.propensity])
      has_propensity = true
    end
    local shown = {}
    for _, product in ipairs(e[X.product_ids]) do shown[product] = true end
    if #e[X.product_ids] > 0 then
      redis.call('ZADD', ab.exposed, ts, id .. ' ' .. table.concat(e[X.product_ids], ' '))
      shown_any = true
    end
    attribute_exposure(out, ab, group, shown, ts, bought, attribution, keep)
  else
    duplicates = duplicates + 1
  end
end
-- The bounds, once per call: trimming costs the same for one exposure as for many.
if shown_any then
  redis.call('ZREMRANGEBYSCORE', ab.exposed, '-inf', '(' .. (newest - keep))
  redis.call('ZREMRANGEBYRANK', ab.exposed, 0, -(MAX_KEPT_SHOWN + 1))
  keep_alive(ab.exposed)
end
if new > 0 then
  redis.call('ZREMRANGEBYSCORE', requests, '-inf', '(' .. (newest - lateness))
  redis.call('ZREMRANGEBYRANK', requests, 0, -(MAX_KEPT + 1))
  keep_alive(requests)
end
if start_ts < math.huge then table.insert(out.start, {experiment, start_ts}) end
return {new, duplicates, late, unknown, crossed, keep_outbox(outbox, first_id, out)}

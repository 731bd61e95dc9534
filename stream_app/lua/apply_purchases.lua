-- Apply one customer's purchases of a batch, exactly once in effect (see stream_app/state.py), touching only the
-- customer's slot: what the purchases add to shared state (popularity, the stream's counters, the latest
-- purchases, the customer index, the experiments' counters) goes to the customer's outbox (outbox.lua). Lua's
-- redis.call cost dominates (~3.5 us a call measured here), so the script does one guard lookup (ZMSCORE) and one
-- write per field for all of the customer's events in the batch.
--
-- Nothing a validated event carries can make a write fail: each line's units and cents are bounded by the
-- contract (common.events.EventBounds), and a customer whose stored totals would pass COUNTER_LIMIT (2^53, where
-- Lua's numbers stop being exact, far below Redis's 2^63) has the batch's events refused before anything of
-- theirs is written; the script returns their ids and the worker dead-letters them. The guard is the last thing
-- written, after the outbox.
--
-- A purchase is attributed in every experiment the customer has exposures in (their own set of experiments). The
-- caller names the experiments it has keys for; if the customer has one more, the script changes nothing and
-- returns {-1, name, ...}, and the caller calls again with those too. An experiment whose state is gone (stopped
-- and freed) leaves the customer's set.
--
-- KEYS: the customer's 10 keys (see CUSTOMER_KEYS in state.py), then 3 per experiment named: the customer's state
--       in it, their exposures, their converted purchase ids.
-- ARGV: the HEADER values below, the experiments' names, then the events as one JSON argument: [row, ...], each
--       row laid out as P.
-- Returns {applied, duplicates, late, refused event ids, outbox entries (flat: id, JSON, ...)}.

local customer, recent_n, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local attribution, keep, pre, n_experiments = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local HEADER, CUSTOMER_KEYS = 7, 10
local rfm, orders, units_h, amount_h, recent, cats, guard, bought, outbox, joined =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]

local experiments, named = {}, {}
for x = 1, n_experiments do
  local k = CUSTOMER_KEYS + 3 * (x - 1)
  local name = ARGV[HEADER + x]
  experiments[x] = ab_customer(name, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3])
  named[name] = true
end
local missing = {}
for _, name in ipairs(redis.call('SMEMBERS', joined)) do
  if not named[name] then missing[#missing + 1] = name end
end
if #missing > 0 then return {-1, missing} end

local evs = cjson.decode(ARGV[HEADER + n_experiments + 1])
local n = #evs
local ids = {}
for e = 1, n do ids[e] = evs[e][P.event_id] end
local known = redis.call('ZMSCORE', guard, unpack(ids))
local state = redis.call('HMGET', rfm, 'first_ts', 'last_ts', 'units', 'monetary_cents')
local first, last = tonumber(state[1] or '-1'), tonumber(state[2] or '-1')
-- First pass, no writes: which events are new, and what they add.
local new, seen = {}, {}
local duplicates, late, units_sum, cents_sum = 0, 0, 0, 0
for e = 1, n do
  local ev = evs[e]
  local id, ts = ev[P.event_id], ev[P.ts]
  if known[e] or seen[id] then
    duplicates = duplicates + 1
  elseif last >= 0 and ts < last - retention then
    late = late + 1
  else
    seen[id] = true
    new[#new + 1] = ev
    units_sum, cents_sum = units_sum + ev[P.units], cents_sum + ev[P.cents]
  end
end
local refused = {}
if tonumber(state[3] or '0') + units_sum > COUNTER_LIMIT or tonumber(state[4] or '0') + cents_sum > COUNTER_LIMIT then
  for i = 1, #new do refused[#refused + 1] = new[i][P.event_id] end
  new = {}
end

local out = new_out()
local guard_args, new_last = {}, last
if #new > 0 then
  local new_first = first
  local order_args, recent_ts, cat_incr, bought_args = {}, {}, {}, {}
  for i = 1, #new do
    local ev = new[i]
    local id, ts, product, category = ev[P.event_id], ev[P.ts], ev[P.product_id], ev[P.category]
    guard_args[#guard_args + 1] = ts
    guard_args[#guard_args + 1] = id
    order_args[#order_args + 1] = ts
    order_args[#order_args + 1] = ev[P.order_id]
    bought_args[#bought_args + 1] = ts
    bought_args[#bought_args + 1] = product .. '|' .. id .. '|' .. ev[P.cents]
    redis.call('HINCRBY', units_h, product, ev[P.units])
    redis.call('HINCRBY', amount_h, product, ev[P.cents])
    if not recent_ts[product] or ts > recent_ts[product] then recent_ts[product] = ts end
    cat_incr[category] = (cat_incr[category] or 0) + 1
    out.pop[product] = (out.pop[product] or 0) + ev[P.units]
    out.cat[product] = category
    if ev[P.latest] ~= '' then table.insert(out.latest, {ts, ev[P.latest]}) end
    if new_first < 0 or ts < new_first then new_first = ts end
    if ts > new_last then new_last = ts end
  end
  add_count(out, 'processed', #new)
  out.cust = new_last
  redis.call('HSET', rfm, 'first_ts', new_first, 'last_ts', new_last)
  -- Order ids, so an order of many lines counts once; kept as long as the guard keeps its lines.
  local new_orders = 0
  for i = 1, #order_args, 1000 do
    new_orders = new_orders + redis.call('ZADD', orders, 'NX', unpack(order_args, i, math.min(i + 999, #order_args)))
  end
  if new_orders > 0 then redis.call('HINCRBY', rfm, 'orders', new_orders) end
  redis.call('HINCRBY', rfm, 'lines', #new)
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
  -- What the exposures script looks for when an exposure arrives after the purchases it led to: only as long
  -- as an exposure that is not late can still be attributed to them.
  chunked('ZADD', bought, bought_args)
  if new_last > last then
    redis.call('ZREMRANGEBYSCORE', bought, '-inf', '(' .. (new_last - keep))
    redis.call('ZREMRANGEBYSCORE', orders, '-inf', '(' .. (new_last - retention))
  end
  for x = 1, n_experiments do
    local ab = experiments[x]
    if redis.call('EXISTS', ab.state) == 0 then
      redis.call('SREM', joined, ab.name)
    else
      attribute_purchases(out, ab, new, attribution, keep, pre)
    end
  end
end
local owed = keep_outbox(outbox, #new > 0 and 'p:' .. new[1][P.event_id] or '', out)
-- The guard last: a failure before this point leaves the events to be applied again.
if #guard_args > 0 then
  chunked('ZADD', guard, guard_args)
  if new_last > last then redis.call('ZREMRANGEBYSCORE', guard, '-inf', '(' .. (new_last - retention)) end
end
return {#new, duplicates, late, refused, owed}

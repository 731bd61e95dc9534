-- Apply a batch of purchases, exactly once in effect (see stream_app/state.py). Lua's redis.call cost dominates
-- (~3.5 us a call measured here), so the script works per customer and per product: one guard lookup (ZMSCORE)
-- and one write per field for all of a customer's events in the batch, and popularity increments summed over
-- the batch before they are written.
--
-- Nothing a validated event carries can make a write fail: each line's units and cents are bounded by the
-- contract (common.events.EventBounds), and a customer whose stored totals would pass COUNTER_LIMIT (2^53, where
-- Lua's numbers stop being exact, far below Redis's 2^63) has that batch's events refused before anything of
-- theirs is written; the script returns their ids and the worker dead-letters them. A customer's guard is the
-- last thing written for them.
--
-- A purchase is attributed in every running experiment the caller names (the customer's exposures in each
-- decide). If the registry changed since the caller read it (an experiment started or stopped), the script
-- changes nothing and returns {-1}, and the caller reads it again.
--
-- KEYS: G global keys (8 stream keys, then each experiment's A/B keys, see ab_keys), then C keys per customer (8
--       of its own, then its exposures and converted ids per experiment).
-- ARGV: the HEADER values below (the last two: each experiment's arms as JSON, [[arm, ...], ...], and CUPED's
--       pre-period in seconds); the dead-letter ids; the events as one JSON argument:
--       [[customer, [row, ...]], ...], each row laid out as P.

local function chunked(cmd, key, values, prefix)
  for i = 1, #values, 1000 do
    local part = {unpack(values, i, math.min(i + 999, #values))}
    if prefix then redis.call(cmd, key, prefix, unpack(part)) else redis.call(cmd, key, unpack(part)) end
  end
end

local G, C, n_customers = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local recent_n, retention, latest_n = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local attribution, n_dead, n_experiments = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local bought_keep, now, dead_keep, registry_rev = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local arms, pre = cjson.decode(ARGV[14]), tonumber(ARGV[15])
local HEADER = 15
local pop, prodcat, stats, latest, customers, dead_ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if (redis.call('GET', KEYS[8]) or '0') ~= registry_rev then return {-1} end
local experiments, first = {}, 9
for x = 1, n_experiments do
  local used
  experiments[x], used = ab_keys(first, arms[x])
  first = first + used
end

local dead_new = 0
for d = 1, n_dead do dead_new = dead_new + redis.call('ZADD', dead_ids, 'NX', now, ARGV[HEADER + d]) end
if n_dead > 0 then redis.call('ZREMRANGEBYSCORE', dead_ids, '-inf', '(' .. (now - dead_keep)) end

local applied, duplicates, late, max_ts = 0, 0, 0, 0
local pop_incr, categories, latest_vals, refused = {}, {}, {}, {}
local batch = cjson.decode(ARGV[HEADER + n_dead + 1])
for c = 0, n_customers - 1 do
  local k = G + c * C
  local rfm, orders, units_h, amount_h, recent, cats, guard =
    KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4], KEYS[k+5], KEYS[k+6], KEYS[k+7]
  local ab_bought = KEYS[k+8]
  local customer, evs = batch[c + 1][1], batch[c + 1][2]
  local n = #evs
  local ids = {}
  for e = 1, n do ids[e] = evs[e][P.event_id] end
  local known = redis.call('ZMSCORE', guard, unpack(ids))
  local state = redis.call('HMGET', rfm, 'first_ts', 'last_ts', 'units', 'monetary_cents')
  local first, last = tonumber(state[1] or '-1'), tonumber(state[2] or '-1')
  -- First pass, no writes: which events are new, and what they add.
  local new, seen = {}, {}
  local units_sum, cents_sum = 0, 0
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
  if tonumber(state[3] or '0') + units_sum > COUNTER_LIMIT or tonumber(state[4] or '0') + cents_sum > COUNTER_LIMIT then
    for i = 1, #new do refused[#refused + 1] = new[i][P.event_id] end
    new = {}
  end
  if #new > 0 then
    local new_first, new_last = first, last
    local guard_args, order_args, recent_ts, cat_incr, bought_args = {}, {}, {}, {}, {}
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
      pop_incr[product] = (pop_incr[product] or 0) + ev[P.units]
      categories[product] = category
      if ev[P.latest] ~= '' then latest_vals[#latest_vals + 1] = ev[P.latest] end
      if new_first < 0 or ts < new_first then new_first = ts end
      if ts > new_last then new_last = ts end
    end
    applied = applied + #new
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
    redis.call('ZADD', customers, 'GT', new_last, customer)
    if new_last > max_ts then max_ts = new_last end
    -- What the exposures script looks for when an exposure arrives after the purchases it led to: only as long
    -- as an exposure that is not late can still be attributed to them.
    chunked('ZADD', ab_bought, bought_args)
    if new_last > last then
      redis.call('ZREMRANGEBYSCORE', ab_bought, '-inf', '(' .. (new_last - bought_keep))
      redis.call('ZREMRANGEBYSCORE', orders, '-inf', '(' .. (new_last - retention))
    end
    for x = 1, n_experiments do
      attribute_purchases(experiments[x], customer, new, KEYS[k + 7 + 2 * x], KEYS[k + 8 + 2 * x], attribution,
                          bought_keep, pre)
    end
    chunked('ZADD', guard, guard_args)
    if new_last > last then redis.call('ZREMRANGEBYSCORE', guard, '-inf', '(' .. (new_last - retention)) end
  end
end

local cat_args = {}
for product, units in pairs(pop_incr) do
  redis.call('ZINCRBY', pop, units, product)
  cat_args[#cat_args + 1] = product
  cat_args[#cat_args + 1] = categories[product]
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
return {applied, duplicates, late, dead_new, refused}

-- Apply a batch of purchases, exactly once in effect (see stream_app/state.py). Lua's redis.call cost dominates
-- (~3.5 us a call measured here), so the script works per customer and per product: one guard lookup (ZMSCORE)
-- and one write per field for all of a customer's events in the batch, and popularity increments summed over
-- the batch before they are written.
--
-- A purchase is attributed in every experiment the caller names (the customer's exposures in each decide). The
-- caller names the experiments it knows from the registry; if the registry has changed since (another worker
-- started an experiment), the script changes nothing and returns {-1}, and the caller reads it again.
--
-- KEYS: G global keys (7 stream keys, then AB_KEYS per experiment), one popularity key per event-time day,
--       then C keys per customer (8 of its own, then its exposures and converted ids per experiment).
-- ARGV: G, C, customers, days, recent_n, retention_s, latest_n, attribution_s, n_dead, n_experiments; the
--       dead-letter ids; the events as one JSON argument: [[customer, [row, ...]], ...], each row laid out as P.

local function chunked(cmd, key, values, prefix)
  for i = 1, #values, 1000 do
    local part = {unpack(values, i, math.min(i + 999, #values))}
    if prefix then redis.call(cmd, key, prefix, unpack(part)) else redis.call(cmd, key, unpack(part)) end
  end
end

local G, C = tonumber(ARGV[1]), tonumber(ARGV[2])
local n_customers, n_days = tonumber(ARGV[3]), tonumber(ARGV[4])
local recent_n, retention, latest_n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local attribution, n_dead, n_experiments = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local HEADER = 10
local pop, prodcat, stats, latest, customers, dead_ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('ZCARD', KEYS[7]) ~= n_experiments then return {-1} end
local experiments = {}
for x = 1, n_experiments do experiments[x] = ab_keys(8 + (x - 1) * AB_KEYS) end

local dead_new = 0
for d = 1, n_dead do dead_new = dead_new + redis.call('SADD', dead_ids, ARGV[HEADER + d]) end

local applied, duplicates, late, max_ts = 0, 0, 0, 0
local pop_incr, day_incr, categories, latest_vals = {}, {}, {}, {}
local batch = cjson.decode(ARGV[HEADER + n_dead + 1])
for c = 0, n_customers - 1 do
  local k = G + n_days + c * C
  local rfm, orders, units_h, amount_h, recent, cats, guard =
    KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4], KEYS[k+5], KEYS[k+6], KEYS[k+7]
  local ab_bought = KEYS[k+8]
  local customer, evs = batch[c + 1][1], batch[c + 1][2]
  local n = #evs
  local ids = {}
  for e = 1, n do ids[e] = evs[e][P.event_id] end
  local known = redis.call('ZMSCORE', guard, unpack(ids))
  local state = redis.call('HMGET', rfm, 'first_ts', 'last_ts')
  local first, last = tonumber(state[1] or '-1'), tonumber(state[2] or '-1')
  local new_first, new_last = first, last
  local seen, guard_args, order_ids, recent_ts, cat_incr = {}, {}, {}, {}, {}
  local bought = {}  -- applied events, for A/B attribution
  local lines, units_sum, cents_sum = 0, 0, 0
  for e = 1, n do
    local ev = evs[e]
    local id, ts = ev[P.event_id], ev[P.ts]
    if known[e] or seen[id] then
      duplicates = duplicates + 1
    elseif last >= 0 and ts < last - retention then
      late = late + 1
    else
      seen[id] = true
      local product, category = ev[P.product_id], ev[P.category]
      local units, cents, day = ev[P.units], ev[P.cents], ev[P.day]
      guard_args[#guard_args + 1] = ts
      guard_args[#guard_args + 1] = id
      order_ids[#order_ids + 1] = ev[P.order_id]
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
      if ev[P.latest] ~= '' then latest_vals[#latest_vals + 1] = ev[P.latest] end
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
    -- What the exposures script looks for when an exposure arrives after the purchases it led to.
    local bought_args = {}
    for i = 1, #bought do
      bought_args[#bought_args + 1] = bought[i][P.ts]
      local ev = bought[i]
      bought_args[#bought_args + 1] = ev[P.product_id] .. '|' .. ev[P.event_id] .. '|' .. ev[P.cents]
    end
    chunked('ZADD', ab_bought, bought_args)
    if new_last > last then redis.call('ZREMRANGEBYSCORE', ab_bought, '-inf', '(' .. (new_last - retention)) end
    for x = 1, n_experiments do
      attribute_purchases(experiments[x], customer, bought, KEYS[k + 7 + 2 * x], KEYS[k + 8 + 2 * x], attribution)
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

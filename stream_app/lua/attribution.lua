-- A/B attribution. A purchase of a product shown to the customer within the attribution window before it (event
-- time) converts for the customer's group. Exposures and purchases arrive on separate topics in no fixed order,
-- so each side looks for the other: the purchases script reads the customer's exposures, the exposures script
-- the customer's purchases. A per-customer sorted set of converted event ids (score: purchase time) counts each
-- purchase once; the exposures side trims it together with the customer's exposures.

-- An experiment's shared keys, in the order `stream_app.lua.ab_keys` lays them out from KEYS[first]: the
-- customers' arms, their revenue, their pre-period spend, their propensity (under a bandit), then AB_KEYS_PER_ARM
-- per arm, for the arms named in `arms` (in that order). Returns the tables and the number of keys read.
local function ab_keys(first, arms)
  local ab = {groups = KEYS[first], revenue = KEYS[first + 1], pre = KEYS[first + 2], propensity = KEYS[first + 3],
              counters = {}, exposed = {}, converted = {}, daily = {}, first = {}}
  for i, arm in ipairs(arms) do
    local k = first + 4 + (i - 1) * AB_KEYS_PER_ARM
    ab.counters[arm], ab.exposed[arm], ab.converted[arm] = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    ab.daily[arm], ab.first[arm] = KEYS[k + 3], KEYS[k + 4]
  end
  return ab, 4 + #arms * AB_KEYS_PER_ARM
end

-- CUPED's covariate: what the customer spent (cents) in the pre-period, the `pre` seconds of event time before
-- their first exposure in the experiment. The arm's counters keep the sums the regression adjustment needs: of
-- x, of x^2, of x over converted customers (x * conversion), of x times attributed revenue (float fields: the
-- products of cents pass 2^53 in total long before one increment does).
local function set_pre(ab, group, customer, x)
  local old = tonumber(redis.call('HGET', ab.pre, customer) or '0')
  if x == old then return end
  local counters, delta = ab.counters[group], x - old
  redis.call('HSET', ab.pre, customer, x)
  redis.call('HINCRBY', counters, 'pre_cents', delta)
  redis.call('HINCRBYFLOAT', counters, 'pre_sq_cents2', string.format('%.0f', x * x - old * old))
  if redis.call('SISMEMBER', ab.converted[group], customer) == 1 then
    redis.call('HINCRBY', counters, 'pre_conv_cents', delta)
  end
  local revenue = tonumber(redis.call('HGET', ab.revenue, customer) or '0')
  if revenue ~= 0 then
    redis.call('HINCRBYFLOAT', counters, 'pre_rev_cents2', string.format('%.0f', delta * revenue))
  end
end

-- The customer's pre-period spend from their purchase log (members 'product|event id|cents').
local function pre_period_spend(bought, first_ts, pre)
  local found = redis.call('ZRANGEBYSCORE', bought, first_ts - pre, '(' .. first_ts)
  local total = 0
  for j = 1, #found do total = total + tonumber(string.match(found[j], '|([^|]*)$')) end
  return total
end

local function convert(ab, group, customer, converted_ids, event_id, cents, ts, keep)
  if redis.call('ZADD', converted_ids, 'NX', ts, event_id) == 1 then
    redis.call('EXPIRE', converted_ids, keep)
    redis.call('HINCRBY', ab.counters[group], 'converted_items', 1)
    redis.call('HINCRBY', ab.counters[group], 'revenue_cents', cents)
    -- Revenue per exposed customer needs the sum of squares of each customer's revenue: when it goes from r to
    -- r + x, the sum grows by (r + x)^2 - r^2 = x (2 (r + x) - x). A float field: squares of cents pass 2^53 in
    -- total long before any customer's own increment does.
    local total = redis.call('HINCRBY', ab.revenue, customer, cents)
    redis.call('HINCRBYFLOAT', ab.counters[group], 'revenue_sq_cents2', string.format('%.0f', cents * (2 * total - cents)))
    local x = tonumber(redis.call('HGET', ab.pre, customer) or '0')
    if x ~= 0 then
      redis.call('HINCRBYFLOAT', ab.counters[group], 'pre_rev_cents2', string.format('%.0f', x * cents))
    end
    -- Under a bandit, the inverse-probability-weighted sums: outcome / the share the customer's arm had.
    local p = tonumber(redis.call('HGET', ab.propensity, customer) or '0')
    if p > 0 then redis.call('HINCRBYFLOAT', ab.counters[group], 'ipw_revenue_cents', cents / p) end
    if redis.call('SADD', ab.converted[group], customer) == 1 then
      if x ~= 0 then redis.call('HINCRBY', ab.counters[group], 'pre_conv_cents', x) end
      if p > 0 then redis.call('HINCRBYFLOAT', ab.counters[group], 'ipw_converted', 1 / p) end
    end
    count_first(ab.first[group], ab.daily[group], 'converted', customer, ts)
  end
end

-- Purchases side: `bought` holds the customer's newly applied purchase rows (fields P). Those in the pre-period
-- of the customer's first exposure add to its covariate.
local function attribute_purchases(ab, customer, bought, exposed, converted_ids, attribution, keep, pre)
  if #bought == 0 then return end
  local group = redis.call('HGET', ab.groups, customer)
  if not (group and ab.counters[group]) then return end
  local first_ts = tonumber(redis.call('HGET', ab.first[group], 'exposed:' .. customer) or '-1')
  local before = 0
  for i = 1, #bought do
    local ts = bought[i][P.ts]
    if first_ts >= 0 and ts >= first_ts - pre and ts < first_ts then before = before + bought[i][P.cents] end
  end
  if before > 0 then
    set_pre(ab, group, customer, tonumber(redis.call('HGET', ab.pre, customer) or '0') + before)
  end
  if redis.call('EXISTS', exposed) == 0 then return end
  local lo, hi = math.huge, 0
  for i = 1, #bought do lo, hi = math.min(lo, bought[i][P.ts]), math.max(hi, bought[i][P.ts]) end
  local shown = redis.call('ZRANGEBYSCORE', exposed, lo - attribution, hi, 'WITHSCORES')
  local shown_at = {}
  for j = 1, #shown, 2 do
    local product = string.match(shown[j], '^(.*)|[^|]*$')
    shown_at[product] = shown_at[product] or {}
    table.insert(shown_at[product], tonumber(shown[j + 1]))
  end
  for i = 1, #bought do
    local ev = bought[i]
    for _, at in ipairs(shown_at[ev[P.product_id]] or {}) do
      if at <= ev[P.ts] and ev[P.ts] - at <= attribution then
        convert(ab, group, customer, converted_ids, ev[P.event_id], ev[P.cents], ev[P.ts], keep)
        break
      end
    end
  end
end

-- Exposures side: purchases the stream applied before this exposure arrived, within the window after it.
local function attribute_exposure(ab, group, customer, shown, ts, bought, converted_ids, attribution, keep)
  local found = redis.call('ZRANGEBYSCORE', bought, ts, ts + attribution, 'WITHSCORES')
  for j = 1, #found, 2 do
    local product, event_id, cents = string.match(found[j], '^(.*)|([^|]*)|([^|]*)$')
    if shown[product] then
      convert(ab, group, customer, converted_ids, event_id, tonumber(cents), tonumber(found[j + 1]), keep)
    end
  end
end

-- A/B attribution. A purchase of a product shown to the customer within the attribution window before it (event
-- time) converts for the customer's group. Exposures and purchases arrive on separate topics in no fixed order,
-- so each side looks for the other: the purchases script reads the customer's exposures, the exposures script
-- the customer's purchases. A per-customer sorted set of converted event ids (score: purchase time) counts each
-- purchase once; the exposures side trims it together with the customer's exposures.

-- An experiment's shared keys, in the order `stream_app.lua.ab_keys` lays them out from KEYS[first]: the
-- customers' arms, their revenue, then AB_KEYS_PER_ARM per arm, for the arms named in `arms` (in that order).
-- Returns the tables and the number of keys read.
local function ab_keys(first, arms)
  local ab = {groups = KEYS[first], revenue = KEYS[first + 1], counters = {}, exposed = {}, converted = {},
              daily = {}, first = {}}
  for i, arm in ipairs(arms) do
    local k = first + 2 + (i - 1) * AB_KEYS_PER_ARM
    ab.counters[arm], ab.exposed[arm], ab.converted[arm] = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    ab.daily[arm], ab.first[arm] = KEYS[k + 3], KEYS[k + 4]
  end
  return ab, 2 + #arms * AB_KEYS_PER_ARM
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
    redis.call('SADD', ab.converted[group], customer)
    count_first(ab.first[group], ab.daily[group], 'converted', customer, ts)
  end
end

-- Purchases side: `bought` holds the customer's newly applied purchase rows (fields P).
local function attribute_purchases(ab, customer, bought, exposed, converted_ids, attribution, keep)
  if #bought == 0 or redis.call('EXISTS', exposed) == 0 then return end
  local group = redis.call('HGET', ab.groups, customer)
  if not (group and ab.counters[group]) then return end
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

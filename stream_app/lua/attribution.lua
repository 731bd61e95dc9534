-- A/B attribution, inside one customer's slot. A purchase of a product shown to the customer within the
-- attribution window before it (event time) converts for the customer's group. Exposures and purchases arrive on
-- separate topics in no fixed order, so each side looks for the other: the purchases script reads the customer's
-- exposures, the exposures script the customer's purchases. A per-customer sorted set of converted event ids
-- (score: purchase time) counts each purchase once, kept for `keep` behind the newest: as long as the purchase log
-- keeps a purchase (`keep` behind the customer's newest), so a purchase that can still be found is still there.
--
-- What the customer's state adds to their group's counters and daily series (shared keys, another slot) is
-- collected in `out` (see outbox.lua) and applied by the shared step.

-- One experiment as seen from one customer: their state hash (group, revenue, pre, propensity, exposed_at,
-- converted_at), their exposures and their converted purchase ids.
local function ab_customer(name, state, exposed, converted_ids)
  return {name = name, state = state, exposed = exposed, converted_ids = converted_ids}
end

local function state_number(ab, field)
  return tonumber(redis.call('HGET', ab.state, field) or '-1')
end

-- A/B daily series: a customer is counted on the day of their earliest exposure / conversion, whatever the order
-- in which events arrive; an earlier one arriving later moves the count to its day. True when `ts` is the new
-- earliest. `prev`: the customer's earliest so far, when the caller has read it (-1: none).
local function count_first(out, ab, group, kind, ts, prev)
  prev = prev or state_number(ab, kind .. '_at')
  if prev < 0 or ts < prev then
    if prev >= 0 then add_daily(out, ab.name, group, kind .. ':' .. math.floor(prev / 86400), -1) end
    redis.call('HSET', ab.state, kind .. '_at', ts)
    add_daily(out, ab.name, group, kind .. ':' .. math.floor(ts / 86400), 1)
    return true
  end
  return false
end

-- CUPED's covariate: what the customer spent (cents) in the pre-period, the `pre` seconds of event time before
-- their first exposure in the experiment. The arm's counters keep the sums the regression adjustment needs: of
-- x, of x^2, of x over converted customers (x * conversion), of x times attributed revenue.
local function set_pre(out, ab, group, x)
  local old = math.max(0, state_number(ab, 'pre'))
  if x == old then return end
  local delta = x - old
  redis.call('HSET', ab.state, 'pre', x)
  add_counter(out, ab.name, group, 'pre_cents', delta)
  add_counter(out, ab.name, group, 'pre_sq_cents2', x * x - old * old)
  if state_number(ab, 'converted_at') >= 0 then add_counter(out, ab.name, group, 'pre_conv_cents', delta) end
  local revenue = math.max(0, state_number(ab, 'revenue'))
  if revenue ~= 0 then add_counter(out, ab.name, group, 'pre_rev_cents2', delta * revenue) end
end

-- The customer's pre-period spend from their purchase log (members 'product|event id|cents').
local function pre_period_spend(bought, first_ts, pre)
  local found = redis.call('ZRANGEBYSCORE', bought, first_ts - pre, '(' .. first_ts)
  local total = 0
  for j = 1, #found do total = total + tonumber(string.match(found[j], '|([^|]*)$')) end
  return total
end

-- The products of one member of a customer's exposures: '<request id> <product> ...', one member per exposure
-- (ids never hold a space), or 'product|request id', one per product, as the stream wrote them before (they age
-- out within `keep`).
local function shown_products(member)
  if string.find(member, '|', 1, true) then return {string.match(member, '^(.*)|[^|]*$')} end
  local products = {}
  for word in string.gmatch(member, '%S+') do products[#products + 1] = word end
  table.remove(products, 1)
  return products
end

local function convert(out, ab, group, event_id, cents, ts, keep)
  if redis.call('ZADD', ab.converted_ids, 'NX', ts, event_id) == 0 then return end
  redis.call('ZREMRANGEBYSCORE', ab.converted_ids, '-inf', '(' .. (ts - keep))
  redis.call('EXPIRE', ab.converted_ids, keep)
  add_counter(out, ab.name, group, 'converted_items', 1)
  add_counter(out, ab.name, group, 'revenue_cents', cents)
  -- Revenue per exposed customer needs the sum of squares of each customer's revenue: when it goes from r to
  -- r + x, the sum grows by (r + x)^2 - r^2 = x (2 (r + x) - x).
  local total = redis.call('HINCRBY', ab.state, 'revenue', cents)
  add_counter(out, ab.name, group, 'revenue_sq_cents2', cents * (2 * total - cents))
  local x = math.max(0, state_number(ab, 'pre'))
  if x ~= 0 then add_counter(out, ab.name, group, 'pre_rev_cents2', x * cents) end
  -- Under a bandit, the inverse-probability-weighted sums: outcome / the share the customer's arm had.
  local p = math.max(0, state_number(ab, 'propensity'))
  if p > 0 then add_counter(out, ab.name, group, 'ipw_revenue_cents', cents / p) end
  if state_number(ab, 'converted_at') < 0 then
    add_counter(out, ab.name, group, 'converted_customers', 1)
    if x ~= 0 then add_counter(out, ab.name, group, 'pre_conv_cents', x) end
    if p > 0 then add_counter(out, ab.name, group, 'ipw_converted', 1 / p) end
  end
  count_first(out, ab, group, 'converted', ts)
end

-- Purchases side: `bought` holds the customer's newly applied purchase rows (fields P). Those in the pre-period
-- of the customer's first exposure add to its covariate.
local function attribute_purchases(out, ab, bought, attribution, keep, pre)
  if #bought == 0 then return end
  local group = redis.call('HGET', ab.state, 'group')
  if not group then return end
  local first_ts = state_number(ab, 'exposed_at')
  local before = 0
  for i = 1, #bought do
    local ts = bought[i][P.ts]
    if first_ts >= 0 and ts >= first_ts - pre and ts < first_ts then before = before + bought[i][P.cents] end
  end
  if before > 0 then set_pre(out, ab, group, math.max(0, state_number(ab, 'pre')) + before) end
  if redis.call('EXISTS', ab.exposed) == 0 then return end
  local lo, hi = math.huge, 0
  for i = 1, #bought do lo, hi = math.min(lo, bought[i][P.ts]), math.max(hi, bought[i][P.ts]) end
  local shown = redis.call('ZRANGEBYSCORE', ab.exposed, lo - attribution, hi, 'WITHSCORES')
  local shown_at = {}
  for j = 1, #shown, 2 do
    for _, product in ipairs(shown_products(shown[j])) do
      shown_at[product] = shown_at[product] or {}
      table.insert(shown_at[product], tonumber(shown[j + 1]))
    end
  end
  for i = 1, #bought do
    local ev = bought[i]
    for _, at in ipairs(shown_at[ev[P.product_id]] or {}) do
      if at <= ev[P.ts] and ev[P.ts] - at <= attribution then
        convert(out, ab, group, ev[P.event_id], ev[P.cents], ev[P.ts], keep)
        break
      end
    end
  end
end

-- Exposures side: purchases the stream applied before this exposure arrived, within the window after it.
local function attribute_exposure(out, ab, group, shown, ts, bought, attribution, keep)
  local found = redis.call('ZRANGEBYSCORE', bought, ts, ts + attribution, 'WITHSCORES')
  for j = 1, #found, 2 do
    local product, event_id, cents = string.match(found[j], '^(.*)|([^|]*)|([^|]*)$')
    if shown[product] then convert(out, ab, group, event_id, tonumber(cents), tonumber(found[j + 1]), keep) end
  end
end

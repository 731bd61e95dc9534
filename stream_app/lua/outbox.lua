-- What a customer's script call adds to the shared state, which lives in another slot: collected in `out` while
-- the call writes the customer's own keys, then kept in the customer's outbox (one hash field per call that
-- changed something, named 'p:<first new event id>' or 'x:<experiment>:<first new request id>') until the shared step applied it and the
-- caller let it go (stream_app/shared.py). A redelivered batch, whose events are duplicates by then, still finds
-- what is owed there, and the shared step's record of applied entries makes applying one twice a no-op.
--
-- An entry: {pop = {product: units}, cat = {product: category}, n = {stream counter: count}, cust = the
-- customer's newest purchase time, latest = {{ts, JSON}, ...}, ab = {{experiment, arm, counter, value}, ...},
-- daily = {{experiment, arm, 'kind:day', count}, ...}, start = {{experiment, earliest exposure}, ...}}, the empty
-- parts left out (most exposures' entries are one counter). Values of the A/B counters travel as strings: JSON
-- numbers would keep 14 digits of sums of squared cents.

local FLOAT_COUNTERS = {pre_sq_cents2 = true, pre_rev_cents2 = true, revenue_sq_cents2 = true,
                        ipw_revenue_cents = true, ipw_converted = true}
local ENTRY_PARTS = {'pop', 'cat', 'n', 'latest', 'ab', 'daily', 'start'}

local function new_out()
  return {pop = {}, cat = {}, n = {}, latest = {}, ab = {}, daily = {}, start = {}, sums = {}, changed = false}
end

local function add_counter(out, experiment, arm, counter, value)
  local key = experiment .. '|' .. arm .. '|' .. counter
  out.sums[key] = (out.sums[key] or 0) + value
  out.changed = true
end

local function add_daily(out, experiment, arm, field, count)
  table.insert(out.daily, {experiment, arm, field, count})
  out.changed = true
end

local function add_count(out, counter, count)
  out.n[counter] = (out.n[counter] or 0) + count
  out.changed = true
end

-- Writes the entry if the call changed anything, and returns every entry still in the outbox, flat:
-- {id, JSON, id, JSON, ...}.
local function keep_outbox(outbox, id, out)
  if out.changed then
    for key, value in pairs(out.sums) do
      local experiment, arm, counter = string.match(key, '^(.*)|(.*)|(.*)$')
      local text = FLOAT_COUNTERS[counter] and string.format('%.17g', value) or string.format('%.0f', value)
      table.insert(out.ab, {experiment, arm, counter, text})
    end
    out.sums, out.changed = nil, nil
    for _, part in ipairs(ENTRY_PARTS) do
      if next(out[part]) == nil then out[part] = nil end
    end
    redis.call('HSET', outbox, id, cjson.encode(out))
  end
  return redis.call('HGETALL', outbox)
end

-- The shared step: apply customers' outbox entries (outbox.lua) to the state every customer shares, in the shared
-- slot, each entry once. An entry applied is recorded as '<customer>|<entry id>' with score +inf until the caller
-- let it go from the customer's outbox, then with that time (Redis's clock, release.lua); records that old are
-- trimmed after `released_keep` seconds (long enough for a worker that lost its partitions mid-batch to have
-- stopped). A worker that stopped between this step and letting go leaves its entries in the outbox and here: the
-- redelivered batch sends them again and they are skipped.
--
-- Every entry is checked before any of its effects is written (it decodes to an object, names only the arms the
-- caller gave keys for, and every row and value is of the type Redis takes where it goes: numbers finite, a
-- counter Redis adds as an integer an integer below 2^53), because Redis does not undo a script's writes when a
-- later one fails: an entry that fails the check is recorded and counted (`shared_refused` in the stream stats),
-- never applied, so it cannot block the call's other entries or the customer's later batches. An entry's record
-- is written after its effects.
--
-- Counts that are not state (duplicates, late events, exposures of unknown arms) and dead letters come straight
-- from the caller. An ended experiment's entries change nothing of it: its summary was taken when it ended.
--
-- KEYS: the 10 SHARED_KEYS (stream_app/shared.py), then per (experiment, arm) pair: its counters and daily series.
-- ARGV: dead_keep_s, latest_n, released_keep_s, pairs JSON [[experiment, arm], ...], counts JSON
--       {counter: n}, the number of dead-letter ids, the ids, then the entries as triples: customer, id, JSON.
-- Returns {entries applied, entries applied before, dead letters new}.

local pop, prodcat, stats, latest, customers, dead_ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local applied_key, registry, revision, ended = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local SHARED_KEYS = 10
local dead_keep, latest_n, released_keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pairs_list, counts, n_dead = cjson.decode(ARGV[4]), cjson.decode(ARGV[5]), tonumber(ARGV[6])
local HEADER = 6
local now = tonumber(redis.call('TIME')[1])  -- Redis's clock: every worker trims by the same one

local pair_keys = {}
for i, pair in ipairs(pairs_list) do
  local k = SHARED_KEYS + 2 * (i - 1)
  pair_keys[pair[1] .. '|' .. pair[2]] = {counters = KEYS[k + 1], daily = KEYS[k + 2]}
end
local is_ended = {}
local function running(experiment)
  if is_ended[experiment] == nil then is_ended[experiment] = redis.call('HEXISTS', ended, experiment) == 1 end
  return not is_ended[experiment]
end

local dead_new = 0
for d = 1, n_dead do dead_new = dead_new + redis.call('ZADD', dead_ids, 'NX', now, ARGV[HEADER + d]) end
if n_dead > 0 then redis.call('ZREMRANGEBYSCORE', dead_ids, '-inf', '(' .. (now - dead_keep)) end

local function finite(x)
  local n = tonumber(x)
  return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge
end

local function number(x)
  return type(x) == 'number' and finite(x)
end

-- What Redis's HINCRBY takes, and Lua adds up exactly.
local function integral(x)
  local n = tonumber(x)
  return finite(x) and math.floor(n) == n and math.abs(n) < 2 ^ 53
end

local function strings(row, n)
  if type(row) ~= 'table' then return false end
  for i = 1, n do if type(row[i]) ~= 'string' then return false end end
  return true
end

local function all(items, valid)
  for _, item in ipairs(items) do if not valid(item) then return false end end
  return true
end

local function each(map, valid)
  for _, value in pairs(map) do if not valid(value) then return false end end
  return true
end

local function counter_row(c)
  if not (strings(c, 3) and pair_keys[c[1] .. '|' .. c[2]]) then return false end
  return (FLOAT_COUNTERS[c[3]] and finite or integral)(c[4])
end

local function daily_row(d)
  return strings(d, 3) and pair_keys[d[1] .. '|' .. d[2]] ~= nil and integral(d[4])
end

-- An entry as it can be applied, or nil when it cannot: an object whose parts (each may be left out) are tables
-- of what the apply below writes, every row and value of the type Redis takes there.
local function checked(text)
  local ok, entry = pcall(cjson.decode, text)
  if not ok or type(entry) ~= 'table' or #entry > 0 then return nil end
  for _, part in ipairs(ENTRY_PARTS) do
    if entry[part] == nil then entry[part] = {} end
    if type(entry[part]) ~= 'table' then return nil end
  end
  local valid = (entry.cust == nil or number(entry.cust))
    and each(entry.pop, number) and each(entry.cat, function(c) return type(c) == 'string' end)
    and each(entry.n, integral) and all(entry.ab, counter_row) and all(entry.daily, daily_row)
    and all(entry.start, function(st) return strings(st, 1) and number(st[2]) end)
    and all(entry.latest, function(item) return type(item) == 'table' and number(item[1])
                                                and type(item[2]) == 'string' end)
  return valid and entry or nil
end

local pop_incr, categories, latest_vals, max_ts, fresh, before, refused = {}, {}, {}, 0, 0, 0, 0
local records = {}
-- Integer counters (the arms', their daily series', the stream's) summed over the call's entries and written once
-- each (an exposure's entry is one counter); the float ones are written as they came, their values kept as the
-- strings the entries hold.
local sums, summed = {}, {}
local function add_int(key, field, value)
  local at = key .. '\0' .. field
  if not sums[at] then summed[#summed + 1] = {key, field, at} end
  sums[at] = (sums[at] or 0) + tonumber(value)
end
for t = HEADER + n_dead + 1, #ARGV, 3 do
  local customer, entry_id = ARGV[t], ARGV[t + 1]
  local member = customer .. '|' .. entry_id
  local entry = nil
  if redis.call('ZSCORE', applied_key, member) or records[member] then
    before = before + 1
  else
    entry = checked(ARGV[t + 2])
    records[member] = true
    if entry == nil then refused = refused + 1 else fresh = fresh + 1 end
  end
  if entry ~= nil then
    for product, units in pairs(entry.pop) do pop_incr[product] = (pop_incr[product] or 0) + units end
    for product, category in pairs(entry.cat) do categories[product] = category end
    for counter, n in pairs(entry.n) do add_int(stats, counter, n) end
    if entry.cust then
      redis.call('ZADD', customers, 'GT', entry.cust, customer)
      if entry.cust > max_ts then max_ts = entry.cust end
    end
    for _, item in ipairs(entry.latest) do latest_vals[#latest_vals + 1] = item end
    for _, c in ipairs(entry.ab) do
      if running(c[1]) then
        local key = pair_keys[c[1] .. '|' .. c[2]].counters
        if FLOAT_COUNTERS[c[3]] then redis.call('HINCRBYFLOAT', key, c[3], c[4]) else add_int(key, c[3], c[4]) end
      end
    end
    for _, d in ipairs(entry.daily) do
      if running(d[1]) then add_int(pair_keys[d[1] .. '|' .. d[2]].daily, d[3], d[4]) end
    end
    for _, st in ipairs(entry.start) do
      if running(st[1]) and redis.call('ZADD', registry, 'LT', st[2], st[1]) == 1 then redis.call('INCR', revision) end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', applied_key, '-inf', '(' .. (now - released_keep))

local cat_args = {}
for product, units in pairs(pop_incr) do
  redis.call('ZINCRBY', pop, units, product)
  if categories[product] then
    cat_args[#cat_args + 1] = product
    cat_args[#cat_args + 1] = categories[product]
  end
end
if #cat_args > 0 then chunked('HSET', prodcat, cat_args) end
if #latest_vals > 0 then
  table.sort(latest_vals, function(a, b) return a[1] < b[1] end)
  local values = {}
  for i = math.max(1, #latest_vals - latest_n + 1), #latest_vals do values[#values + 1] = latest_vals[i][2] end
  redis.call('LPUSH', latest, unpack(values))
  redis.call('LTRIM', latest, 0, latest_n - 1)
end
counts.dead_lettered = (counts.dead_lettered or 0) + dead_new
if refused > 0 then counts.shared_refused = refused end
for counter, n in pairs(counts) do add_int(stats, counter, n) end
for _, s in ipairs(summed) do redis.call('HINCRBY', s[1], s[2], string.format('%.0f', sums[s[3]])) end
local prev = tonumber(redis.call('HGET', stats, 'last_event_ts') or '0')
if max_ts > prev then redis.call('HSET', stats, 'last_event_ts', max_ts) end
-- The records last: every effect above is written by now.
for member in pairs(records) do redis.call('ZADD', applied_key, '+inf', member) end
return {fresh, before, dead_new}

-- A/B daily series: a customer is counted on the day of their earliest exposure / conversion, whatever the order
-- in which events arrive; an earlier one arriving later moves the count to its day. True when `ts` is the new
-- earliest.
local function count_first(first, daily, kind, customer, ts)
  local prev = tonumber(redis.call('HGET', first, kind .. ':' .. customer) or '-1')
  if prev < 0 or ts < prev then
    if prev >= 0 then redis.call('HINCRBY', daily, kind .. ':' .. math.floor(prev / 86400), -1) end
    redis.call('HSET', first, kind .. ':' .. customer, ts)
    redis.call('HINCRBY', daily, kind .. ':' .. math.floor(ts / 86400), 1)
    return true
  end
  return false
end

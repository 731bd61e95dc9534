"""Lua shared by the stream's scripts (both run inside Redis, so shared code is shared text)."""

# A/B daily series: count a customer on the day of their earliest exposure / conversion, whatever the order in
# which events arrive.
COUNT_FIRST_LUA = """
local function count_first(first, daily, kind, customer, ts)
  -- The customer's earliest `kind` time decides the day it is counted on; an earlier one arriving later moves it.
  local prev = tonumber(redis.call('HGET', first, kind .. ':' .. customer) or '-1')
  if prev < 0 or ts < prev then
    if prev >= 0 then redis.call('HINCRBY', daily, kind .. ':' .. math.floor(prev / 86400), -1) end
    redis.call('HSET', first, kind .. ':' .. customer, ts)
    redis.call('HINCRBY', daily, kind .. ':' .. math.floor(ts / 86400), 1)
  end
end
"""

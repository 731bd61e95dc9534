-- A command over many values, at most 1000 per call (unpack's limits).
local function chunked(cmd, key, values, prefix)
  for i = 1, #values, 1000 do
    local part = {unpack(values, i, math.min(i + 999, #values))}
    if prefix then redis.call(cmd, key, prefix, unpack(part)) else redis.call(cmd, key, unpack(part)) end
  end
end

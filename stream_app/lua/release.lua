-- The shared step's records of entries the outboxes let go: their time, on Redis's clock (every worker's trim reads
-- the same one). XX: a record trimmed meanwhile is not written again. KEYS: the records. ARGV: the members.
local now = tonumber(redis.call('TIME')[1])
for i = 1, #ARGV, 1000 do
  local args = {}
  for j = i, math.min(i + 999, #ARGV) do
    args[#args + 1] = now
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], 'XX', unpack(args))
end
return #ARGV

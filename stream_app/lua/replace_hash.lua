-- Replace a hash whole (a customer's profile): delete it, then write the fields given, if any. One call, so a
-- reader never sees it half replaced. KEYS: the hash. ARGV: field, value, field, value, ...
redis.call('DEL', KEYS[1])
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 1

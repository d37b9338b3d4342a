-- A session's summary: delete its state and return the record it held, in one round trip (the
-- summary's metrics say where the call ended, which another replica may have moved it to).
--
-- KEYS[1]  the session's state hash
--
-- Returns {r, ids} as stored, or false when nothing was stored.
local stored = redis.call('HMGET', KEYS[1], 'r', 'ids')
redis.call('DEL', KEYS[1])
if not stored[1] then
  return false
end
return stored

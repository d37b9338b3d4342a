-- Compare-and-set of one session's record, with eventId de-duplication, in one round trip.
--
-- KEYS[1]  the session's state hash: v (version), ids ("|id|id|"), r (record, JSON)
-- ARGV[1]  expected stored version ("" = nothing stored)
-- ARGV[2]  the new version
-- ARGV[3]  the new record
-- ARGV[4]  the new record's event ids, "|id|id|"
-- ARGV[5]  TTL in milliseconds (set on every write)
-- ARGV[6]  the eventId this write answers ("" = none)
--
-- Returns {1, false} when written, {0, stored record} on a version conflict, {2, stored
-- record} when the stored record already answered the event. A vanished record (expired,
-- evicted, lost in a restart) is re-created: the caller holds the latest state it knows.
local stored = redis.call('HMGET', KEYS[1], 'v', 'ids')
if stored[1] then
  if ARGV[6] ~= '' and stored[2] and string.find(stored[2], '|' .. ARGV[6] .. '|', 1, true) then
    return {2, redis.call('HGET', KEYS[1], 'r')}
  end
  if stored[1] ~= ARGV[1] or tonumber(stored[1]) >= tonumber(ARGV[2]) then
    return {0, redis.call('HGET', KEYS[1], 'r')}
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ids', ARGV[4], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, false}

-- Compare-and-set of one session's record, with eventId de-duplication, in one round trip.
--
-- KEYS[1]  the session's state hash: v (version), ids ("|id|id|"), r (record; see codec.rs)
-- ARGV[1]  expected stored version ("" = nothing stored)
-- ARGV[2]  the new version
-- ARGV[3]  the new record
-- ARGV[4]  the eventIds: "+id|" appends one to the stored ones (a warm webhook: the stored
--          ids are the writer's own but for this one), "+" keeps them, "=|id|id|" replaces
--          them (a write-behind flush, a new session)
-- ARGV[5]  TTL in milliseconds (set on every write)
-- ARGV[6]  the eventId this write answers ("" = none)
-- ARGV[7]  most eventIds kept (the oldest are dropped)
--
-- Returns 1 when written (an integer: the cheapest answer to read, on every warm webhook),
-- {0, stored record, stored ids} on a version conflict, {2, stored record, stored ids} when the
-- stored record already answered the event.
-- A vanished record (expired, evicted, lost in a restart) is re-created: the caller holds the
-- latest state it knows.
local stored = redis.call('HMGET', KEYS[1], 'v', 'ids')
if stored[1] then
  if ARGV[6] ~= '' and stored[2] and string.find(stored[2], '|' .. ARGV[6] .. '|', 1, true) then
    return {2, redis.call('HGET', KEYS[1], 'r'), stored[2]}
  end
  if stored[1] ~= ARGV[1] or tonumber(stored[1]) >= tonumber(ARGV[2]) then
    return {0, redis.call('HGET', KEYS[1], 'r'), stored[2] or '|'}
  end
end
local ids
if string.sub(ARGV[4], 1, 1) == '+' then
  ids = (stored[1] and stored[2] or '|') .. string.sub(ARGV[4], 2)
else
  ids = string.sub(ARGV[4], 2)
end
local _, bars = string.gsub(ids, '|', '|')
local keep = tonumber(ARGV[7]) + 1
while bars > keep do
  local cut = string.find(ids, '|', 2, true)
  ids = string.sub(ids, cut)
  bars = bars - 1
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ids', ids, 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1

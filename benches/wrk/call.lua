-- wrk script: every connection plays WHOLE calls against the restaurant flow, one after the
-- other, exactly as the platform would:
--   CALL_RECEIVED -> main menu, key 1 -> reservations, key 9 -> back to main,
--   key 3 -> hours + goodbye + hangup, SESSION_SUMMARY.
-- Each ACTION_COMPLETED echoes the clientActionId the previous answer carried (parsed from the
-- response body), and every call has a fresh sessionId, unique per thread and per run.
--
-- Run it with ONE connection per thread (the call's state lives in the thread's Lua state, and
-- wrk does not tell request() which connection it is writing to):
--   wrk -t16 -c16 -d10s --latency -s benches/wrk/call.lua http://127.0.0.1:8080/webhooks
--
-- Environment:
--   CALL_RUN=<hex>  run id mixed into every sessionId (default: derived from the clock), so two
--                   runs against one server or one Redis never share a session.
--   CALL_RATE=<r>   open loop: the TOTAL rate in webhooks/s over CALL_CONNECTIONS connections
--                   (set it to wrk's -c). Each connection
--                   sends on a fixed schedule (interval = connections / r, threads staggered);
--                   a request that is late is sent at once and its latency is counted from its
--                   scheduled time (no coordinated omission). wrk's delay() has millisecond
--                   resolution, so a request may go up to 1 ms early; its latency is then counted
--                   from the actual send. Without CALL_RATE the loop is closed (send on answer).
--   CALL_TRACE=1    print the answers to the first call of thread 0 (to see the menu advance).
--
-- done() prints the usual numbers and one machine-readable line, `CALLRESULT k=v ...`, that
-- benches/compare.sh reads: webhooks, calls, non-2xx, wrong answers (an answer that is not the
-- expected menu node: the call did not advance), latency percentiles in microseconds.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } call_lua_timespec;
  int clock_gettime(int clk_id, call_lua_timespec *tp);
]]
local ts = ffi.new("call_lua_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- Shared by every thread's state: set in setup(), read in done().
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state, so these are per connection).
local run = tonumber(os.getenv("CALL_RUN") or "", 16) or (os.time() % 0x10000000)
local rate = tonumber(os.getenv("CALL_RATE") or "")
local trace = os.getenv("CALL_TRACE") == "1"
local call = 0 -- calls started by this thread
local step = 0 -- 0 CALL_RECEIVED, 1 key 1, 2 key 9, 3 key 3, 4 SESSION_SUMMARY
local session = ""
local action_id = ""
-- Globals, not locals: done() reads them from each thread's state with thread:get().
calls_done, webhooks, non2xx, wrong, late = 0, 0, 0, 0, 0
sample = ""

local HEAD = '{"namespace":"VOICE","eventType":"CALL_ACTION","description":"Action request of a call",'
  .. '"payload":{"eventId":"'
local PARTIES = '","subAccountId":"acme_voice","callDirection":"INBOUND","callType":"PSTN",'
  .. '"source":"+6591110000","destination":"+6568888888","sourceFormat":"MSISDN","destinationFormat":"MSISDN",'
  .. '"sourceCountryCode":"SG","destinationCountryCode":"SG","sourceRefId":null,"destinationRefId":null,'
local KEYS = { "1", "9", "3" }
-- What each answer must be, by step: a pattern its body matches.
local EXPECT = {
  [0] = '"clientActionId":"[^"]*:main:',
  [1] = '"clientActionId":"[^"]*:reservations:',
  [2] = '"clientActionId":"[^"]*:main:',
  [3] = '"action":"hangup"',
}

local function call_action()
  local event = session .. "-" .. step
  local common = HEAD .. event .. '","callId":"' .. session .. '-c","sessionId":"' .. session .. PARTIES
  if step == 0 then
    return common .. '"callStatus":"CALL_RECEIVED","callDuration":0,"sipCode":200,'
      .. '"timestamp":"2026-11-20T09:15:02.118Z"}}'
  end
  return common .. '"callStatus":"ACTION_COMPLETED","callDuration":' .. (step * 7)
    .. ',"eventData":{"dtmf":"' .. KEYS[step] .. '","asrCaptured":null},"sipCode":200,'
    .. '"timestamp":"2026-11-20T09:15:0' .. step .. '.118Z","clientActionId":"' .. action_id .. '"}}'
end

local function summary()
  return '{"namespace":"VOICE","eventType":"SESSION_SUMMARY","description":"Summary of a completed call session",'
    .. '"version":5,"payload":{"sessionId":"' .. session .. '","subAccountId":"acme_voice",'
    .. '"sessionStatus":"COMPLETED","startTime":"2026-11-20T09:15:02.118Z","endTime":"2026-11-20T09:15:30.118Z",'
    .. '"lastAction":"HANGUP","callCount":1,"details":{"callA":{"callId":"' .. session .. '-c",'
    .. '"callDirection":"INBOUND","callType":"PSTN","initiatedTimestamp":"2026-11-20T09:15:02.118Z",'
    .. '"connectedTimestamp":"2026-11-20T09:15:02.300Z","disconnectedTimestamp":"2026-11-20T09:15:30.118Z",'
    .. '"source":"+6591110000","destination":"+6568888888","sourceFormat":"MSISDN","destinationFormat":"MSISDN",'
    .. '"sourceCountryCode":"SG","destinationCountryCode":"SG","callStatus":"COMPLETED","callDuration":28}}}}'
end

-- Open loop: the schedule of this connection, and the latency histogram it fills
-- (10 us buckets, counted from the scheduled send time, see the header).
local interval, next_at, sent_at, due_at = 0, 0, 0, 0
hist = {} -- global, read by done()

-- The request line and headers, built once: wrk.format() would rebuild them per request.
local prefix = ""
local function http(body)
  return prefix .. #body .. "\r\n\r\n" .. body
end

function init(args)
  prefix = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. (wrk.port and (":" .. wrk.port) or "")
    .. "\r\nContent-Type: application/json\r\nContent-Length: "
  if rate then
    local n = tonumber(os.getenv("CALL_CONNECTIONS") or "1")
    interval = n * 1000000 / rate
    next_at = now_us() + interval * (tid / n + 1)
  end
end

if rate then
  function delay()
    local wait = (next_at - now_us()) / 1000
    if wait < 0 then
      return 0
    end
    return math.floor(wait)
  end
end

function request()
  if step == 0 then
    call = call + 1
    session = string.format("%08x-%04x-4000-8000-%012x", run, tid, call)
  end
  if rate then
    sent_at = now_us()
    due_at = next_at
    if sent_at - due_at > 1000 then
      late = late + 1
    end
    next_at = next_at + interval
  end
  if step == 4 then
    return http(summary())
  end
  return http(call_action())
end

function response(status, headers, body)
  webhooks = webhooks + 1
  if trace and tid == 0 and calls_done == 0 then
    print(string.format("CALLTRACE step %d HTTP %d %s", step, status, string.sub(body or "", 1, 160)))
  end
  if rate then
    local start = due_at < sent_at and due_at or sent_at
    local bucket = math.floor((now_us() - start) / 10)
    hist[bucket] = (hist[bucket] or 0) + 1
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then
      sample = "step " .. step .. ": HTTP " .. status .. " " .. string.sub(body or "", 1, 200)
    end
    step = 0 -- abandon the call: the next request starts a new one
    return
  end
  if step == 4 then
    calls_done = calls_done + 1
    step = 0
    return
  end
  if not string.find(body, EXPECT[step]) then
    wrong = wrong + 1
    if sample == "" then
      sample = "step " .. step .. ": " .. string.sub(body, 1, 200)
    end
  end
  action_id = string.match(body, '"clientActionId":"([^"]*)"') or ""
  step = step + 1
end

function done(summary_, latency, requests)
  local total = { calls = 0, webhooks = 0, non2xx = 0, wrong = 0, late = 0 }
  local merged, count = {}, 0
  local first_sample = ""
  for _, t in ipairs(threads) do
    for k, _ in pairs(total) do
      local key = (k == "calls") and "calls_done" or k
      total[k] = total[k] + (t:get(key) or 0)
    end
    local s = t:get("sample")
    if first_sample == "" and s and s ~= "" then
      first_sample = s
    end
    if rate then
      local h = t:get("hist") or {}
      for b, c in pairs(h) do
        merged[b] = (merged[b] or 0) + c
        count = count + c
      end
    end
  end
  local seconds = summary_.duration / 1000000
  local errors = summary_.errors
  local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
  local line = string.format(
    "CALLRESULT webhooks=%d seconds=%.3f rate=%.1f calls=%d non2xx=%d wrong=%d socket_errors=%d"
      .. " p50_us=%d p90_us=%d p99_us=%d max_us=%d",
    summary_.requests, seconds, summary_.requests / seconds, total.calls, total.non2xx, total.wrong,
    socket_errors, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max)
  if rate then
    local keys = {}
    for b, _ in pairs(merged) do
      keys[#keys + 1] = b
    end
    table.sort(keys)
    local function pct(p)
      local want, seen = count * p / 100, 0
      for _, b in ipairs(keys) do
        seen = seen + merged[b]
        if seen >= want then
          return (b + 1) * 10
        end
      end
      return 0
    end
    line = line .. string.format(" target_rate=%.1f sched_p50_us=%d sched_p99_us=%d late_1ms=%d",
      rate, pct(50), pct(99), total.late)
  end
  print(line)
  if first_sample ~= "" then
    print("CALLSAMPLE " .. first_sample)
  end
end

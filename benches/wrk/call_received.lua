-- wrk script: every request is a CALL_RECEIVED of a new session (a new call) to the
-- restaurant flow, so each one creates a session actor, runs the flow's first step,
-- commits the state and answers the welcome menu. The heaviest webhook there is.
--   wrk -t2 -c64 -d20s -s benches/wrk/call_received.lua http://127.0.0.1:8080/webhooks
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local session = string.format("%08x-0000-4000-8000-%012x", id, counter)
  local body = '{"namespace":"VOICE","eventType":"CALL_ACTION","description":"Action request of a call",'
    .. '"payload":{"eventId":"' .. session .. '-e","callId":"' .. session .. '-c","sessionId":"' .. session
    .. '","subAccountId":"acme_voice","callStatus":"CALL_RECEIVED","callDirection":"INBOUND","callType":"PSTN",'
    .. '"source":"+6591110000","destination":"+6568888888","sourceFormat":"MSISDN","destinationFormat":"MSISDN",'
    .. '"sourceCountryCode":"SG","destinationCountryCode":"SG","callDuration":0,"sipCode":200,'
    .. '"timestamp":"2026-11-20T09:15:02.118Z"}}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    print("unexpected status " .. status .. ": " .. body)
  end
end

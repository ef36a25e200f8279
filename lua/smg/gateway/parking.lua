-- A 2026-07-28 client in front of a 2025 upstream that asks the client mid-call
-- (sampling, elicitation, roots). The 2026 client cannot be asked: it must be answered
-- with input_required and retry. So the call is *parked*: the upstream keeps waiting for
-- its answer, the client gets input_required naming what the upstream asked, with a
-- requestState that names the parked call, and its retry hands the answers to the waiting
-- upstream request and takes over the wait for the final result (or the next round).
--
-- requestState is sealed with AES-256-GCM under a key of this process, bound to the
-- identity, the method and a digest of the request's params, naming the parked call by a
-- random id, with an expiry: it cannot be forged, moved to another identity, method or
-- request (a retry must repeat the call it continues), or used late. Parked calls are bounded per
-- identity and expire (the upstream's request then fails). A retry must reach the same
-- instance (the parked call lives here).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local limits = require "smg.limits"
local log = smg.log

local M = {}

local KEY = core.random_bytes(32)
local PARK_TIMEOUT = 120 -- seconds a parked call waits for the client's retry

local parks = setmetatable({}, { __mode = "k" }) -- downstream call -> its park

-- The request a retry continues, without what the retry adds (requestState,
-- inputResponses) or may change (_meta: the client's capabilities and log level).
local RETRY_KEYS = { requestState = true, inputResponses = true, _meta = true }
local function digest(params)
  local part = {}
  for k, v in pairs(type(params) == "table" and params or {}) do
    if not RETRY_KEYS[k] then part[k] = v end
  end
  return smg.hash(smg.json.canonical(part))
end

local function aad(session, method, params_digest)
  return ("smg-park-v2\n%s\n%s\n%s"):format(tostring(session.identity_key), method, params_digest)
end

local function seal(park)
  local box = smg.crypto.aead_seal(KEY, park.id .. "\n" .. tostring(park.expires),
    aad(park.session, park.method, park.digest))
  return "smg1." .. smg.crypto.b64url_encode(box)
end

-- The park a requestState names: park | nil (not a state of ours: the upstream's own, for
-- a 2026 upstream) | false, err (ours, but expired or finished).
local function opened(gw, session, method, params)
  local s = params.requestState
  if type(s) ~= "string" or s:sub(1, 5) ~= "smg1." then return nil end
  local box = smg.crypto.b64decode(s:sub(6))
  local plain = box and smg.crypto.aead_open(KEY, box, aad(session, method, digest(params)))
  if not plain then return false, "requestState is not valid for this request" end
  local id, expires = plain:match("^(%x+)\n([%d.]+)$")
  local park = id and gw.parked and gw.parked[id]
  if not park or tonumber(expires) < smg.now() then return false, "requestState has expired" end
  return park
end

local function drop(gw, park)
  if gw.parked[park.id] ~= park then return end
  gw.parked[park.id] = nil
  parks[park.call] = nil
  local n = (gw.parked_by[park.session.identity_key] or 1) - 1
  gw.parked_by[park.session.identity_key] = n > 0 and n or nil
  if park.timer then park.timer:close() end
  for key, f in pairs(park.waiting) do
    park.waiting[key] = nil
    f:set(nil, { code = rpc.INTERNAL_ERROR, message = "the client did not answer in time" })
  end
end

-- Answers the round's client request with input_required for every question still open.
local function flush(park)
  if park.answered or not (park.stream and park.stream:open()) then return end
  local requests = {}
  for key, r in pairs(park.requests) do requests[key] = r end
  park.answered = true
  park.stream:reply(rpc.reply(park.reply_id, { resultType = "input_required", inputRequests = requests,
    requestState = seal(park) }))
  if park.turn then park.turn:set("asked") end
end

-- The upstream asks `method` during `call` (a 2026 client's, which declared the
-- capability). Yields until the client's retry answers, or the park expires.
function M.ask(gw, call, method, params)
  local session = call.session
  local park = parks[call]
  if not park then
    gw.parked, gw.parked_by = gw.parked or {}, gw.parked_by or {}
    local key = session.identity_key
    local n = gw.parked_by[key] or 0
    if n >= gw.limits.max_calls_per_session then
      return nil, limits.refused("calls_per_session", "too many calls of this identity are waiting for its input")
    end
    gw.parked_by[key] = n + 1
    park = { id = smg.random_hex(16), call = call, session = session, method = call.method,
      digest = digest(call.params), asks = 0, waiting = {}, requests = {}, stream = call.stream,
      reply_id = call.id, answered = false,
      expires = smg.now() + PARK_TIMEOUT }
    park.timer = smg.timer(PARK_TIMEOUT, function() drop(gw, park) end)
    gw.parked[park.id] = park
    parks[call] = park
  end
  park.asks = park.asks + 1
  local key = "r" .. park.asks
  local f = async.future()
  park.waiting[key], park.requests[key] = f, { method = method, params = params }
  flush(park)
  return f:wait(PARK_TIMEOUT + 5)
end

-- After the parked call's own dispatch ended: its result goes to the retry waiting for
-- it. Returns true when the call was parked (its first request was answered already).
function M.finished(gw, call, res, err)
  local park = parks[call]
  if not park then return false end
  park.final = { res, err }
  if park.turn then
    park.turn:set("final")
    drop(gw, park)
  end
  -- Else no retry is waiting yet: the park keeps the result for the next one (until it
  -- expires).
  return true
end

-- A retry of a parked call (a requestState of ours). Returns handled, res, err: handled
-- false means the request is not a retry of ours and goes on as usual.
function M.resume(gw, session, call, params)
  local park, why = opened(gw, session, call.method, params)
  if park == nil then return false end
  if not park then return true, nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: " .. why } end
  if park.final then
    drop(gw, park)
    return true, park.final[1], park.final[2]
  end
  if park.turn then -- one retry at a time continues a parked call
    return true, nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: requestState is being continued by another request" }
  end
  park.stream, park.reply_id, park.answered = call.stream, call.id, false
  local answers = type(params.inputResponses) == "table" and params.inputResponses or {}
  for key, f in pairs(park.waiting) do
    if answers[key] ~= nil then
      park.waiting[key], park.requests[key] = nil, nil
      f:set(answers[key])
    end
  end
  if not park.final then
    park.turn = async.future()
    if next(park.waiting) then flush(park) end -- a question the retry did not answer: asked again
    park.turn:wait(PARK_TIMEOUT)
    park.turn = nil
  end
  if park.final then
    drop(gw, park)
    return true, park.final[1], park.final[2]
  end
  if park.answered then return true, nil, nil end -- this retry was answered with the next round
  log.warn(("parked call %s: no progress after the client's retry"):format(park.id))
  return true, nil, { code = rpc.INTERNAL_ERROR, message = "the upstream did not finish in time" }
end

-- How many parked calls have answered their client (input_required) and wait for a
-- retry: a graceful stop does not wait for those.
function M.answered(gw)
  local n = 0
  for _, park in pairs(gw.parked or {}) do
    if park.answered then n = n + 1 end
  end
  return n
end

-- At shutdown: every parked call goes (its upstream request fails, its timer closes, so
-- nothing keeps the loop alive).
function M.close_all(gw)
  for _, park in pairs(gw.parked or {}) do drop(gw, park) end
end

return M

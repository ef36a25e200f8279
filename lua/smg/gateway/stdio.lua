-- The MCP stdio server transport: one client (whoever spawned us), one session, one line
-- per message on stdin and stdout. The key, when auth is on, comes from the environment.
local smg = require "smg"
local core = require "smg.core"
local intake = require "smg.mcp.intake"
local streams = require "smg.mcp.streams"
local Session = require "smg.mcp.session"
local modern = require "smg.mcp.modern"
local rpc = require "smg.mcp.jsonrpc"
local log = smg.log

local M = {}

local function authenticate(gw, session)
  if not gw.plugins.auth_enabled then return end
  if gw.cfg.is_default then
    -- The embedded default's stdio client is the local user who spawned us: no key to share.
    session.identity = { project_id = "default_project", user_id = "default_user", mcp_config_id = gw.default_config_id }
    return
  end
  -- stdio has no headers: the key comes from the environment, once, for the process.
  local identity, _, why = require("smg.gateway.auth").authenticate(gw, { headers = {}, transport = "stdio" }, nil)
  if identity then
    session.identity, session.config_id = identity, identity.mcp_config_id
    log.info(("stdio client authenticated as project %s"):format(tostring(identity.project_name or identity.project_id)))
  else
    session.auth_error = why
    log.error("stdio client not authenticated: " .. tostring(why))
  end
end

-- A 2026-07-28 message (no initialize; _meta on every request): served by a session of its
-- own, as on HTTP; a listen stream lives until the client cancels it (on stdio,
-- notifications/cancelled ends a listen stream).
local listens = {} -- listen request id -> its session
-- Other requests in flight: id -> their session (weak: a finished request's session goes).
local requests = setmetatable({}, { __mode = "v" })

-- The 2026 request a notifications/cancelled names: its session | nil.
local function cancelled_target(msg)
  if msg.method ~= "notifications/cancelled" or type(msg.params) ~= "table" then return nil end
  local id = tostring(msg.params.requestId)
  return listens[id] or requests[id], id
end

local function handle_modern(gw, home, msg, kind, out)
  if kind == "notification" then
    local s, id = cancelled_target(msg)
    if s and listens[id] == s then
      listens[id] = nil
      gw:remove_session(s, "listen cancelled")
    elseif s and s.call then
      requests[id] = nil
      s.call:cancel(msg.params.reason or "cancelled by the client")
    end
    return
  end
  local version, caps, info, level = modern.check(msg, nil)
  if not version then
    local refused = caps
    return out:send(rpc.error(msg.id, refused.code, refused.message, refused.data))
  end
  local listen = msg.method == "subscriptions/listen"
  local earlier = requests[tostring(msg.id)] -- (weak: a finished one may linger until collected)
  if listens[tostring(msg.id)] or (earlier and earlier.call) then
    return out:send(rpc.error(msg.id, rpc.INVALID_REQUEST, "Invalid Request: a request with this id is in flight"))
  end
  local session = Session.new_stateless(gw, home.identity, home.config_id, "stdio", nil, nil, version, caps, info,
    level, nil)
  session.auth_error = home.auth_error
  if listen then
    local limit, why = gw:session_refusal("stdio", nil)
    if limit then return out:send(rpc.error(msg.id, rpc.SERVER_ERROR, why)) end
    session:listen(msg.id, type(msg.params) == "table" and msg.params.notifications or nil)
    gw:add_session(session)
    listens[tostring(msg.id)] = session
    session.get_streams[1] = out
  else
    requests[tostring(msg.id)] = session
  end
  session:handle(msg, kind, out)
end

function M.serve(gw)
  local session = Session.new(gw, "stdio", nil, { config_id = gw.default_config_id, identity_key = "stdio" })
  gw.stdio_session = session
  authenticate(gw, session)
  local out = streams.stdio()
  local ok, err = core.stdio_start(function(line)
    local list, kinds, is_batch, nreq = intake.parse(line)
    if not list then return out:send(intake.error_line(kinds)) end
    local m = list[1]
    if not is_batch and kinds[1] ~= "response" and not session.initialized and (modern.is_modern(m, nil)
      or cancelled_target(m)) then
      return handle_modern(gw, session, m, kinds[1], out)
    end
    local stream = out
    if is_batch then
      local refused = intake.batch_refusal(session.protocol_version)
      if refused then return out:send(intake.error_line(refused)) end
      stream = streams.batch(out, nreq)
    end
    for i, msg in ipairs(list) do session:handle(msg, kinds[i], stream) end
  end, function()
    gw:shutdown("stdin closed")
  end, gw.max_message_bytes)
  if not ok then return nil, err end
  log.info(("serving MCP on stdio (mode %s, %d server(s))"):format(gw.mode, #gw.pipeline:servers(nil)))
  return true
end

return M

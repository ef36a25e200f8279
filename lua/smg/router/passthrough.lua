-- Passthrough: one upstream, names untouched. The client sees the upstream's own
-- capabilities, serverInfo and instructions; every request is forwarded with its id,
-- progress token and cancellation remapped. The mode the conformance suite runs against.
-- allow_tools / deny_tools still hold: a denied tool does not exist.
local smg = require "smg"
local rpc = require "smg.mcp.jsonrpc"
local names = require "smg.router.names"

local M = {}

local function the_server(r, session)
  local name = r:setting("passthrough_server")
  if name then return r:server(session, name) end
  return r:servers(session)[1]
end

function M.check(r)
  local name = r:setting("passthrough_server")
  local servers = r:servers(nil)
  if name and not r:server(nil, name) then
    return nil, "gateway.passthrough_server: no server named " .. name
  end
  if not name and #servers ~= 1 then
    return nil, ("passthrough mode needs exactly one server (or gateway.passthrough_server); the config has %d"):format(#servers)
  end
  return true
end

function M.initialize(r, session)
  local spec = the_server(r, session)
  if not spec then return rpc.fail(rpc.INTERNAL_ERROR, "no server configured") end
  local init, err = r:ready(session, spec)
  if not init then return nil, err end
  local caps = {}
  for k, v in pairs(init.capabilities or {}) do
    if k ~= "tasks" then caps[k] = v end -- not forwarded end to end yet
  end
  -- What the client sees of the upstream (its instructions above all) passes s2c:result.
  return r:screen(session, spec, "initialize",
    { capabilities = caps, serverInfo = init.serverInfo or r:gateway_info(), instructions = init.instructions })
end

local function visible_tools(spec, tools)
  local kept = smg.json.array({})
  for _, t in ipairs(tools) do
    if type(t) == "table" and names.allowed(spec, t.name) then kept[#kept + 1] = t end
  end
  return kept
end

local LISTS = { ["tools/list"] = "tools", ["prompts/list"] = "prompts", ["resources/list"] = "resources",
  ["resources/templates/list"] = "resourceTemplates" }

function M.request(r, session, method, params, call)
  local spec = the_server(r, session)
  if not spec then return rpc.fail(rpc.INTERNAL_ERROR, "no server configured") end
  if method == "logging/setLevel" then
    if not session:set_log_level(params.level) then
      return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: unknown log level " .. tostring(params.level))
    end
    -- A shared upstream serves others too: its level stays, this session's messages are
    -- filtered. A per-session one follows the session.
    if spec.sharing ~= "per_session" then return {} end
  elseif method == "resources/subscribe" and type(params.uri) == "string" then
    session.subscriptions[params.uri] = true
    return r:subscribe(session, spec, params.uri, call)
  elseif method == "resources/unsubscribe" and type(params.uri) == "string" then
    session.subscriptions[params.uri] = nil
    return r:unsubscribe(session, spec, params.uri, call)
  elseif method == "tools/call" and not names.allowed(spec, params.name) then
    return rpc.fail(rpc.INVALID_PARAMS, "Unknown tool: " .. tostring(params.name))
  end
  local res, err = r:forward(session, spec, method, params, call)
  local list = LISTS[method]
  if res and list and type(res[list]) == "table" then
    -- Pages pass through as they are; the discovery guardrails see (and filter) each one.
    local items = res[list]
    if list == "tools" then items = visible_tools(spec, items) end
    res[list] = r:screen_list(session, spec, list, items)
  end
  return res, err
end

-- Every resource URI belongs to the one server.
function M.resource_owner(r, session) return the_server(r, session) end

return M

-- Passthrough: one upstream, names untouched. The client sees the upstream's own
-- capabilities, serverInfo and instructions; every request is forwarded with its id,
-- progress token and cancellation remapped. The mode the conformance suite runs against.
local smg = require "smg"
local rpc = require "smg.mcp.jsonrpc"
local allowed = require("smg.gateway.router_aggregate").allowed

local M = {}

local function the_server(gw)
  local name = gw.cfg.gateway.passthrough_server
  local servers = gw:servers()
  if name then return gw:server(nil, name) end
  return servers[1]
end

function M.check(gw)
  local name = gw.cfg.gateway.passthrough_server
  local servers = gw:servers()
  if name and not gw:server(nil, name) then
    return nil, "gateway.passthrough_server: no server named " .. name
  end
  if not name and #servers ~= 1 then
    return nil, ("passthrough mode needs exactly one server (or gateway.passthrough_server); the config has %d"):format(#servers)
  end
  return true
end

local function upstream(gw, session)
  return gw:upstream_for(session, the_server(gw))
end

function M.initialize(gw, session, params)
  local up = upstream(gw, session)
  local ok, err = up:ensure_ready(gw.timeouts.discovery_timeout)
  if not ok then return nil, err end
  local caps = {}
  for k, v in pairs(up.init.capabilities or {}) do
    if k ~= "tasks" then caps[k] = v end -- not forwarded end to end yet
  end
  return { capabilities = caps, serverInfo = up.init.serverInfo or gw:gateway_info(),
    instructions = up.init.instructions }
end

function M.request(gw, session, method, params, call)
  local up = upstream(gw, session)
  if method == "logging/setLevel" then
    if not session:set_log_level(params.level) then
      return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: unknown log level " .. tostring(params.level) }
    end
    -- A shared upstream serves others too: filter here instead of changing its level.
    if up.session ~= session then return {} end
  elseif method == "resources/subscribe" and params.uri then
    session.subscriptions[params.uri] = true
  elseif method == "resources/unsubscribe" and params.uri then
    session.subscriptions[params.uri] = nil
  end
  local spec = the_server(gw)
  if method == "tools/call" then
    -- allow_tools / deny_tools hold in every mode: a denied tool does not exist.
    if type(params.name) ~= "string" or not allowed(spec, params.name) then
      return nil, { code = rpc.INVALID_PARAMS, message = "Unknown tool: " .. tostring(params.name) }
    end
    return gw:call_tool(session, spec, up, params, call)
  end
  local res, err = gw:forward(session, up, method, params, call)
  if res and method == "tools/list" and type(res.tools) == "table" then
    local kept = smg.json.array({})
    for _, t in ipairs(res.tools) do
      if type(t) == "table" and type(t.name) == "string" and allowed(spec, t.name) then kept[#kept + 1] = t end
    end
    res.tools = kept
  end
  if res and method == "tools/list" and spec.enable_tool_guardrails and type(res.tools) == "table" then
    -- Pages pass through as they are; the discovery guardrails see (and filter) each one.
    res.tools = require("smg.gateway.guardrails").discovery(gw.plugins, gw.timeouts.guardrail_timeout, spec, res.tools)
  end
  return res, err
end

return M

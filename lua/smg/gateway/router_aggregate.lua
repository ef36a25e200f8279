-- Aggregate: every upstream's tools, prompts and resources in one list, tools and prompts
-- namespaced "server<sep>name" (separator "__" by default), with per-server allow/deny
-- lists. Resources keep their URIs (clients may fetch them); reads are routed by the
-- owner recorded when the lists were built, or by matching templates.
local smg = require "smg"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local json = smg.json
local log = smg.log

local M = {}

function M.check(gw)
  return true
end

local function glob_match(pattern, s)
  local p = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return s:match(p) ~= nil
end

function M.allowed(spec, name)
  if #spec.allow_tools > 0 then
    local ok = false
    for _, p in ipairs(spec.allow_tools) do if glob_match(p, name) then ok = true break end end
    if not ok then return false end
  end
  for _, p in ipairs(spec.deny_tools) do if glob_match(p, name) then return false end end
  return true
end

function M.initialize(gw, session)
  return {
    capabilities = { tools = { listChanged = true }, resources = { subscribe = true, listChanged = true },
      prompts = { listChanged = true }, logging = {}, completions = {} },
    serverInfo = gw:gateway_info(),
    instructions = "smg aggregates several MCP servers; names are prefixed with the server name and '"
      .. gw.cfg.gateway.separator .. "'.",
  }
end

-- Splits "server<sep>name" into the server spec and the upstream's own name.
local function resolve(gw, session, full)
  if type(full) ~= "string" then return nil end
  local sep = gw.cfg.gateway.separator
  local best, inner
  for _, spec in ipairs(gw:servers(session.config_id)) do
    local prefix = spec.server_name .. sep
    if full:sub(1, #prefix) == prefix and (not best or #prefix > #best.server_name + #sep) then
      best, inner = spec, full:sub(#prefix + 1)
    end
  end
  return best, inner
end

-- Discovers `method` on every server (concurrently) and merges the items.
local function gather(gw, session, method, key, transform)
  local specs = gw:servers(session.config_id)
  local tasks = {}
  for i, spec in ipairs(specs) do
    tasks[i] = function()
      local up = gw:upstream_for(session, spec)
      local ok = up:ensure_ready(gw.timeouts.discovery_timeout)
      if not ok then return {} end
      local caps = up.init and up.init.capabilities or {}
      local capname = method:match("^(%a+)/")
      if caps[capname] == nil then return {} end
      local items, err = gw:discover(up, method, key, session)
      if not items then
        log.warn(("%s on %s failed: %s"):format(method, spec.server_name, tostring(err and err.message)))
        return {}
      end
      local out = {}
      for _, item in ipairs(items) do
        local t = transform(spec, item)
        if t then out[#out + 1] = t end
      end
      return out
    end
  end
  local results = async.all(tasks)
  local merged = json.array({})
  for i = 1, #specs do
    for _, item in ipairs(results[i] or {}) do merged[#merged + 1] = item end
  end
  return merged
end

local function shallow(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return setmetatable(o, getmetatable(t))
end

local function prefixed(gw, spec, item, check_allowed)
  if check_allowed and not M.allowed(spec, item.name) then return nil end
  local o = shallow(item)
  o.name = spec.server_name .. gw.cfg.gateway.separator .. item.name
  return o
end

local function list_tools(gw, session)
  return gather(gw, session, "tools/list", "tools", function(spec, t)
    if type(t.execution) == "table" and t.execution.taskSupport == "required" then return nil end
    return prefixed(gw, spec, t, true)
  end)
end
M.list_tools = list_tools

local function owners(gw, config_id)
  local k = config_id or gw.default_config_id
  gw.uri_owner[k] = gw.uri_owner[k] or {}
  gw.template_owner[k] = gw.template_owner[k] or {}
  return gw.uri_owner[k], gw.template_owner[k]
end

local function template_pattern(t)
  return "^" .. t:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{[^}]*}", "[^/]*") .. "$"
end

local function list_resources(gw, session)
  local uris = owners(gw, session.config_id)
  return gather(gw, session, "resources/list", "resources", function(spec, r)
    if r.uri then uris[r.uri] = spec.server_name end
    local o = shallow(r)
    o.name = spec.server_name .. gw.cfg.gateway.separator .. tostring(r.name)
    return o
  end)
end

local function list_templates(gw, session)
  local _, templates = owners(gw, session.config_id)
  local seen = {}
  for _, t in ipairs(templates) do seen[t.template .. "|" .. t.server] = true end
  return gather(gw, session, "resources/templates/list", "resourceTemplates", function(spec, t)
    if t.uriTemplate and not seen[t.uriTemplate .. "|" .. spec.server_name] then
      templates[#templates + 1] = { template = t.uriTemplate, pattern = template_pattern(t.uriTemplate), server = spec.server_name }
    end
    local o = shallow(t)
    o.name = spec.server_name .. gw.cfg.gateway.separator .. tostring(t.name)
    return o
  end)
end

local function owner_of(gw, session, uri)
  local uris, templates = owners(gw, session.config_id)
  local name = uris[uri]
  if not name then
    for _, t in ipairs(templates) do
      if tostring(uri):match(t.pattern) then name = t.server break end
    end
  end
  return name and gw:server(session.config_id, name)
end

local function find_owner(gw, session, uri)
  local spec = owner_of(gw, session, uri)
  if spec then return spec end
  -- Not seen yet: build the lists once, then look again.
  list_resources(gw, session)
  list_templates(gw, session)
  return owner_of(gw, session, uri)
end

local function unknown(kind, name)
  return nil, { code = rpc.INVALID_PARAMS, message = ("Invalid params: unknown %s %s"):format(kind, tostring(name)) }
end

local function forward_named(gw, session, method, params, call, kind)
  local spec, inner = resolve(gw, session, params.name)
  if not spec then return unknown(kind, params.name) end
  if kind == "tool" and not M.allowed(spec, inner) then
    return nil, { code = rpc.INVALID_PARAMS, message = ("Invalid params: tool %s is not allowed by the gateway policy"):format(params.name) }
  end
  local p = shallow(params)
  p.name = inner
  local up = gw:upstream_for(session, spec)
  if method == "tools/call" then return gw:call_tool(session, spec, up, p, call) end
  return gw:forward(session, up, method, p, call)
end

local handlers = {}

handlers["tools/list"] = function(gw, session) return { tools = list_tools(gw, session) } end
handlers["tools/call"] = function(gw, session, params, call)
  return forward_named(gw, session, "tools/call", params, call, "tool")
end
handlers["prompts/list"] = function(gw, session)
  return { prompts = gather(gw, session, "prompts/list", "prompts", function(spec, p) return prefixed(gw, spec, p) end) }
end
handlers["prompts/get"] = function(gw, session, params, call)
  return forward_named(gw, session, "prompts/get", params, call, "prompt")
end
handlers["resources/list"] = function(gw, session) return { resources = list_resources(gw, session) } end
handlers["resources/templates/list"] = function(gw, session) return { resourceTemplates = list_templates(gw, session) } end

local function by_uri(method)
  return function(gw, session, params, call)
    local spec = find_owner(gw, session, params.uri)
    if not spec then
      return nil, { code = rpc.RESOURCE_NOT_FOUND, message = "Resource not found", data = { uri = params.uri } }
    end
    if method == "resources/subscribe" then session.subscriptions[params.uri] = true end
    if method == "resources/unsubscribe" then session.subscriptions[params.uri] = nil end
    return gw:forward(session, gw:upstream_for(session, spec), method, params, call)
  end
end
handlers["resources/read"] = by_uri("resources/read")
handlers["resources/subscribe"] = by_uri("resources/subscribe")
handlers["resources/unsubscribe"] = by_uri("resources/unsubscribe")

handlers["completion/complete"] = function(gw, session, params, call)
  local ref = type(params.ref) == "table" and params.ref or {}
  local spec, p = nil, shallow(params)
  if ref.type == "ref/prompt" then
    local inner
    spec, inner = resolve(gw, session, ref.name)
    if spec then
      p.ref = shallow(ref)
      p.ref.name = inner
    end
  elseif ref.type == "ref/resource" then
    spec = find_owner(gw, session, ref.uri)
  end
  if not spec then return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: unknown completion reference" } end
  return gw:forward(session, gw:upstream_for(session, spec), "completion/complete", p, call)
end

handlers["logging/setLevel"] = function(gw, session, params)
  if not session:set_log_level(params.level) then
    return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: unknown log level " .. tostring(params.level) }
  end
  for _, up in pairs(session.upstreams) do
    if up.state == "ready" and up.init.capabilities and up.init.capabilities.logging then
      async.spawn(function() up:call("logging/setLevel", { level = params.level }) end)
    end
  end
  return {}
end

M.handlers = handlers

function M.request(gw, session, method, params, call)
  local h = handlers[method]
  if not h then return nil, { code = rpc.METHOD_NOT_FOUND, message = "Method not found: " .. tostring(method) } end
  return h(gw, session, params, call)
end

return M

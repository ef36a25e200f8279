-- Meta mode (the seed's): the client sees only the gateway's own seven tools, named with
-- a configurable prefix ("enkrypt_" by default, a drop-in for the seed's clients), and
-- reaches upstream tools through discover_all_tools and secure_call_tools. Like every
-- router it holds no upstream: `r` (the gateway's routing interface) does the I/O.
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local names = require "smg.router.names"
local json = require("smg").json
local arr = json.array

local M = {}

function M.check() return true end

local function obj_schema(props, required)
  return { type = "object", properties = props or {}, required = required and arr(required) or nil }
end

local TOOLS = {
  { name = "list_all_servers", description = "List every MCP server available to you, with the tools already discovered.",
    inputSchema = obj_schema({ discover_tools = { type = "boolean", description = "Also discover tools of servers not yet discovered (default true)" } }) },
  { name = "get_server_info", description = "Details of one server: description, transport, status and tools.",
    inputSchema = obj_schema({ server_name = { type = "string" } }, { "server_name" }) },
  { name = "discover_all_tools", description = "Discover the tools of one server, or of all servers when server_name is omitted.",
    inputSchema = obj_schema({ server_name = { type = "string" } }) },
  { name = "secure_call_tools", description = "Call one or more tools of a server, in order, through the gateway's guardrails.",
    inputSchema = obj_schema({
      server_name = { type = "string" },
      tool_calls = { type = "array", items = obj_schema({ name = { type = "string" },
        args = { type = "object" } }, { "name" }) },
    }, { "server_name", "tool_calls" }) },
  { name = "get_cache_status", description = "What the cache holds for your servers: per server whether its tools "
    .. "are cached and until when, and the cache's totals.", inputSchema = obj_schema() },
  { name = "clear_cache", description = "Clear cached tool lists, for one server or all (they are discovered again "
    .. "on next use).",
    inputSchema = obj_schema({ id = { type = "string", description = "Accepted for compatibility: a caller clears "
      .. "its own tenant's entries" }, server_name = { type = "string" },
      cache_type = { type = "string", description = "all | server_config (default) | gateway_config" } }) },
  { name = "get_timeout_metrics", description = "Operation counts, timeouts and escalation warnings per timeout category.",
    inputSchema = obj_schema() },
}

local function result(status, data)
  data.status = status
  return { content = arr({ { type = "text", text = json.encode(data) } }), structuredContent = data,
    isError = status == "error" or nil }
end

local function server_summary(r, session, spec, tools, source)
  return { server_name = spec.server_name, description = spec.description,
    transport = spec.config.url and "streamable-http" or "stdio", status = r:status(session, spec).state,
    sharing = spec.sharing, tools = tools, tools_source = source,
    input_guardrails_enabled = spec.input_guardrails_policy.enabled,
    output_guardrails_enabled = spec.output_guardrails_policy.enabled }
end

-- Tools of one server: configured ones (the seed's "tools" key), else cached/discovered.
local function server_tools(r, session, spec)
  if next(spec.tools) ~= nil then
    local list = arr({})
    for name, t in pairs(spec.tools) do
      local o = type(t) == "table" and t or {}
      list[#list + 1] = { name = o.name or name, description = o.description, inputSchema = o.inputSchema }
    end
    return list, nil, "config"
  end
  local ok, err = r:ready(session, spec)
  if not ok then return nil, err end
  local items, derr, source = r:discover(session, spec, "tools/list")
  if not items then return nil, derr end
  local list = arr({})
  for _, t in ipairs(items) do
    if names.allowed(spec, t.name) then list[#list + 1] = t end
  end
  return list, nil, source
end

local function cached_tools(r, session, spec) return r:cached(session, spec, "tools/list") end

local impl = {}

function impl.list_all_servers(r, session, args)
  local discover = args.discover_tools ~= false
  local servers, needing = {}, arr({})
  local specs = r:servers(session)
  local tasks = {}
  for i, spec in ipairs(specs) do
    tasks[i] = function()
      if discover then
        local tools, err, source = server_tools(r, session, spec)
        local s = server_summary(r, session, spec, tools, source)
        if not tools then s.error = err and err.message end
        return s
      end
      local tools = cached_tools(r, session, spec)
      return server_summary(r, session, spec, tools, tools and "cache" or nil)
    end
  end
  local results = async.all(tasks)
  for i, spec in ipairs(specs) do
    local s = results[i] or { server_name = spec.server_name, error = "discovery failed" }
    servers[spec.server_name] = s
    if not s.tools then needing[#needing + 1] = spec.server_name end
  end
  return result("success", { available_servers = servers, servers_needing_discovery = needing })
end

function impl.get_server_info(r, session, args)
  local spec = r:server(session, args.server_name)
  if not spec then return result("error", { error = "Server not available: " .. tostring(args.server_name) }) end
  local tools = cached_tools(r, session, spec)
  local info = server_summary(r, session, spec, tools, tools and "cache" or nil)
  local status = r:status(session, spec)
  info.server_info = status.server_info
  info.upstream = status
  return result("success", { server_name = spec.server_name, server_info = info })
end

function impl.discover_all_tools(r, session, args)
  local specs
  if args.server_name then
    local spec = r:server(session, args.server_name)
    if not spec then return result("error", { error = "Server not available: " .. tostring(args.server_name) }) end
    specs = { spec }
  else
    specs = r:servers(session)
  end
  local tasks = {}
  for i, spec in ipairs(specs) do
    tasks[i] = function()
      local tools, err, source = server_tools(r, session, spec)
      if not tools then return { status = "error", error = err and err.message or "discovery failed" } end
      return { status = "success", tools = tools, source = source }
    end
  end
  local results = async.all(tasks)
  local out = {}
  local any_ok = false
  for i, spec in ipairs(specs) do
    out[spec.server_name] = results[i] or { status = "error", error = "discovery failed" }
    if out[spec.server_name].status == "success" then any_ok = true end
  end
  if args.server_name then
    local one = out[args.server_name]
    if one.status ~= "success" then return result("error", { server_name = args.server_name, error = one.error }) end
    return result("success", { server_name = args.server_name, tools = one.tools, source = one.source })
  end
  return result(any_ok and "success" or "error", { discovery = out })
end

function impl.secure_call_tools(r, session, args, call)
  local spec = r:server(session, args.server_name)
  if not spec then return result("error", { error = "Server not available: " .. tostring(args.server_name) }) end
  if type(args.tool_calls) ~= "table" or #args.tool_calls == 0 then
    return result("error", { error = "tool_calls must be a non-empty array of {name, args}" })
  end
  local results, failed = arr({}), 0
  for i, tc in ipairs(args.tool_calls) do
    local name = type(tc) == "table" and tc.name
    local entry = { name = name, index = i }
    if type(name) ~= "string" then
      entry.status, entry.error = "error", "tool call without a name"
    elseif not names.allowed(spec, name) then
      entry.status, entry.error = "blocked", "tool " .. name .. " is not allowed by the gateway policy"
    else
      local params = { name = name, arguments = type(tc.args) == "table" and tc.args or {} }
      local res, err = r:forward(session, spec, "tools/call", params, call)
      if res then
        entry.status = (type(res.structuredContent) == "table" and res.structuredContent.blocked) and "blocked"
          or (res.isError and "error" or "success")
        entry.result = res
      else
        entry.status, entry.error = "error", err and err.message or "call failed"
      end
    end
    if entry.status ~= "success" then failed = failed + 1 end
    results[#results + 1] = entry
    if call and call.cancelled then break end
  end
  return result(failed == 0 and "success" or "error", { server_name = spec.server_name, results = results,
    summary = { total = #args.tool_calls, successful = #results - failed, failed = failed } })
end

-- The seed's shapes (gateway/cache_status.lua), for the caller's own tenant.
function impl.get_cache_status(r, session)
  return result("success", { cache_status = r:cache_status(session) })
end

function impl.clear_cache(r, session, args)
  if args.server_name and not r:server(session, args.server_name) then
    return result("error", { error = "Server not available: " .. tostring(args.server_name) })
  end
  local out = r:clear_cache(session, { server_name = args.server_name, cache_type = args.cache_type })
  local status = out.status
  out.status = nil
  out.server_name, out.cache_type = args.server_name, args.cache_type
  return result(status, out)
end

-- The seed's shape: {timeout_metrics, active_operations, timeout_config}, per category
-- counts, escalations and latency; smg adds escalation_policies and upstream_restarts.
function impl.get_timeout_metrics(r)
  return result("success", r:timeout_stats())
end

function M.initialize(r)
  local prefix = r:setting("tool_prefix")
  return {
    capabilities = { tools = { listChanged = false }, logging = {} },
    serverInfo = r:gateway_info(),
    instructions = "Use " .. prefix .. "list_all_servers to see the servers, "
      .. prefix .. "discover_all_tools to see their tools, and "
      .. prefix .. "secure_call_tools to call them.",
  }
end

function M.request(r, session, method, params, call)
  local prefix = r:setting("tool_prefix")
  if method == "tools/list" then
    local list = arr({})
    for _, t in ipairs(TOOLS) do
      list[#list + 1] = { name = prefix .. t.name, description = t.description, inputSchema = t.inputSchema }
    end
    return { tools = list }
  elseif method == "tools/call" then
    local name = type(params.name) == "string" and params.name or ""
    local fn = name:sub(1, #prefix) == prefix and impl[name:sub(#prefix + 1)]
    if not fn then return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: unknown tool " .. name } end
    local args = type(params.arguments) == "table" and params.arguments or {}
    return fn(r, session, args, call)
  elseif method == "logging/setLevel" then
    if not session:set_log_level(params.level) then
      return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: unknown log level " .. tostring(params.level) }
    end
    return {}
  elseif method == "resources/list" then
    return { resources = arr({}) }
  elseif method == "prompts/list" then
    return { prompts = arr({}) }
  end
  return nil, { code = rpc.METHOD_NOT_FOUND, message = "Method not found: " .. tostring(method) }
end

return M

-- Aggregate: every upstream's tools, prompts and resources in one list, tools and prompts
-- namespaced "server<sep>name" (separator "__" by default), with per-server allow/deny
-- lists. Resources keep their URIs (clients may fetch them); reads are routed by the
-- owner recorded when the lists were built, or by matching templates.
--
-- A router decides where a message goes and what it looks like there; it never holds an
-- upstream. Everything it needs comes through `r`, the gateway's routing interface
-- (docs/architecture.md, "Routers"): r:servers, r:server, r:setting, r:ready,
-- r:discover, r:forward, r:broadcast.
local smg = require "smg"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local names = require "smg.router.names"
local json = smg.json
local log = smg.log

local M = {}

function M.check() return true end

M.allowed = names.allowed

function M.initialize(r)
  return {
    capabilities = { tools = { listChanged = true }, resources = { subscribe = true, listChanged = true },
      prompts = { listChanged = true }, logging = {}, completions = {} },
    serverInfo = r:gateway_info(),
    instructions = "smg aggregates several MCP servers; names are prefixed with the server name and '"
      .. r:setting("separator") .. "'.",
  }
end

-- Splits "server<sep>name" into the server spec and the upstream's own name.
local function resolve(r, session, full)
  if type(full) ~= "string" then return nil end
  local sep = r:setting("separator")
  local best, inner
  for _, spec in ipairs(r:servers(session)) do
    local prefix = spec.server_name .. sep
    if full:sub(1, #prefix) == prefix and (not best or #prefix > #best.server_name + #sep) then
      best, inner = spec, full:sub(#prefix + 1)
    end
  end
  return best, inner
end

-- Discovers `method` on every server (concurrently) and merges the items.
local function gather(r, session, method, transform)
  local specs = r:servers(session)
  local capname = method:match("^(%a+)/")
  local tasks = {}
  for i, spec in ipairs(specs) do
    tasks[i] = function()
      local init = r:ready(session, spec)
      if not (init and type(init.capabilities) == "table" and init.capabilities[capname] ~= nil) then return {} end
      local items, err = r:discover(session, spec, method)
      if not items then
        log.warn(("%s on %s failed: %s"):format(method, spec.server_name, tostring(err and err.message)))
        return {}
      end
      local out = {}
      for _, item in ipairs(items) do
        local t = transform(r, spec, item)
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

local function named(r, spec, item)
  return rpc.with(item, { name = spec.server_name .. r:setting("separator") .. tostring(item.name) })
end

local function tool_item(r, spec, t)
  if type(t.execution) == "table" and t.execution.taskSupport == "required" then return nil end
  if not names.allowed(spec, t.name) then return nil end
  return named(r, spec, t)
end

function M.list_tools(r, session) return gather(r, session, "tools/list", tool_item) end

-- Resource owners per mcp_config view (the server list table of one config version):
-- a reload builds new ones.
local owners = setmetatable({}, { __mode = "k" })

local function owners_of(r, session)
  local view = r:servers(session)
  local o = owners[view]
  if not o then
    o = { uris = {}, n_uris = 0, templates = {}, seen = {} }
    owners[view] = o
  end
  return o
end

local MAX_OWNED = 10000 -- URIs remembered per view: an upstream listing millions cannot grow this

-- Resource URIs are not namespaced (clients fetch them, and other results name them), so
-- two servers may list the same one. gateway.resource_collisions decides, the same way on
-- every list (servers in config order, whatever order they answered in): "first" (the
-- first server in the config owns it; the others' entry is not listed) or "refuse"
-- (nobody's is listed and a read is refused naming the servers). Either way it is logged.
local function list_resources(r, session)
  local o = owners_of(r, session)
  local from = setmetatable({}, { __mode = "k" }) -- listed item -> its server
  local merged = gather(r, session, "resources/list", function(_, spec, res)
    if type(res.uri) ~= "string" then return nil end
    local item = named(r, spec, res)
    from[item] = spec.server_name
    return item
  end)
  local refuse = r:setting("resource_collisions") == "refuse"
  local owner, clash = {}, {}
  for _, item in ipairs(merged) do
    local first = owner[item.uri]
    if not first then
      owner[item.uri] = from[item]
    elseif first ~= from[item] then
      clash[item.uri] = clash[item.uri] or { first }
      table.insert(clash[item.uri], from[item])
    end
  end
  local kept = json.array({})
  for _, item in ipairs(merged) do
    local servers = clash[item.uri]
    if not servers then
      kept[#kept + 1] = item
    elseif not refuse and owner[item.uri] == from[item] then
      kept[#kept + 1] = item
    end
  end
  o.uris, o.n_uris, o.clashes = {}, 0, {}
  for uri, name in pairs(owner) do
    if o.n_uris < MAX_OWNED then
      o.n_uris = o.n_uris + 1
      if refuse and clash[uri] then o.uris[uri] = false else o.uris[uri] = name end
    end
  end
  for uri, servers in pairs(clash) do
    o.clashes[uri] = servers
    if not o.warned or not o.warned[uri] then
      o.warned = o.warned or {}
      o.warned[uri] = true
      log.warn(("resource %s is listed by %s: %s"):format(uri, table.concat(servers, " and "),
        refuse and "refused (gateway.resource_collisions = \"refuse\")" or ("served by " .. servers[1])))
    end
  end
  return kept
end

local function list_templates(r, session)
  local o = owners_of(r, session)
  return gather(r, session, "resources/templates/list", function(_, spec, t)
    if type(t.uriTemplate) == "string" and #o.templates < MAX_OWNED then
      local key = t.uriTemplate .. "|" .. spec.server_name
      if not o.seen[key] then
        o.seen[key] = true
        o.templates[#o.templates + 1] = { pattern = names.template(t.uriTemplate), server = spec.server_name }
      end
    end
    return named(r, spec, t)
  end)
end

local function owner_of(r, session, uri)
  if type(uri) ~= "string" then return nil end
  local o = owners_of(r, session)
  local name = o.uris[uri]
  if name == false then return nil, o.clashes and o.clashes[uri] end -- a refused collision
  if not name then
    for _, t in ipairs(o.templates) do
      if names.template_match(t.pattern, uri) then
        name = t.server
        break
      end
    end
  end
  return name and r:server(session, name)
end

local function find_owner(r, session, uri)
  local spec, clash = owner_of(r, session, uri)
  if spec or clash then return spec, clash end
  -- Not seen yet: build the lists once, then look again.
  list_resources(r, session)
  list_templates(r, session)
  return owner_of(r, session, uri)
end

local function forward_named(r, session, method, params, call, kind)
  local spec, inner = resolve(r, session, params.name)
  if not spec then return rpc.fail(rpc.INVALID_PARAMS, ("Invalid params: unknown %s %s"):format(kind, tostring(params.name))) end
  if kind == "tool" and not names.allowed(spec, inner) then
    return rpc.fail(rpc.INVALID_PARAMS, ("Invalid params: tool %s is not allowed by the gateway policy"):format(params.name))
  end
  return r:forward(session, spec, method, rpc.with(params, { name = inner }), call)
end

-- Gateway cursors. The merged list is rebuilt (from the discovery cache) for each page,
-- so a cursor is only a position in it: "g1.<offset>", checked, nothing to keep per client.
-- Tampering with one can only show another page of a list the client may read anyway.
local CURSOR = "^g1%.(%d+)$"

-- The page of `list` the request's cursor names: result | nil, err.
local function page(r, params, key, list)
  local size = r:setting("page_size") or 0
  local cursor, start = params and params.cursor, 1
  if cursor ~= nil and cursor ~= json.null then
    local offset = type(cursor) == "string" and tonumber(cursor:match(CURSOR))
    if not offset or size == 0 or offset < 1 or offset > #list + 1 then
      return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: invalid cursor")
    end
    start = offset
  end
  if size == 0 or (start == 1 and #list <= size) then return { [key] = list } end
  local items = json.array({})
  local stop = math.min(#list, start + size - 1)
  for i = start, stop do items[#items + 1] = list[i] end
  local res = { [key] = items }
  if stop < #list then res.nextCursor = "g1." .. (stop + 1) end
  return res
end

local handlers = {}

handlers["tools/list"] = function(r, session, params) return page(r, params, "tools", M.list_tools(r, session)) end
handlers["tools/call"] = function(r, session, params, call)
  return forward_named(r, session, "tools/call", params, call, "tool")
end
handlers["prompts/list"] = function(r, session, params)
  return page(r, params, "prompts", gather(r, session, "prompts/list", named))
end
handlers["prompts/get"] = function(r, session, params, call)
  return forward_named(r, session, "prompts/get", params, call, "prompt")
end
handlers["resources/list"] = function(r, session, params)
  return page(r, params, "resources", list_resources(r, session))
end
handlers["resources/templates/list"] = function(r, session, params)
  return page(r, params, "resourceTemplates", list_templates(r, session))
end

local function by_uri(method)
  return function(r, session, params, call)
    local spec, clash = find_owner(r, session, params.uri)
    if clash then
      return rpc.fail(rpc.INVALID_PARAMS, ("Resource %s is served by several servers (%s) and the gateway refuses to "
        .. "choose"):format(tostring(params.uri), table.concat(clash, ", ")), { uri = params.uri, servers = json.array(clash) })
    end
    if not spec then return rpc.fail(rpc.RESOURCE_NOT_FOUND, "Resource not found", { uri = params.uri }) end
    if method == "resources/subscribe" then
      session.subscriptions[params.uri] = true
      return r:subscribe(session, spec, params.uri, call)
    elseif method == "resources/unsubscribe" then
      session.subscriptions[params.uri] = nil
      return r:unsubscribe(session, spec, params.uri, call)
    end
    return r:forward(session, spec, method, params, call)
  end
end

-- The server a resource URI belongs to (a 2026 listen stream's resourceSubscriptions).
function M.resource_owner(r, session, uri)
  local spec = find_owner(r, session, uri)
  return spec
end
handlers["resources/read"] = by_uri("resources/read")
handlers["resources/subscribe"] = by_uri("resources/subscribe")
handlers["resources/unsubscribe"] = by_uri("resources/unsubscribe")

handlers["completion/complete"] = function(r, session, params, call)
  local ref = type(params.ref) == "table" and params.ref or {}
  local spec, p = nil, params
  if ref.type == "ref/prompt" then
    local inner
    spec, inner = resolve(r, session, ref.name)
    if spec then p = rpc.with(params, { ref = rpc.with(ref, { name = inner }) }) end
  elseif ref.type == "ref/resource" then
    spec = find_owner(r, session, ref.uri)
  end
  if not spec then return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: unknown completion reference") end
  return r:forward(session, spec, "completion/complete", p, call)
end

handlers["logging/setLevel"] = function(r, session, params)
  if not session:set_log_level(params.level) then
    return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: unknown log level " .. tostring(params.level))
  end
  -- The session's own upstreams follow its level; shared ones are filtered per session.
  r:broadcast(session, "logging/setLevel", { level = params.level }, "logging")
  return {}
end

M.handlers = handlers

function M.request(r, session, method, params, call)
  local h = handlers[method]
  if not h then return rpc.fail(rpc.METHOD_NOT_FOUND, "Method not found: " .. tostring(method)) end
  return h(r, session, params, call)
end

return M

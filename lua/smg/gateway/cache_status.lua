-- get_cache_status and clear_cache over the two-level cache, in the seed's shapes:
--   { gateway_specific = { config = {...}, tools = { server_count, servers = { name = {
--       tool_count, error, are_tools_explicitly_defined, needs_discovery, exists,
--       expires_at, expires_in_hours, is_expired } } } },
--     global = { total_gateways, total_tool_caches, total_config_caches,
--       tool_cache_expiration_hours, config_cache_expiration_hours, cache_type } }
-- plus `cache`, smg's own figures (levels, hits, Redis state). A client sees its own
-- tenant (mcp_config); the admin API every tenant.
--
-- The seed also caches each gateway's config (24 h). smg holds its config in memory and
-- reloads it on change (across instances through the cluster channel), so a cached copy
-- could only be staler than the source: the config entry reports what is held, and the
-- config cache types clear nothing.
local smg = require "smg"
local async = require "smg.async"

local M = {}

-- A report costs Redis round trips per tenant and per server, and any client may ask for
-- one: asks that come together share one computation, whose result serves for REUSE
-- seconds (per session: its per-session servers are its own; ADMIN: the admin API's
-- every-tenant report).
local REUSE = 1
local ADMIN = {}
local recent = setmetatable({}, { __mode = "k" }) -- session | ADMIN -> { at (monotime), value } | { flight }
-- A 2026 request's session lives for one request: its reports are shared per tenant and
-- identity instead (its per_session servers are its identity's), in a table pruned as it
-- grows.
local by_identity, nby_identity = {}, 0
local generation = 0 -- bumped by every clear: a report built before it is not kept

local function slot(session)
  if not (session and session.stateless) then return recent, session or ADMIN end
  if nby_identity > 1024 then
    local now = smg.monotime()
    for k, r in pairs(by_identity) do
      if not r.flight and now - r.at >= REUSE then
        by_identity[k] = nil
        nby_identity = nby_identity - 1
      end
    end
  end
  return by_identity, tostring(session.config_id) .. "\0" .. tostring(session.identity_key)
end

local function stamp(t) return t and os.date("!%Y-%m-%d %H:%M:%S UTC", math.floor(t)) or nil end

-- The upstream whose tools list the status reads: the session's own client of a
-- per-session server (nil: none yet), else a stand-in for the shared one (not started).
local function upstream_of(p, session, tenant, spec)
  if spec.sharing == "per_session" then
    return session and p.gw.pool:clients_of(session)[spec.server_name] or nil
  end
  return p.gw.pool:find_shared(tenant, spec.server_name) or { spec = spec, name = spec.server_name, config_id = tenant }
end

local function server_status(p, session, tenant, spec)
  local explicit = 0
  for _ in pairs(spec.tools or {}) do explicit = explicit + 1 end
  if explicit > 0 then
    return { tool_count = explicit, error = smg.json.null, are_tools_explicitly_defined = true, needs_discovery = false,
      exists = false, expires_at = smg.json.null, expires_in_hours = smg.json.null, is_expired = true }
  end
  local up = upstream_of(p, session, tenant, spec)
  local e = up and p.gw.discovery:entry(up, "tools/list", session) or { exists = false }
  if not e.exists then
    return { tool_count = 0, error = smg.json.null, are_tools_explicitly_defined = false, needs_discovery = true,
      exists = false, expires_at = smg.json.null, expires_in_hours = smg.json.null, is_expired = true }
  end
  local left = e.expires_at and (e.expires_at - smg.now()) / 3600 or nil
  return { tool_count = e.items, error = smg.json.null, are_tools_explicitly_defined = false, needs_discovery = false,
    exists = true, expires_at = stamp(e.expires_at) or smg.json.null, expires_in_hours = left or smg.json.null,
    is_expired = false }
end

local function tenant_status(p, session, tenant)
  local servers, n = {}, 0
  local mc = p.gw.cfg.mcp_configs[tenant]
  for _, spec in ipairs(mc and mc.mcp_config or {}) do
    servers[spec.server_name] = server_status(p, session, tenant, spec)
    n = n + 1
  end
  return { config = { exists = mc ~= nil, source = "config", revision = p.gw.generation, expires_at = smg.json.null,
    expires_in_hours = smg.json.null, is_expired = false }, tools = { server_count = n, servers = servers } }
end

local function build(p, session)
  local gw = p.gw
  local common = gw.cfg.common_mcp_gateway_config
  local st = smg.cache.stats()
  local gateways, lists = 0, 0
  for id in pairs(gw.cfg.mcp_configs) do
    local n = gw.discovery:count(id)
    if n > 0 then gateways = gateways + 1 end
    lists = lists + n
  end
  local out = {
    global = { total_gateways = gateways, total_tool_caches = lists, total_config_caches = 0,
      tool_cache_expiration_hours = common.enkrypt_tool_cache_expiration,
      config_cache_expiration_hours = common.enkrypt_gateway_cache_expiration, cache_type = st.cache_type },
    cache = { l1 = st.l1, hits = st.hits, l2_hits = st.l2_hits, misses = st.misses,
      redis_state = st.redis_state or smg.json.null, near_ttl_seconds = st.near_ttl or smg.json.null,
      discovery_hits = gw.discovery.hits, discovery_misses = gw.discovery.misses },
  }
  if session then
    out.gateway_specific = tenant_status(p, session, session.config_id or gw.default_config_id)
  else
    out.tenants = {}
    for id in pairs(gw.cfg.mcp_configs) do out.tenants[id] = tenant_status(p, nil, id) end
  end
  return out
end

function M.report(p, session)
  local t, id = slot(session)
  local r = t[id]
  if r and r.flight then return (r.flight:wait(30)) or build(p, session) end
  if r and smg.monotime() - r.at < REUSE then return r.value end
  local flight, gen = async.future(), generation
  if t[id] == nil and t == by_identity then nby_identity = nby_identity + 1 end
  t[id] = { flight = flight }
  local ok, value = pcall(build, p, session)
  if ok and gen == generation then
    t[id] = { at = smg.monotime(), value = value }
  elseif t[id] and t[id].flight == flight then
    t[id] = nil
    if t == by_identity then nby_identity = nby_identity - 1 end
  end
  flight:set(ok and value or nil)
  if not ok then error(value, 0) end
  return value
end

-- A clear is seen by the next report at once.
local function forget()
  generation = generation + 1
  recent = setmetatable({}, { __mode = "k" })
  by_identity, nby_identity = {}, 0
end

local CONFIG_TYPES = { gateway_config = true, gateway = true, gateway_cache = true, gateway_config_cache = true }

-- opts: { server_name, cache_type, config_id }. A session clears its own tenant only; the
-- admin API (no session) the tenant it names, or every tenant.
function M.clear(p, session, opts)
  local gw = p.gw
  local kind = opts.cache_type
  if CONFIG_TYPES[kind] then
    return { status = "info", cleared = 0, message = "smg keeps no gateway config cache: the config is held in memory "
      .. "and reloaded when it changes" }
  end
  local tenants = {}
  if session then
    tenants[1] = session.config_id or gw.default_config_id
  elseif opts.config_id then
    if not gw.cfg.mcp_configs[opts.config_id] then
      return { status = "error", cleared = 0, message = "no mcp_config with id " .. tostring(opts.config_id) }
    end
    tenants[1] = opts.config_id
  else
    for id in pairs(gw.cfg.mcp_configs) do tenants[#tenants + 1] = id end
  end
  forget()
  local n = 0
  for _, id in ipairs(tenants) do
    -- "all" (and no server) clears everything of the tenant; otherwise the server's lists.
    n = n + gw.discovery:clear(id, kind ~= "all" and opts.server_name or nil)
  end
  local what = (kind ~= "all" and opts.server_name) and ("server " .. opts.server_name) or "all servers"
  return { status = "success", cleared = n, message = ("Cache cleared for %s (%d list(s))"):format(what, n) }
end

return M

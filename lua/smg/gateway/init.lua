-- The gateway: composition. It holds the current *version* (the validated config and the
-- plugin set built from it) and wires the layers together: client sessions (mcp/) hand
-- requests to it, the router of the configured mode (router/) decides where they go, the
-- pipeline (gateway/pipeline.lua) carries them to the upstream clients (upstream/) and
-- back through the hook points, the discovery cache (cache/) remembers lists.
local smg = require "smg"
local async = require "smg.async"
local config = require "smg.config"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local Session = require "smg.mcp.session"
local Pool = require "smg.upstream.pool"
local Discovery = require "smg.cache.discovery"
local Pipeline = require "smg.gateway.pipeline"
local Tenants = require "smg.gateway.tenants"
local Rates = require "smg.gateway.rates"
local Audit = require "smg.gateway.audit"
local Budgets = require "smg.gateway.budgets"
local plugin_set = require "smg.gateway.plugin_set"
local telemetry = require "smg.gateway.telemetry"
local modern_gw = require "smg.gateway.modern"
local parking = require "smg.gateway.parking"
local tasks = require "smg.gateway.tasks"
local subscriptions = require "smg.gateway.subscriptions"
local limits = require "smg.limits"
local log = smg.log

local Gateway = {}
Gateway.__index = Gateway

Gateway.ROUTERS = {
  meta = "smg.router.meta",
  aggregate = "smg.router.aggregate",
  passthrough = "smg.router.passthrough",
}

function Gateway.new(cfg)
  local self = setmetatable({
    tenants = Tenants.new(),
    rates = Rates.new({ tools = {} }, smg.cache.redis),
    discovery = Discovery.new(),
    stats = { requests = 0, errors = 0, upstream_restarts = 0 },
    draining = false,
    generation = 0,
  }, Gateway)
  self.budgets = Budgets.new(self)
  self.pipeline = Pipeline.new(self)
  self.pool = Pool.new(self.pipeline.events, function() return self.settings_ end)
  local set, errors = plugin_set.build(cfg)
  for _, e in ipairs(errors) do
    -- Auth fails closed (every request refused) and so do the guardrails that did not
    -- load (calls to servers whose policy runs them), until a reload fixes the plugin.
    log.error("plugin not loaded: " .. tostring(e))
  end
  self:apply(cfg, set)
  telemetry.register_gauges(self)
  return self
end

-- Makes cfg + set the version new requests run on. One synchronous step: a request that
-- started on the previous version keeps the spec, upstream and plugin set it captured.
function Gateway:apply(cfg, set)
  local g = cfg.gateway
  set.auth_cache, set.auth_cache_n = {}, 0
  self.cfg, self.plugins = cfg, set
  self.mode, self.path, self.limits = g.mode, g.path, g.limits
  self.timeouts = config.timeouts(cfg)
  self.settings_ = { limits = g.limits, timeouts = self.timeouts }
  self.max_message_bytes = g.limits.max_message_bytes
  self.default_config_id = config.default_config_id(cfg)
  self.allowed_origins, self.allowed_hosts = {}, {}
  for _, o in ipairs(g.allowed_origins) do self.allowed_origins[o:lower()] = true end
  for _, h in ipairs(g.allowed_hosts) do self.allowed_hosts[h:lower()] = true end
  self.router = require(Gateway.ROUTERS[self.mode])
  self.generation = self.generation + 1
  smg._set_config(cfg)
  smg.cache.configure(cfg.common_mcp_gateway_config, g.cache)
  self.discovery:set_salt(smg.hash(smg.json.canonical(cfg.plugins)))
  self.has_telemetry = #set.telemetry > 0
  self.rates:configure(g.rate_limits)
  self:open_audit(g.audit)
  local pins = config.pins_path(cfg)
  smg.pins.on_change = function() self:pins_changed(true) end
  local ok, perr = smg.pins.configure(pins)
  if not ok then log.error("tool pins: " .. tostring(perr) .. "; keeping the previous pins") end
end

-- The pins file changed on disk (`smg pins approve|reject`): tools, prompts and resources
-- may appear or go, so every cached list is dropped and every session told.
function Gateway:pins_changed(taken)
  if not taken and not smg.pins.reload() then return end
  async.spawn(function()
    for id in pairs(self.cfg.mcp_configs) do self.discovery:clear(id) end
  end)
  -- (The meta mode lists no prompts or resources: its clients hear of tools only.)
  local lists = self.mode == "meta" and { "notifications/tools/list_changed" } or { "notifications/tools/list_changed",
    "notifications/prompts/list_changed", "notifications/resources/list_changed" }
  self:each_session(function(s)
    if s.initialized then
      for _, m in ipairs(lists) do s:list_changed(m) end
    end
  end)
  log.info("pins changed on disk: lists rediscovered, sessions told")
end

-- The audit log of the current version: opened when configured, reopened when its path
-- changes; a log that cannot be opened is an error the caller reports (serve refuses to
-- start, a reload keeps the previous log).
function Gateway:open_audit(a)
  local want = a.path
  if self.audit and self.audit.cfg.path == want then
    self.audit.cfg = a
    return true
  end
  local old = self.audit
  if not want then
    self.audit = nil
    if old then smg.spawn(old.close, old, 5) end
    return true
  end
  local opened, err = Audit.open(a)
  if not opened then
    log.error(err .. (old and "; the audit log stays " .. old.cfg.path or ""))
    self.audit_error = err
    return nil, err
  end
  self.audit, self.audit_error = opened, nil
  if old then smg.spawn(old.close, old, 5) end
  return true
end

-- The mcp_config a session of `identity` sees in the current version: its project's when
-- the config has the project, else what the auth provider said, else the default.
function Gateway:config_for(identity)
  if not identity then return self.default_config_id end
  local p = identity.project_id and self.cfg.projects[identity.project_id]
  if p then return p.mcp_config_id end
  return identity.mcp_config_id or self.default_config_id
end

-- Moves an open session to the mcp_config `id` (its project moved, or lost its servers):
-- its per-session upstreams of the old one close, and it is told its lists changed.
-- Returns whether it moved.
function Gateway:follow(session, id)
  if id == session.config_id then return false end
  log.info(("session %s follows its project to mcp_config %s"):format(tostring(session.id or "stdio"), tostring(id)))
  self.pool:close_session(session)
  session.config_id = id
  if session.identity then session.identity.mcp_config_id = id end
  if self.mode ~= "meta" and session.initialized then
    for _, m in ipairs(Gateway.LIST_CHANGED) do session:list_changed(m) end
  end
  return true
end

Gateway.LIST_CHANGED = { "notifications/tools/list_changed", "notifications/prompts/list_changed",
  "notifications/resources/list_changed" }

---------------------------------------------------------------------------- session host
-- (lua/smg/mcp/session.lua calls these.)
function Gateway:settings() return self.settings_ end

-- Every client request: counted, timed, told to telemetry.
function Gateway:dispatch(session, call, params)
  local t0 = smg.monotime()
  if self.audit then call.verdicts = smg.json.array({}) end
  local res, err = self:route(session, call.method, params, call)
  if session.stateless and not session.listening then
    if parking.finished(self, call, res, err) then
      res, err = nil, nil -- answered with input_required; the client's retry takes the result
    elseif res ~= nil or err ~= nil then
      res, err = modern_gw.finish(self, session, call, call.method, res, err)
    end
  end
  local elapsed = smg.monotime() - t0
  telemetry.request_done(self, session, call.method, call, elapsed, err)
  if self.audit and call.method ~= "ping" then self.audit:request(session, call, params, res, err, elapsed) end
  return res, err
end

function Gateway:client_notification(session, method, params)
  self.pipeline:client_notification(session, method, params)
end

function Gateway:session_closed(session, reason)
  subscriptions.release_all(session)
  self.pool:close_session(session)
  log.debug(("session %s closed (%s)"):format(tostring(session.id), reason or "closed"))
end

function Gateway:route(session, method, params, call)
  self.stats.requests = self.stats.requests + 1
  if session.auth_error then
    return rpc.fail(rpc.SERVER_ERROR, "Unauthorized: " .. session.auth_error)
  end
  if method == "ping" then return {} end
  local limited = self.rates:check_request(session.identity_key or "stdio")
  if limited then return nil, limited end
  if method == "initialize" then return self:initialize(session, params, call) end
  if not session.initialized then
    return rpc.fail(rpc.INVALID_REQUEST, "Invalid Request: the session is not initialized")
  end
  if session.stateless then
    call.params = params -- (a parked call's requestState is bound to them)
    if method == "server/discover" then return modern_gw.discover(self, session, params) end
    if method == "subscriptions/listen" then return modern_gw.listen(self, session, params) end
    if tasks.METHODS[method] then return tasks.request(self, session, method, params, call) end
    if type(params.requestState) == "string" then
      local handled, res, err = parking.resume(self, session, call, params)
      if handled then return res, err end
    end
  end
  local res, err = self.router.request(self.pipeline, session, method, params, call)
  if not res then self.stats.errors = self.stats.errors + 1 end
  return res, err
end

function Gateway:initialize(session, params)
  if session.initialized then
    return rpc.fail(rpc.INVALID_REQUEST, "Invalid Request: already initialized")
  end
  if type(params.protocolVersion) ~= "string" then
    return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: protocolVersion is required")
  end
  session.protocol_version = version.negotiate(params.protocolVersion)
  session.client_caps = type(params.capabilities) == "table" and params.capabilities or {}
  session.client_info = params.clientInfo
  local res, err = self.router.initialize(self.pipeline, session, params)
  if not res then return nil, err end
  res.protocolVersion = session.protocol_version
  session.initialized = true
  local ci = type(params.clientInfo) == "table" and params.clientInfo or {}
  log.info(("session %s: %s %s initialized (protocol %s)"):format(tostring(session.id or "stdio"),
    tostring(ci.name), tostring(ci.version), session.protocol_version))
  return res
end

---------------------------------------------------------------------------- sessions
Gateway.identity_key = Tenants.key

function Gateway:session_refusal(identity_key, peer)
  return self.tenants:refusal(self.limits, identity_key, peer)
end

function Gateway:add_session(s) self.tenants:add(s) end

-- The home of a 2026-07-28 request's identity: what owns the identity's per_session
-- upstreams (one process per identity and server, as a 2025 session owns its own), so
-- that a server's sampling or elicitation request can be tied to the identity's one call
-- in flight. A home counts as a session against the session limits. Replaced when the
-- identity's mcp_config changes; closed when idle with nothing in flight.
function Gateway:home_of(session)
  self.homes = self.homes or {}
  local key = session.identity_key or "stdio"
  local home = self.homes[key]
  if home and home.config_id ~= session.config_id then
    self:close_home(key, home)
    home = nil
  end
  if not home then
    home = Session.new(self, "home", "home:" .. key, { identity = session.identity, config_id = session.config_id,
      identity_key = key, peer = session.peer })
    home.home, home.stateless, home.initialized = true, true, true
    home.protocol_version = version.LATEST -- what its upstreams are spoken to in
    self.homes[key] = home
    self.tenants:hold(home, 1)
  end
  -- The identity's latest validated token: what its per_session upstreams exchange
  -- (token exchange) when they start.
  if session.subject_token then home.subject_token = session.subject_token end
  home:touch()
  return home
end

function Gateway:close_home(key, home)
  self.homes[key] = nil
  self.tenants:hold(home, -1)
  self.pool:close_session(home)
end

-- Refuses a 2026 request that would make a new home past the session limits. nil | err.
function Gateway:home_refusal(session)
  local key = session.identity_key or "stdio"
  if key == "stdio" or (self.homes and self.homes[key]) then return nil end
  local limit, why = self:session_refusal(key, session.peer)
  return limit and limits.refused(limit, why) or nil
end

-- Restarts now every client of server `name` (of mcp_config `config_id`, or of any) that
-- is down (shared and per session).
function Gateway:restart_upstreams(name, config_id)
  local function mine(up) return up.name == name and (config_id == nil or up.config_id == config_id) end
  for _, up in pairs(self.pool.shared) do
    if mine(up) then up:restart_now() end
  end
  for _, clients in pairs(self.pool.by_session) do
    if clients[name] and mine(clients[name]) then clients[name]:restart_now() end
  end
end

function Gateway:find_session(id) return self.tenants:get(id) end
function Gateway:remove_session(s, reason) self.tenants:remove(s, reason) end
function Gateway:sweep_sessions()
  self.tenants:sweep(self.limits)
  local now = smg.monotime()
  for key, home in pairs(self.homes or {}) do
    local busy = false
    for _, up in pairs(self.pool:clients_of(home)) do
      if up.npending > 0 then busy = true end
    end
    if not busy and now - home.last_seen > self.limits.session_idle_timeout then self:close_home(key, home) end
  end
end

-- Every open session, the stdio one included.
function Gateway:each_session(fn)
  for _, s in pairs(self.tenants.sessions) do fn(s) end
  if self.stdio_session then fn(self.stdio_session) end
end

function Gateway:health() return require("smg.gateway.health").report(self) end

-- `smg serve` and the graceful stop live in gateway/serve.lua.
function Gateway.serve(args) return require("smg.gateway.serve").run(Gateway, args) end
function Gateway:shutdown(reason) return require("smg.gateway.serve").shutdown(self, reason) end

return Gateway

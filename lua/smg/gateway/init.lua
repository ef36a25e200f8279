-- The gateway: one object that owns the config snapshot, the client sessions, the
-- upstream pool and the discovery cache, and routes every client request through the
-- router of the configured exposure mode (meta, aggregate, passthrough).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local config = require "smg.config"
local rpc = require "smg.mcp.jsonrpc"
local limits = require "smg.limits"
local Client = require "smg.upstream.client"
local Session = require "smg.gateway.session"
local streams = require "smg.gateway.streams"
local guardrails = require "smg.gateway.guardrails"
local plugin_set = require "smg.gateway.plugin_set"
local plugins = require "smg.plugins"
local telemetry = require "smg.gateway.telemetry"
local metrics = require "smg.metrics"
local reload = require "smg.gateway.reload"
local json = smg.json
local log = smg.log

local Gateway = {}
Gateway.__index = Gateway

local ROUTERS = {
  meta = "smg.gateway.router_meta",
  aggregate = "smg.gateway.router_aggregate",
  passthrough = "smg.gateway.router_passthrough",
}

local cache_hits = metrics.counter("smg_cache_hits_total", "Discovery cache hits", { "kind" })
local cache_misses = metrics.counter("smg_cache_misses_total", "Discovery cache misses", { "kind" })
local timeouts = metrics.counter("smg_timeouts_total", "Operations that exceeded their timeout budget", { "category" })
local timeout_warnings = metrics.counter("smg_timeout_warnings_total",
  "Operations past the warn threshold of their budget", { "category" })

-- Developer knob: LuaJIT's sampling profiler (jit.p) from start to shutdown.
local PROFILE = os.getenv("SMG_JIT_PROFILE")

local DISCOVERY_METHODS = { ["tools/list"] = true, ["prompts/list"] = true, ["resources/list"] = true,
  ["resources/templates/list"] = true }

function Gateway.new(cfg)
  local self = setmetatable({
    sessions = {}, nsessions = 0,
    sessions_by_identity = {}, sessions_by_peer = {}, -- live session counts per tenant
    session_upstreams = {},  -- identity key -> per_session upstreams open
    pool = {},               -- shared upstream clients by "config_id/server_name"
    discovery = setmetatable({}, { __mode = "k" }), -- client -> { [method] = {value, expires} }
    uri_owner = {},          -- config_id -> uri -> server_name
    template_owner = {},     -- config_id -> list of {pattern, server}
    stats = { requests = 0, errors = 0, timeout = {}, cache_hits = 0, cache_misses = 0, upstream_restarts = 0 },
    draining = false,
    generation = 0,
  }, Gateway)
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
  self.max_message_bytes = g.limits.max_message_bytes
  self.default_config_id = config.default_config_id(cfg)
  self.allowed_origins, self.allowed_hosts = {}, {}
  for _, o in ipairs(g.allowed_origins) do self.allowed_origins[o:lower()] = true end
  for _, h in ipairs(g.allowed_hosts) do self.allowed_hosts[h:lower()] = true end
  self.router = require(ROUTERS[self.mode])
  self.generation = self.generation + 1
  smg._set_config(cfg)
  smg.cache.configure(cfg.common_mcp_gateway_config)
  self.has_telemetry = #set.telemetry > 0
end

-- Server specs of an mcp_config, in config order.
function Gateway:servers(config_id)
  local mc = self.cfg.mcp_configs[config_id or self.default_config_id]
  return mc and mc.mcp_config or {}
end

function Gateway:server(config_id, name)
  for _, s in ipairs(self:servers(config_id)) do
    if s.server_name == name then return s end
  end
  return nil
end

-- What a session gets for a per-session upstream past its tenant's limit: an upstream
-- that refuses every call with the limit's error, so callers need no second path. It is
-- not kept: the next request tries again.
local Refused = {}
Refused.__index = Refused
function Refused:ensure_ready() return nil, self.err end
function Refused:call() return nil, self.err end
function Refused:start() end
function Refused:close() end
function Refused:notify() end
function Refused:cancel() end
function Refused:describe() return { name = self.name, state = "refused", last_error = self.err.message } end

-- A session's per-session upstreams closed: its tenant may open that many again.
function Gateway:release_session_upstreams(key, n)
  local left = (self.session_upstreams[key] or 0) - n
  self.session_upstreams[key] = left > 0 and left or nil
end

-- The upstream client serving `spec` for this session: the shared one, or the session's own.
function Gateway:upstream_for(session, spec)
  if spec.sharing == "per_session" and session then
    local up = session.upstreams[spec.server_name]
    if not up then
      -- Each per-session upstream may be a process: bounded per tenant.
      local key = session.identity_key or "stdio"
      local open = self.session_upstreams[key] or 0
      if open >= self.limits.max_session_upstreams_per_identity then
        return setmetatable({ name = spec.server_name, spec = spec, state = "refused", err = limits.refused(
          "session_upstreams_per_identity",
          ("Too many per-session upstreams for this identity (%d); close other sessions first"):format(open)) }, Refused)
      end
      self.session_upstreams[key] = open + 1
      session.upstream_key = key
      local caps = {}
      for _, c in ipairs({ "sampling", "elicitation", "roots" }) do
        if session:client_supports(c) then caps[c] = session.client_caps[c] end
      end
      up = Client.new(spec, { gateway = self, session = session, timeouts = self.timeouts,
        protocol_version = session.protocol_version, client_capabilities = caps })
      session.upstreams[spec.server_name] = up
      up.config_id = session.config_id
    end
    return up
  end
  local key = tostring(session and session.config_id or self.default_config_id) .. "/" .. spec.server_name
  local up = self.pool[key]
  if not up then
    up = Client.new(spec, { gateway = self, timeouts = self.timeouts })
    up.config_id = session and session.config_id or self.default_config_id
    self.pool[key] = up
  end
  return up
end

function Gateway:category_timeout(method)
  local t = self.timeouts
  if method == "tools/call" then return t.tool_execution_timeout, "tool_execution" end
  if DISCOVERY_METHODS[method] then return t.discovery_timeout, "discovery" end
  return t.default_timeout, "default"
end

-- Records an operation's duration against its budget (the seed's escalation policy:
-- a warning past warn_threshold, a timeout past the budget).
function Gateway:record_timing(category, elapsed, budget, timed_out)
  local s = self.stats.timeout[category]
  if not s then
    s = { operations = 0, timeouts = 0, warnings = 0, total_seconds = 0, max_seconds = 0 }
    self.stats.timeout[category] = s
  end
  s.operations = s.operations + 1
  s.total_seconds = s.total_seconds + elapsed
  if elapsed > s.max_seconds then s.max_seconds = elapsed end
  local esc = self.timeouts.escalation_policies
  if timed_out then
    s.timeouts = s.timeouts + 1
    timeouts:inc(1, category)
  elseif elapsed >= budget * esc.warn_threshold then
    s.warnings = s.warnings + 1
    timeout_warnings:inc(1, category)
    log.warn(("%s operation took %.2fs of its %gs budget"):format(category, elapsed, budget))
  end
end

-- Forwards a client request to an upstream with the method's timeout, progress mapping
-- and cancellation. Returns result | nil, err.
function Gateway:forward(session, up, method, params, call)
  local budget, category = self:category_timeout(method)
  local t0 = smg.monotime()
  local opts = { timeout = budget, call = call, session = session }
  if call and call.progress_token ~= nil then
    opts.on_progress = function(p) session:notify("notifications/progress", p, call) end
  end
  local res, err = up:call(method, params, opts)
  local timed_out = err and type(err.data) == "table" and err.data.reason == "timeout"
  self:record_timing(category, smg.monotime() - t0, budget, timed_out)
  return res, err
end

-- A tools/call through the guardrails: input check, forward, output check, all on the
-- plugin set current when the call started. A guardrail may rewrite the arguments (say,
-- PII placeholders) before they are forwarded, and the result before it is returned.
function Gateway:call_tool(session, spec, up, params, call)
  if call then call.server, call.tool = spec.server_name, params.name end
  if not spec.enable_tool_guardrails then return self:forward(session, up, "tools/call", params, call) end
  local set, timeout = self.plugins, self.timeouts.guardrail_timeout
  local common = self.cfg.common_mcp_gateway_config
  local info = { server = spec.server_name, name = params.name, arguments = params.arguments or {},
    session_id = session.id, identity = session.identity, state = {} }
  local res, err, blocked
  if common.enkrypt_async_input_guardrails_enabled then
    res, err, blocked = self:call_checking_in_parallel(session, spec, up, params, call, set, timeout, info)
    if blocked then return self:guardrail_blocked(call, blocked) end
  else
    local args
    blocked, args = guardrails.check(set, timeout, spec, "input", info, info.arguments)
    if blocked then return self:guardrail_blocked(call, blocked) end
    if args ~= params.arguments then
      params = { name = params.name, arguments = args, _meta = params._meta }
    end
    res, err = self:forward(session, up, "tools/call", params, call)
  end
  if not res then return nil, err end
  if common.enkrypt_async_output_guardrails_enabled then
    -- The seed's async output mode: the result goes back now; a violation found later is
    -- reported (log, metrics, telemetry) but can no longer stop this call.
    async.spawn(function()
      local late = guardrails.check(set, timeout, spec, "output", info, res)
      if late then
        log.warn(("guardrail %s flagged the output of %s/%s after it was returned (async output mode)"):format(
          late.structuredContent.guardrail, spec.server_name, tostring(params.name)))
      end
    end)
    return res
  end
  blocked, res = guardrails.check(set, timeout, spec, "output", info, res)
  if blocked then return self:guardrail_blocked(call, blocked) end
  return res
end

-- The seed's async input mode: the input check runs while the call is already on its way,
-- trading redaction (arguments cannot be rewritten any more) for latency; a violation
-- still replaces the result. Returns res, err, blocked.
function Gateway:call_checking_in_parallel(session, spec, up, params, call, set, timeout, info)
  local verdict = async.future()
  async.spawn(function()
    verdict:set({ guardrails.check(set, timeout, spec, "input", info, info.arguments) })
  end)
  local res, err = self:forward(session, up, "tools/call", params, call)
  local v = verdict:wait(timeout + 1)
  if not v then
    return nil, nil, guardrails.blocked(spec, "input", "async", { "guardrail_timeout" })
  end
  if v[1] then return nil, nil, v[1] end
  if v[2] ~= info.arguments then
    log.warn(("a guardrail rewrote the arguments of %s/%s, which async input mode cannot apply"):format(
      spec.server_name, tostring(params.name)))
  end
  return res, err, nil
end

function Gateway:guardrail_blocked(call, blocked)
  if call then call.blocked = blocked.structuredContent.guardrail end
  return blocked
end

-- Cached discovery (tools/list and friends), all pages merged. Returns list | nil, err.
function Gateway:discover(up, method, key, session)
  local ttl = self.cfg.common_mcp_gateway_config.enkrypt_tool_cache_expiration * 3600
  local c = self.discovery[up]
  if not c then
    c = {}
    self.discovery[up] = c
  end
  local hit = c[method]
  if hit and hit.expires > smg.now() then
    self.stats.cache_hits = self.stats.cache_hits + 1
    cache_hits:inc(1, method)
    return hit.value, nil, "cache"
  end
  self.stats.cache_misses = self.stats.cache_misses + 1
  cache_misses:inc(1, method)
  local all, cursor, pages = json.array({}), nil, 0
  repeat
    local res, err = self:forward(session, up, method, cursor and { cursor = cursor } or nil, nil)
    if not res then return nil, err end
    for _, item in ipairs(res[key] or {}) do all[#all + 1] = item end
    cursor = res.nextCursor
    pages = pages + 1
  until cursor == nil or cursor == json.null or pages >= 100
  if method == "tools/list" and up.spec then
    all = guardrails.discovery(self.plugins, self.timeouts.guardrail_timeout, up.spec, all)
  end
  c[method] = { value = all, expires = smg.now() + ttl, at = smg.now() }
  return all, nil, "discovery"
end

function Gateway:clear_cache(server_name)
  local n = 0
  for up, c in pairs(self.discovery) do
    if not server_name or up.name == server_name then
      for _ in pairs(c) do n = n + 1 end
      self.discovery[up] = nil
    end
  end
  return n
end


-- Entry point of every client request (after transport checks): counts it, times it and
-- tells the telemetry providers.
function Gateway:dispatch(session, method, params, call)
  local t0 = smg.monotime()
  local res, err = self:route(session, method, params, call)
  telemetry.request_done(self, session, method, call, smg.monotime() - t0, err)
  return res, err
end

function Gateway:route(session, method, params, call)
  self.stats.requests = self.stats.requests + 1
  if session.auth_error then
    return nil, { code = rpc.SERVER_ERROR, message = "Unauthorized: " .. session.auth_error }
  end
  if method == "initialize" then return self:initialize(session, params, call) end
  if method == "ping" then return {} end
  if not session.initialized then
    return nil, { code = rpc.INVALID_REQUEST, message = "Invalid Request: the session is not initialized" }
  end
  local res, err = self.router.request(self, session, method, params, call)
  if not res then self.stats.errors = self.stats.errors + 1 end
  return res, err
end

function Gateway:initialize(session, params, call)
  if session.initialized then
    return nil, { code = rpc.INVALID_REQUEST, message = "Invalid Request: already initialized" }
  end
  if type(params.protocolVersion) ~= "string" then
    return nil, { code = rpc.INVALID_PARAMS, message = "Invalid params: protocolVersion is required" }
  end
  session.protocol_version = rpc.negotiate(params.protocolVersion)
  session.client_caps = type(params.capabilities) == "table" and params.capabilities or {}
  session.client_info = params.clientInfo
  local res, err = self.router.initialize(self, session, params, call)
  if not res then return nil, err end
  res.protocolVersion = session.protocol_version
  session.initialized = true
  log.info(("session %s: %s %s initialized (protocol %s)"):format(tostring(session.id or "stdio"),
    tostring(type(params.clientInfo) == "table" and params.clientInfo.name), tostring(type(params.clientInfo) == "table" and params.clientInfo.version),
    session.protocol_version))
  return res
end

-- /health: every configured upstream with its state (ready, starting, down with the
-- reason; per_session ones start with their session). "down" (HTTP 503) when servers are
-- configured and none of them can serve; "degraded" when some cannot.
local HEALTH_STATE = { ready = "ready", idle = "starting", starting = "starting", backoff = "down", failed = "down",
  closed = "down" }

function Gateway:health()
  local list, usable, down = json.array({}), 0, 0
  local ids = {}
  for id in pairs(self.cfg.mcp_configs) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    for _, spec in ipairs(self:servers(id)) do
      local e = { server = spec.server_name, mcp_config_id = id }
      if spec.sharing == "per_session" then
        e.state = "per_session"
      else
        local up = self.pool[id .. "/" .. spec.server_name]
        e.state = up and HEALTH_STATE[up.state] or "starting"
        if e.state == "down" then e.reason = up.last_error end
      end
      if e.state == "down" then down = down + 1 else usable = usable + 1 end
      list[#list + 1] = e
    end
  end
  local status = "ok"
  if self.draining then status = "draining"
  elseif down > 0 and usable == 0 then status = "down"
  elseif down > 0 then status = "degraded" end
  return { status = status, sessions = self.nsessions, version = smg.version, upstreams = list }
end

function Gateway:gateway_info()
  return { name = self.cfg.gateway.server_name, title = "smg secure MCP gateway", version = smg.version }
end

---------------------------------------------------------------------------- sessions
local function bump(counts, key, by)
  local n = (counts[key] or 0) + by
  counts[key] = n > 0 and n or nil
end

-- The tenant a session counts against: its project/user, or its peer without auth.
function Gateway.identity_key(identity, peer)
  if identity then return "id:" .. tostring(identity.project_id) .. "/" .. tostring(identity.user_id) end
  return "peer:" .. tostring(peer)
end

-- Whether one more session fits the global, per-identity and per-peer limits. Returns
-- nil when it does, else the name of the limit and a message.
function Gateway:session_refusal(identity_key, peer)
  local l = self.limits
  if self.nsessions >= l.max_sessions then return "sessions", "Too many sessions" end
  if (self.sessions_by_identity[identity_key] or 0) >= l.max_sessions_per_identity then
    return "sessions_per_identity", "Too many sessions for this identity"
  end
  if (self.sessions_by_peer[peer] or 0) >= l.max_sessions_per_peer then
    return "sessions_per_peer", "Too many sessions from this address"
  end
  return nil
end

function Gateway:add_session(s)
  self.sessions[s.id] = s
  self.nsessions = self.nsessions + 1
  bump(self.sessions_by_identity, s.identity_key, 1)
  if s.peer then bump(self.sessions_by_peer, s.peer, 1) end
end

function Gateway:remove_session(s, reason)
  if s.id and self.sessions[s.id] == s then
    self.sessions[s.id] = nil
    self.nsessions = self.nsessions - 1
    bump(self.sessions_by_identity, s.identity_key, -1)
    if s.peer then bump(self.sessions_by_peer, s.peer, -1) end
  end
  s:close(reason)
end

-- Sessions idle past the limit (no request in flight, no open GET stream) are dropped;
-- one that never made a call after initialize goes sooner (clients that end without
-- DELETE leave exactly those behind). Its per-session upstreams close with it.
function Gateway:sweep_sessions()
  local now = smg.monotime()
  for _, s in pairs(self.sessions) do
    local limit = s.calls > 0 and self.limits.session_idle_timeout or self.limits.unused_session_timeout
    if now - s.last_seen > limit and next(s.inflight) == nil then
      local live = false
      for _, g in ipairs(s.get_streams) do if g:open() then live = true end end
      if not live then self:remove_session(s, "idle") end
    end
  end
end

---------------------------------------------------------------------------- upstream events
function Gateway:each_session_of(up, fn)
  if up.session then return fn(up.session) end
  for _, s in pairs(self.sessions) do
    if s.config_id == up.config_id then fn(s) end
  end
  if self.stdio_session and self.stdio_session.config_id == up.config_id then fn(self.stdio_session) end
end

function Gateway:on_list_changed(up, method)
  local c = self.discovery[up]
  if c then
    if method:find("tools") then c["tools/list"] = nil end
    if method:find("prompts") then c["prompts/list"] = nil end
    if method:find("resources") then
      c["resources/list"] = nil
      c["resources/templates/list"] = nil
    end
  end
  if self.mode == "meta" then return end
  self:each_session_of(up, function(s)
    if s.initialized then s:list_changed(method) end
  end)
end

function Gateway:on_resource_updated(up, uri)
  self:each_session_of(up, function(s)
    if up.session or s.subscriptions[uri] then s:notify("notifications/resources/updated", { uri = uri }, nil) end
  end)
end

function Gateway:on_upstream_ready(up) end

function Gateway:on_upstream_down(up, why)
  self.stats.upstream_restarts = self.stats.upstream_restarts + 1
  telemetry.upstream_down(self, up, why)
  self.discovery[up] = nil
end

---------------------------------------------------------------------------- lifecycle
local function count_inflight(self)
  local n = 0
  for _, s in pairs(self.sessions) do for _ in pairs(s.inflight) do n = n + 1 end end
  if self.stdio_session then for _ in pairs(self.stdio_session.inflight) do n = n + 1 end end
  return n
end

-- Graceful stop: refuse new work, let calls in flight finish (up to shutdown_grace),
-- then end sessions and stop every upstream (stdin close -> SIGTERM -> SIGKILL).
function Gateway:shutdown(reason)
  if self.draining then return end
  self.draining = true
  log.info("shutting down (" .. tostring(reason) .. "); draining " .. count_inflight(self) .. " call(s)")
  if self.http_server then self.http_server:close() end
  if self.sweeper then self.sweeper:close() end
  async.spawn(function()
    local deadline = smg.monotime() + self.cfg.gateway.shutdown_grace
    while count_inflight(self) > 0 and smg.monotime() < deadline do smg.sleep(0.05) end
    local left = count_inflight(self)
    if left > 0 then log.warn(left .. " call(s) still running at the end of the grace period") end
    for _, p in ipairs(self.plugins.telemetry) do
      if p.shutdown then plugins.run_hook(p, "shutdown", 5) end
    end
    for _, s in pairs(self.sessions) do self:remove_session(s, "shutdown") end
    if self.stdio_session then self.stdio_session:close("shutdown") end
    for key, up in pairs(self.pool) do
      up:close()
      self.pool[key] = nil
    end
    smg.cache.close()
    local n = smg.http.cancel_all("smg is shutting down")
    if n > 0 then log.info(("cancelled %d plugin HTTP request(s) still in flight"):format(n)) end
    for _, sig in ipairs(self.signals or {}) do sig:close() end
    for _, w in ipairs(self.watches or {}) do w:close() end
    if self.reload_timer then self.reload_timer:close() end
    if self.stdio_session then core.stdio_close() end
    if PROFILE and PROFILE ~= "" then require("jit.p").stop() end
    log.info("stopped")
  end)
end

local function parse_args(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function val()
      i = i + 1
      if args[i] == nil then error("option " .. a .. " needs a value", 0) end
      return args[i]
    end
    if a == "--config" or a == "-c" then o.config = val()
    elseif a == "--stdio" then o.stdio = true
    elseif a == "--host" then o.host = val()
    elseif a == "--port" or a == "-p" then o.port = tonumber(val())
    elseif a == "--mode" then o.mode = val()
    elseif a == "--log-level" then o.log_level = val()
    elseif a == "--insecure" then o.insecure = true
    else error("unknown option " .. a, 0) end
    i = i + 1
  end
  return o
end

local function serve_stdio(gw)
  local session = Session.new(gw, "stdio", nil)
  gw.stdio_session = session
  if gw.plugins.auth_enabled and gw.cfg.is_default then
    -- The embedded default's stdio client is the local user who spawned us: no key to share.
    session.identity = { project_id = "default_project", user_id = "default_user", mcp_config_id = gw.default_config_id }
  elseif gw.plugins.auth_enabled then
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
  local out = streams.stdio()
  local ok, err = core.stdio_start(function(line)
    local msg, perr = json.decode(line)
    if msg == nil then return out:send(rpc.error(nil, rpc.PARSE_ERROR, "Parse error: " .. tostring(perr))) end
    local list = json.is_array(msg) and msg or { msg }
    local reqs, kinds = 0, {}
    for i, m in ipairs(list) do
      local kind, why = rpc.kind(m)
      if not kind then return out:send(rpc.error(type(m) == "table" and m.id or nil, rpc.INVALID_REQUEST, "Invalid Request: " .. why)) end
      kinds[i] = kind
      if kind == "request" then reqs = reqs + 1 end
    end
    local stream = out
    if json.is_array(msg) then
      if session.protocol_version ~= "2025-03-26" then
        return out:send(rpc.error(nil, rpc.INVALID_REQUEST, "Invalid Request: batches need protocol version 2025-03-26"))
      end
      stream = streams.batch(out, reqs)
    end
    for i, m in ipairs(list) do session:handle(m, kinds[i], stream) end
  end, function()
    gw:shutdown("stdin closed")
  end, gw.max_message_bytes)
  if not ok then return nil, err end
  log.info(("serving MCP on stdio (mode %s, %d server(s))"):format(gw.mode, #gw:servers()))
  return true
end

-- `smg serve`.

function Gateway.serve(args)
  local okp, o = pcall(parse_args, args)
  if not okp then return nil, o end
  local cfg, list, source = config.load({ path = o.config })
  if not cfg then
    return nil, source .. " is invalid:\n  " .. table.concat(list, "\n  ")
  end
  for _, w in ipairs(list) do log.warn(source .. ": " .. w) end
  local lvl = (o.log_level or cfg.common_mcp_gateway_config.enkrypt_log_level or "INFO"):lower()
  if not pcall(core.log_level, lvl) then log.warn("unknown log level " .. lvl) end
  if o.host then cfg.gateway.host = o.host end
  if o.port then cfg.gateway.port = o.port end
  if o.mode then
    if not ROUTERS[o.mode] then return nil, "unknown mode " .. o.mode end
    cfg.gateway.mode = o.mode
  end
  local ephemeral_key
  if not o.stdio and cfg.is_default and cfg.plugins.auth.provider == "local_apikey" and next(cfg.apikeys) == nil then
    -- The embedded default ships no keys: mint one for this run and show it once.
    ephemeral_key = "smg-" .. smg.random_hex(24)
    cfg.apikeys[ephemeral_key] = { project_id = "default_project", user_id = "default_user", disabled = false }
    cfg.ephemeral_key = ephemeral_key
  end
  -- Telemetry that writes to stdout must not corrupt the MCP stream in stdio mode.
  smg.stdio_transport = o.stdio == true
  -- A plugin must not be able to end the gateway: os.exit becomes an error it can catch
  -- (and the hook runner logs). smg itself stops through core.stop.
  os.exit = function() -- luacheck: ignore 122
    error("os.exit is not available inside the gateway; return an error from the hook instead", 2)
  end
  if PROFILE and PROFILE ~= "" then
    -- e.g. SMG_JIT_PROFILE=Fl or fv, until shutdown.
    require("jit.p").start(PROFILE, os.getenv("SMG_JIT_PROFILE_OUT") or "smg-profile.txt")
  end
  local gw = Gateway.new(cfg)
  gw.insecure = o.insecure == true
  local rok, rerr = gw.router.check(gw)
  if not rok then return nil, rerr end
  gw.signals = {
    core.signal("SIGINT", function()
      if gw.draining then core.stop(130) else gw:shutdown("SIGINT") end
    end),
    core.signal("SIGTERM", function() gw:shutdown("SIGTERM") end),
    core.signal("SIGHUP", function() reload.request(gw, "SIGHUP") end),
  }
  if cfg.gateway.watch then reload.watch(gw) end
  if o.stdio then return serve_stdio(gw) end
  local server, err = require("smg.gateway.http").listen(gw)
  if not server then return nil, err end
  gw.http_server = server
  local every = math.max(1, math.min(15, cfg.gateway.limits.unused_session_timeout / 4))
  gw.sweeper = smg.timer(every, function() gw:sweep_sessions() end, every)
  local g = cfg.gateway
  local host = g.host:find(":") and ("[" .. g.host .. "]") or g.host
  log.info(("smg %s serving MCP on http://%s:%d%s (mode %s, %d server(s), config %s)"):format(smg.version, host,
    server:port(), g.path, gw.mode, #gw:servers(), cfg.is_default and "embedded default" or cfg.source))
  if ephemeral_key then
    -- Printed for the operator once, outside the log, which never carries keys.
    io.stderr:write(("\nAPI key for this run (send it as X-API-Key or Authorization: Bearer): %s\n\n"):format(ephemeral_key))
    io.stderr:flush()
  elseif not gw.plugins.auth_enabled then
    log.warn("no auth plugin configured (plugins.auth.provider): every local client is trusted")
  end
  -- Start shared upstreams ahead of need so the first call does not pay for the spawn.
  for _, spec in ipairs(gw:servers()) do
    if spec.sharing ~= "per_session" then gw:upstream_for(nil, spec):start() end
  end
  return true
end

return Gateway

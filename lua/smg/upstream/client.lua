-- An MCP client session to one upstream server, over a transport (stdio child or remote
-- Streamable HTTP). It owns the upstream side of id remapping: every request gets a
-- fresh id from this client's own space, progress tokens are replaced by ours and mapped
-- back, and a crash or disconnect fails every in-flight call at once with a clear error,
-- then restarts the upstream with exponential backoff.
--
-- What the upstream sends on its own is handed to the `events` sink the owner gives
-- (the gateway's pipeline); this layer never decides who sees it:
--   events:ready(client)                       initialized (again, after a restart)
--   events:down(client, why)                   the transport failed; a restart follows
--   events:notification(client, method, params, call)
--                                              progress (token mapped back), log
--                                              messages, list_changed, resources/updated;
--                                              `call` is the client call it belongs to
--                                              when the transport can tell, else nil
--   events:request(client, method, params, call) -> result | nil, err
--                                              sampling, elicitation, roots (yields)
local smg = require "smg"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local param_headers = require "smg.mcp.param_headers"
local oauth = require "smg.upstream.oauth"
local version = require "smg.mcp.version"
local modern = require "smg.mcp.modern"
local Legacy = require "smg.upstream.sse_legacy"
local limits = require "smg.limits"
local json = smg.json
local log = smg.log
local clone, nkeys = require "table.clone", require "table.nkeys"

local Client = {}
Client.__index = Client

local CLIENT_INFO = { name = "smg", version = smg.version }

-- An owner that listens to nothing (tools, tests): requests from the server are refused.
local NO_EVENTS = {
  ready = function() end, down = function() end, notification = function() end,
  request = function(_, _, method) return rpc.fail(rpc.METHOD_NOT_FOUND, "Method not found: " .. method) end,
}
local DEFAULT_LIMITS = { max_message_bytes = 64 * 1024 * 1024, max_upstream_write_queue = 64 * 1024 * 1024,
  max_calls_per_upstream = 1024 }

-- spec: a server entry of the config. opts: events (the sink above), limits (the config's
-- gateway.limits: max_message_bytes, max_upstream_write_queue, max_calls_per_upstream),
-- timeouts, session (the owner, per_session sharing only), protocol_version,
-- client_capabilities.
function Client.new(spec, opts)
  local self = setmetatable({
    name = spec.server_name,
    spec = spec,
    events = opts.events or NO_EVENTS,
    limits = opts.limits or DEFAULT_LIMITS,
    session = opts.session,
    timeouts = opts.timeouts,
    protocol_version = opts.protocol_version or version.LATEST,
    client_capabilities = opts.client_capabilities or {},
    state = "idle",      -- idle | starting | ready | backoff | closed
    pending = {},        -- our id -> entry
    npending = 0,
    by_token = {},       -- our progress token -> entry
    next_id = 0,
    attempt = nil,       -- future of the current start
    restart_wait = nil,  -- during backoff: future of the next start's attempt
    init = nil,          -- InitializeResult
    restarts = 0,
    backoff = 0.25,
    last_error = nil,
    stats = { calls = 0, errors = 0, timeouts = 0, restarts = 0 },
    -- uri -> how many clients are subscribed to it through this upstream (counted by
    -- gateway/subscriptions.lua; a 2026-only server's listen stream asks for them).
    resource_uris = {},
  }, Client)
  if spec.config.url and spec.config.transport == "sse" then
    self.transport = Legacy.new(self)
  elseif spec.config.url then
    self.transport = require("smg.upstream.http").new(self)
  else
    self.transport = require("smg.upstream.stdio").new(self)
  end
  return self
end

function Client:describe()
  return { name = self.name, state = self.state,
    transport = getmetatable(self.transport) == Legacy and "sse" or self.spec.config.url and "http" or "stdio",
    pid = self.transport.pid and self.transport:pid() or nil, restarts = self.stats.restarts,
    last_error = self.last_error, server_info = self.init and self.init.serverInfo }
end

local function timeout_error(self, method, secs)
  return { code = rpc.INTERNAL_ERROR, message = ("upstream %s did not answer %s within %gs"):format(self.name, method, secs),
    data = { server = self.name, reason = "timeout", timeout = secs } }
end

local function down_error(self, why)
  return { code = rpc.INTERNAL_ERROR, message = ("upstream %s is unavailable: %s"):format(self.name, why),
    data = { server = self.name, reason = "unavailable" } }
end

-- Sends a request and waits for its answer; never raises. Returns result | nil, err.
local function raw_call(self, method, params, opts, timeout, budget)
  self.next_id = self.next_id + 1
  local id = self.next_id
  local entry = { id = id, method = method, future = async.future(), opts = opts or {}, started = smg.monotime() }
  local m26 = type(params) == "table" and params._meta
  if type(m26) == "table" and m26[modern.META_VERSION] ~= nil then
    -- A 2026 request: on HTTP it travels without the session and with the standard headers.
    entry.modern = true
    local field = modern.NAMED[method]
    entry.name = field and params[field] or nil
    local call = opts and opts.call
    if method == "tools/call" and call then
      entry.param_headers = param_headers.lines(call.param_decls, params.arguments, call.session and call.session.param_headers)
    end
  end
  if params and type(params._meta) == "table" and params._meta.progressToken ~= nil then
    -- Our own token upstream; the client's is restored on the way back.
    entry.client_token = params._meta.progressToken
    params = rpc.with(params, { _meta = rpc.with(params._meta, { progressToken = "smg-" .. id }) })
    self.by_token[params._meta.progressToken] = entry
  end
  self.pending[id] = entry
  self.npending = self.npending + 1
  local line, err = json.encode({ jsonrpc = "2.0", id = id, method = method, params = params })
  if not line then
    self:_finish(entry)
    return nil, { code = rpc.INTERNAL_ERROR, message = "cannot encode request: " .. err }
  end
  -- A transport that raises (a header it cannot send, say) must not leak the entry.
  local sent, ok, serr = pcall(self.transport.send, self.transport, line, entry)
  if not sent then ok, serr = nil, tostring(ok) end
  if not ok then
    self:_finish(entry)
    return nil, down_error(self, serr or "send failed")
  end
  if opts and opts.call then opts.call:waiting_on(self, entry) end -- a cancellation reaches us
  local res, rerr = entry.future:wait(timeout)
  if rerr == "timeout" then
    self.stats.timeouts = self.stats.timeouts + 1
    self:_finish(entry)
    self:notify("notifications/cancelled", { requestId = id, reason = "timeout" })
    if self.transport.abandon then self.transport:abandon(entry) end
    return nil, timeout_error(self, method, budget or timeout)
  end
  return res, rerr
end

-- The client cancelled the call: tell the upstream and stop waiting.
function Client:cancel(entry, reason)
  if self.pending[entry.id] then
    self:notify("notifications/cancelled", { requestId = entry.id, reason = reason })
    self:_finish(entry)
    if self.transport.abandon then self.transport:abandon(entry) end
    entry.future:set(nil, { code = rpc.INTERNAL_ERROR, message = "cancelled" })
  end
end

function Client:_finish(entry)
  if self.pending[entry.id] then
    self.pending[entry.id] = nil
    self.npending = self.npending - 1
  end
  if entry.client_token ~= nil then self.by_token["smg-" .. entry.id] = nil end
end

function Client:notify(method, params)
  local line = json.encode({ jsonrpc = "2.0", method = method, params = params })
  return self.transport:send(line, nil)
end

-- Whether a DiscoverResult also offers a 2025 revision: such a dual-era server is also
-- initialized, and each request goes in its caller's era (no translation needed).
local function offers_legacy(disc)
  for _, v in ipairs(disc.supportedVersions) do
    if version.supported(v) then return true end
  end
  return false
end

local function client_capabilities(self)
  local caps = {}
  for k, v in pairs(self.client_capabilities) do caps[k] = v end
  return caps
end

-- A request carrying the gateway's own token (oauth_config). A 401 gets a new token (in
-- discovery mode by following the server's challenge: PRM, authorization server, token
-- endpoint) and one more try; a 403 insufficient_scope a token with the union of the
-- scopes held and challenged, up to OAUTH_MAX_STEP_UPS times. The challenge is not
-- passed on. Returns result | nil, err.
local function authorized_call(self, method, params, opts, timeout, budget)
  local c = oauth.of(self.spec)
  local t0 = smg.monotime()
  local sent = self.transport.bearer -- the token this request carries
  local res, e = raw_call(self, method, params, opts, timeout, budget)
  if not c then
    if type(e) == "table" and type(e.data) == "table" then e.data.www_authenticate = nil end
    return res, e
  end
  local retried, step_ups = false, 0
  while not res and type(e) == "table" and type(e.data) == "table" do
    local status = e.data.status
    if not ((status == 401 and not retried) or (status == 403 and step_ups < c.OAUTH_MAX_STEP_UPS)) then break end
    if status == 401 then retried = true else step_ups = step_ups + 1 end
    log.warn(("upstream %s refused the OAuth token (%d): %s"):format(self.name, status,
      status == 401 and "authorizing again" or "asking for more scope"))
    local owner = opts and opts.call and opts.call.session or self.session
    local tok, aerr = oauth.challenged(self.spec, self.config_id, status, e.data.www_authenticate,
      self.timeouts and self.timeouts.auth_timeout, owner and owner.subject_token, sent)
    if not tok then
      log.warn(("upstream %s: OAuth: %s"):format(self.name, tostring(aerr)))
      e = down_error(self, "OAuth: " .. tostring(aerr))
      e.data.oauth = true
      break
    end
    self.transport.bearer, sent = tok, tok
    local left = timeout - (smg.monotime() - t0)
    if left <= 0 then break end
    res, e = raw_call(self, method, params, opts, left, budget)
  end
  if type(e) == "table" and type(e.data) == "table" then e.data.www_authenticate = nil end
  return res, e
end

-- Starts the transport and runs the MCP handshake in its own coroutine. self.attempt is
-- the future of this start: true once initialized, or nil, err.
-- With oauth_config: the gateway's token for this server, which the transport presents
-- (HTTP: Authorization; stdio: the environment at spawn). Returns true | nil, err.
function Client:_authorize(call)
  if not oauth.of(self.spec) then return true end
  -- (Token exchange: the caller's validated token; a 2026 request's own session has it.)
  local owner = call and call.session or self.session
  local tok, err = oauth.token(self.spec, self.config_id, self.timeouts and self.timeouts.auth_timeout,
    owner and owner.subject_token)
  -- (Discovery mode before the first challenge: no token yet, the request goes without.)
  if not tok and err then return nil, "OAuth: " .. tostring(err) end
  self.transport.bearer = tok
  return true
end

function Client:start()
  if self.state == "starting" or self.state == "ready" or self.state == "closed" then return end
  self.state = "starting"
  local attempt = async.future()
  self.attempt = attempt
  async.spawn(function()
    local err
    for _ = 1, 2 do
      local res, e, status
      local ok, oerr = self:_authorize()
      if ok then ok, oerr = self.transport:open() end
      self.modern, self.dual = false, false
      local disc, perr
      if ok then disc, perr = self:_probe(attempt) end
      if perr then ok, oerr = false, perr end
      if self.attempt ~= attempt or self.state ~= "starting" then return end -- superseded
      -- era "modern" speaks 2026-07-28 only, even to a server that also offers 2025.
      if disc and (self.spec.era == "modern" or not offers_legacy(disc)) then
        return self:_ready_modern(attempt, disc)
      end
      if disc then self.modern, self.dual = true, true end
      if ok and not disc and self.spec.era == "modern" then
        ok, oerr = false, "it does not speak 2026-07-28 (era \"modern\" is configured)"
      end
      if ok then
        local t = self.timeouts and self.timeouts.discovery_timeout or 20
        res, e = authorized_call(self, "initialize", {
          protocolVersion = self.protocol_version,
          capabilities = client_capabilities(self),
          clientInfo = CLIENT_INFO,
        }, nil, t)
        if self.attempt ~= attempt or self.state ~= "starting" then return end -- superseded
        if res and type(res) == "table" and res.protocolVersion then
          self.init = res
          self.transport:initialized(res)
          self:notify("notifications/initialized", nil)
          self.state = "ready"
          self.backoff = 0.25
          self.last_error = nil
          log.info(("upstream %s ready (%s %s, protocol %s%s)"):format(self.name,
            tostring(res.serverInfo and res.serverInfo.name), tostring(res.serverInfo and res.serverInfo.version),
            res.protocolVersion, self.dual and (" and " .. modern.VERSION) or ""))
          attempt:set(true)
          self.events:ready(self)
          return
        end
        err = e and e.message or "invalid initialize result"
        status = e and type(e.data) == "table" and e.data.status
        -- A server that answered server/discover but then refuses initialize serves one
        -- era per connection, chosen by its first message (the v2 SDK's serveStdio): it
        -- is a 2026-07-28 server for us.
        local ours = e and type(e.data) == "table" and (e.data.reason == "unavailable" or e.data.reason == "timeout")
        if disc and e and not ours then
          log.info(("upstream %s refused initialize after server/discover (%s): speaking 2026-07-28 only"):format(
            self.name, tostring(err)))
          return self:_ready_modern(attempt, disc)
        end
      else
        err = oerr
      end
      -- The spec's backwards-compatibility rule: a server that refuses the initialize
      -- POST with 400/404/405 may be a 2024-11-05 HTTP+SSE server.
      if not ((status == 400 or status == 404 or status == 405) and self.spec.config.url
        and not self.spec.config.transport and getmetatable(self.transport) ~= Legacy) then
        break
      end
      log.info(("upstream %s answered HTTP %d to initialize; trying the HTTP+SSE transport"):format(self.name, status))
      self.transport:close()
      self.transport = Legacy.new(self)
    end
    log.error(("upstream %s failed to start: %s"):format(self.name, tostring(err)))
    self.transport:close()
    self:_down(tostring(err))
  end)
end

-- The era probe (2026-07-28 over stdio: server/discover before anything else). Returns
-- the DiscoverResult of a server that speaks 2026-07-28, else nil (it refused the probe,
-- or stayed silent for PROBE_TIMEOUT).
local PROBE_TIMEOUT = 2

function Client:_probe(attempt)
  local era = self.spec.era or "auto"
  if era == "legacy" or self.spec.config.transport == "sse" then return nil end
  -- A stdio server may stay silent on a method it does not know: the probe is short. An
  -- HTTP server answers every POST (a result, an error, a 4xx): it gets the full budget,
  -- so a slow one is not taken for a 2025 server.
  local full = era == "modern" or self.spec.config.url ~= nil
  local t = full and (self.timeouts and self.timeouts.discovery_timeout or 20) or PROBE_TIMEOUT
  local res, e = authorized_call(self, "server/discover", { _meta = self:_modern_meta(nil) }, nil, t)
  if not res and type(e) == "table" and e.code == modern.UNSUPPORTED_VERSION and type(e.data) == "table"
    and type(e.data.supported) == "table" then
    -- -32022 lists what it supports: when that includes ours, the refusal was of something
    -- else (a version it had not expected first): asked once more.
    for _, v in ipairs(e.data.supported) do
      if v == modern.VERSION then
        res = authorized_call(self, "server/discover", { _meta = self:_modern_meta(nil) }, nil, t)
        break
      end
    end
  end
  -- Not being authorized is not an answer about the era: the start fails with it.
  if not res and type(e) == "table" and type(e.data) == "table" and e.data.oauth then return nil, e.message end
  if self.attempt ~= attempt or not (type(res) == "table" and type(res.supportedVersions) == "table") then return nil end
  for _, v in ipairs(res.supportedVersions) do
    if v == modern.VERSION then return res end
  end
  return nil
end

-- A 2026-only server: ready without initialize, spoken to statelessly.
function Client:_ready_modern(attempt, disc)
  self.modern, self.dual = true, false
  local meta = type(disc._meta) == "table" and disc._meta or {}
  self.init = { protocolVersion = modern.VERSION, capabilities = disc.capabilities or {},
    serverInfo = meta[modern.META_SERVER_INFO] or disc.serverInfo, instructions = disc.instructions }
  self.transport:initialized(self.init)
  self.state, self.backoff, self.last_error = "ready", 0.25, nil
  log.info(("upstream %s ready (%s %s, protocol %s only)"):format(self.name,
    tostring(self.init.serverInfo and self.init.serverInfo.name), tostring(self.init.serverInfo and
    self.init.serverInfo.version), modern.VERSION))
  self:_listen()
  attempt:set(true)
  self.events:ready(self)
end

-- A 2026 upstream tells of list changes only on a listen stream: one for everything its
-- capabilities can change, for as long as the process lives (not a pending call: it never
-- ends, and must not count as one in flight).
function Client:_listen()
  local caps = self.init.capabilities
  local filter = { toolsListChanged = caps.tools and caps.tools.listChanged or nil,
    promptsListChanged = caps.prompts and caps.prompts.listChanged or nil,
    resourcesListChanged = caps.resources and caps.resources.listChanged or nil }
  local uris = {}
  for uri in pairs(self.resource_uris) do uris[#uris + 1] = uri end
  if #uris > 0 then
    table.sort(uris)
    filter.resourceSubscriptions = uris
  end
  self.listen_entry = nil
  if next(filter) == nil then return end
  self.next_id = self.next_id + 1
  -- Over HTTP the stream can end (the server restarted its side, an event too large):
  -- opened again while it is still this process's stream (a restart opens its own), after
  -- a pause that grows while the stream keeps ending at once.
  self.listen_gen = (self.listen_gen or 0) + 1
  local gen, started = self.listen_gen, smg.monotime()
  local function current() return self.listen_gen == gen and self.state == "ready" end
  local function on_end()
    if not current() then return end
    local lived = smg.monotime() - started
    self.listen_pause = lived > 30 and 0.5 or math.min((self.listen_pause or 0.25) * 2, 30)
    smg.timer(self.listen_pause, function()
      if current() then self:_listen() end
    end)
  end
  local entry = { id = self.next_id, method = "subscriptions/listen", modern = true, opts = {}, stream = true,
    listen = true, on_end = on_end }
  self.listen_entry = entry
  self.transport:send(json.encode({ jsonrpc = "2.0", id = entry.id, method = "subscriptions/listen",
    params = { notifications = filter, _meta = self:_modern_meta(nil) } }), entry)
end

-- Whether resource subscriptions go through the listen stream (a 2026-only server has
-- no resources/subscribe).
function Client:listens_for_resources() return self.modern and not self.dual end

-- Opens the listen stream again with the current filter (resource_uris changed): the old
-- one is closed (HTTP) or cancelled (stdio) first.
function Client:relisten()
  if self.state ~= "ready" or not self:listens_for_resources() then return end
  local old = self.listen_entry
  if old then
    self.listen_gen = (self.listen_gen or 0) + 1 -- the old stream's end is not a reason to reopen it
    if self.transport.abandon then
      self.transport:abandon(old)
    else
      self:notify("notifications/cancelled", { requestId = old.id, reason = "subscriptions changed" })
    end
  end
  self:_listen()
end

-- The per-request _meta of a 2026 request on behalf of `call`: its client's version-free
-- capabilities (a 2026 client's are forwarded as declared) and log level.
function Client:_modern_meta(call)
  local session = call and call.session
  local meta = { [modern.META_VERSION] = modern.VERSION, [modern.META_INFO] = CLIENT_INFO,
    [modern.META_CAPS] = session and session.client_caps or self.client_capabilities or {} }
  if session and session.stateless then
    meta[modern.META_LOG_LEVEL] = session.log_level_name
  elseif session then
    -- A 2025 client gets every log message until it sets a level; the session filters.
    meta[modern.META_LOG_LEVEL] = "debug"
  end
  return meta
end

-- Whether a request on behalf of `call` goes in 2026-07-28: always to a 2026-only server;
-- to a dual-era one when its caller is a 2026 request.
function Client:_modern_for(call)
  if not self.modern then return false end
  if not self.dual then return true end
  return call ~= nil and call.session ~= nil and call.session.stateless == true
end

-- The params as the request's era wants them: a 2026 request gets the per-request _meta;
-- a 2025 one never carries 2026 protocol keys (a dual-era server would take them for a
-- 2026 request).
local RESERVED = "io.modelcontextprotocol/"
local META_VERSION, META_CAPS, META_INFO, META_LOG_LEVEL = modern.META_VERSION, modern.META_CAPS, modern.META_INFO,
  modern.META_LOG_LEVEL

-- A 2026 request's _meta without the protocol's keys; nil when nothing else is left.
-- (Every request has the same few keys: those are counted, not looped over. A loop here
-- would run on every call, LuaJIT would compile it as a trace of its own, and every trace
-- through the call path would then abort on it, "inner loop in root trace", until the
-- call path ran interpreted.)
local function unreserved(meta)
  local known = (meta[META_VERSION] ~= nil and 1 or 0) + (meta[META_CAPS] ~= nil and 1 or 0)
    + (meta[META_INFO] ~= nil and 1 or 0) + (meta[META_LOG_LEVEL] ~= nil and 1 or 0)
  if nkeys(meta) == known then return nil end
  local m
  for k, v in pairs(meta) do
    if type(k) ~= "string" or k:find(RESERVED, 1, true) ~= 1 then
      m = m or {}
      m[k] = v
    end
  end
  return m
end

function Client:_era_params(params, call)
  local meta = type(params) == "table" and params._meta
  local as_modern = self:_modern_for(call)
  if not as_modern and type(meta) ~= "table" then return params end
  local p = type(params) == "table" and clone(params) or {}
  local m = type(meta) == "table" and unreserved(meta) or nil
  if as_modern then
    local mine = self:_modern_meta(call)
    if m then
      for k, v in pairs(mine) do m[k] = v end
    else
      m = mine
    end
  end
  p._meta = m -- (a slot the clone has when params had _meta: no rehash)
  return p
end

-- Waits until ready, starting the upstream if needed. A call that arrives during a
-- restart backoff waits for that one restart, and fails with its error if it fails.
-- Returns true | nil, err.
function Client:ensure_ready(timeout)
  if self.state == "ready" then return true end
  if self.state == "closed" or self.state == "failed" then
    return nil, down_error(self, self.last_error or self.state)
  end
  local deadline = smg.monotime() + timeout
  if self.state == "idle" then self:start() end
  local attempt = self.attempt
  if self.state == "backoff" then
    local a, err = self.restart_wait:wait(timeout)
    if not a then
      if err == "timeout" then return nil, timeout_error(self, "initialize", timeout) end
      return nil, down_error(self, self.last_error or "restart failed")
    end
    attempt = a
  end
  local ok, err = attempt:wait(math.max(0.001, deadline - smg.monotime()))
  if ok then return true end
  if err == "timeout" then return nil, timeout_error(self, "initialize", timeout) end
  return nil, down_error(self, self.last_error or tostring(type(err) == "table" and err.message or err))
end

-- Calls a method on the upstream. opts: timeout (s), call (the client call, for progress
-- and cancellation). Returns result | nil, err.
function Client:call(method, params, opts)
  opts = opts or {}
  local timeout = opts.timeout or (self.timeouts and self.timeouts.default_timeout) or 30
  local t0 = smg.monotime()
  local ok, err = self:ensure_ready(timeout)
  if not ok then return nil, err end
  if self.npending >= self.limits.max_calls_per_upstream then
    return nil, limits.refused("calls_per_upstream",
      ("upstream %s has too many calls in flight (%d)"):format(self.name, self.npending), { server = self.name })
  end
  if method == "logging/setLevel" and self:_modern_for(opts.call) then
    -- 2026-07-28 has no logging/setLevel: the level travels in each request's _meta (a
    -- 2025 session's upstream sends every level and the session filters).
    return {}
  end
  local left = math.max(0.001, timeout - (smg.monotime() - t0))
  self.stats.calls = self.stats.calls + 1
  params = self:_era_params(params, opts.call)
  if oauth.of(self.spec) then
    local aok, aerr = self:_authorize(opts.call) -- a cached token, or a refreshed one
    if not aok then return nil, down_error(self, aerr) end
  end
  local res, e = authorized_call(self, method, params, opts, left, timeout)
  if not res then self.stats.errors = self.stats.errors + 1 end
  return res, e
end

-- The transport is gone: fail everything in flight, then restart after a backoff.
function Client:_down(why)
  if self.state == "closed" or self.state == "failed" then return end
  self.state = "backoff"
  self.last_error = why
  local err = down_error(self, why)
  local entries = self.pending
  self.pending, self.by_token, self.npending = {}, {}, 0
  for _, entry in pairs(entries) do entry.future:set(nil, err) end
  if self.attempt and not self.attempt.done then self.attempt:set(nil, err) end
  self.events:down(self, why)
  local wait = async.future()
  self.restart_wait = wait
  if self.stats.restarts >= (self.spec.max_restarts or 100) then
    log.error(("upstream %s: giving up after %d restarts"):format(self.name, self.stats.restarts))
    self.state = "failed"
    wait:set(nil, err)
    return
  end
  local delay = self.backoff
  self.backoff = math.min(self.backoff * 2, self.spec.restart_backoff_max or 30)
  log.warn(("upstream %s down (%s); restarting in %.2fs"):format(self.name, why, delay))
  local t
  t = smg.timer(delay, function()
    t:close()
    if self.state ~= "backoff" or self.restart_wait ~= wait then return end
    self.stats.restarts = self.stats.restarts + 1
    self.state = "idle"
    self:start()
    wait:set(self.attempt)
  end)
  self.restart_timer = t
end

-- Starts again now a client waiting out its restart backoff (or one that gave up): what
-- kept it down was fixed (an operator authorized it).
function Client:restart_now()
  if self.state ~= "backoff" and self.state ~= "failed" then return end
  if self.restart_timer then
    self.restart_timer:close()
    self.restart_timer = nil
  end
  local wait = self.restart_wait
  self.restart_wait = nil
  self.state, self.backoff = "idle", 0.25
  self:start()
  if wait and not wait.done then wait:set(self.attempt) end
end

-- A message from the upstream that could not be decoded (invalid UTF-8, nested too
-- deep, cut off): the request it answers fails now instead of at its timeout. `related`
-- is that request when the transport knows it (an HTTP response); else the id is read off
-- the raw text, only when it looks like a response (our ids are integers).
-- `edges`: text is only the two ends of a line too long to keep; an "id" inside the
-- result could belong to anything, so only one at the envelope's start or end counts.
function Client:fail_unparsable(text, why, related, edges)
  local entry = related
  if not entry and (text:find('"result"', 1, true) or text:find('"error"', 1, true)) then
    local id
    if edges then
      id = text:match('^%s*{%s*"jsonrpc"%s*:%s*"2%.0"%s*,%s*"id"%s*:%s*(%d+)%s*,')
        or text:match('^%s*{%s*"id"%s*:%s*(%d+)%s*,') or text:match(',%s*"id"%s*:%s*(%d+)%s*}%s*$')
    else
      id = text:match('"id"%s*:%s*(%d+)')
    end
    id = tonumber(id)
    entry = id and self.pending[id]
  end
  if not (entry and self.pending[entry.id]) then return end
  self:_finish(entry)
  entry.future:set(nil, { code = rpc.INTERNAL_ERROR,
    message = ("upstream %s sent a response that is not valid JSON-RPC: %s"):format(self.name, tostring(why)),
    data = { server = self.name, reason = "invalid_response" } })
end

-- A request its transport could not carry to an answer (a transfer error, an HTTP error
-- without a JSON-RPC body, a dropped stream) fails now rather than at its timeout; a
-- no-op once it was answered.
function Client:fail_request(entry, message, status, challenge)
  if not (entry and self.pending[entry.id]) then return end
  self:_finish(entry)
  entry.future:set(nil, { code = rpc.INTERNAL_ERROR, message = message,
    data = { server = self.name, reason = "unavailable", status = status, www_authenticate = challenge } })
end

-- Called by the HTTP transports with a JSON body or SSE event: one message or a batch.
function Client:on_payload(text, related)
  local msg, why = json.decode(text)
  if type(msg) ~= "table" then
    log.warn(("upstream %s sent invalid JSON"):format(self.name))
    return self:fail_unparsable(text, why or "not a JSON object", related)
  end
  if json.is_array(msg) then
    for _, m in ipairs(msg) do self:on_message(m, related) end
  else
    self:on_message(msg, related)
  end
end

-- Called by the transport for every message from the upstream. `related` is the entry of
-- the request whose HTTP response stream carried it, when known.
function Client:on_message(msg, related)
  local kind = rpc.kind(msg)
  if kind == "response" then
    local entry = self.pending[msg.id]
    if not entry then return end -- late answer to a cancelled or timed-out call
    self:_finish(entry)
    if msg.error then entry.future:set(nil, msg.error) else entry.future:set(msg.result) end
  elseif kind == "notification" then
    self:_on_notification(msg, related)
  elseif kind == "request" then
    async.spawn(function() self:_on_request(msg, related) end)
  else
    log.warn(("upstream %s sent an invalid message"):format(self.name))
  end
end

-- The client call a server-initiated message belongs to: the related request if the
-- transport knows it (a Streamable HTTP response stream). On a per-session upstream the
-- only call in flight is a safe guess (every call is that session's); on a shared one a
-- guess could hand one tenant's sampling request or log line to another, so none is made.
function Client:_related_call(related)
  if related and related.opts and related.opts.call then return related.opts.call end
  if self.session and self.npending == 1 then
    local _, entry = next(self.pending)
    return entry.opts and entry.opts.call
  end
  return nil
end

function Client:_on_notification(msg, related)
  local m, p = msg.method, type(msg.params) == "table" and msg.params or {}
  if m == "notifications/progress" then
    -- Only for a call that asked for progress, with the client's own token restored.
    local entry = self.by_token[p.progressToken]
    if not (entry and entry.opts.call) then return end
    local out = {}
    for k, v in pairs(p) do out[k] = v end
    out.progressToken = entry.client_token
    return self.events:notification(self, m, out, entry.opts.call)
  end
  self.events:notification(self, m, p, self:_related_call(related))
end

-- What a server may ask its client, by the client capability it needs.
local FORWARDED_REQUESTS = { ["sampling/createMessage"] = "sampling", ["elicitation/create"] = "elicitation",
  ["roots/list"] = "roots" }
Client.FORWARDED_REQUESTS = FORWARDED_REQUESTS

function Client:_reply(id, result, err)
  self.transport:send(rpc.reply(id, result, err), nil)
end

function Client:_on_request(msg, related)
  if msg.method == "ping" then return self:_reply(msg.id, {}) end
  local cap = FORWARDED_REQUESTS[msg.method]
  if not cap then
    return self:_reply(msg.id, nil, { code = rpc.METHOD_NOT_FOUND, message = "Method not found: " .. msg.method })
  end
  local res, err = self.events:request(self, msg.method, type(msg.params) == "table" and msg.params or {},
    self:_related_call(related))
  self:_reply(msg.id, res, err)
end

function Client:close()
  if self.state == "closed" then return end
  self.state = "closed"
  local err = down_error(self, "closed")
  local entries = self.pending
  self.pending, self.by_token, self.npending = {}, {}, 0
  for _, entry in pairs(entries) do entry.future:set(nil, err) end
  if self.attempt and not self.attempt.done then self.attempt:set(nil, err) end
  if self.restart_wait and not self.restart_wait.done then self.restart_wait:set(nil, err) end
  if self.restart_timer then self.restart_timer:close() end
  self.transport:close()
end

return Client

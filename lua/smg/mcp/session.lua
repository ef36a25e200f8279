-- One client session: its negotiated protocol version and capabilities, its requests in
-- flight (for cancellation), the requests sent to it on behalf of upstreams (sampling,
-- elicitation, roots: our ids, mapped back), its open GET streams, its log level and
-- its list_changed coalescing. Transport-neutral: HTTP and stdio sessions are the same.
--
-- The session knows nothing of routing or upstreams. Its `host` (the gateway) answers:
--   host:dispatch(session, call, params) -> result | nil, err    a request (yields)
--   host:client_notification(session, method, params)          any other notification
--   host:settings() -> { limits = ..., timeouts = ... }         the current version's
--   host:session_closed(session, reason)                        after close
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local limits = require "smg.limits"
local rpc = require "smg.mcp.jsonrpc"
local Call = require "smg.mcp.call"
local version = require "smg.mcp.version"
local streams = require "smg.mcp.streams"
local log = smg.log

local LOG_LEVELS = { debug = 0, info = 1, notice = 2, warning = 3, error = 4, critical = 5, alert = 6, emergency = 7 }

local Session = {}
Session.__index = Session

-- attrs: identity, config_id, identity_key, peer (what the host authenticated).
function Session.new(host, transport, id, attrs)
  attrs = attrs or {}
  return setmetatable({
    host = host, transport = transport, id = id,
    initialized = false,       -- initialize answered
    protocol_version = nil,
    client_caps = {}, client_info = nil,
    config_id = attrs.config_id,   -- the mcp_config this session sees (host-owned)
    identity = attrs.identity,     -- who authenticated it, or nil
    identity_key = attrs.identity_key, -- the tenant it counts against
    peer = attrs.peer,             -- the client's address (HTTP)
    log_level = nil,
    inflight = {},             -- client request id (as string) -> call
    outbound = {},             -- our request id -> future
    next_out = 0,
    get_streams = {},
    subscriptions = {},        -- resource uri -> true
    resumable = {},            -- SSE stream id -> stream, the last MAX_RESUMABLE of them
    resumable_order = {},
    next_stream = 0,
    last_seen = smg.monotime(),
    calls = 0,                 -- requests made after initialize (idle expiry)
    list_sent = {},            -- list_changed method -> when last sent
    list_pending = {},         -- list_changed method -> timer of the coalesced one
    ninflight = 0,
    noutbound = 0,
    closed = false,
    stateless = false,         -- a 2026-07-28 request's (Session.new_stateless)
    listening = false,         -- a listen stream's { id, filter } (Session:listen)
    home = false,              -- an identity's home: owns per_session upstreams for 2026 requests
    log_level_name = nil,      -- a 2026 request's _meta logLevel (forwarded to 2026 upstreams)
  }, Session)
end

-- A 2026-07-28 request's session (mcp/modern.lua): it lives for one request, or for a
-- subscriptions/listen stream. Initialized by construction, with the version, capabilities
-- and log level the request's _meta carries (no log level: no log messages at all).
-- A request's session is made and dropped per request, so it carries only what one
-- request uses: the tables a session fills over its life (streams, subscriptions, list
-- coalescing, requests to the client) are one shared empty table, read-only, until
-- Session:listen gives a listen stream's session its own.
local NONE = setmetatable({}, { __newindex = function() error("a request's session holds no such state", 2) end })

-- What every such session starts with, shared through a per-host prototype (a request's
-- session table holds only what differs: a third of the fields, an 8-slot hash part, less
-- garbage per request); a write lands in the session itself.
local STATELESS = { transport = "http", initialized = true, ready = true, stateless = true,
  listening = false, home = false, closed = false, ninflight = 0, calls = 0, last_seen = 0,
  inflight = NONE, outbound = NONE, noutbound = 0, next_out = 0, get_streams = NONE, subscriptions = NONE,
  resumable = NONE, resumable_order = NONE, next_stream = 0, list_sent = NONE, list_pending = NONE,
  protocol_version = version.MODERN[1],
  log_level = math.huge, -- (none asked: no log messages)
  -- A tools/call's Mcp-Param-* headers over HTTP ({lowercased name = value}), checked
  -- against the tool's declarations; false elsewhere.
  param_headers = false }

-- Per host: Session's methods, STATELESS and the host in one table, so a request's session
-- finds any of them one lookup away (not through a chain of metatables, a hop on every
-- method call, interpreted or compiled). Made on a host's first request, when Session has
-- every method.
local by_host = setmetatable({}, { __mode = "k" })
local function metatable_for(host)
  local mt = by_host[host]
  if not mt then
    local proto = setmetatable({ host = host }, Session)
    for k, v in pairs(Session) do
      if k ~= "__index" then proto[k] = v end
    end
    for k, v in pairs(STATELESS) do proto[k] = v end
    mt = { __index = proto }
    by_host[host] = mt
  end
  return mt
end

-- host, identity, config_id, identity_key, peer, subject_token: as Session.new's attrs
-- (what the host authenticated); the rest what modern.check returned. One constructor
-- with every field a request writes (its call), 8 of them: a table that grows key by key
-- is rehashed on the way, and a ninth field doubles its hash part. What is mostly the
-- default (the version, no subject token, no log level) is set only when it is not.
-- A listen stream's session gets its id and own tables from Session:listen.
function Session.new_stateless(host, identity, config_id, identity_key, peer, subject_token, v, caps, info,
                               level, param_headers)
  local s = setmetatable({ identity = identity, config_id = config_id, identity_key = identity_key, peer = peer,
    client_caps = caps, client_info = info, param_headers = param_headers, call = false }, metatable_for(host))
  if v ~= STATELESS.protocol_version then s.protocol_version = v end
  if subject_token ~= nil then s.subject_token = subject_token end
  if level then s.log_level_name, s.log_level = level, LOG_LEVELS[level] or math.huge end
  return s
end

-- Which notifications a listen stream asked for (its `notifications` filter).
local LISTEN_FILTER = { ["notifications/tools/list_changed"] = "toolsListChanged",
  ["notifications/prompts/list_changed"] = "promptsListChanged",
  ["notifications/resources/list_changed"] = "resourcesListChanged" }

-- Makes this session a listen stream's: `id` is the listen request's id (the
-- subscriptionId every notification carries), `filter` its `notifications` object.
function Session:listen(id, filter)
  self.id = "listen-" .. smg.random_hex(16)
  filter = type(filter) == "table" and filter or {}
  local uris = {}
  for _, u in ipairs(type(filter.resourceSubscriptions) == "table" and filter.resourceSubscriptions or {}) do
    if type(u) == "string" then uris[u] = true end
  end
  self.listening = { id = id, filter = filter }
  self.subscriptions = uris
  self.get_streams, self.list_sent, self.list_pending, self.outbound, self.inflight = {}, {}, {}, {}, {}
end

-- A listen stream's notifications: only the kinds it asked for, each tagged with its
-- subscriptionId. Returns the params to send, or nil to drop it.
local function listen_params(self, method, params)
  local l = self.listening
  local want = LISTEN_FILTER[method]
  if want then
    if l.filter[want] ~= true then return nil end
  elseif method == "notifications/resources/updated" then
    if not (type(params) == "table" and self.subscriptions[params.uri]) then return nil end
  elseif method ~= "notifications/subscriptions/acknowledged" then
    return nil
  end
  local p = {}
  for k, v in pairs(type(params) == "table" and params or {}) do p[k] = v end
  local meta = {}
  for k, v in pairs(type(p._meta) == "table" and p._meta or {}) do meta[k] = v end
  meta["io.modelcontextprotocol/subscriptionId"] = l.id
  p._meta = meta
  return p
end

local MAX_RESUMABLE = 32

-- Gives an SSE stream its id and keeps it resumable until newer streams push it out.
function Session:register_stream(stream)
  self.next_stream = self.next_stream + 1
  local id = tostring(self.next_stream)
  self.resumable[id] = stream
  local order = self.resumable_order
  order[#order + 1] = id
  if #order > MAX_RESUMABLE then self.resumable[table.remove(order, 1)] = nil end
  return id
end

function Session:touch() self.last_seen = smg.monotime() end

function Session:client_supports(cap)
  return type(self.client_caps) == "table" and self.client_caps[cap] ~= nil
end

-- A stream for unsolicited messages: the first open GET stream.
function Session:_any_stream()
  if self.transport == "stdio" then return streams.stdio() end
  for i = #self.get_streams, 1, -1 do
    local s = self.get_streams[i]
    if s:open() then return s end
    table.remove(self.get_streams, i)
  end
  return nil
end

-- Sends a notification, on the stream of `call` when it is still open, else on a GET stream.
function Session:notify(method, params, call)
  if self.listening then
    params = listen_params(self, method, params)
    if params == nil then return false end
  end
  local line = rpc.notification(method, params)
  local stream = call and call.stream
  if stream and stream:open() then return stream:send(line) end
  stream = self:_any_stream()
  if stream then return stream:send(line) end
  return false
end

function Session:log_message(params, call)
  if self.log_level and (LOG_LEVELS[params.level] or 0) < self.log_level then return end
  self:notify("notifications/message", params, call)
end

function Session:set_log_level(level)
  local n = LOG_LEVELS[level]
  if not n then return false end
  self.log_level = n
  return true
end

-- Asks the client (sampling, elicitation, roots) on behalf of an upstream. Yields.
function Session:request_client(method, params, call, timeout)
  local settings = self.host:settings()
  if self.noutbound >= settings.limits.max_client_requests_per_session then
    -- An upstream cannot queue unbounded work on a client: past the limit it is refused.
    return nil, limits.refused("client_requests_per_session",
      ("too many %s requests waiting on the client"):format(method))
  end
  self.noutbound = self.noutbound + 1
  self.next_out = self.next_out + 1
  local id = "smg-" .. self.next_out
  local f = async.future()
  self.outbound[id] = f
  local line = rpc.request(id, method, params)
  local stream = call and call.stream
  if not (stream and stream:open()) then stream = self:_any_stream() end
  if not stream then
    self.outbound[id] = nil
    self.noutbound = self.noutbound - 1
    return nil, { code = rpc.INTERNAL_ERROR, message = "no open stream to the client for " .. method }
  end
  stream:send(line)
  local res, err = f:wait(timeout or settings.timeouts.default_timeout * 10)
  self.outbound[id] = nil
  self.noutbound = self.noutbound - 1
  if err == "timeout" then
    self:notify("notifications/cancelled", { requestId = id, reason = "timeout" }, call)
    return nil, { code = rpc.INTERNAL_ERROR, message = "the client did not answer " .. method .. " in time" }
  end
  return res, err
end

local function reply(stream, line, err)
  if stream then stream:reply(line, err and stream.status_of and stream.status_of(err)) end
end

-- Runs one client request in its own coroutine and sends the reply (a module-level
-- function rather than a closure per request: LuaJIT compiles the request path then).
-- Requests in flight on sessions of one request (2026-07-28): no session table lists
-- them, and a graceful stop waits for them too.
local alone = 0
function Session.requests_alone() return alone end

local function run_request(self, msg, call, stream, key)
  local host = self.host
  local ok, res, err = xpcall(host.dispatch, debug.traceback, host, self, call, msg.params or {})
  if key then
    self.inflight[key] = nil
    self.ninflight = self.ninflight - 1
  else
    alone = alone - 1
    self.call = false
  end
  if call.cancelled then
    if stream then stream:close() end
    return
  end
  if not ok then
    log.error("request handler failed: " .. tostring(res))
    res, err = nil, { code = rpc.INTERNAL_ERROR, message = "Internal error" }
  end
  if res == nil and err == nil then return end -- answered already (a listen stream)
  reply(stream, rpc.reply(msg.id, res, err), res == nil and err)
end

local function new_call(self, msg, stream)
  local params = msg.params or {}
  local meta = type(params._meta) == "table" and params._meta or nil
  return Call.new(msg.id, msg.method, self, stream, meta and meta.progressToken, stream and stream.traceparent)
end

-- Handles one decoded message from the client. `stream` receives the reply of a request.
function Session:handle(msg, kind, stream)
  if self.stateless and not self.listening then
    -- A 2026 request's own session: its one call, without the id table and counters of a
    -- session's many (and no idle time to track).
    if kind ~= "request" then return end
    local call = new_call(self, msg, stream)
    self.call = call
    alone = alone + 1
    return async.spawn(run_request, self, msg, call, stream, nil)
  end
  self:touch()
  if kind == "request" then
    local key = tostring(msg.id)
    if self.inflight[key] then
      return reply(stream, rpc.error(msg.id, rpc.INVALID_REQUEST, "request id " .. key .. " is already in use"))
    end
    if self.ninflight >= self.host:settings().limits.max_calls_per_session then
      return reply(stream, rpc.error_of(msg.id, limits.refused("calls_per_session",
        ("Too many requests in flight on this session (%d)"):format(self.ninflight))))
    end
    self.ninflight = self.ninflight + 1
    if msg.method ~= "initialize" then self.calls = self.calls + 1 end
    local call = new_call(self, msg, stream)
    self.inflight[key] = call
    async.spawn(run_request, self, msg, call, stream, key)
  elseif kind == "notification" then
    local m, p = msg.method, msg.params or {}
    if m == "notifications/initialized" then
      self.ready = true
    elseif m == "notifications/cancelled" then
      -- The spec: initialize cannot be cancelled.
      local call = self.inflight[tostring(p.requestId)]
      if call and call.method ~= "initialize" then call:cancel(p.reason) end
    else
      self.host:client_notification(self, m, p)
    end
  elseif kind == "response" then
    local f = self.outbound[msg.id]
    if f then
      if msg.error then f:set(nil, msg.error) else f:set(msg.result) end
    end
  end
end

-- notifications/*/list_changed, coalesced: at most one per kind per COALESCE seconds; a
-- burst (an upstream announcing 10,000 changes, a reload touching every server) becomes
-- one notification now and at most one more when the window ends.
local COALESCE = 0.25

local function flush_list_changed(arg)
  local self, method = arg[1], arg[2]
  local t = self.list_pending[method]
  if t then t:close() end
  self.list_pending[method] = nil
  if self.closed then return end
  self.list_sent[method] = smg.monotime()
  self:notify(method, nil, nil)
end

function Session:list_changed(method)
  if self.list_pending[method] then return end
  local now = smg.monotime()
  local wait = COALESCE - (now - (self.list_sent[method] or -COALESCE))
  if wait <= 0 then
    self.list_sent[method] = now
    return self:notify(method, nil, nil)
  end
  self.list_pending[method] = core.timer(wait * 1000, 0, flush_list_changed, { self, method })
end

function Session:close(reason)
  if self.closed then return end
  self.closed = true
  if self.call then self.call:cancel("session closed") end
  for _, call in pairs(self.inflight) do call:cancel("session closed") end
  for _, f in pairs(self.outbound) do f:set(nil, { code = rpc.INTERNAL_ERROR, message = "session closed" }) end
  for _, s in ipairs(self.get_streams) do s:close() end
  self.get_streams = {}
  for m, t in pairs(self.list_pending) do
    t:close()
    self.list_pending[m] = nil
  end
  self.host:session_closed(self, reason)
  log.debug(("session %s closed (%s)"):format(tostring(self.id), reason or "closed"))
end

return Session

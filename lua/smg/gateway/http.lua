-- The MCP Streamable HTTP server transport (spec 2025-11-25, serving 2025-06-18 and
-- 2025-03-26 clients too): POST carries client messages, GET opens a server stream,
-- DELETE ends a session. Every malformed input gets its HTTP status and, where the spec
-- allows, a JSON-RPC error body; nothing reaches the router unless it is well-formed.
local smg = require "smg"
local core = require "smg.core"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local intake = require "smg.mcp.intake"
local streams = require "smg.mcp.streams"
local Session = require "smg.mcp.session"
local Call = require "smg.mcp.call"
local modern = require "smg.mcp.modern"
local auth = require "smg.gateway.auth"
local metrics = require "smg.metrics"
local limits = require "smg.limits"
local json = smg.json
local log = smg.log

local M = {}

local CORS_EXPOSE = "Mcp-Session-Id, MCP-Protocol-Version"
local CORS_ALLOW = "Content-Type, Accept, Authorization, X-API-Key, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"

local function error_body(code, message, data)
  return json.encode({ jsonrpc = "2.0", id = json.null, error = { code = code, message = message, data = data } })
end

local function host_of(value)
  -- "host:port", "[v6]:port", "scheme://host:port/..." -> lowercased host
  if not value then return nil end
  local v = value:lower():gsub("^%a[%w+.-]*://", "")
  v = v:gsub("/.*$", "")
  local v6 = v:match("^%[([^%]]+)%]")
  if v6 then return "[" .. v6 .. "]" end
  return (v:gsub(":%d+$", ""))
end

local LOCAL_HOSTS = { localhost = true, ["127.0.0.1"] = true, ["[::1]"] = true }

local function is_loopback_bind(host)
  return host == "127.0.0.1" or host == "::1" or host == "localhost" or host:match("^127%.") ~= nil
end

-- Verdicts per Host / Origin value: clients send the same few values on every request.
local verdicts = setmetatable({}, { __mode = "k" })
local MAX_MEMO = 1024

local function memo_for(gw)
  local m = verdicts[gw]
  if not m or m.n > MAX_MEMO then
    m = { n = 0, host = {}, origin = {} }
    verdicts[gw] = m
  end
  return m
end

-- DNS-rebinding protection: the Host must name us, and an Origin, when sent, must be one
-- we trust. Returns nil when fine, else the reason.
local function verdict(gw, m, kind, value, check)
  local v = m[kind][value]
  if v == nil then
    v = check(gw, value) or false
    m[kind][value] = v
    m.n = m.n + 1
  end
  return v or nil
end

function M.check_origin(gw, req)
  local m = memo_for(gw)
  local why = verdict(gw, m, "host", req:header("host") or "", M._check_host)
  if why then return why end
  local origin = req:header("origin")
  if not origin then return nil end
  -- The configured-origin verdict is memoized; the same-origin rule depends on this
  -- request's Host, so it is checked every time (it is two string compares).
  local refused = verdict(gw, m, "origin", origin, M._check_origin_value)
  if refused and not M.same_origin(origin, req:header("host")) then return refused end
  return nil
end

-- The names a client may use for us: allowed_hosts when configured; else the loopback
-- names, the bind address and this machine's host name. The Host check is never off.
local function machine_names()
  local names = {}
  local f = io.open("/proc/sys/kernel/hostname", "rb")
  local h = f and f:read("*l")
  if f then f:close() end
  if h and h ~= "" then
    names[h:lower()] = true
    names[(h:lower():match("^[^.]+"))] = true
  end
  return names
end

function M.default_hosts(bind)
  local hosts = machine_names()
  for h in pairs(LOCAL_HOSTS) do hosts[h] = true end
  local b = bind:lower()
  if b ~= "0.0.0.0" and b ~= "::" then hosts[b:find(":") and ("[" .. b .. "]") or b] = true end
  return hosts
end

function M._check_host(gw, value)
  local host = host_of(value ~= "" and value or nil)
  local allowed = next(gw.allowed_hosts) and gw.allowed_hosts or gw.default_hosts
  if not host or not allowed[host] then return "Host header " .. value .. " is not allowed" end
  return nil
end

-- An Origin is trusted when configured exactly (gateway.allowed_origins, "*" for any), or
-- when it is our own origin (the page was served from the Host it calls). A page on
-- another localhost port is another origin: it may be hostile, so it is not trusted.
local function configured_origin(gw, origin)
  return gw.allowed_origins[origin:lower()] or gw.allowed_origins["*"]
end

function M._check_origin_value(gw, origin)
  if configured_origin(gw, origin) then return nil end
  return "Origin " .. origin .. " is not allowed"
end

function M.same_origin(origin, host)
  if not host then return false end
  local o, h = origin:lower(), host:lower()
  return o == "http://" .. h or o == "https://" .. h
end

-- CORS headers go only to configured origins: a same-origin page needs none.
local function cors_headers(req)
  local origin = req:header("origin")
  if not origin then return nil end
  if not (M.gw and configured_origin(M.gw, origin)) then return nil end
  return { ["Access-Control-Allow-Origin"] = origin, ["Access-Control-Expose-Headers"] = CORS_EXPOSE, Vary = "Origin" }
end

local function with(h1, h2)
  if not h2 then return h1 end
  local out = {}
  for k, v in pairs(h1 or {}) do out[k] = v end
  for k, v in pairs(h2) do out[k] = v end
  return out
end

local function respond(req, status, body, headers)
  local h = with({ ["Content-Type"] = body and body ~= "" and "application/json" or nil }, headers)
  req:respond(status, with(h, cors_headers(req)), body or "")
end

-- The media type of a Content-Type or one Accept element: "type/subtype", lowercased,
-- without parameters or whitespace.
function M.media_type(v)
  return (v:match("^%s*([^;%s]+)") or ""):lower()
end

-- Does an Accept header list `want` (or a range covering it, with q > 0)?
function M.accept_lists(accept, want)
  local major = want:match("^([^/]+)/")
  for part in accept:gmatch("[^,]+") do
    local mt = M.media_type(part)
    local q = tonumber(part:match(";%s*[qQ]%s*=%s*([%d.]+)") or "1") or 1
    if q > 0 and (mt == want or mt == "*/*" or mt == major .. "/*") then return true end
  end
  return false
end

-- Verdicts per (Accept value, wanted type): the same few values arrive on every request.
local accept_memo, accept_n = {}, 0

local function accepts(req, want)
  local a = req:header("accept")
  if not a then return false end
  local m = accept_memo[want]
  if not m then
    m = {}
    accept_memo[want] = m
  end
  local v = m[a]
  if v == nil then
    v = M.accept_lists(a, want)
    if accept_n > 1024 then accept_memo, accept_n = { [want] = {} }, 0 m = accept_memo[want] end
    m[a] = v
    accept_n = accept_n + 1
  end
  return v
end

-- Finds the session named by Mcp-Session-Id, or answers 400/404 and returns nil.
local function same_identity(a, b)
  return a.project_id == b.project_id and a.user_id == b.user_id
end

local function find_session(gw, req, identity)
  local sid = req:header("mcp-session-id")
  if not sid then
    respond(req, 400, error_body(rpc.SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required"))
    return nil
  end
  local s = gw:find_session(sid)
  if not s or s.closed or s.stateless then
    respond(req, 404, error_body(rpc.SERVER_ERROR, "Session not found"))
    return nil
  end
  -- A session belongs to the identity that created it (no hijacking with another key).
  if identity and s.identity and not same_identity(identity, s.identity) then
    respond(req, 403, error_body(rpc.SERVER_ERROR, "Forbidden: the session belongs to another identity"))
    return nil
  end
  -- Authorization is the current version's: a reload that moved the project takes effect
  -- on its next request even if the reload's own pass missed it.
  if identity then
    gw:follow(s, gw:config_for(identity))
    -- The caller's current validated token (it may have been renewed since initialize).
    s.subject_token = auth.subject_of(identity)
  end
  return s
end

local function check_version_header(session, req)
  local v = req:header("mcp-protocol-version")
  if not v then return true end
  if not version.supported(v) then
    respond(req, 400, error_body(rpc.SERVER_ERROR, "Bad Request: unsupported MCP-Protocol-Version: " .. v,
      { supported = version.SUPPORTED }))
    return false
  end
  -- A supported version that differs from the negotiated one is accepted, as the reference
  -- SDK does: the official conformance suite sends 2025-03-26 on 2025-11-25 sessions.
  return true
end

local function handle_initialize(gw, req, msg, identity)
  local peer = req:peer_address()
  local key = gw.identity_key(identity, peer)
  local limit, why = gw:session_refusal(key, peer)
  if limit then
    -- One tenant's sessions never lock out the others: 429 for a tenant's own limit,
    -- 503 when the gateway as a whole is full.
    log.warn(("refusing initialize from %s: %s"):format(peer, why))
    local e = limits.refused(limit, why)
    return respond(req, limit == "sessions" and 503 or 429, error_body(e.code, e.message, e.data),
      { ["Retry-After"] = "30" })
  end
  local sid = smg.random_hex(16)
  local session = Session.new(gw, "http", sid, { identity = identity, config_id = gw:config_for(identity),
    identity_key = key, peer = peer })
  session.subject_token = auth.subject_of(identity)
  local stream = streams.post(req, with({ ["Mcp-Session-Id"] = sid }, cors_headers(req)))
  smg.spawn(function()
    local call = Call.new(msg.id, "initialize", session, stream, nil, req:header("traceparent"))
    local res, err = gw:dispatch(session, call, msg.params or {})
    if res then
      gw:add_session(session)
      stream:reply(rpc.reply(msg.id, res))
    else
      stream.headers = cors_headers(req)
      stream:reply(rpc.error_of(msg.id, err))
      session:close("initialize failed")
    end
  end)
end

-- A 2026-07-28 request: validated against its headers before anything else, then served
-- by a session of its own that lives as long as the request (subscriptions/listen: as
-- long as its stream). Errors get the revision's HTTP statuses.
local listening = setmetatable({}, { __mode = "k" }) -- request -> its listen session
-- request -> its (other) 2026 request's session, while it is being served: the entry goes
-- when the response stream ends, so the table holds what is in flight, not every request
-- since the last collection (weak only as a safety net).
local serving = setmetatable({}, { __mode = "kv" })
local function served(stream) serving[stream.req] = nil end

local function handle_modern(gw, req, msg, kind, identity)
  if kind ~= "request" then
    -- Modern notifications (notifications/cancelled is stdio-only): accepted, nothing to do.
    return respond(req, 202, "")
  end
  local pv, caps, info, level, params = modern.check(msg, req)
  if not pv then
    local refused = caps
    log.debug(("modern request refused: %s"):format(refused.message))
    return respond(req, refused.status, rpc.error(msg.id, refused.code, refused.message, refused.data))
  end
  local peer = req:peer_address()
  local key = gw.identity_key(identity, peer)
  local listen = msg.method == "subscriptions/listen"
  if listen then
    local limit, why = gw:session_refusal(key, peer)
    if limit then
      local e = limits.refused(limit, why)
      return respond(req, limit == "sessions" and 503 or 429, rpc.error(msg.id, e.code, e.message, e.data),
        { ["Retry-After"] = "30" })
    end
  end
  local session = Session.new_stateless(gw, identity, gw:config_for(identity), key, peer, auth.subject_of(identity),
    pv, caps, info, level, params)
  local stream = streams.post(req, cors_headers(req), nil, not listen and served or nil, modern.status_of)
  stream.traceparent = req:header("traceparent")
  if listen then
    session:listen(msg.id, type(msg.params) == "table" and msg.params.notifications or nil)
    gw:add_session(session)
    listening[req] = session
    session.get_streams[1] = stream
  else
    serving[req] = session
  end
  session:handle(msg, kind, stream)
end

-- The client went away under a 2026 request: a listen stream's session goes at once;
-- closing another request's response stream cancels that request (upstream too).
function M.request_closed(gw, req)
  local s = listening[req]
  if s then
    listening[req] = nil
    gw:remove_session(s, "listen stream closed")
  end
  s = serving[req]
  if s then
    serving[req] = nil
    if s.call then s.call:cancel("the client closed the response stream") end
  end
end

local function handle_post(gw, req, identity)
  if not accepts(req, "application/json") or not accepts(req, "text/event-stream") then
    return respond(req, 406, error_body(rpc.SERVER_ERROR,
      "Not Acceptable: Accept must list both application/json and text/event-stream"))
  end
  if M.media_type(req:header("content-type") or "") ~= "application/json" then
    return respond(req, 415, error_body(rpc.SERVER_ERROR, "Unsupported Media Type: Content-Type must be application/json"))
  end
  local messages, kinds, is_batch, nreq = intake.classify(req:json()) -- (the body is never a Lua string)
  if not messages then return respond(req, kinds.status, error_body(kinds.code, kinds.message)) end
  if not is_batch and not req:header("mcp-session-id")
    and modern.is_modern(messages[1], req) then
    return handle_modern(gw, req, messages[1], kinds[1], identity)
  end
  -- initialize starts a session and must come alone.
  if intake.is_initialize(messages, kinds, is_batch) then
    local msg = messages[1]
    if req:header("mcp-session-id") and gw:find_session(req:header("mcp-session-id")) then
      return respond(req, 400, error_body(rpc.INVALID_REQUEST, "Invalid Request: session is already initialized"))
    end
    if not check_version_header(nil, req) then return end
    return handle_initialize(gw, req, msg, identity)
  end
  local session = find_session(gw, req, identity)
  if not session then return end
  if not check_version_header(session, req) then return end
  if is_batch then
    local refused = intake.batch_refusal(session.protocol_version)
    if refused then return respond(req, refused.status, error_body(refused.code, refused.message)) end
  end
  if nreq == 0 then
    for i, m in ipairs(messages) do session:handle(m, kinds[i], nil) end
    return respond(req, 202, "")
  end
  local stream = streams.post(req, cors_headers(req), session)
  if is_batch then stream = streams.batch(stream, nreq) end
  stream.traceparent = req:header("traceparent")
  for i, m in ipairs(messages) do
    session:handle(m, kinds[i], kinds[i] == "request" and stream or nil)
  end
end

local function handle_get(gw, req, identity)
  if not accepts(req, "text/event-stream") then
    return respond(req, 406, error_body(rpc.SERVER_ERROR, "Not Acceptable: Accept must include text/event-stream"))
  end
  local session = find_session(gw, req, identity)
  if not session then return end
  if not check_version_header(session, req) then return end
  session:touch()
  local last = req:header("last-event-id")
  if last then
    local resumed = streams.resume(session, req, last, cors_headers(req))
    if resumed then
      if resumed.kind == "get" then session.get_streams[#session.get_streams + 1] = resumed end
      return
    end
    -- Unknown or evicted id: nothing to replay; a fresh stream is all we can offer.
  end
  local s = streams.get(req, cors_headers(req), session)
  session.get_streams[#session.get_streams + 1] = s
end

local function handle_delete(gw, req, identity)
  local session = find_session(gw, req, identity)
  if not session then return end
  if not check_version_header(session, req) then return end
  gw:remove_session(session, "deleted by client")
  respond(req, 200, "")
end

-- OAuth 2.0 Protected Resource Metadata (RFC 9728), when the auth provider has it, at this
-- path or with the resource's path appended.
local RESOURCE_METADATA = "/.well-known/oauth-protected-resource"
local function serve_resource_metadata(gw, req)
  local p = gw.plugins.auth
  if not (p and p.resource_metadata) then return respond(req, 404, error_body(rpc.SERVER_ERROR, "Not Found")) end
  local ok, doc = pcall(p.resource_metadata, p.config, { host = req:header("host"), path = gw.path })
  if not ok or type(doc) ~= "table" then
    log.error("auth plugin resource_metadata failed: " .. tostring(doc))
    return respond(req, 500, error_body(rpc.INTERNAL_ERROR, "Internal error"))
  end
  return req:respond(200, { ["Content-Type"] = "application/json", ["Cache-Control"] = "max-age=300" }, json.encode(doc))
end

local function on_request(gw, req)
  local path = req:path()
  local method = req:method()
  if path == "/health" or path == "/healthz" then
    local doc = gw:health()
    return req:respond(doc.status == "down" and 503 or 200, { ["Content-Type"] = "application/json" }, json.encode(doc))
  end
  if path == gw.cfg.gateway.metrics_path and method == "GET" then
    if M.check_origin(gw, req) then return respond(req, 403, error_body(rpc.SERVER_ERROR, "Forbidden")) end
    return req:respond(200, { ["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8" }, metrics.render())
  end
  if path:sub(1, #RESOURCE_METADATA) == RESOURCE_METADATA and method == "GET" then
    return serve_resource_metadata(gw, req)
  end
  if path ~= gw.path and path ~= gw.path .. "/" then
    return respond(req, 404, error_body(rpc.SERVER_ERROR, "Not Found"))
  end
  local why = M.check_origin(gw, req)
  if why then
    log.warn("refused request from " .. req:peer() .. ": " .. why)
    return respond(req, 403, error_body(rpc.SERVER_ERROR, "Forbidden: " .. why))
  end
  if gw.draining and method ~= "DELETE" then
    return respond(req, 503, error_body(rpc.SERVER_ERROR, "Server is shutting down"), { Connection = "close" })
  end
  if method == "OPTIONS" then -- CORS preflight: browsers send no credentials here
    return req:respond(204, with({ ["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS",
      ["Access-Control-Allow-Headers"] = CORS_ALLOW, ["Access-Control-Max-Age"] = "86400" }, cors_headers(req)), "")
  end
  if method ~= "POST" and method ~= "GET" and method ~= "DELETE" then
    return respond(req, 405, error_body(rpc.SERVER_ERROR, "Method Not Allowed"), { Allow = "GET, POST, DELETE, OPTIONS" })
  end
  if not gw.plugins.auth_enabled then return M.dispatch(gw, req, method, nil) end
  local key = auth.cache_key(req)
  local identity = auth.cached(gw, key)
  if identity then return M.dispatch(gw, req, method, identity) end
  smg.spawn(M.authenticate_then_dispatch, gw, req, method, key)
end

-- Only requests that passed authentication (or every one, without auth) get here: from
-- now on their connection is out of the untrusted-connection limits.
function M.dispatch(gw, req, method, identity)
  req:trust()
  if method == "POST" then return handle_post(gw, req, identity) end
  -- 2026-07-28 has neither a GET stream nor sessions to delete.
  local v = req:header("mcp-protocol-version")
  if v and version.modern(v) and not req:header("mcp-session-id") then
    return respond(req, 405, error_body(rpc.SERVER_ERROR, "Method Not Allowed: " .. v .. " serves POST only"),
      { Allow = "POST" })
  end
  if method == "GET" then return handle_get(gw, req, identity) end
  return handle_delete(gw, req, identity)
end

function M.authenticate_then_dispatch(gw, req, method, key)
  local identity, status, why, challenge = auth.authenticate(gw, auth.credentials(req), key)
  if not req:alive() then return end
  if not identity then
    log.warn(("refused request from %s: %s"):format(req:peer(), why))
    return respond(req, status, error_body(rpc.SERVER_ERROR, "Unauthorized: " .. why),
      (status == 401 or status == 403) and { ["WWW-Authenticate"] = challenge } or nil)
  end
  local ok, e = xpcall(M.dispatch, debug.traceback, gw, req, method, identity)
  if not ok then
    log.error("http handler: " .. tostring(e))
    if req:alive() then respond(req, 500, error_body(rpc.INTERNAL_ERROR, "Internal error")) end
  end
end

function M.listen(gw)
  local g = gw.cfg.gateway
  local lim = g.limits
  M.gw = gw
  gw.loopback_only = is_loopback_bind(g.host)
  gw.default_hosts = M.default_hosts(g.host)
  if not gw.loopback_only and not gw.plugins.auth_enabled and not gw.insecure then
    return nil, ("refusing to serve %s without authentication: configure plugins.auth.provider, bind 127.0.0.1, "
      .. "or pass --insecure to accept that anyone who reaches this address can use every server"):format(g.host)
  end
  local server, err = core.http_listen(g.host, g.port, {
    max_header_bytes = lim.max_header_bytes,
    max_body_bytes = lim.max_body_bytes,
    max_connections = lim.max_connections,
    max_untrusted_per_peer = lim.max_untrusted_connections_per_peer,
    reserved_connections = lim.reserved_connections,
    header_timeout_ms = lim.header_timeout * 1000,
    idle_timeout_ms = lim.idle_timeout * 1000,
    request_timeout_ms = lim.request_timeout * 1000,
  }, function(req)
    local ok, e = xpcall(on_request, debug.traceback, gw, req)
    if not ok then
      log.error("http handler: " .. tostring(e))
      if req:alive() then pcall(respond, req, 500, error_body(rpc.INTERNAL_ERROR, "Internal error")) end
    end
  end, function(req)
    -- The client went away under an unfinished request; its streams notice on next write,
    -- a listen stream's session is dropped now.
    M.request_closed(gw, req)
  end)
  if not server then return nil, err end
  M.connection_metrics(server)
  return server
end

-- What the server's connection limits did, read from C when /metrics is scraped.
function M.connection_metrics(server)
  local function stats() return server:stats() end
  metrics.counter("smg_limit_refusals_total", nil, { "limit" }, function(m)
    local st = stats()
    m:set(st.refused_per_peer, "max_untrusted_connections_per_peer")
    m:set(st.refused_full, "max_connections")
  end)
  metrics.gauge("smg_untrusted_connections", "Open connections on which no request has passed authentication", {},
    function(m) m:set(stats().untrusted) end)
  metrics.counter("smg_connections_displaced_total",
    "Idle or slow untrusted connections closed to admit a new one at a limit", {},
    function(m) m:set(stats().displaced) end)
  metrics.counter("smg_header_timeouts_total",
    "Untrusted connections closed by a timeout (header_timeout, or request_timeout for a slow body)", {},
    function(m) m:set(stats().header_timeouts) end)
end

return M

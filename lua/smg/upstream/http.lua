-- Streamable HTTP upstream transport (libcurl multi on the loop): every message is its own
-- POST; a JSON or SSE reply is parsed as it streams, and each message on a request's SSE
-- stream is attributed to that request. After initialize a GET stream carries what the
-- server sends unprompted. The upstream session id and protocol version ride on every
-- request; a 404 means the session expired, and the client re-initializes.
local smg = require "smg"
local core = require "smg.core"
local sse = require "smg.sse"
local log = smg.log
local param_headers = require "smg.mcp.param_headers"
local MODERN = require("smg.mcp.modern").VERSION

local Http = {}
Http.__index = Http

function Http.new(client)
  return setmetatable({ client = client, session_id = nil, version = nil, calls = {}, get = nil,
    open_ = false }, Http)
end

function Http:open()
  self.open_ = true
  self.session_id = nil
  self.get_last_id = nil -- event ids belong to one upstream session
  return true
end

-- A 2026-07-28 request (entry.modern) carries no session, its own version, and the
-- standard headers the server checks against the body (Mcp-Method, Mcp-Name).
local function headers(self, extra, entry)
  local h = {}
  for k, v in pairs(self.client.spec.config.headers or {}) do
    if not (self.bearer and k:lower() == "authorization") then h[#h + 1] = k .. ": " .. v end
  end
  -- The gateway's own OAuth token for this server (upstream/oauth.lua), never a client's.
  if self.bearer then h[#h + 1] = "Authorization: Bearer " .. self.bearer end
  h[#h + 1] = "Accept: application/json, text/event-stream"
  if entry and entry.modern then
    h[#h + 1] = "MCP-Protocol-Version: " .. MODERN
    h[#h + 1] = "Mcp-Method: " .. entry.method
    if type(entry.name) == "string" then h[#h + 1] = "Mcp-Name: " .. param_headers.encode(entry.name) end
    for _, line in ipairs(entry.param_headers or {}) do h[#h + 1] = line end
  else
    if self.session_id then h[#h + 1] = "Mcp-Session-Id: " .. self.session_id end
    if self.version then h[#h + 1] = "MCP-Protocol-Version: " .. self.version end
  end
  for _, x in ipairs(extra or {}) do h[#h + 1] = x end
  return h
end

-- W3C trace context for the upstream: the client call's trace, our span as the parent.
local function traceparent(entry)
  local call = entry and entry.opts.call
  if not (call and call.traceparent) then return nil end
  return "traceparent: " .. call:traceparent()
end

-- POSTs one message; entry is the pending request it carries (nil for notifications and
-- responses). Returns true at once; the reply arrives through callbacks.
function Http:send(line, entry)
  if not self.open_ then return nil, "not connected" end
  local c = self.client
  local status, ctype, is_sse, parser, chunks, challenge = 0, "", false, nil, {}, nil
  local key = {}
  local listen = entry and entry.listen
  local call, err
  call, err = core.http_request({
    method = "POST", url = c.spec.config.url, body = line,
    headers = headers(self, { "Content-Type: application/json", traceparent(entry) }, entry),
    -- A listen stream lives as long as the process: its events are bounded one by one.
    timeout_ms = 0, max_response = not listen and c.limits.max_message_bytes or nil,
    stream = entry and entry.stream or nil,
  }, function(st, raw)
    status = st
    local h = smg.http.parse_headers(raw)
    ctype = (h["content-type"] or ""):lower()
    is_sse = ctype:find("text/event-stream", 1, true) ~= nil
    if status == 401 or status == 403 then challenge = h["www-authenticate"] end
    if entry and entry.method == "initialize" and h["mcp-session-id"] then self.session_id = h["mcp-session-id"] end
    if is_sse and status == 200 then
      parser = sse.parser(function(data) c:on_payload(data, entry) end, c.limits.max_message_bytes)
    end
  end, function(chunk)
    if parser then
      local ok, perr = parser:feed(chunk)
      if not ok then
        -- An event past the limit: the stream is dropped (its request fails; a listen
        -- stream is opened again).
        log.warn(("upstream %s: %s"):format(c.name, perr))
        self.calls[key] = nil
        call:cancel()
        c:fail_request(entry, ("upstream %s: %s"):format(c.name, perr))
        if listen then entry.on_end("too large") end
      end
    else
      chunks[#chunks + 1] = chunk
    end
  end, function(e)
    self.calls[key] = nil
    if listen then return entry.on_end(e or status) end
    if e then return c:fail_request(entry, ("upstream %s: %s"):format(c.name, e)) end
    if status == 404 and self.session_id and not (entry and entry.method == "initialize") then
      log.warn(("upstream %s: session expired, re-initializing"):format(c.name))
      self.session_id = nil
      c:_down("session expired")
      return
    end
    if not parser then
      local body = table.concat(chunks)
      -- (A 401/403 body is the authorization server's error, not a JSON-RPC message.)
      if ctype:find("application/json", 1, true) and body ~= "" and status ~= 401 and status ~= 403 then
        c:on_payload(body, entry)
      end
    end
    if parser and entry and parser.last_id and c.pending[entry.id] then
      -- The server ended the response stream before the answer (SEP-1699 polling): it is
      -- resumed from its last event id, after the retry the stream asked for.
      return self:_resume(entry, parser.last_id, parser.retry, 1)
    end
    -- A request that got no answer at all (an HTTP error without a JSON-RPC body, or a
    -- stream that ended early).
    c:fail_request(entry, ("upstream %s answered HTTP %d without a response"):format(c.name, status), status,
      challenge)
  end)
  if not call then return nil, err end
  self.calls[key] = call
  if entry then entry.transfer = key end
  return true
end

-- Stops the transfer that carries `entry` (timed out or cancelled: on 2026-07-28, closing
-- the response stream is the cancellation; on 2025, it frees the connection).
function Http:abandon(entry)
  local call = entry.transfer and self.calls[entry.transfer]
  if call then
    self.calls[entry.transfer] = nil
    call:cancel()
  end
end

local MAX_RESUMES = 5

-- Resumes the response stream of `entry` with a GET carrying Last-Event-ID, `retry_ms`
-- (the stream's retry field, default 1 s) after it ended; again while events keep coming
-- and the answer does not, at most MAX_RESUMES times.
function Http:_resume(entry, last_id, retry_ms, attempt)
  local c = self.client
  if attempt > MAX_RESUMES then
    return c:fail_request(entry, ("upstream %s: the response stream ended %d times without the answer"):format(c.name,
      MAX_RESUMES))
  end
  local key = {}
  entry.transfer = key
  local t
  -- The server's retry, bounded: digits only, at most 30 s (a malformed one: 1 s).
  local delay = tonumber(retry_ms)
  if not delay or delay ~= delay or delay < 0 then delay = 1000 end
  t = smg.timer(math.min(delay, 30000) / 1000, function()
    t:close()
    if not self.open_ or not c.pending[entry.id] or entry.transfer ~= key then return end
    local parser = sse.parser(function(data) c:on_payload(data, entry) end, c.limits.max_message_bytes)
    local ok_status, call = false, nil
    call = core.http_request({ method = "GET", url = c.spec.config.url, timeout_ms = 0, stream = true,
      headers = headers(self, { "Last-Event-ID: " .. last_id }, nil) },
      function(st) ok_status = st == 200 end,
      function(chunk)
        if ok_status and not parser:feed(chunk) then call:cancel() end
      end,
      function(e)
        self.calls[key] = nil
        if not c.pending[entry.id] then return end
        if ok_status and not e then return self:_resume(entry, parser.last_id or last_id, parser.retry or retry_ms,
          attempt + 1) end
        c:fail_request(entry, ("upstream %s: resuming the response stream failed (%s)"):format(c.name,
          tostring(e or "HTTP error")))
      end)
    if call then self.calls[key] = call end
  end)
end

-- Opens the standalone GET stream for server-initiated messages; reconnects while open.
function Http:_open_get(delay)
  if not self.open_ or self.get then return end
  local c = self.client
  local parser = sse.parser(function(data) c:on_payload(data, nil) end)
  local ok_status = false
  local call
  -- Resume where the last stream stopped, so events sent while we reconnected arrive.
  local extra = self.get_last_id and { "Last-Event-ID: " .. self.get_last_id } or nil
  call = core.http_request({ method = "GET", url = c.spec.config.url, headers = headers(self, extra), timeout_ms = 0,
    stream = true },
    function(st, raw)
      ok_status = st == 200
    end, function(chunk)
      if ok_status then
        parser:feed(chunk)
        if parser.last_id then self.get_last_id = parser.last_id end
      end
    end, function(e)
      if self.get ~= call then return end
      self.get = nil
      if not ok_status then return end -- 405: the server offers no GET stream
      local d = math.min((delay or 0.5) * 2, 30)
      smg.timer(d, function() self:_open_get(d) end)
    end)
  self.get = call
end

function Http:initialized(res)
  if res.protocolVersion == MODERN then return end -- a 2026-only server: no GET stream, no session
  self.version = res.protocolVersion
  self:_open_get(0.25)
end

function Http:close()
  self.open_ = false
  if self.get then
    local g = self.get
    self.get = nil
    g:cancel()
  end
  for k, call in pairs(self.calls) do
    call:cancel()
    self.calls[k] = nil
  end
  if self.session_id then
    -- End the upstream session politely; nobody waits for the answer.
    core.http_request({ method = "DELETE", url = self.client.spec.config.url, headers = headers(self, nil),
      timeout_ms = 2000 }, nil, nil, function() end)
    self.session_id = nil
  end
end

return Http

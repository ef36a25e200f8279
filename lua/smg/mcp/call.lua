-- One client request on its way through the gateway: the record every layer reads and
-- the few that own a field write. Its fields are declared here; writing any other is an
-- error, so a typo or a layer inventing state fails in the tests, not silently.
--
--   id              the client's JSON-RPC id
--   method          the client's method
--   session         the mcp.session it arrived on
--   stream          where its intermediate messages and its response go
--   progress_token  the client's _meta.progressToken, or false
--   cancelled       true once the client cancelled it or its session closed
--   upstream        the upstream client serving it right now (set by the upstream layer)
--   upstream_entry  that client's pending entry, for cancellation
--   server, tool    the server and tool a tools/call went to (telemetry, audit)
--   blocked         the guardrail that blocked it, or false
--   traceparent_in  the W3C traceparent the client sent, or false
--   trace_id, span_id, parent_span_id   this call's trace context, made on first use
--   missing_capability  a client capability the upstream needed and a 2026-07-28 request
--                   did not declare (the call then fails with -32021), or false
--   params          a 2026-07-28 request's params as the client sent them (a parked call's
--                   requestState is bound to them), else false
--   param_decls     a tools/call's x-mcp-header declarations (its upstream's Mcp-Param-*
--                   headers are built from them), or false
--   verdicts        every guardrail verdict on this call ({guardrail, at, allowed,
--                   violations}), collected only while the audit log is on, else false
local core = require "smg.core"

local Call = {}

local FIELDS = {
  id = true, method = true, session = true, stream = true, progress_token = true, cancelled = true,
  upstream = true, upstream_entry = true, server = true, tool = true, blocked = true,
  traceparent_in = true, trace_id = true, span_id = true, parent_span_id = true, verdicts = true,
  missing_capability = true, params = true, param_decls = true,
}

local methods = {}
local mt = {
  __index = methods,
  __newindex = function(t, k, v)
    if not FIELDS[k] then error("call record has no field " .. tostring(k), 2) end
    rawset(t, k, v)
  end,
}

-- id, method, session, stream: the request; opts.progress_token, opts.traceparent.
function Call.new(id, method, session, stream, progress_token, traceparent)
  return setmetatable({
    id = id, method = method, session = session, stream = stream or false,
    progress_token = progress_token == nil and false or progress_token,
    cancelled = false, upstream = false, upstream_entry = false, server = false, tool = false, blocked = false,
    traceparent_in = traceparent or false, trace_id = false, span_id = false, parent_span_id = false,
    verdicts = false, missing_capability = false, params = false, param_decls = false,
  }, mt)
end

function Call.is(x) return getmetatable(x) == mt end

-- Whether the client asked for progress (a token of false/nil means no).
function methods:wants_progress() return self.progress_token ~= false and self.progress_token ~= nil end

-- The upstream layer records where the call is waiting, so a cancellation reaches it.
function methods:waiting_on(upstream, entry)
  self.upstream, self.upstream_entry = upstream, entry
end

-- Cancels the call: it stops waiting, and the upstream serving it is told. Idempotent.
function methods:cancel(reason)
  if self.cancelled then return end
  self.cancelled = true
  if self.upstream then self.upstream:cancel(self.upstream_entry, reason) end
end

-- A traceparent value (version 00) parsed: trace_id, parent span id | nil.
local HEX32 = ("%x"):rep(32)
local HEX16 = ("%x"):rep(16)
local function parse_traceparent(v)
  if type(v) ~= "string" then return nil end
  local trace, span = v:match("^00%-(" .. HEX32 .. ")%-(" .. HEX16 .. ")%-%x%x$")
  if not trace or trace:match("^0+$") or span:match("^0+$") then return nil end
  return trace:lower(), span:lower()
end

-- The call's W3C trace context, made on first use: a client's traceparent is continued,
-- else a new trace starts. Returns trace_id, span_id, parent_span_id (or nil).
function methods:trace()
  if not self.trace_id then
    local t, parent = parse_traceparent(self.traceparent_in)
    self.trace_id = t or core.hex(core.random_bytes(16))
    self.parent_span_id = parent or false
    self.span_id = core.hex(core.random_bytes(8))
  end
  return self.trace_id, self.span_id, self.parent_span_id or nil
end

-- The traceparent header this call sends upstream (our span as the parent).
function methods:traceparent()
  local t, s = self:trace()
  return "00-" .. t .. "-" .. s .. "-01"
end

return Call

-- What the gateway tells its telemetry: the built-in Prometheus metrics (GET /metrics) and
-- the events handed to telemetry providers (plugins/telemetry). Providers' on_event runs
-- synchronously and must not yield (a provider doing I/O queues the event and flushes from
-- its own coroutine, like the bundled otlp one), so a slow collector never slows a call.
-- Trace context is W3C Trace Context: a client's traceparent is continued, else a new
-- trace starts; HTTP upstreams get ours.
local smg = require "smg"
local metrics = require "smg.metrics"
local log = smg.log

local M = {}

local requests = metrics.counter("smg_requests_total", "Client requests handled, by JSON-RPC method and outcome",
  { "method", "status" })
local latency = metrics.histogram("smg_request_duration_seconds", "Client request latency by JSON-RPC method",
  { "method" })
local tool_calls = metrics.counter("smg_tool_calls_total", "Tool calls by server and outcome", { "server", "status" })
local restarts = metrics.counter("smg_upstream_restarts_total", "Upstream servers that went down and were restarted",
  { "server" })

local KNOWN_METHODS = {}
for _, m in ipairs({ "initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
  "resources/read", "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "logging/setLevel",
  "completion/complete" }) do KNOWN_METHODS[m] = true end

-- Gauges read when /metrics is scraped.
function M.register_gauges(gw)
  metrics.gauge("smg_sessions", "Open client sessions", {}, function(m) m:set(gw.tenants:count()) end)
  metrics.gauge("smg_upstreams_pending_calls", "Calls waiting on an upstream", { "server" }, function(m)
    for _, s in ipairs(m.list) do s.value = 0 end -- a server that left the config reads 0
    for _, up in pairs(gw.pool.shared) do
      local s = m.series[up.name]
      m:set((s and s.value or 0) + (up.npending or 0), up.name)
    end
  end)
  metrics.gauge("smg_upstream_up", "1 when the shared upstream is ready, else 0", { "server" }, function(m)
    for _, s in ipairs(m.list) do s.value = 0 end
    for _, up in pairs(gw.pool.shared) do
      if up.state == "ready" then m:set(1, up.name) elseif not m.series[up.name] then m:set(0, up.name) end
    end
  end)
  metrics.gauge("smg_config_generation", "Config versions loaded since start (1 + successful reloads)", {},
    function(m) m:set(gw.generation) end)
end

local function emit(gw, ev)
  for _, p in ipairs(gw.plugins.telemetry) do
    if p.on_event then
      local ok, err = pcall(p.on_event, ev, p.config)
      if not ok then log.error(("telemetry %s: on_event failed: %s"):format(p.name, tostring(err))) end
    end
  end
end
M.emit = emit

function M.request_done(gw, session, method, call, elapsed, err)
  local status = err and "error" or (call and call.blocked and "blocked") or "ok"
  local label = KNOWN_METHODS[method] and method or "other"
  requests:inc(1, label, status)
  latency:observe(elapsed, label)
  if call and call.server then tool_calls:inc(1, call.server, status) end -- false when not a tool call
  if not gw.has_telemetry then return end
  local id = session.identity or {}
  local ev = {
    event = "request", timestamp = smg.now(), level = err and "error" or "info",
    method = method, status = status, duration_ms = elapsed * 1000,
    gateway = gw.cfg.gateway.server_name, session_id = session.id,
    project_id = id.project_id, project_name = id.project_name, user_id = id.user_id, email = id.email,
    mcp_config_id = session.config_id or gw.default_config_id, request_id = call and call.id,
    server_name = call and call.server or nil, tool_name = call and call.tool or nil,
    guardrail = call and call.blocked or nil,
    error_code = err and err.code, error = err and err.message,
  }
  if call then
    ev.trace_id, ev.span_id, ev.parent_span_id = call:trace()
    ev.start_time = smg.now() - elapsed
  end
  emit(gw, ev)
end

function M.upstream_down(gw, up, why)
  restarts:inc(1, up.name)
  if gw.has_telemetry then
    emit(gw, { event = "upstream_down", timestamp = smg.now(), level = "warn", server_name = up.name,
      reason = tostring(why), gateway = gw.cfg.gateway.server_name })
  end
end

function M.reloaded(gw, ok, detail)
  if gw.has_telemetry then
    emit(gw, { event = "reload", timestamp = smg.now(), level = ok and "info" or "error", ok = ok,
      generation = gw.generation, error = not ok and detail or nil, gateway = gw.cfg.gateway.server_name })
  end
end

return M

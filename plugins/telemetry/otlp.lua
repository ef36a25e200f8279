-- OpenTelemetry export over OTLP/HTTP with JSON encoding: one SERVER span per client
-- request (W3C trace context continued from the client and passed on to HTTP upstreams by
-- the gateway) and the gateway's metrics. Spans are queued by on_event, which never
-- blocks or yields, and shipped in batches from a coroutine every `interval` seconds or
-- when `batch_size` are waiting; one export is in flight at a time, each with a timeout,
-- and a full queue drops (and counts) spans, so a slow or dead collector never slows calls.
local smg = require "smg"
local json = smg.json

local M = {
  name = "otlp",
  kind = "telemetry",
  version = "1.0.0",
  priority = 100,
  description = "OTLP/HTTP JSON traces and metrics",
  schema = {
    endpoint = { type = "string", default = "http://127.0.0.1:4318", pattern = "^https?://",
      description = "collector base URL; /v1/traces and /v1/metrics are appended" },
    headers = { type = "object", values = { type = "string" }, default = {} },
    service_name = { type = "string", default = "smg" },
    interval = { type = "number", default = 1, min = 0.01 },
    metrics_interval = { type = "number", default = 10, min = 0, description = "0: no metrics export" },
    batch_size = { type = "integer", default = 512, min = 1 },
    max_queue = { type = "integer", default = 8192, min = 1 },
    timeout = { type = "number", default = 5, min = 0.1 },
  },
}

local queue, timer, metrics_timer, exporting, config_, closed = {}, nil, nil, false, nil, false
local dropped = smg.metrics.counter("smg_otlp_dropped_spans_total", "Spans dropped because the export queue was full")
local failures = smg.metrics.counter("smg_otlp_export_failures_total", "OTLP exports that failed", { "signal" })

local function attr(k, v)
  local t = type(v)
  if t == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return { key = k, value = { intValue = tostring(v) } } end
    return { key = k, value = { doubleValue = v } }
  elseif t == "boolean" then
    return { key = k, value = { boolValue = v } }
  end
  return { key = k, value = { stringValue = tostring(v) } }
end

local function nanos(seconds) return ("%.0f"):format(seconds * 1e9) end

local function resource(config)
  return { attributes = json.array({ attr("service.name", config.service_name), attr("service.version", smg.version) }) }
end

local SPAN_ATTRS = { "session_id", "project_id", "user_id", "mcp_config_id", "server_name", "tool_name", "guardrail",
  "error_code" }

local function span_of(ev)
  local attrs = json.array({ attr("rpc.system", "jsonrpc"), attr("rpc.method", ev.method), attr("mcp.status", ev.status) })
  for _, k in ipairs(SPAN_ATTRS) do
    if ev[k] ~= nil then attrs[#attrs + 1] = attr("smg." .. k, ev[k]) end
  end
  local name = ev.method
  if ev.tool_name then name = name .. " " .. tostring(ev.server_name) .. "/" .. tostring(ev.tool_name) end
  return {
    traceId = ev.trace_id, spanId = ev.span_id, parentSpanId = ev.parent_span_id, name = name, kind = 2,
    startTimeUnixNano = nanos(ev.start_time), endTimeUnixNano = nanos(ev.start_time + ev.duration_ms / 1000),
    attributes = attrs,
    status = ev.status == "error" and { code = 2, message = ev.error } or { code = 1 },
  }
end

local function post(config, path, doc, signal)
  local headers = { ["Content-Type"] = "application/json" }
  for k, v in pairs(config.headers) do headers[k] = v end
  local resp, err = smg.http.request({ method = "POST", url = config.endpoint:gsub("/+$", "") .. path,
    headers = headers, body = json.encode(doc), timeout = config.timeout })
  if not resp or resp.status < 200 or resp.status >= 300 then
    failures:inc(1, signal)
    smg.log.warn(("otlp: %s export failed: %s"):format(signal, resp and ("HTTP " .. resp.status) or tostring(err)))
    return false
  end
  return true
end

local function export_spans(config)
  if exporting or #queue == 0 then return end
  exporting = true
  smg.spawn(function()
    while #queue > 0 and not closed do
      local n = math.min(#queue, config.batch_size)
      local spans = json.array({})
      for i = 1, n do spans[i] = queue[i] end
      local rest = {}
      for i = n + 1, #queue do rest[#rest + 1] = queue[i] end
      queue = rest
      post(config, "/v1/traces", { resourceSpans = json.array({ { resource = resource(config),
        scopeSpans = json.array({ { scope = { name = "smg", version = smg.version }, spans = spans } }) } }) }, "traces")
    end
    exporting = false
  end)
end

-- The metrics registry as OTLP: counters as cumulative monotonic sums, gauges as gauges,
-- histograms as explicit-bucket histograms.
local START = smg.now()
local function metrics_doc(config)
  local now = nanos(smg.now())
  local start = nanos(START)
  local out = json.array({})
  for _, m in ipairs(require("smg.metrics").snapshot()) do
    local points = json.array({})
    for _, s in ipairs(m.list) do
      local attrs = json.array({})
      for i, l in ipairs(m.labels) do attrs[i] = attr(l, s.labels[i]) end
      local p = { attributes = attrs, startTimeUnixNano = start, timeUnixNano = now }
      if m.kind == "histogram" then
        local counts = json.array({})
        for i = 1, #m.buckets do counts[i] = tostring(s.counts[i]) end
        local over = s.count
        for i = 1, #m.buckets do over = over - s.counts[i] end
        counts[#counts + 1] = tostring(over)
        p.bucketCounts, p.explicitBounds, p.count, p.sum = counts, json.array(m.buckets), tostring(s.count), s.sum
      else
        p.asDouble = s.value
      end
      points[#points + 1] = p
    end
    local metric = { name = m.name, description = m.help }
    if m.kind == "counter" then
      metric.sum = { dataPoints = points, aggregationTemporality = 2, isMonotonic = true }
    elseif m.kind == "gauge" then
      metric.gauge = { dataPoints = points }
    else
      metric.histogram = { dataPoints = points, aggregationTemporality = 2 }
    end
    out[#out + 1] = metric
  end
  return { resourceMetrics = json.array({ { resource = resource(config),
    scopeMetrics = json.array({ { scope = { name = "smg", version = smg.version }, metrics = out } }) } }) }
end

local function start_timers(config)
  timer = smg.timer(config.interval, function() export_spans(config) end, config.interval)
  if config.metrics_interval > 0 then
    local busy = false
    metrics_timer = smg.timer(config.metrics_interval, function()
      if busy then return end
      busy = true
      smg.spawn(function()
        post(config, "/v1/metrics", metrics_doc(config), "metrics")
        busy = false
      end)
    end, config.metrics_interval)
  end
end

function M.on_event(ev, config)
  if closed then return end
  if not timer then
    config_ = config
    start_timers(config)
  end
  if ev.event ~= "request" or not ev.trace_id then return end
  if #queue >= config.max_queue then
    dropped:inc(1)
    return
  end
  queue[#queue + 1] = span_of(ev)
  if #queue >= config.batch_size then export_spans(config) end
end

-- Stops the timers and ships what is queued (the gateway waits a little for it).
function M.shutdown()
  if timer then timer:close() end
  if metrics_timer then metrics_timer:close() end
  timer, metrics_timer = nil, nil
  if config_ then
    export_spans(config_)
    local deadline = smg.monotime() + math.min(config_.timeout, 2)
    while exporting and smg.monotime() < deadline do smg.sleep(0.02) end
  end
  closed = true -- an export still hanging is cancelled by the gateway; queue no more
end

return M

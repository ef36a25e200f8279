-- The stdout and otlp telemetry providers: what they write, and that on_event never yields.
local plugins = require "smg.plugins"
local core = require "smg.core"
local smg = require "smg"

local function request_event(extra)
  local ev = { event = "request", timestamp = smg.now(), method = "tools/call", status = "ok", duration_ms = 12.5,
    start_time = smg.now() - 0.0125, server_name = "s", tool_name = "echo", project_id = "p1",
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", span_id = "00f067aa0ba902b7", api_key = "sk-abcdefghijklmnop" }
  for k, v in pairs(extra or {}) do ev[k] = v end
  return ev
end

describe("stdout telemetry", function()
  it("writes one masked JSON line per event, filtered by name", function()
    local path = os.tmpname()
    local p = assert(plugins.load("telemetry", "stdout", { path = path, flush_interval = 0, events = { "request" } }))
    p.on_event(request_event(), p.config)
    p.on_event({ event = "reload", ok = true }, p.config)
    p.shutdown()
    local f = assert(io.open(path))
    local lines = {}
    for l in f:lines() do lines[#lines + 1] = smg.json.decode(l) end
    f:close()
    os.remove(path)
    assert.are.equal(1, #lines)
    assert.are.equal("echo", lines[1].tool_name)
    assert.are.equal("****mnop", lines[1].api_key)
  end)
end)

describe("otlp telemetry", function()
  local posts = {}
  local server = assert(core.http_listen("127.0.0.1", 0, {}, function(req)
    posts[#posts + 1] = { path = req:path(), doc = smg.json.decode(req:body()), auth = req:header("x-token") }
    req:respond(200, { ["Content-Type"] = "application/json" }, "{}")
  end, function() end))
  teardown(function() server:close() end)

  it("batches request events into OTLP/HTTP JSON spans and exports metrics", function()
    local p = assert(plugins.load("telemetry", "otlp", { endpoint = "http://127.0.0.1:" .. server:port(),
      interval = 0.02, metrics_interval = 0.05, headers = { ["X-Token"] = "t" }, service_name = "spec" }))
    local co = coroutine.running()
    p.on_event(request_event(), p.config)
    p.on_event(request_event({ status = "error", error = "boom", span_id = "1111111111111111" }), p.config)
    assert.are.equal(co, coroutine.running(), "on_event did not yield")
    local deadline = smg.monotime() + 2
    local traces, metrics
    while smg.monotime() < deadline and not (traces and metrics) do
      smg.sleep(0.02)
      for _, q in ipairs(posts) do
        if q.path == "/v1/traces" then traces = q end
        if q.path == "/v1/metrics" then metrics = q end
      end
    end
    p.shutdown()
    assert.is_truthy(traces)
    assert.are.equal("t", traces.auth)
    local rs = traces.doc.resourceSpans[1]
    assert.are.same({ key = "service.name", value = { stringValue = "spec" } }, rs.resource.attributes[1])
    local spans = rs.scopeSpans[1].spans
    assert.are.equal(2, #spans)
    assert.are.equal("tools/call s/echo", spans[1].name)
    assert.are.equal("4bf92f3577b34da6a3ce929d0e0e4736", spans[1].traceId)
    assert.are.same({ code = 1 }, spans[1].status)
    assert.are.same({ code = 2, message = "boom" }, spans[2].status)
    assert.is_truthy(metrics)
    assert.is_truthy(metrics.doc.resourceMetrics[1].scopeMetrics[1].metrics[1].name)
  end)
end)

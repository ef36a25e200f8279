-- The metrics registry behind smg.metrics and GET /metrics: counters, gauges and
-- histograms with labels, rendered in the Prometheus text format (0.0.4). Registering a
-- name again returns the same metric (a reloaded plugin keeps its series), unless the type
-- or labels differ, which is an error. Updating a series is a table lookup and an add.
local M = {}

local registry, order = {}, {}

local DEFAULT_BUCKETS = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

local Metric = {}
Metric.__index = Metric

local function new_series(m, ...)
  local values = { ... }
  for i = 1, m.nlabels do values[i] = tostring(values[i] == nil and "" or values[i]) end
  local s = { labels = values, value = 0 }
  if m.buckets then
    s.counts, s.sum, s.count = {}, 0, 0
    for i = 1, #m.buckets do s.counts[i] = 0 end
  end
  m.list[#m.list + 1] = s
  return s
end

-- The series for these label values. Up to two labels it is a nested table lookup with
-- no string built per update (this runs on every request); more labels join a key.
local function series(m, a, b, ...)
  local n = m.nlabels
  if n == 0 then
    local s = m.series[1]
    if not s then
      s = new_series(m)
      m.series[1] = s
    end
    return s
  end
  if a == nil then a = "" end
  if n == 1 then
    local s = m.series[a]
    if not s then
      s = new_series(m, a)
      m.series[a] = s
    end
    return s
  end
  if n == 2 then
    if b == nil then b = "" end
    local inner = m.series[a]
    if not inner then
      inner = {}
      m.series[a] = inner
    end
    local s = inner[b]
    if not s then
      s = new_series(m, a, b)
      inner[b] = s
    end
    return s
  end
  local parts = { tostring(a), tostring(b) }
  for i, v in ipairs({ ... }) do parts[2 + i] = tostring(v) end
  local k = table.concat(parts, "\0", 1, n)
  local s = m.series[k]
  if not s then
    s = new_series(m, a, b, ...)
    m.series[k] = s
  end
  return s
end

-- counter:inc(n, label values...)
function Metric:inc(n, ...)
  local s = series(self, ...)
  s.value = s.value + (n or 1)
end

-- gauge:set(v, label values...)
function Metric:set(v, ...)
  series(self, ...).value = v
end

-- histogram:observe(v, label values...)
function Metric:observe(v, ...)
  local s = series(self, ...)
  local b = self.buckets
  for i = 1, #b do
    if v <= b[i] then
      s.counts[i] = s.counts[i] + 1
      break
    end
  end
  s.sum = s.sum + v
  s.count = s.count + 1
end

local function valid_name(name)
  return type(name) == "string" and name:match("^[%a_:][%w_:]*$") ~= nil
end

local function register(kind, name, help, labels, extra)
  if not valid_name(name) then error("invalid metric name " .. tostring(name), 3) end
  labels = labels or {}
  for _, l in ipairs(labels) do
    if not valid_name(l) or l:find(":") or l == "le" then error("invalid label name " .. tostring(l), 3) end
  end
  local m = registry[name]
  if m then
    if m.kind ~= kind or m.nlabels ~= #labels then
      error(("metric %s is already registered as a %s with %d label(s)"):format(name, m.kind, m.nlabels), 3)
    end
    if extra and extra.collect then m.collect = extra.collect end
    return m
  end
  m = setmetatable({ kind = kind, name = name, help = help or name, labels = labels, nlabels = #labels,
    series = {}, list = {} }, Metric)
  for k, v in pairs(extra or {}) do m[k] = v end
  registry[name] = m
  order[#order + 1] = name
  return m
end

-- collect (optional): called before each render to set current values, for counts kept
-- elsewhere (the C HTTP server's); it may set series of its own beside ones made by inc.
function M.counter(name, help, labels, collect)
  return register("counter", name, help, labels, collect and { collect = collect } or nil)
end

function M.gauge(name, help, labels, collect) return register("gauge", name, help, labels, { collect = collect }) end

function M.histogram(name, help, labels, buckets)
  return register("histogram", name, help, labels, { buckets = buckets or DEFAULT_BUCKETS })
end

function M.get(name) return registry[name] end

local function escape(v)
  return (v:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function label_text(m, s, extra)
  local parts = {}
  for i, l in ipairs(m.labels) do parts[#parts + 1] = l .. '="' .. escape(s.labels[i]) .. '"' end
  if extra then parts[#parts + 1] = extra end
  if #parts == 0 then return "" end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function num(v)
  if v == math.huge then return "+Inf" end
  if v ~= v then return "NaN" end
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(v) end
  local short = ("%.15g"):format(v)
  if tonumber(short) == v then return short end
  return ("%.17g"):format(v)
end

-- Every metric, gauges freshly collected: { {name, kind, help, labels, list = {series}} }.
function M.snapshot()
  local list = {}
  for _, name in ipairs(order) do
    local m = registry[name]
    if m.collect then pcall(m.collect, m) end
    list[#list + 1] = m
  end
  return list
end

-- The whole registry in the Prometheus text exposition format.
function M.render()
  local out = {}
  for _, m in ipairs(M.snapshot()) do
    local name = m.name
    out[#out + 1] = ("# HELP %s %s"):format(name, (m.help:gsub("\\", "\\\\"):gsub("\n", "\\n")))
    out[#out + 1] = ("# TYPE %s %s"):format(name, m.kind)
    for _, s in ipairs(m.list) do
      if m.kind == "histogram" then
        local cum = 0
        for i, le in ipairs(m.buckets) do
          cum = cum + s.counts[i]
          out[#out + 1] = ("%s_bucket%s %s"):format(name, label_text(m, s, 'le="' .. num(le) .. '"'), num(cum))
        end
        out[#out + 1] = ("%s_bucket%s %s"):format(name, label_text(m, s, 'le="+Inf"'), num(s.count))
        out[#out + 1] = ("%s_sum%s %s"):format(name, label_text(m, s), num(s.sum))
        out[#out + 1] = ("%s_count%s %s"):format(name, label_text(m, s), num(s.count))
      else
        out[#out + 1] = ("%s%s %s"):format(name, label_text(m, s), num(s.value))
      end
    end
  end
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

-- Operations timed against a timeout budget (the timeout manager's categories: "cache",
-- "connectivity", "auth", ...). Lower layers report here; the gateway's timeout manager
-- (gateway/budgets.lua) sets the sink. Without one (a CLI command), nothing is recorded.
M.operation_sink = nil
function M.operation(category, elapsed, budget, timed_out)
  local sink = M.operation_sink
  if sink then sink(category, elapsed, budget, timed_out) end
end

return M

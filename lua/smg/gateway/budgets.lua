-- Timeout budgets per operation category (the seed's timeout manager): which budget an
-- operation runs under, and what each category used. Categories are the seed's: default,
-- guardrail, auth, tool_execution, discovery, cache, connectivity. Every recorded
-- operation is placed on the seed's escalation ladder (escalation_policies): past
-- warn_threshold of its budget a warning, past timeout_threshold a timeout, past
-- fail_threshold a failure (an operation that overran its budget without being cut, such
-- as CPU-bound guardrail work). Counts, escalations and latency per category feed
-- get_timeout_metrics and /metrics.
local smg = require "smg"
local metrics = require "smg.metrics"
local log = smg.log

local Budgets = {}
Budgets.__index = Budgets

Budgets.CATEGORIES = { "default", "guardrail", "auth", "tool_execution", "discovery", "cache", "connectivity" }

local timeouts_total = metrics.counter("smg_timeouts_total", "Operations that exceeded their timeout budget",
  { "category" })
local warnings_total = metrics.counter("smg_timeout_warnings_total",
  "Operations past the warn threshold of their budget", { "category" })
local escalations_total = metrics.counter("smg_timeout_escalations_total",
  "Operations by escalation level reached (warn, timeout, fail)", { "category", "level" })
local seconds = metrics.histogram("smg_operation_seconds", "Operation latency per timeout category", { "category" })

local DISCOVERY = { ["tools/list"] = true, ["prompts/list"] = true, ["resources/list"] = true,
  ["resources/templates/list"] = true }

-- `gw` (optional): whose timeout settings the module-level Budgets.note uses.
function Budgets.new(gw)
  local b = setmetatable({ gw = gw, categories = {}, active = 0 }, Budgets)
  if gw then
    Budgets.current = b
    metrics.operation_sink = Budgets.note
  end
  return b
end

-- The budget (seconds) and category of `method` under `timeouts` (config.timeouts).
function Budgets.of(timeouts, method)
  if method == "tools/call" then return timeouts.tool_execution_timeout, "tool_execution" end
  if DISCOVERY[method] then return timeouts.discovery_timeout, "discovery" end
  return timeouts.default_timeout, "default"
end

local function stats_of(self, category)
  local s = self.categories[category]
  if not s then
    s = { operations = 0, successes = 0, warnings = 0, timeouts = 0, failures = 0, total_seconds = 0, max_seconds = 0 }
    self.categories[category] = s
  end
  return s
end

-- An operation in flight (active_operations); returns the start time for :record.
function Budgets:begin()
  self.active = self.active + 1
  return smg.monotime()
end
function Budgets:done() self.active = math.max(0, self.active - 1) end

function Budgets:record(timeouts, category, elapsed, budget, timed_out)
  local s = stats_of(self, category)
  local p = timeouts.escalation_policies
  s.operations = s.operations + 1
  s.total_seconds = s.total_seconds + elapsed
  if elapsed > s.max_seconds then s.max_seconds = elapsed end
  seconds:observe(elapsed, category)
  local ratio = budget and budget > 0 and elapsed / budget or 0
  if ratio >= p.fail_threshold then
    s.failures = s.failures + 1
    escalations_total:inc(1, category, "fail")
    log.warn(("%s operation took %.2fs, past %g x its %gs budget"):format(category, elapsed, p.fail_threshold, budget))
  end
  if timed_out or ratio >= p.timeout_threshold then
    s.timeouts = s.timeouts + 1
    timeouts_total:inc(1, category)
    escalations_total:inc(1, category, "timeout")
  elseif ratio >= p.warn_threshold then
    s.warnings = s.warnings + 1
    warnings_total:inc(1, category)
    escalations_total:inc(1, category, "warn")
    log.warn(("%s operation took %.2fs of its %gs budget"):format(category, elapsed, budget))
  else
    s.successes = s.successes + 1
  end
end

-- Records an operation timed elsewhere (a guardrail check, an authentication) on the
-- running gateway's budgets, if there is one.
function Budgets.note(category, elapsed, budget, timed_out)
  local b = Budgets.current
  if b and b.gw and b.gw.timeouts then b:record(b.gw.timeouts, category, elapsed, budget, timed_out) end
end

-- get_timeout_metrics: the seed's {timeout_metrics, active_operations, timeout_config}.
function Budgets:snapshot(timeouts)
  local per = {}
  for _, c in ipairs(Budgets.CATEGORIES) do
    local s = self.categories[c] or stats_of(self, c)
    per[c] = { operations = s.operations, successes = s.successes, warnings = s.warnings, timeouts = s.timeouts,
      failures = s.failures, avg_ms = s.operations > 0 and s.total_seconds / s.operations * 1000 or 0,
      max_ms = s.max_seconds * 1000 }
  end
  local config = {}
  for _, c in ipairs(Budgets.CATEGORIES) do config[c .. "_timeout"] = timeouts[c .. "_timeout"] end
  return { timeout_metrics = per, active_operations = self.active, timeout_config = config,
    escalation_policies = timeouts.escalation_policies }
end

return Budgets

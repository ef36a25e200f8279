-- Timeout budgets per operation category (the seed's timeout manager): which budget a
-- method runs under, and what each category used (operations, timeouts, warnings past
-- escalation_policies.warn_threshold of the budget).
local smg = require "smg"
local metrics = require "smg.metrics"
local log = smg.log

local Budgets = {}
Budgets.__index = Budgets

local timeouts_total = metrics.counter("smg_timeouts_total", "Operations that exceeded their timeout budget",
  { "category" })
local warnings_total = metrics.counter("smg_timeout_warnings_total",
  "Operations past the warn threshold of their budget", { "category" })

local DISCOVERY = { ["tools/list"] = true, ["prompts/list"] = true, ["resources/list"] = true,
  ["resources/templates/list"] = true }

function Budgets.new() return setmetatable({ categories = {} }, Budgets) end

-- The budget (seconds) and category of `method` under `timeouts` (config.timeouts).
function Budgets.of(timeouts, method)
  if method == "tools/call" then return timeouts.tool_execution_timeout, "tool_execution" end
  if DISCOVERY[method] then return timeouts.discovery_timeout, "discovery" end
  return timeouts.default_timeout, "default"
end

function Budgets:record(timeouts, category, elapsed, budget, timed_out)
  local s = self.categories[category]
  if not s then
    s = { operations = 0, timeouts = 0, warnings = 0, total_seconds = 0, max_seconds = 0 }
    self.categories[category] = s
  end
  s.operations = s.operations + 1
  s.total_seconds = s.total_seconds + elapsed
  if elapsed > s.max_seconds then s.max_seconds = elapsed end
  if timed_out then
    s.timeouts = s.timeouts + 1
    timeouts_total:inc(1, category)
  elseif elapsed >= budget * timeouts.escalation_policies.warn_threshold then
    s.warnings = s.warnings + 1
    warnings_total:inc(1, category)
    log.warn(("%s operation took %.2fs of its %gs budget"):format(category, elapsed, budget))
  end
end

return Budgets

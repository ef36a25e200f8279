-- Timeout budgets: which category a method runs under, what each category used, and the
-- escalation ladder: under warn_threshold a success, past it a warning, past timeout_threshold (or cut at the budget) a timeout, past fail_threshold a
-- failure too; the snapshot in the seed's shape.
local Budgets = require "smg.gateway.budgets"

local T = { default_timeout = 30, guardrail_timeout = 15, auth_timeout = 10, tool_execution_timeout = 60,
  discovery_timeout = 20, cache_timeout = 5, connectivity_timeout = 2,
  escalation_policies = { warn_threshold = 0.8, timeout_threshold = 1.0, fail_threshold = 1.2 } }

describe("gateway.budgets", function()
  it("picks the budget by method", function()
    assert.are.same({ 60, "tool_execution" }, { Budgets.of(T, "tools/call") })
    assert.are.same({ 20, "discovery" }, { Budgets.of(T, "resources/templates/list") })
    assert.are.same({ 30, "default" }, { Budgets.of(T, "prompts/get") })
  end)

  it("records operations, timeouts and warnings past the threshold", function()
    local b = Budgets.new()
    b:record(T, "default", 1, 30, false)
    b:record(T, "default", 25, 30, false) -- past 80 %
    b:record(T, "default", 30, 30, true)
    local s = b.categories.default
    assert.are.equal(3, s.operations)
    assert.are.equal(1, s.timeouts)
    assert.are.equal(1, s.warnings)
    assert.are.equal(30, s.max_seconds)
    assert.are.equal(56, s.total_seconds)
  end)

  it("places operations on the escalation ladder", function()
    local b = Budgets.new()
    b:record(T, "guardrail", 1, 10, false)   -- 10%: fine
    b:record(T, "guardrail", 8.5, 10, false) -- 85%: warn
    b:record(T, "guardrail", 10, 10, true)   -- cut at the budget: timeout
    b:record(T, "guardrail", 13, 10, false)  -- overran: timeout and fail
    local s = b:snapshot(T)
    local g = s.timeout_metrics.guardrail
    assert.are.same({ 4, 1, 1, 2, 1 }, { g.operations, g.successes, g.warnings, g.timeouts, g.failures })
    assert.are.equal(13000, g.max_ms)
    assert.are.equal(8125, g.avg_ms)
    assert.are.equal(0, s.timeout_metrics.cache.operations)
    assert.are.equal(2, s.timeout_config.connectivity_timeout)
    assert.are.equal(0, s.active_operations)
  end)

  it("counts operations in flight", function()
    local b = Budgets.new()
    b:begin()
    b:begin()
    b:done()
    assert.are.equal(1, b:snapshot(T).active_operations)
  end)
end)

-- Timeout budgets: which category a method runs under, and what each category used.
local Budgets = require "smg.gateway.budgets"

local T = { tool_execution_timeout = 60, discovery_timeout = 20, default_timeout = 30,
  escalation_policies = { warn_threshold = 0.8 } }

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
end)

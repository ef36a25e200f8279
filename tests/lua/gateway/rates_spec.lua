-- Token buckets (local): burst then the configured rate, rules matched by server and tool
-- globs with exemptions and a global scope, and a bounded bucket table.
local Rates = require "smg.gateway.rates"
local smg = require "smg"

local function rates(cfg)
  cfg.tools = cfg.tools or {}
  return Rates.new(cfg, function() return nil end)
end

describe("gateway.rates", function()
  it("allows the burst, then refuses with the wait until the next token", function()
    local r = rates({ per_key = { rate = 10, burst = 3 } })
    for _ = 1, 3 do assert.is_nil(r:check_request("id:a")) end
    local e = r:check_request("id:a")
    assert.are.equal("rate_limits.per_key", e.data.limit)
    assert.are.equal(1, e.data.retry_after)
    assert.is_nil(r:check_request("id:b"), "another identity has its own bucket")
    smg.sleep(0.15) -- 1.5 tokens at 10/s
    assert.is_nil(r:check_request("id:a"))
    assert.is_not_nil(r:check_request("id:a"))
  end)

  it("is off at rate 0 and burst defaults to the rate", function()
    local r = rates({ per_key = { rate = 0 } })
    for _ = 1, 100 do assert.is_nil(r:check_request("k")) end
    r = rates({ per_key = { rate = 2 } })
    assert.is_nil(r:check_request("k"))
    assert.is_nil(r:check_request("k"))
    assert.is_not_nil(r:check_request("k"))
  end)

  it("picks the first matching tool rule, else per_tool", function()
    local r = rates({ per_tool = { rate = 1, burst = 1 }, tools = {
      { server = "fs", tool = "read_*", rate = 0 },
      { server = "*", tool = "delete_*", rate = 1, burst = 1, scope = "global" },
    } })
    for _ = 1, 5 do assert.is_nil(r:check_tool("a", "fs", "read_file")) end
    assert.is_nil(r:check_tool("a", "fs", "write_file"))
    assert.are.equal("rate_limits.per_tool", r:check_tool("a", "fs", "write_file").data.limit)
    assert.is_nil(r:check_tool("b", "fs", "write_file"), "per identity")
    assert.is_nil(r:check_tool("a", "gh", "delete_repo"))
    assert.is_not_nil(r:check_tool("b", "gh", "delete_repo"), "global: b shares a's bucket")
    assert.is_nil(r:check_tool("a", "gh", nil), "a call without a tool name is not counted")
  end)

  it("keeps the bucket table bounded by forgetting full buckets first", function()
    local r = rates({ per_key = { rate = 1000, burst = 1 } })
    for i = 1, 100001 do r:take_local("k" .. i, 1000, 1) end
    assert.is_true(r.n <= 100000)
    -- A bucket that is not full is kept while full ones exist.
    local s = rates({ per_key = { rate = 0.001, burst = 1 } })
    s:take_local("busy", 0.001, 1)
    for i = 1, 100000 do s.buckets["full" .. i] = { v = 1, t = smg.monotime(), rate = 1, burst = 1 } end
    s.n = s.n + 100000
    s:take_local("new", 0.001, 1)
    assert.is_not_nil(s.buckets.busy)
    assert.is_true(s.n < 1000)
  end)
end)

-- Coroutines and the loop: the spec itself runs in a coroutine of `smg test`, so it can
-- wait on real timers, as plugin hooks do.
local smg = require "smg"
local async = require "smg.async"

describe("smg.async", function()
  it("sleeps on the loop without blocking other coroutines", function()
    local order = {}
    local done = smg.future()
    smg.spawn(function()
      smg.sleep(0.05)
      order[#order + 1] = "slow"
      done:set()
    end)
    smg.spawn(function()
      smg.sleep(0.01)
      order[#order + 1] = "fast"
    end)
    local t0 = smg.monotime()
    done:wait()
    assert.are.same({ "fast", "slow" }, order)
    assert.is_true(smg.monotime() - t0 >= 0.04)
  end)

  it("futures time out", function()
    local f = smg.future()
    local v, err = f:wait(0.02)
    assert.is_nil(v)
    assert.are.equal("timeout", err)
    assert.is_true(f:set(1))
    assert.is_false(f:set(2))
    assert.are.equal(1, f:wait())
  end)

  it("all() runs tasks concurrently and keeps their order", function()
    local t0 = smg.monotime()
    local res = async.all({
      function() smg.sleep(0.05) return "a" end,
      function() smg.sleep(0.05) return "b" end,
      function() error("boom") end,
    })
    assert.are.equal("a", res[1])
    assert.are.equal("b", res[2])
    assert.is_nil(res[3])
    assert.is_true(smg.monotime() - t0 < 0.09)
  end)

  it("refuses to wait outside a coroutine", function()
    local ok = coroutine.resume(coroutine.create(function()
      return pcall(function() end)
    end))
    assert.is_true(ok)
    local main_ok, main_err = pcall(async.current)
    -- busted runs specs inside the smg test coroutine, so current() works here
    assert.is_true(main_ok, main_err)
  end)
end)

describe("async.spawn workers", function()
  it("pass exactly the arguments given, and reuse coroutines", function()
    local counts = {}
    for n = 0, 5 do
      local args = {}
      for i = 1, n do args[i] = i end
      async.spawn(function(...) counts[#counts + 1] = select("#", ...) end, unpack(args, 1, n))
    end
    async.spawn(function(...) counts[#counts + 1] = select("#", ...) end, nil, nil)
    assert.are.same({ 0, 1, 2, 3, 4, 5, 2 }, counts)
    local a = async.spawn(function() end)
    local b = async.spawn(function() end)
    assert.are.equal(a, b, "a finished worker runs the next task")
  end)
end)

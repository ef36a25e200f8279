-- The plugin loader: shape checks with clear errors, and the hook runner's isolation of
-- errors and timeouts. Plugins are real files in a temporary directory.
local plugins = require "smg.plugins"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/guardrails")

local function write(name, src)
  local f = assert(io.open(dir .. "/guardrails/" .. name .. ".lua", "w"))
  f:write(src)
  f:close()
end

describe("plugin loader", function()
  setup(function() table.insert(plugins.extra_dirs, dir) end)
  teardown(function()
    table.remove(plugins.extra_dirs)
    os.execute("rm -rf " .. dir)
  end)

  it("refuses malformed plugins with the reason", function()
    write("nokind", "return { name = 'x', version = '1.0.0', priority = 1 }")
    write("badver", "return { name = 'x', kind = 'guardrail', version = 'one', priority = 1 }")
    write("typo", "return { name = 'x', kind = 'guardrail', version = '1.0.0', priority = 1, check_inptu = function() end }")
    write("syntax", "return {")
    write("throws", "error('boom at load')")
    local cases = { nokind = "kind must be", badver = "version must look like", typo = "unknown hook \"check_inptu\"",
      syntax = "expected", throws = "boom at load" }
    for name, want in pairs(cases) do
      local p, err = plugins.load("guardrail", name, {})
      assert.is_nil(p, name)
      assert.matches(want, err, 1, true)
    end
    local p, err = plugins.load("guardrail", "absent", {})
    assert.is_nil(p)
    assert.matches("no guardrail plugin", err)
    p, err = plugins.load("guardrail", "../etc/passwd", {})
    assert.matches("invalid plugin name", err)
  end)

  it("runs hooks in their own coroutine: errors and timeouts become verdicts", function()
    write("slow", [[
      local smg = require "smg"
      return { name = "slow", kind = "guardrail", version = "1.0.0", priority = 5,
        check_input = function(call) smg.sleep(call.delay) return { allowed = true } end,
        check_output = function() error("plugin bug") end }
    ]])
    local p = assert(plugins.load("guardrail", "slow", {}))
    local ok, res = plugins.run_hook(p, "check_input", 1, { delay = 0.01 })
    assert.is_true(ok)
    assert.is_true(res.allowed)
    local t0 = smg.monotime()
    ok, res = plugins.run_hook(p, "check_input", 0.1, { delay = 5 })
    assert.is_false(ok)
    assert.are.equal("timeout", res)
    assert.is_true(smg.monotime() - t0 < 1)
    ok, res = plugins.run_hook(p, "check_output", 1, {})
    assert.is_false(ok)
    assert.are.equal("error", res)
  end)

  it("runs cpu_only hooks on the caller's coroutine, still bounded, and never waiting", function()
    write("pure", [[
      local smg = require "smg"
      return { name = "pure", kind = "guardrail", version = "1.0.0", priority = 5, cpu_only = true,
        check_input = function(call)
          if call.sleep then smg.sleep(0.01) end
          if call.spin then
            local t0 = smg.monotime()
            while smg.monotime() - t0 < call.spin do smg.checkpoint() end
          end
          return { allowed = true, co = coroutine.running() }
        end }
    ]])
    local p = assert(plugins.load("guardrail", "pure", {}))
    local ok, res = plugins.run_hook(p, "check_input", 1, {})
    assert.is_true(ok)
    assert.are.equal(coroutine.running(), res.co, "no coroutine of its own")
    -- A hook that says it never waits and then waits: an error, not a hang.
    ok, res = plugins.run_hook(p, "check_input", 1, { sleep = true })
    assert.is_false(ok)
    assert.are.equal("error", res)
    -- CPU work past the budget stops at a checkpoint: a timeout, after about the budget.
    local t0 = smg.monotime()
    ok, res = plugins.run_hook(p, "check_input", 0.05, { spin = 5 })
    assert.is_false(ok)
    assert.are.equal("timeout", res)
    assert.is_true(smg.monotime() - t0 < 0.5)
    -- The caller's own coroutine can wait again afterwards.
    smg.sleep(0.001)
  end)

  it("loads a folder plugin from its init.lua, afresh on every load", function()
    os.execute("mkdir -p " .. dir .. "/guardrails/folder")
    local f = assert(io.open(dir .. "/guardrails/folder/init.lua", "w"))
    f:write([[
      local loads = 0
      loads = loads + 1
      return { name = "folder", kind = "guardrail", version = "2.0.0", priority = 1,
        count = function() return loads end,
        check_input = function() return { allowed = true } end }
    ]])
    f:close()
    local a = assert(plugins.load("guardrail", "folder", {}))
    local b = assert(plugins.load("guardrail", "folder", {}))
    assert.are.equal("2.0.0", a.version)
    assert.matches("folder/init.lua$", a.path)
    assert.are_not.equal(a, b, "each load is a new module")
    assert.are.equal(1, b.count(), "no state carried over from the previous load")
  end)
end)

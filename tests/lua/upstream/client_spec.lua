-- The upstream client against a real stdio server (examples/servers/echo.lua run by this
-- smg binary): handshake, calls with progress tokens mapped both ways, the events sink,
-- a crash failing the call in flight at once and a restart, the per-upstream call limit.
local Client = require "smg.upstream.client"
local Call = require "smg.mcp.call"
local config = require "smg.config"
local core = require "smg.core"
local smg = require "smg"

local exe, root = core.paths()

local function spec(extra)
  local cfg = assert(config.parse(smg.json.encode({ mcp_configs = { c = { mcp_config = { {
    server_name = "echo", config = { command = exe, args = { "run", root .. "/examples/servers/echo.lua" } } } } } } })))
  local s = cfg.mcp_configs.c.mcp_config[1]
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- An events sink that records what the client reports.
local function recorder()
  local ev = { readies = 0, downs = {}, notes = {} }
  function ev.ready() ev.readies = ev.readies + 1 end
  function ev.down(_, _, why) ev.downs[#ev.downs + 1] = why end
  function ev.notification(_, _, method, params) ev.notes[#ev.notes + 1] = { method = method, params = params } end
  function ev.request() return nil, { code = -32601, message = "no" } end
  return ev
end

describe("upstream.client (stdio)", function()
  local up, ev
  after_each(function() if up then up:close() end end)

  it("initializes, calls, and maps progress tokens back", function()
    ev = recorder()
    up = Client.new(spec(), { events = ev })
    assert.is_true(up:ensure_ready(10))
    smg.sleep(0.01) -- the sink hears of it after the waiters are resumed
    assert.are.equal(1, ev.readies)
    assert.are.equal("smg-echo", up.init.serverInfo.name)
    local res = assert(up:call("tools/call", { name = "echo", arguments = { message = "hi" } }, { timeout = 5 }))
    assert.are.equal("hi", res.content[1].text)
    -- Progress is delivered only for a client call that asked for it.
    local call = Call.new(7, "tools/call", nil, nil, "mine")
    res = assert(up:call("tools/call", { name = "sleep", arguments = { seconds = 0.01 }, _meta = { progressToken = "mine" } },
      { timeout = 5, call = call }))
    assert.are.equal("slept 0.01s", res.content[1].text)
    local tokens = {}
    for _, n in ipairs(ev.notes) do
      if n.method == "notifications/progress" then tokens[#tokens + 1] = n.params.progressToken end
    end
    assert.are.same({ "mine", "mine" }, tokens)
    assert.are.equal("ready", up:describe().state)
    assert.are.equal("stdio", up:describe().transport)
  end)

  it("fails the call in flight when the server dies, then restarts it", function()
    ev = recorder()
    up = Client.new(spec(), { events = ev })
    assert.is_true(up:ensure_ready(10))
    local pid = up:describe().pid
    local f = smg.future()
    smg.spawn(function() f:set(up:call("tools/call", { name = "sleep", arguments = { seconds = 30 } }, { timeout = 60 })) end)
    smg.sleep(0.1)
    local t0 = smg.monotime()
    os.execute("kill -9 " .. pid)
    local res, err = f:wait(5)
    assert.is_nil(res)
    assert.is_truthy(err and err.message:find("unavailable", 1, true), err and err.message)
    assert.is_true(smg.monotime() - t0 < 2)
    smg.sleep(0.01)
    assert.is_true(#ev.downs >= 1)
    assert.is_true(up:ensure_ready(10))
    assert.are_not.equal(pid, up:describe().pid)
    assert.are.equal(1, up:describe().restarts)
    assert.are.equal("again", up:call("tools/call", { name = "echo", arguments = { message = "again" } }).content[1].text)
  end)

  it("refuses calls past max_calls_per_upstream with the limit's error", function()
    up = Client.new(spec(), { limits = { max_message_bytes = 1048576, max_upstream_write_queue = 1048576,
      max_calls_per_upstream = 2 } })
    assert.is_true(up:ensure_ready(10))
    for _ = 1, 2 do
      smg.spawn(function() up:call("tools/call", { name = "sleep", arguments = { seconds = 0.5 } }, { timeout = 5 }) end)
    end
    local res, err = up:call("tools/call", { name = "echo", arguments = { message = "x" } }, { timeout = 5 })
    assert.is_nil(res)
    assert.are.equal("max_calls_per_upstream", err.data.limit)
  end)
end)

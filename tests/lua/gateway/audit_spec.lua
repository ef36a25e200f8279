-- The audit log's chain across the awkward moments: a restart right after a rotation (the
-- new file still empty), a line torn by a crash, and closing with a write in flight.
local Audit = require "smg.gateway.audit"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function lines(path)
  local out = {}
  for l in io.lines(path) do out[#out + 1] = l end
  return out
end

describe("gateway.audit", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("continues the chain from the rotated file when the new one is still empty", function()
    local p = dir .. "/a.log"
    local log = assert(Audit.open({ path = p, max_bytes = 4096, keep = 3 }))
    for i = 1, 3 do log:record({ n = i }) end
    log:close(5)
    os.rename(p, p .. ".1")
    io.open(p, "w"):close() -- what a rotation leaves behind
    log = assert(Audit.open({ path = p, max_bytes = 4096, keep = 3 }))
    log:record({ n = 4 })
    log:close(5)
    local ok, n = Audit.verify({ p .. ".1", p })
    assert.is_true(ok, n)
    assert.are.equal(4, n)
  end)

  it("starts a new line after a line torn by a crash, and verify names the torn one", function()
    local p = dir .. "/b.log"
    local log = assert(Audit.open({ path = p, max_bytes = 1048576, keep = 3 }))
    log:record({ n = 1 })
    log:close(5)
    local f = io.open(p, "a")
    f:write('{"seq":2,"prev":"cut-of')
    f:close()
    log = assert(Audit.open({ path = p, max_bytes = 1048576, keep = 3 }))
    log:record({ n = 3 })
    log:close(5)
    local l = lines(p)
    assert.are.equal(3, #l)
    assert.are.equal(3, smg.json.decode(l[3]).n)
    assert.are.equal(2, smg.json.decode(l[3]).seq, "the chain goes on from the last whole line")
    local ok, why = Audit.verify({ p })
    assert.is_false(ok)
    assert.is_truthy(why:find(":2: not an audit record", 1, true), why)
  end)
end)

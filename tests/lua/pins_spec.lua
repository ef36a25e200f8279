-- smg.pins: records kept in a file, written in the background, and a decision made by
-- another writer (`smg pins`) while a write of ours is in flight is taken in, not lost.
local pins = require "smg.pins"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function wait_written(file, pattern)
  for _ = 1, 100 do
    local f = io.open(file)
    local t = f and f:read("*a") or ""
    if f then f:close() end
    if t:find(pattern) then return t end
    smg.sleep(0.01)
  end
  return nil
end

describe("smg.pins", function()
  teardown(function()
    pins.reset()
    os.execute("rm -rf " .. dir)
  end)

  it("keeps records in a 0600 file that a fresh store reads back", function()
    local file = dir .. "/a.pins.json"
    assert.is_true(pins.configure(file))
    pins.put("s", "t", { status = "approved", fingerprint = "f1" })
    assert.is_truthy(wait_written(file, '"f1"'))
    local p = io.popen("stat -c %a " .. file)
    assert.are.equal("600", p:read("*l"))
    p:close()
    local recs = assert(pins.read(file))
    assert.are.equal("approved", recs["s\0t"].status)
  end)

  it("takes in a decision written meanwhile instead of overwriting it", function()
    local file = dir .. "/b.pins.json"
    pins.reset()
    assert.is_true(pins.configure(file))
    pins.put("s", "t", { status = "pending", pending = "f2", fingerprint = "f1" })
    assert.is_truthy(wait_written(file, '"pending"'))
    local told = 0
    pins.on_change = function() told = told + 1 end
    -- Our next write starts; before it lands, the CLI approves.
    pins.put("s", "u", { status = "approved", fingerprint = "g1" })
    local cli = assert(pins.read(file))
    cli["s\0t"].status, cli["s\0t"].fingerprint, cli["s\0t"].pending = "approved", "f2", nil
    cli["s\0t"].decided = smg.now()
    assert(pins.write_sync(file, pins.encode(cli)))
    local text = wait_written(file, '"g1"')
    assert.is_truthy(text, "our record was written too")
    assert.are.equal("approved", pins.get("s", "t").status, "the CLI's approval is kept in memory")
    assert.are.equal("approved", assert(pins.read(file))["s\0t"].status, "and on disk")
    assert.are.equal(1, told)
    pins.on_change = nil
  end)
end)

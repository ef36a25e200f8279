-- smg.open_private, how smg creates every file it writes: 0600 whatever the umask lets
-- through, never through a symbolic link, only regular files.
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function mode(path)
  local p = io.popen("stat -c %a " .. path)
  local m = p:read("*l")
  p:close()
  return m
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

describe("smg.open_private", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("creates the file 0600 and appends or truncates", function()
    local path = dir .. "/audit.log"
    local f = assert(smg.open_private(path, "a"))
    f:write("one\n")
    f:close()
    assert.are.equal("600", mode(path))
    f = assert(smg.open_private(path, "a"))
    f:write("two\n")
    f:close()
    assert.are.equal("one\ntwo\n", read(path))
    f = assert(smg.open_private(path, "w"))
    f:write("fresh\n")
    f:close()
    assert.are.equal("fresh\n", read(path))
  end)

  it("refuses a symbolic link and leaves its target alone", function()
    local target = dir .. "/target"
    local f = assert(io.open(target, "w"))
    f:write("keep")
    f:close()
    os.execute(("ln -s %s %s/link"):format(target, dir))
    local g, err = smg.open_private(dir .. "/link", "w")
    assert.is_nil(g)
    assert.is_truthy(err:find("symbolic link", 1, true), err)
    assert.are.equal("keep", read(target))
  end)

  it("refuses what is not a regular file without blocking on it", function()
    os.execute(("mkfifo %s/fifo"):format(dir))
    local t0 = smg.monotime()
    local g, err = smg.open_private(dir .. "/fifo", "a")
    assert.is_nil(g)
    assert.is_truthy(err:find("not a regular file", 1, true), err)
    assert.is_true(smg.monotime() - t0 < 1)
    assert.is_nil(smg.open_private(dir, "a"))
  end)
end)

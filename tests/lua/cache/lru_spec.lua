-- The cache's first level: least-recently-used eviction under an entry bound and a byte
-- bound, expiry, and prefix scans.
local LRU = require "smg.cache.lru"

describe("cache.lru", function()
  it("evicts the least recently used entry past the entry bound", function()
    local l = LRU.new(1e9, 3)
    l:set("a", 1, 0)
    l:set("b", 2, 0)
    l:set("c", 3, 0)
    assert.are.equal(1, l:entry("a", 0).value) -- a is now the most recent
    l:set("d", 4, 0)
    assert.is_nil(l:entry("b", 0), "b was the least recent")
    assert.are.equal(1, l:entry("a", 0).value)
    assert.are.equal(3, l.n)
    assert.are.equal(1, l.evictions)
  end)

  it("holds the byte bound, refuses what cannot fit, and accounts replacements", function()
    local l = LRU.new(1000, 100)
    for i = 1, 10 do l:set("k" .. i, i, 200) end
    assert.is_true(l.bytes <= 1000)
    assert.is_nil(l:entry("k1", 0))
    assert.are.equal(10, l:entry("k10", 0).value)
    assert.is_nil(l:set("huge", 0, 5000))
    local before = l.bytes
    l:set("k10", "again", 200)
    assert.are.equal(before, l.bytes)
    assert.is_true(l:del("k10"))
    assert.is_false(l:del("k10"))
  end)

  it("expires entries, counts and walks a group without the others", function()
    local l = LRU.new(1e6, 100)
    l:set("x:1", 1, 0, 10, "x:")
    l:set("x:2", 2, 0, 20, "x:")
    l:set("x:a:3", 4, 0, nil, "x:")
    l:set("y:1", 3, 0, nil, "y:")
    l:set("z", 5, 0)
    assert.are.equal(3, l:group_size("x:"))
    assert.is_nil(l:entry("x:1", 15), "expired at 10")
    assert.are.equal(2, l:group_size("x:"), "an expired entry leaves its group")
    local seen = {}
    l:each("x:", "x:a:", 15, function(k) seen[#seen + 1] = k end)
    assert.are.same({ "x:a:3" }, seen, "a prefix within the group")
    seen = {}
    l:each("x:", "", 25, function(k) seen[#seen + 1] = k end)
    assert.are.same({ "x:a:3" }, seen, "x:2 expired on the walk")
    l:each("y:", "", 25, function(k, e) l:del(k) assert.are.equal(3, e.value) end)
    assert.are.equal(0, l:group_size("y:"))
    assert.is_nil(l.groups["y:"], "an empty group goes")
    l:set("x:a:3", 6, 0, nil, "x:") -- a replacement stays counted once
    assert.are.equal(1, l:group_size("x:"))
    for _ = 1, 200 do l:set("w" .. _, 0, 0, nil, "w:") end -- evictions leave their group
    assert.are.equal(100, l:group_size("w:"))
    assert.are.equal(0, l:group_size("x:"))
  end)
end)

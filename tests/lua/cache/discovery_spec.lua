-- The discovery cache: per upstream client and method, expiry, list_changed invalidating
-- only what it names, clearing by server, stats.
local Discovery = require "smg.cache.discovery"
local smg = require "smg"

describe("cache.discovery", function()
  it("hits until expiry and counts hits and misses", function()
    local d, up = Discovery.new(), { name = "a" }
    assert.is_nil(d:get(up, "tools/list"))
    d:put(up, "tools/list", { 1, 2 }, 60)
    assert.are.same({ 1, 2 }, d:get(up, "tools/list"))
    d:put(up, "prompts/list", { 3 }, -1) -- already expired
    assert.is_nil(d:get(up, "prompts/list"))
    assert.is_nil(d:peek(up, "prompts/list"))
    local st = d:stats()
    assert.are.equal(1, st.hits)
    assert.are.equal(2, st.misses)
    assert.are.equal("local", st.backend)
  end)

  it("invalidates what a list_changed names, or everything", function()
    local d, up = Discovery.new(), { name = "a" }
    for _, m in ipairs({ "tools/list", "prompts/list", "resources/list", "resources/templates/list" }) do
      d:put(up, m, { m }, 60)
    end
    d:invalidate(up, "notifications/resources/list_changed")
    assert.is_nil(d:peek(up, "resources/list"))
    assert.is_nil(d:peek(up, "resources/templates/list"))
    assert.are.same({ "tools/list" }, d:peek(up, "tools/list"))
    d:invalidate(up, "notifications/tools/list_changed")
    assert.is_nil(d:peek(up, "tools/list"))
    assert.are.same({ "prompts/list" }, d:peek(up, "prompts/list"))
    d:invalidate(up)
    assert.is_nil(d:peek(up, "prompts/list"))
  end)

  it("clears one server or all and reports entries", function()
    local d, a, b = Discovery.new(), { name = "a" }, { name = "b" }
    d:put(a, "tools/list", { 1 }, 60)
    d:put(b, "tools/list", { 1, 2, 3 }, 60)
    d:put(b, "prompts/list", {}, 60)
    local st = d:stats()
    assert.are.equal(3, #st.entries)
    assert.is_true(smg.json.is_array(st.entries))
    assert.are.equal(2, d:clear("b"))
    assert.is_nil(d:peek(b, "tools/list"))
    assert.are.same({ 1 }, d:peek(a, "tools/list"))
    assert.are.equal(1, d:clear())
    assert.are.equal(0, #d:stats().entries)
  end)
end)

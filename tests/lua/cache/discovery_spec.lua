-- The discovery cache over the two-level cache (first level only here; with Redis in
-- redis_spec.lua): keys by server spec and tenant, the upstream's ttlMs and cacheScope
-- hints, per-session lists kept apart, list_changed invalidating only what it names,
-- clearing by tenant and server.
local Discovery = require "smg.cache.discovery"
local cache = require "smg.cache"
local smg = require "smg"

local function spec(name, cmd) return { server_name = name, config = { command = cmd or "x" }, tools = {} } end
local function shared(name, tenant, s) return { name = name, config_id = tenant or "t1", spec = s or spec(name) } end

describe("cache.discovery", function()
  before_each(function() cache.flush_local() end)

  it("hits until expiry and counts hits and misses", function()
    local d, up = Discovery.new(), shared("a")
    assert.is_nil(d:get(up, "tools/list"))
    d:put(up, "tools/list", { 1, 2 }, 60)
    assert.are.same({ 1, 2 }, d:get(up, "tools/list"))
    d:put(up, "prompts/list", { 3 }, 0.05)
    smg.sleep(0.1)
    assert.is_nil(d:get(up, "prompts/list"))
    assert.is_nil(d:peek(up, "prompts/list"))
    assert.are.equal(1, d.hits)
    assert.are.equal(2, d.misses)
  end)

  it("shares a list between clients of the same spec, never across specs, tenants or plugin sets", function()
    local d = Discovery.new()
    local s = spec("a")
    d:put(shared("a", "t1", s), "tools/list", { "x" }, 60)
    assert.are.same({ "x" }, d:peek(shared("a", "t1", s), "tools/list"), "a new client of the same spec")
    assert.is_nil(d:peek(shared("a", "t1", spec("a", "other")), "tools/list"), "a changed command")
    assert.is_nil(d:peek(shared("a", "t2", s), "tools/list"), "another tenant")
    d:set_salt("new plugins")
    assert.is_nil(d:peek(shared("a", "t1", s), "tools/list"), "another plugin set screens differently")
  end)

  it("honours the upstream's ttlMs and keeps private lists per identity", function()
    local d, up = Discovery.new(), shared("a")
    d:put(up, "tools/list", { 1 }, 3600, nil, { ttl_ms = 0 })
    assert.is_nil(d:peek(up, "tools/list"), "ttlMs 0: not kept")
    d:put(up, "prompts/list", { 1 }, 3600, nil, { ttl_ms = 50 })
    assert.are.same({ 1 }, d:peek(up, "prompts/list"))
    smg.sleep(0.1)
    assert.is_nil(d:peek(up, "prompts/list"), "ttlMs shortened the stay")
    local alice, bob = { identity_key = "alice" }, { identity_key = "bob" }
    d:put(up, "tools/list", { "alice's" }, 3600, alice, { scope = "private" })
    assert.are.same({ "alice's" }, d:peek(up, "tools/list", alice))
    assert.is_nil(d:peek(up, "tools/list", bob), "a private list is never another identity's")
    assert.is_nil(d:peek(up, "tools/list", nil))
  end)

  it("keeps a per-session upstream's lists to that client", function()
    local d = Discovery.new()
    local s = spec("a")
    local one = { name = "a", config_id = "t1", spec = s, session = {} }
    local two = { name = "a", config_id = "t1", spec = s, session = {} }
    d:put(one, "tools/list", { 1 }, 60)
    assert.are.same({ 1 }, d:peek(one, "tools/list"))
    assert.is_nil(d:peek(two, "tools/list"))
    assert.is_nil(d:peek(shared("a", "t1", s), "tools/list"))
  end)

  it("invalidates what a list_changed names, or everything", function()
    local d, up = Discovery.new(), shared("a")
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

  it("clears one server of a tenant or one tenant, and counts", function()
    local d = Discovery.new()
    local a1, b1, a2 = shared("a", "t1"), shared("b", "t1"), shared("a", "t2")
    d:put(a1, "tools/list", { 1 }, 60)
    d:put(b1, "tools/list", { 1, 2, 3 }, 60)
    d:put(b1, "prompts/list", {}, 60)
    d:put(a2, "tools/list", { 1 }, 60)
    assert.are.equal(3, d:count("t1"))
    assert.are.equal(1, d:count("t2"))
    local e = d:entry(b1, "tools/list")
    assert.is_true(e.exists)
    assert.are.equal(3, e.items)
    assert.is_true(e.expires_at > smg.now() + 59)
    assert.are.equal(2, d:clear("t1", "b"))
    assert.is_nil(d:peek(b1, "tools/list"))
    assert.are.same({ 1 }, d:peek(a1, "tools/list"))
    assert.are.equal(1, d:clear("t1"))
    assert.are.same({ 1 }, d:peek(a2, "tools/list"), "another tenant's lists stay")
    assert.are.equal(1, d:clear("t2"))
    assert.are.equal(0, d:count("t2"))
  end)
end)

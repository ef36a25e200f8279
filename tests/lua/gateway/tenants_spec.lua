-- The session table: global, per-identity and per-peer limits; idle expiry that spares
-- sessions with work in flight or an open stream.
local Tenants = require "smg.gateway.tenants"
local smg = require "smg"

local LIMITS = { max_sessions = 4, max_sessions_per_identity = 2, max_sessions_per_peer = 3,
  session_idle_timeout = 100, unused_session_timeout = 10 }

local n = 0
local function session(identity, peer, extra)
  n = n + 1
  local s = { id = "s" .. n, identity_key = Tenants.key(identity, peer), peer = peer, calls = 0,
    last_seen = smg.monotime(), inflight = {}, get_streams = {}, closed = false }
  function s:close(why) self.closed = why end
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

describe("gateway.tenants", function()
  it("keys tenants by identity, else by peer", function()
    assert.are.equal("id:p/u", Tenants.key({ project_id = "p", user_id = "u" }, "1.2.3.4"))
    assert.are.equal("peer:1.2.3.4", Tenants.key(nil, "1.2.3.4"))
  end)

  it("refuses past each limit and frees a slot on remove", function()
    local t = Tenants.new()
    local alice = { project_id = "p", user_id = "alice" }
    local a1, a2 = session(alice, "10.0.0.1"), session(alice, "10.0.0.1")
    t:add(a1)
    t:add(a2)
    assert.are.equal("sessions_per_identity", (t:refusal(LIMITS, Tenants.key(alice), "10.0.0.1")))
    local bob = { project_id = "p", user_id = "bob" }
    t:add(session(bob, "10.0.0.1"))
    assert.are.equal("sessions_per_peer", (t:refusal(LIMITS, Tenants.key(bob), "10.0.0.1")))
    assert.is_nil(t:refusal(LIMITS, Tenants.key(bob), "10.0.0.2"))
    t:add(session(bob, "10.0.0.2"))
    assert.are.equal("sessions", (t:refusal(LIMITS, Tenants.key({ project_id = "q" }), "10.0.0.9")))
    t:remove(a1, "deleted")
    assert.are.equal("deleted", a1.closed)
    assert.is_nil(t:refusal(LIMITS, Tenants.key(alice), "10.0.0.3"))
    assert.are.equal(3, t.n)
  end)

  it("expires unused sessions sooner than idle ones, never busy ones", function()
    local t = Tenants.new()
    local now = smg.monotime()
    local unused = session(nil, "p1", { last_seen = now - 20 })
    local idle_used = session(nil, "p1", { last_seen = now - 20, calls = 3 })
    local busy = session(nil, "p1", { last_seen = now - 200, inflight = { [1] = true } })
    local streaming = session(nil, "p1", { last_seen = now - 200,
      get_streams = { { open = function() return true end } } })
    local old = session(nil, "p1", { last_seen = now - 200, calls = 1 })
    for _, s in ipairs({ unused, idle_used, busy, streaming, old }) do t:add(s) end
    t:sweep(LIMITS)
    assert.are.equal("idle", unused.closed)
    assert.are.equal("idle", old.closed)
    assert.is_false(idle_used.closed)
    assert.is_false(busy.closed)
    assert.is_false(streaming.closed)
    assert.are.equal(3, t.n)
  end)
end)

-- The Redis client and the Redis-backed smg.cache against a real redis-server on a random
-- loopback port: AUTH and SELECT, replies, hashed keys, TTLs, and losing Redis mid-run
-- (calls are answered locally, then Redis is used again once it is back); the two levels
-- (an L1 miss filled from Redis, near_ttl, clearing by prefix in both, the discovery
-- cache's shared, private and per-session lists).
local Redis = require "smg.redis"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local port = 20000 + tonumber(smg.random_hex(2), 16) % 20000

local function start_redis()
  assert(os.execute(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --requirepass s3cret-pass "
    .. "--daemonize yes --pidfile %s/redis.pid --dir %s --logfile %s/redis.log"):format(port, dir, dir, dir)) == 0)
  local deadline = smg.monotime() + 5
  local probe = Redis.new({ port = port, password = "s3cret-pass", timeout = 1 })
  while smg.monotime() < deadline do
    if probe:call("PING") == "PONG" then break end
    probe = Redis.new({ port = port, password = "s3cret-pass", timeout = 1 })
    smg.sleep(0.05)
  end
  probe:close()
end

local function stop_redis()
  local f = io.open(dir .. "/redis.pid")
  if f then
    local pid = f:read("*n")
    f:close()
    os.execute("kill " .. pid .. " 2>/dev/null")
    local deadline = smg.monotime() + 5
    while smg.monotime() < deadline and os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 do smg.sleep(0.02) end
  end
end

describe("redis", function()
  setup(start_redis)
  teardown(function()
    smg.cache.close()
    stop_redis()
    os.execute("rm -rf " .. dir)
  end)

  it("authenticates, selects the db and converts replies", function()
    local r = Redis.new({ port = port, password = "s3cret-pass", db = 3 })
    assert.are.equal("PONG", r:call("PING"))
    assert.are.equal("OK", r:call("SET", "k", "v"))
    assert.are.equal("v", r:call("GET", "k"))
    assert.is_false(r:call("GET", "missing"))
    assert.are.equal(2, r:call("RPUSH", "list", "a", 42))
    assert.are.same({ "a", "42" }, r:call("LRANGE", "list", 0, -1))
    local v, err = r:call("NOSUCHCOMMAND")
    assert.is_nil(v)
    assert.matches("unknown command", err)
    local other = Redis.new({ port = port, password = "s3cret-pass" })
    assert.is_false(other:call("GET", "k"), "db 0 does not see db 3")
    local bad = Redis.new({ port = port, password = "wrong" })
    v, err = bad:call("PING")
    assert.is_nil(v)
    assert.matches("WRONGPASS", err)
    r:close()
    other:close()
  end)

  it("subscribes: every message, a catch-up hook on each (re)subscription, and reconnection", function()
    local sub = Redis.new({ port = port, password = "s3cret-pass", timeout = 1 })
    local got, subscribed = {}, 0
    sub:subscribe("chan", function(msg) got[#got + 1] = msg end, function() subscribed = subscribed + 1 end)
    local pub = Redis.new({ port = port, password = "s3cret-pass", timeout = 1 })
    local function wait_for(cond)
      local deadline = smg.monotime() + 10
      while not cond() and smg.monotime() < deadline do smg.sleep(0.02) end
      return cond()
    end
    assert.is_true(wait_for(function() return subscribed == 1 end))
    for i = 1, 3 do assert.are.equal(1, pub:call("PUBLISH", "chan", "m" .. i)) end
    pub:call("PUBLISH", "other", "not for us")
    assert.is_true(wait_for(function() return #got == 3 end))
    assert.are.same({ "m1", "m2", "m3" }, got)
    -- The server drops the connection: the subscription comes back by itself.
    pub:call("CLIENT", "KILL", "TYPE", "pubsub")
    assert.is_true(wait_for(function() return subscribed == 2 end), "resubscribed")
    pub:call("PUBLISH", "chan", "m4")
    assert.is_true(wait_for(function() return #got == 4 end))
    sub:close()
    smg.sleep(0.05)
    assert.are.equal(0, pub:call("PUBLISH", "chan", "m5"), "closed: nobody listens")
    pub:close()
  end)

  it("resolves host names off the loop", function()
    local core = require "smg.core"
    local f = require("smg.async").future()
    assert.is_true(core.resolve("localhost", function(list, err) f:set(list, err) end))
    local list = f:wait(5)
    assert.is_table(list)
    assert.is_truthy(list[1] == "127.0.0.1" or list[1] == "::1")
    f = require("smg.async").future()
    core.resolve("no-such-host.invalid", function(l, err) f:set(l or false, err) end)
    local none, err = f:wait(10)
    assert.is_false(none)
    assert.is_string(err)
    local r = Redis.new({ host = "localhost", port = port, password = "s3cret-pass", timeout = 2 })
    assert.are.equal("PONG", r:call("PING"))
    r:close()
  end)

  it("may be closed while it connects, and from a waiter woken by the connect", function()
    -- Closed before the connection is up: the attempt's connection goes when it lands.
    local r = Redis.new({ port = port, timeout = 2 })
    local answered
    smg.spawn(function() answered = { r:ready() } end)
    r:close()
    smg.sleep(0.3)
    assert.is_table(answered)
    assert.is_nil(answered[1])
    -- Closed by a caller that the connect itself woke (no AUTH: woken inside the connect).
    local r2 = Redis.new({ port = port, timeout = 2 })
    local closed
    smg.spawn(function()
      r2:ready()
      r2:close()
      closed = true
    end)
    smg.sleep(0.3)
    assert.is_true(closed)
    assert.are.equal("down", r2.state)
  end)

  it("gives up an AUTH that stalls at the deadline and closes that socket", function()
    -- A peer that accepts and never answers; it writes how many connections it holds.
    local stall_port, count = port + 1, dir .. "/open"
    os.execute(("node -e \"let n = 0; require('net').createServer((s) => { n++; s.resume(); s.on('close', () => n--); })"
      .. ".listen(%d, '127.0.0.1'); setInterval(() => require('fs').writeFileSync('%s', String(n)), 50)\" "
      .. "& echo $! > %s/stall.pid"):format(stall_port, count, dir))
    smg.sleep(0.5)
    local r = Redis.new({ port = stall_port, password = "x", timeout = 0.3 })
    finally(function() os.execute("kill $(cat " .. dir .. "/stall.pid) 2>/dev/null") end)
    for _ = 1, 4 do
      local t0 = smg.monotime()
      local v, err = r:call("PING")
      assert.is_nil(v)
      assert.is_string(err)
      assert.is_true(smg.monotime() - t0 < 1)
      smg.sleep(0.4) -- past the backoff: the next call tries again
    end
    assert.are.equal("down", r.state, "not left connecting")
    smg.sleep(0.2)
    local f = assert(io.open(count))
    local open = tonumber(f:read("*a"))
    f:close()
    assert.is_true(open <= 1, ("%d connections still open"):format(open))
    r:close()
  end)

  it("fails fast when nobody listens", function()
    local r = Redis.new({ port = 1, timeout = 1 })
    local t0 = smg.monotime()
    local v, err = r:call("PING")
    assert.is_nil(v)
    assert.is_string(err)
    assert.is_true(smg.monotime() - t0 < 1)
    v, err = r:call("PING")
    assert.are.equal("redis unavailable", err, "no reconnect storm within the backoff")
    r:close()
  end)

  it("backs smg.cache with hashed keys and TTLs, and survives losing Redis", function()
    smg.cache.configure({ enkrypt_mcp_use_external_cache = true, enkrypt_cache_host = "127.0.0.1",
      enkrypt_cache_port = port, enkrypt_cache_db = 1, enkrypt_cache_password = "s3cret-pass",
      timeout_settings = { cache_timeout = 1 } })
    smg.cache.set("tool_scan:pin:github:create_issue", { hash = "abc" })
    assert.are.same({ hash = "abc" }, smg.cache.get("tool_scan:pin:github:create_issue"))
    assert.are.equal("redis", smg.cache.stats().backend)
    local raw = Redis.new({ port = port, password = "s3cret-pass", db = 1 })
    local keys = raw:call("KEYS", "*")
    assert.are.equal(1, #keys)
    assert.matches("^smg:c:p:%x+:%x+:%x+$", keys[1], "identifiers are hashed, as the seed does")
    smg.cache.set("short", "lived", 0.05)
    assert.are.equal("lived", smg.cache.get("short"))
    smg.sleep(0.1)
    assert.is_nil(smg.cache.get("short"))
    smg.cache.set("n", 42)
    assert.are.equal(42, smg.cache.get("n"))
    smg.cache.del("n")
    assert.is_nil(smg.cache.get("n"))
    raw:close()

    -- Redis goes away: calls are answered locally, promptly, and counted.
    stop_redis()
    smg.cache.set("during", "outage")
    assert.are.equal("outage", smg.cache.get("during"))
    local m = require("smg.metrics").get("smg_cache_backend_errors_total")
    assert.is_true(m.series.set.value >= 1)

    -- And comes back: the cache uses it again after the backoff.
    start_redis()
    local deadline = smg.monotime() + 10
    local back = false
    while smg.monotime() < deadline and not back do
      smg.cache.set("after", "restart")
      back = smg.cache.stats().redis_state == "ready"
      if not back then smg.sleep(0.1) end
    end
    assert.is_true(back)
    raw = Redis.new({ port = port, password = "s3cret-pass", db = 1 })
    assert.are.equal(1, #raw:call("KEYS", "*"))
    raw:close()
  end)
  it("is two-level: Redis fills the first level, which serves for near_ttl, and clears reach both", function()
    smg.cache.configure({ enkrypt_mcp_use_external_cache = true, timeout_settings = { cache_timeout = 1 } },
      { url = ("redis://:s3cret-pass@127.0.0.1:%d/2"):format(port), near_ttl = 0.2 })
    local raw = Redis.new({ port = port, password = "s3cret-pass", db = 2 })
    raw:call("FLUSHDB")
    smg.cache.set("shared", { v = 1 }, 60)
    smg.cache.flush_local() -- another instance: only Redis knows the entry
    local before = smg.cache.stats().l2_hits
    assert.are.same({ v = 1 }, smg.cache.get("shared"))
    assert.are.equal(before + 1, smg.cache.stats().l2_hits)
    -- Another instance changes it: this one sees the change once near_ttl has passed.
    local k = smg.cache.key("p", nil, nil, "shared")
    raw:call("SET", k, smg.json.encode({ { v = 2 }, smg.now() + 60 }))
    assert.are.same({ v = 1 }, smg.cache.get("shared"), "served from L1 within near_ttl")
    smg.sleep(0.3)
    assert.are.same({ v = 2 }, smg.cache.get("shared"))

    -- The discovery cache: a shared list lands in Redis, a private one per identity, a
    -- per-session one never; clearing a tenant empties both levels.
    local Discovery = require "smg.cache.discovery"
    local d = Discovery.new()
    local spec = { server_name = "a", config = { command = "x" } }
    local up = { name = "a", config_id = "t1", spec = spec }
    d:put(up, "tools/list", { "t" }, 60)
    d:put(up, "prompts/list", { "p" }, 60, { identity_key = "alice" }, { scope = "private" })
    d:put({ name = "a", config_id = "t1", spec = spec, session = {} }, "resources/list", { "r" }, 60)
    local prefix = smg.cache.prefix("d", "t1")
    assert.are.equal(2, #raw:call("KEYS", prefix .. "*"))
    assert.are.equal(0, #raw:call("KEYS", smg.cache.prefix("s") .. "*"), "per-session lists stay in process")
    smg.cache.flush_local()
    local other = Discovery.new() -- another instance
    assert.are.same({ "t" }, other:get({ name = "a", config_id = "t1", spec = spec }, "tools/list"))
    assert.are.equal(2, d:count("t1"), "the per-session list went with this process's first level")
    -- Counting and clearing one server read the tenant's index, never SCAN the keyspace.
    local b = { name = "b", config_id = "t1", spec = { server_name = "b", config = { command = "y" } } }
    d:put(b, "tools/list", { "b" }, 60)
    d:put({ name = "a", config_id = "t2", spec = spec }, "tools/list", { "other tenant" }, 60)
    raw:call("CONFIG", "RESETSTAT")
    assert.are.equal(3, d:count("t1"))
    assert.are.equal(1, d:clear("t1", "b"))
    assert.are.equal(2, d:count("t1"))
    d:put(up, "resources/list", { "gone soon" }, 0.05)
    smg.sleep(0.1)
    assert.are.equal(2, d:count("t1"), "an expired entry leaves the index")
    assert.are.equal(2, d:clear("t1"))
    assert.are.equal(0, #raw:call("KEYS", prefix .. "*"))
    assert.are.equal(0, raw:call("EXISTS", "smg:ci:d:" .. prefix:sub(#"smg:c:d:" + 1)), "an emptied index goes")
    assert.is_nil(other:get({ name = "a", config_id = "t1", spec = spec }, "tools/list"))
    assert.are.equal(1, d:count("t2"), "another tenant's lists stay")
    -- Many lists (private ones, per identity): cleared in batches, the index with them.
    for i = 1, 150 do d:put(up, "prompts/list", { i }, 60, { identity_key = "id" .. i }, { scope = "private" }) end
    local idx = "smg:ci:d:" .. prefix:sub(#"smg:c:d:" + 1)
    assert.are.equal(150, d:count("t1"))
    local left = raw:call("PTTL", idx)
    assert.is_true(left > 59000 and left <= 60000, "the index lives as long as its longest-lived key")
    assert.are.equal(150, d:clear("t1", "a"))
    assert.are.equal(0, #raw:call("KEYS", prefix .. "*"))
    assert.are.equal(0, raw:call("EXISTS", idx))
    assert.is_nil(raw:call("INFO", "commandstats"):find("cmdstat_scan", 1, true), "no SCAN")
    raw:close()
  end)
end)

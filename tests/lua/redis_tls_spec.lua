-- Redis over TLS (runtime/lua_redis_tls.c) against a real redis-server listening with
-- --tls-port on a random loopback port, certificates made by openssl here: the server
-- verified against the test CA (a wrong CA is refused and said so), a client certificate
-- presented (Redis requires one by default), AUTH and SELECT, replies, SUBSCRIBE, losing
-- and regaining the server, and the two-level cache through a rediss:// URL.
local Redis = require "smg.redis"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local port = 20000 + tonumber(smg.random_hex(2), 16) % 20000

local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1") == 0, cmd) end

local function make_certs()
  local o = "cd " .. dir .. " && openssl "
  sh(o .. "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca")
  sh(o .. "req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other-ca")
  for _, n in ipairs({ "server", "client" }) do
    sh(o .. ("req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr -subj /CN=%s"):format(n, n, n))
    local ext = assert(io.open(("%s/%s.ext"):format(dir, n), "w"))
    ext:write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ext:close()
    sh(o .. ("x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out %s.pem -days 1 -extfile %s.ext")
      :format(n, n, n))
  end
end

local function start_redis()
  sh(("redis-server --port 0 --tls-port %d --bind 127.0.0.1 --save '' --appendonly no --requirepass tls-pass "
    .. "--tls-cert-file %s/server.pem --tls-key-file %s/server.key --tls-ca-cert-file %s/ca.pem "
    .. "--daemonize yes --pidfile %s/redis.pid --dir %s --logfile %s/redis.log"):format(port, dir, dir, dir, dir, dir,
    dir))
end

local function stop_redis()
  local f = io.open(dir .. "/redis.pid")
  if not f then return end
  local pid = f:read("*n")
  f:close()
  os.execute("kill " .. pid .. " 2>/dev/null")
  local deadline = smg.monotime() + 5
  while smg.monotime() < deadline and os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 do smg.sleep(0.02) end
  os.remove(dir .. "/redis.pid")
end

local function tls(extra)
  local t = { ca_file = dir .. "/ca.pem", cert_file = dir .. "/client.pem", key_file = dir .. "/client.key" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- A client once the server answers (it starts in the background).
local function client(opts)
  local deadline = smg.monotime() + 5
  while true do
    local r = Redis.new(opts)
    if r:call("PING") == "PONG" or smg.monotime() > deadline then return r end
    r:close()
    smg.sleep(0.05)
  end
end

describe("redis over TLS", function()
  setup(function()
    make_certs()
    start_redis()
  end)
  teardown(function()
    smg.cache.close()
    stop_redis()
    os.execute("rm -rf " .. dir)
  end)

  it("verifies the server, presents a client certificate, and carries commands and replies", function()
    local r = client({ port = port, password = "tls-pass", db = 2, tls = tls() })
    assert.are.equal("PONG", r:call("PING"))
    assert.are.equal("OK", r:call("SET", "k", "over tls"))
    assert.are.equal("over tls", r:call("GET", "k"))
    assert.is_false(r:call("GET", "missing"))
    assert.are.equal(2, r:call("RPUSH", "l", "a", 7))
    assert.are.same({ "a", "7" }, r:call("LRANGE", "l", 0, -1))
    local big = string.rep("x", 300000) -- larger than one TLS record and one read
    assert.are.equal("OK", r:call("SET", "big", big))
    assert.are.equal(big, r:call("GET", "big"))
    local v, err = r:call("NOSUCHCOMMAND")
    assert.is_nil(v)
    assert.matches("unknown command", err)
    r:close()
  end)

  it("refuses a server its CA did not sign, and a wrong name", function()
    local r = Redis.new({ port = port, password = "tls-pass", timeout = 2, tls = tls({ ca_file = dir .. "/other.pem" }) })
    local v, err = r:call("PING")
    assert.is_nil(v)
    assert.matches("certificate was refused: self%-signed certificate in certificate chain", err)
    r:close()
    local named = Redis.new({ port = port, password = "tls-pass", timeout = 2,
      tls = tls({ server_name = "not-this-server.example" }) })
    v, err = named:call("PING")
    assert.is_nil(v)
    assert.matches("certificate was refused: hostname mismatch", err)
    named:close()
  end)

  it("delivers SUBSCRIBE messages and survives losing the server", function()
    local sub = client({ port = port, password = "tls-pass", tls = tls() })
    local got, subscribed = {}, 0
    sub:subscribe("chan", function(m) got[#got + 1] = m end, function() subscribed = subscribed + 1 end)
    local pub = client({ port = port, password = "tls-pass", tls = tls() })
    local deadline = smg.monotime() + 5
    while subscribed == 0 and smg.monotime() < deadline do smg.sleep(0.02) end
    pub:call("PUBLISH", "chan", "hello")
    while #got == 0 and smg.monotime() < deadline do smg.sleep(0.02) end
    assert.are.same({ "hello" }, got)

    stop_redis()
    local v, err = pub:call("PING")
    assert.is_nil(v)
    assert.is_string(err)
    start_redis()
    deadline = smg.monotime() + 10
    local back
    repeat
      back = pub:call("PING")
      if back ~= "PONG" then smg.sleep(0.1) end
    until back == "PONG" or smg.monotime() > deadline
    assert.are.equal("PONG", back)
    while subscribed < 2 and smg.monotime() < deadline do smg.sleep(0.05) end
    assert.are.equal(2, subscribed, "the subscription came back")
    sub:close()
    pub:close()
  end)

  it("connects by host name, checking the certificate against that name", function()
    local r = client({ host = "localhost", port = port, password = "tls-pass", timeout = 2, tls = tls() })
    assert.are.equal("PONG", r:call("PING"))
    r:close()
    -- (The binding itself connects to addresses only: names are resolved off the loop first.)
    local conn, err = require("smg.core").redis_connect_tls("localhost", port, tls(), function() end, function() end)
    assert.is_nil(conn)
    assert.matches("not a numeric address", err)
  end)

  it("gives up a handshake that stalls at the deadline, and fails fast until the retry", function()
    -- A peer that accepts and never says a word (node: the test suite's own runtime).
    local stall_port = port + 1
    local pidfile = dir .. "/stall.pid"
    os.execute(("node -e \"require('net').createServer(() => {}).listen(%d, '127.0.0.1')\" & echo $! > %s")
      :format(stall_port, pidfile))
    smg.sleep(0.5)
    do
      local r = Redis.new({ tls = tls(), port = stall_port, timeout = 0.3 })
      local t0 = smg.monotime()
      local v, err = r:call("PING")
      assert.is_nil(v)
      assert.matches("timed out", err)
      assert.is_true(smg.monotime() - t0 < 1)
      smg.sleep(0.05)
      assert.are.equal("down", r.state, "not left connecting")
      t0 = smg.monotime()
      v, err = r:call("PING")
      assert.is_nil(v)
      assert.are.equal("redis unavailable", err)
      assert.is_true(smg.monotime() - t0 < 0.05, "fails fast during the backoff")
      r:close()
    end
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
  end)

  it("subscribes again once a refused SUBSCRIBE is allowed", function()
    local admin = client({ port = port, password = "tls-pass", tls = tls() })
    assert.are.equal("OK", admin:call("ACL", "SETUSER", "listener", "on", ">listen-pass", "~*", "+@all",
      "resetchannels"))
    local sub = client({ port = port, username = "listener", password = "listen-pass", tls = tls() })
    local got, subscribed = {}, 0
    sub:subscribe("locked", function(m) got[#got + 1] = m end, function() subscribed = subscribed + 1 end)
    smg.sleep(0.3)
    assert.are.equal(0, subscribed, "refused")
    assert.are.equal("OK", admin:call("ACL", "SETUSER", "listener", "allchannels"))
    local deadline = smg.monotime() + 10
    while subscribed == 0 and smg.monotime() < deadline do smg.sleep(0.05) end
    assert.are.equal(1, subscribed, "subscribed on a later try")
    admin:call("PUBLISH", "locked", "open")
    while #got == 0 and smg.monotime() < deadline do smg.sleep(0.02) end
    assert.are.same({ "open" }, got)
    sub:close()
    admin:close()
  end)

  it("backs the two-level cache through a rediss:// URL", function()
    smg.cache.configure({ enkrypt_mcp_use_external_cache = true, timeout_settings = { cache_timeout = 2 } },
      { url = ("rediss://:tls-pass@127.0.0.1:%d/3"):format(port), tls_ca_file = dir .. "/ca.pem",
        tls_cert_file = dir .. "/client.pem", tls_key_file = dir .. "/client.key" })
    smg.cache.set("over", { tls = true }, 60)
    smg.cache.flush_local()
    assert.are.same({ tls = true }, smg.cache.get("over"))
    assert.is_true(smg.cache.stats().l2_hits >= 1)
    local raw = client({ port = port, password = "tls-pass", db = 3, tls = tls() })
    assert.are.equal(1, #raw:call("KEYS", "smg:c:p:*"))
    raw:close()
  end)
end)

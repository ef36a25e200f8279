-- A Redis client whose calls yield: one connection (hiredis on the loop, runtime/
-- lua_redis.c), AUTH and SELECT on connect, reconnection with backoff, and a timeout on
-- every call. While Redis is down calls fail at once with "redis unavailable" instead of
-- queueing, so callers can fall back (smg.cache does) and nothing piles up.
local core = require "smg.core"
local async = require "smg.async"
local metrics = require "smg.metrics"
local log = require("smg").log

local Redis = {}
Redis.__index = Redis

local BACKOFF_MIN, BACKOFF_MAX = 0.1, 5

-- opts: host, port, username (ACL), password, db, timeout (s), tls ({ ca_file, cert_file,
-- key_file, server_name }: Redis over TLS)
function Redis.new(opts)
  return setmetatable({ host = opts.host or "127.0.0.1", port = opts.port or 6379, password = opts.password,
    username = opts.username, tls = opts.tls,
    db = opts.db or 0, timeout = opts.timeout or 5, state = "idle", backoff = BACKOFF_MIN, waiters = {},
    retry_at = 0 }, Redis)
end

local function settle(self, ok, err)
  local waiters = self.waiters
  self.waiters = {}
  for _, f in ipairs(waiters) do f:set(ok, err) end
end

-- A connection attempt, timed in the timeout manager's "connectivity" category.
local function connected(self, ok)
  local t0 = self.connect_t0
  if not t0 then return end
  self.connect_t0 = nil
  metrics.operation("connectivity", core.hrtime() - t0, self.timeout, not ok)
end

-- One warning per outage: failed reconnection attempts are not news.
local function down(self, why)
  connected(self, false)
  if not self.outage and not self.closed then
    self.outage = true
    log.warn(("redis %s:%d unavailable: %s"):format(self.host, self.port, tostring(why)))
  end
  self.state = "down"
  self.conn = nil
  self.retry_at = core.hrtime() + self.backoff
  self.backoff = math.min(self.backoff * 2, BACKOFF_MAX)
  settle(self, nil, why)
end

-- Sends `argv` on the raw connection; cb(value | nil, err).
local function raw(self, argv, cb)
  local ok, err = self.conn:command(argv, cb)
  if not ok then cb(nil, err) end
end

-- The addresses of `host`: itself when it is one, else resolved off the loop, waiting at
-- most `timeout` seconds. Yields.
local function addresses(host, timeout)
  if host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true) then return { host } end
  local f = async.future()
  local ok, err = core.resolve(host, function(list, rerr) f:set(list, rerr) end)
  if not ok then return nil, err end
  local list, rerr = f:wait(timeout)
  if not list then return nil, rerr == "timeout" and "name resolution timed out" or rerr end
  return list
end

-- Opens a connection to one address and waits, at most `left` seconds, until it is
-- connected. Returns conn | nil, err.
local function open(self, addr, left)
  local f = async.future()
  local conn, err
  local on_connect = function(cerr) f:set(cerr == nil, cerr) end
  local on_disconnect = function(derr)
    f:set(false, derr or "connection closed")
    if conn and self.conn == conn then down(self, derr or "connection closed") end
  end
  if self.tls then
    -- The certificate is checked against the name asked for, not the address it resolved to.
    local t = self.tls
    if not t.server_name then
      t = { ca_file = t.ca_file, cert_file = t.cert_file, key_file = t.key_file, server_name = self.host }
    end
    conn, err = core.redis_connect_tls(addr, self.port, t, on_connect, on_disconnect)
  else
    conn, err = core.redis_connect(addr, self.port, on_connect, on_disconnect)
  end
  if not conn then return nil, err end
  local ok, cerr = f:wait(left)
  if ok then return conn end
  if cerr ~= "timeout" then return nil, cerr end -- (a failed connect has closed itself)
  conn:close() -- a stalled connect or TLS handshake, given up at the deadline
  return nil, "connect timed out"
end

-- AUTH and SELECT on a new connection before anyone else may send. Returns true | nil, err.
local function prepare(self, conn, left)
  local steps = {}
  if self.password and self.password ~= "" then
    steps[#steps + 1] = self.username and { "AUTH", self.username, self.password } or { "AUTH", self.password }
  end
  if self.db ~= 0 then steps[#steps + 1] = { "SELECT", tostring(self.db) } end
  local deadline = core.hrtime() + left
  for _, argv in ipairs(steps) do
    local f = async.future()
    local sent, serr = conn:command(argv, function(v, e) f:set(v, e) end)
    if not sent then return nil, serr end
    local v, e = f:wait(math.max(0.001, deadline - core.hrtime()))
    if v == nil then return nil, e == "timeout" and "connect timed out" or e end
  end
  return true
end

-- One connection attempt: every address of the host in turn, name resolution, connect,
-- TLS handshake, AUTH and SELECT all within the client's timeout (a Redis that accepts and
-- then stalls does not leave the client "connecting").
local function connect(self)
  self.state = "connecting"
  self.connect_t0 = core.hrtime()
  local attempt = {}
  self.attempt = attempt
  async.spawn(function()
    local deadline = core.hrtime() + self.timeout
    local current = function() return self.attempt == attempt and not self.closed end
    local addrs, err = addresses(self.host, self.timeout)
    if not current() then return end
    for _, addr in ipairs(addrs or {}) do
      local left = deadline - core.hrtime()
      if left <= 0 then
        err = "connect timed out"
        break
      end
      local conn
      conn, err = open(self, addr, left)
      if conn and not current() then return conn:close() end
      if conn then
        local ok, perr = prepare(self, conn, math.max(0.001, deadline - core.hrtime()))
        if not current() then return conn:close() end
        if ok then
          self.conn = conn
          self.state, self.backoff, self.outage = "ready", BACKOFF_MIN, nil
          connected(self, true)
          log.info(("redis %s:%d connected"):format(self.host, self.port))
          return settle(self, true)
        end
        conn:close()
        err = perr
        break -- (refused by the server itself: another address would say the same)
      end
    end
    if current() then down(self, err or "no address") end
  end)
end

-- Waits until the connection is usable. Returns true | nil, err.
function Redis:ready()
  if self.state == "ready" then return true end
  if self.closed then return nil, "redis client closed" end
  if self.state == "down" and core.hrtime() < self.retry_at then return nil, "redis unavailable" end
  if self.state ~= "connecting" then connect(self) end
  if self.state == "ready" then return true end
  if self.state == "down" then return nil, "redis unavailable" end
  local f = async.future()
  self.waiters[#self.waiters + 1] = f
  local ok, err = f:wait(self.timeout)
  if not ok then return nil, err == "timeout" and "redis connect timed out" or (err or "redis unavailable") end
  return true
end

-- call("GET", key) -> value (false for a missing key) | nil, err. Yields.
function Redis:call(...)
  local ok, err = self:ready()
  if not ok then return nil, err end
  local f = async.future()
  raw(self, { ... }, function(v, e) f:set(v, e) end)
  local v, e = f:wait(self.timeout)
  if v == nil and e == "timeout" then return nil, "redis call timed out" end
  return v, e
end

-- Subscribes to `channel` on this client's connection (which then carries nothing else:
-- give a subscription a client of its own). on_message(payload) runs for every message,
-- on_subscribed() after every (re)subscription, so that the caller can catch up on what
-- it missed while the connection was down. Reconnects with backoff until close(). Each
-- callback runs in a coroutine of its own.
function Redis:subscribe(channel, on_message, on_subscribed)
  async.spawn(function()
    while not self.closed do
      if self:ready() then
        local lost = async.future()
        local sent = self.conn:command({ "SUBSCRIBE", channel }, function(v, err)
          if v == nil then
            -- The server refused (an error reply: ACL, say) or the connection went: either
            -- way, subscribed again after the backoff, and the refusal is said.
            if err and self.state == "ready" and not self.refusal_said then
              self.refusal_said = true
              log.warn(("redis: SUBSCRIBE %s refused: %s"):format(channel, err))
            end
            return lost:set(err or "connection lost")
          end
          if type(v) ~= "table" then return end
          if v[1] == "subscribe" then self.refusal_said = false end
          if v[1] == "subscribe" and on_subscribed then
            async.spawn(on_subscribed)
          elseif v[1] == "message" and v[2] == channel and type(v[3]) == "string" then
            async.spawn(on_message, v[3])
          end
        end, true)
        if sent then lost:wait() end
      end
      if self.closed then break end
      async.sleep(math.max(self.retry_at - core.hrtime(), BACKOFF_MIN))
    end
  end)
end

function Redis:close()
  self.closed = true
  if self.conn then
    local c = self.conn
    self.conn = nil
    c:close()
  end
  self.state = "down"
  settle(self, nil, "redis client closed")
end

return Redis

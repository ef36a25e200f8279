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

local function connect(self)
  self.state = "connecting"
  self.connect_t0 = core.hrtime()
  local conn, err
  local on_connect = function(cerr)
    if cerr then return down(self, cerr) end
    -- AUTH and SELECT before anyone else may send.
    local steps = {}
    if self.password and self.password ~= "" then
      steps[#steps + 1] = self.username and { "AUTH", self.username, self.password } or { "AUTH", self.password }
    end
    if self.db ~= 0 then steps[#steps + 1] = { "SELECT", tostring(self.db) } end
    local i = 0
    local function next_step(_, serr)
      if serr then
        conn:close()
        return down(self, serr)
      end
      i = i + 1
      if steps[i] then return raw(self, steps[i], next_step) end
      self.state, self.backoff, self.outage = "ready", BACKOFF_MIN, nil
      connected(self, true)
      log.info(("redis %s:%d connected"):format(self.host, self.port))
      settle(self, true)
    end
    next_step()
  end
  local on_disconnect = function(derr)
    if self.conn == conn then down(self, derr or "connection closed") end
  end
  if self.tls then
    conn, err = core.redis_connect_tls(self.host, self.port, self.tls, on_connect, on_disconnect)
  else
    conn, err = core.redis_connect(self.host, self.port, on_connect, on_disconnect)
  end
  if not conn then return down(self, err) end
  self.conn = conn
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

-- Rate limits: token buckets per key (every client request of one identity: an API key's
-- project/user, or the peer address without auth) and per tool (tools/call of one identity
-- to one server's tool, or of everyone when a rule's scope is "global"). With Redis
-- configured (the external cache) the buckets live there, shared by every smg instance,
-- updated atomically by one script on Redis's clock; while Redis is unreachable the local
-- buckets answer, so a lost Redis loosens sharing, never refuses a call.
local smg = require "smg"
local core = require "smg.core"
local limits = require "smg.limits"
local names = require "smg.router.names"
local metrics = require "smg.metrics"

local Rates = {}
Rates.__index = Rates

local MAX_BUCKETS = 100000 -- local buckets; full (and so forgettable) ones go first

local backend_errors = metrics.counter("smg_rate_limit_backend_errors_total",
  "Rate-limit checks Redis could not serve (answered by the local buckets)", {})

-- KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns { allowed (0|1), ms until the
-- next token }. The bucket expires once it would be full again.
local SCRIPT = [[
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'v', 't')
local tokens, last = tonumber(b[1]), tonumber(b[2])
if not tokens then tokens, last = burst, now end
tokens = math.min(burst, tokens + (now - last) * rate / 1000)
local ok, wait = 0, 0
if tokens >= 1 then
  tokens, ok = tokens - 1, 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'v', tostring(tokens), 't', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return { ok, wait }
]]

-- cfg: gateway.rate_limits. redis(): the shared Redis client or nil (asked per check, so
-- a reload that turns the external cache on or off applies at once).
function Rates.new(cfg, redis)
  return setmetatable({ cfg = cfg, redis = redis, buckets = {}, n = 0 }, Rates)
end

function Rates:configure(cfg) self.cfg = cfg end

-- Local bucket: true | false, seconds until the next token.
function Rates:take_local(key, rate, burst)
  local now = smg.monotime()
  local b = self.buckets[key]
  if not b then
    if self.n >= MAX_BUCKETS then self:forget_full(now) end
    b = { v = burst, t = now }
    self.buckets[key] = b
    self.n = self.n + 1
  end
  b.v = math.min(burst, b.v + (now - b.t) * rate)
  b.t, b.rate, b.burst = now, rate, burst
  if b.v >= 1 then
    b.v = b.v - 1
    return true
  end
  return false, (1 - b.v) / rate
end

-- A full bucket is the same as none: dropping those bounds the table without loosening
-- any limit. If every bucket is busy, the oldest half go (bounded memory wins).
function Rates:forget_full(now)
  for k, b in pairs(self.buckets) do
    if b.v + (now - b.t) * b.rate >= b.burst then
      self.buckets[k] = nil
      self.n = self.n - 1
    end
  end
  if self.n >= MAX_BUCKETS then
    local drop = 0
    for k in pairs(self.buckets) do
      self.buckets[k] = nil
      drop = drop + 1
      if drop >= MAX_BUCKETS / 2 then break end
    end
    self.n = self.n - drop
  end
end

-- Takes a token from bucket `key`. Yields when Redis is used. true | false, retry_after.
function Rates:take(key, rate, burst)
  local r = self.redis and self.redis()
  if r then
    local res, err = r:call("EVAL", SCRIPT, "1", "smg:rate:" .. core.hex(core.sha256(key)), tostring(rate),
      tostring(burst))
    if type(res) == "table" then
      if res[1] == 1 then return true end
      return false, (tonumber(res[2]) or 1000) / 1000
    end
    backend_errors:inc(1)
    smg.log.debug("rate limit: redis failed (" .. tostring(err) .. "); using the local bucket")
  end
  return self:take_local(key, rate, burst)
end

local function refusal(limit, what, wait)
  local secs = math.max(1, math.ceil(wait or 1))
  return limits.refused(limit, ("Rate limit exceeded for %s; retry after %d s"):format(what, secs),
    { retry_after = secs })
end

-- nil, or the error for a client request of the identity `key` (a tenant key).
function Rates:check_request(key)
  local r = self.cfg.per_key
  if not r or r.rate <= 0 then return nil end
  local ok, wait = self:take("k\0" .. key, r.rate, r.burst or math.max(1, math.ceil(r.rate)))
  if ok then return nil end
  return refusal("rate_limits.per_key", "this key", wait)
end

-- The rule for `server`/`tool`: the first matching entry of `tools`, else per_tool.
function Rates:rule_for(server, tool)
  for _, t in ipairs(self.cfg.tools) do
    if names.glob(t.server, server) and names.glob(t.tool, tool) then return t end
  end
  return self.cfg.per_tool
end

-- nil, or the error for a tools/call by identity `key` to `server`'s `tool`.
function Rates:check_tool(key, server, tool)
  if type(tool) ~= "string" then return nil end
  local r = self:rule_for(server, tool)
  if not r or r.rate <= 0 then return nil end
  local scope = r.scope == "global" and "*" or key
  local ok, wait = self:take("t\0" .. scope .. "\0" .. server .. "\0" .. tool, r.rate,
    r.burst or math.max(1, math.ceil(r.rate)))
  if ok then return nil end
  return refusal("rate_limits.per_tool", ("%s/%s"):format(server, tool), wait)
end

return Rates

-- smg.cache: the gateway-wide key/value cache plugins share (tool pins, verdicts, tokens).
-- In-process by default; with common_mcp_gateway_config.enkrypt_mcp_use_external_cache it
-- lives in Redis (shared by every smg instance, kept across restarts), keys hashed as the
-- seed does so identifiers never appear in Redis. Calls yield. While Redis is unreachable
-- the local store answers, so a lost Redis degrades sharing, never a call.
-- Values must be JSON-encodable.
local core = require "smg.core"
local metrics = require "smg.metrics"
-- (smg requires this module, so the binding's pieces are taken from smg.core directly.)
local json = { encode = core.json_encode, decode = core.json_decode, null = core.json_null }

local M = {}

local MAX_ENTRIES = 100000
local store, count = {}, 0
local backend -- nil (local) | { redis = client, prefix = "smg:" }
local errors = metrics.counter("smg_cache_backend_errors_total", "Cache calls Redis could not serve (answered locally)",
  { "op" })

local function now() return core.hrtime() end

local function local_get(key)
  local e = store[key]
  if not e then return nil end
  if e.expires and e.expires <= now() then
    store[key] = nil
    count = count - 1
    return nil
  end
  return e.value
end

local function evict()
  local t = now()
  for k, e in pairs(store) do
    if e.expires and e.expires <= t then
      store[k] = nil
      count = count - 1
    end
  end
  -- Still full: drop an arbitrary half rather than grow without bound.
  if count >= MAX_ENTRIES then
    local n = 0
    for k in pairs(store) do
      store[k] = nil
      n = n + 1
      if n >= MAX_ENTRIES / 2 then break end
    end
    count = count - n
  end
end

local function local_set(key, value, ttl)
  if not store[key] then
    if count >= MAX_ENTRIES then evict() end
    count = count + 1
  end
  store[key] = { value = value, expires = ttl and ttl > 0 and now() + ttl or nil }
end

local function local_del(key)
  if store[key] then
    store[key] = nil
    count = count - 1
  end
end

local function rkey(key) return backend.prefix .. core.hex(core.sha256(key)) end

local function failed(op, err)
  errors:inc(1, op)
  core.log(0, ("cache: redis %s failed (%s); answered locally"):format(op, tostring(err)))
end

-- get(key) -> value | nil
function M.get(key)
  if backend then
    local v, err = backend.redis:call("GET", rkey(key))
    if v ~= nil then
      if v == false then return nil end
      local decoded = json.decode(v)
      if decoded == nil then return nil end
      return decoded[1]
    end
    failed("get", err)
  end
  return local_get(key)
end

-- set(key, value[, ttl_seconds]) -> true
function M.set(key, value, ttl)
  if value == nil then return M.del(key) end
  if backend then
    local enc = json.encode({ value })
    local ok, err
    if enc then
      if ttl and ttl > 0 then
        ok, err = backend.redis:call("SET", rkey(key), enc, "PX", tostring(math.max(1, math.floor(ttl * 1000))))
      else
        ok, err = backend.redis:call("SET", rkey(key), enc)
      end
      if ok then return true end
    else
      err = "value is not JSON-encodable"
    end
    failed("set", err)
  end
  local_set(key, value, ttl)
  return true
end

-- del(key) -> true
function M.del(key)
  if backend then
    local ok, err = backend.redis:call("DEL", rkey(key))
    if not ok then failed("del", err) end
  end
  local_del(key)
  return true
end

function M.stats()
  return { backend = backend and "redis" or "local", entries = count, max_entries = MAX_ENTRIES,
    redis_state = backend and backend.redis.state or nil }
end

-- Chooses the backend from the gateway config (called on start and on every reload).
function M.configure(common)
  local want = common and common.enkrypt_mcp_use_external_cache
  local host, port = common and common.enkrypt_cache_host, common and common.enkrypt_cache_port
  local db, pass = common and common.enkrypt_cache_db or 0, common and common.enkrypt_cache_password
  if pass == json.null then pass = nil end
  if backend then
    local r = backend.redis
    if want and r.host == host and r.port == port and r.db == db and r.password == pass then return end
    r:close()
    backend = nil
  end
  if want then
    local Redis = require "smg.redis"
    backend = { prefix = "smg:cache:", redis = Redis.new({ host = host, port = port, db = db, password = pass,
      timeout = common.timeout_settings and common.timeout_settings.cache_timeout or 5 }) }
  end
end

-- The Redis client when the external cache is on, else nil: other gateway state that is
-- shared between instances (rate-limit buckets) uses the same connection.
function M.redis() return backend and backend.redis end

-- Closes the Redis connection (gateway shutdown).
function M.close()
  if backend then
    backend.redis:close()
    backend = nil
  end
end

return M

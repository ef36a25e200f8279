-- smg.cache: the gateway's two-level cache. L1 is an in-process LRU with expiry and a
-- memory bound (cache/lru.lua); L2, with common_mcp_gateway_config.enkrypt_mcp_use_external_cache,
-- is Redis, shared by every instance and kept across restarts. Discovery lists, upstream
-- OAuth tokens (sealed) and plugin state go through it.
--
-- Keys are namespaced and hashed as the seed does, so no identifier appears in Redis:
--   smg:c:<ns>:<h(tenant)>:<h(server)>:<sha256(name)>
-- (h: the first 16 hex digits of SHA-256), which lets one tenant's or one server's entries
-- be counted and cleared without knowing their names. Neither walks the keyspace: in L1 a
-- tenant's entries form a group of their own; in Redis the discovery namespace keeps an
-- index per tenant (smg:ci:<ns>:<h(tenant)>:, a sorted set of its keys scored by expiry),
-- so a status or a clear costs what the tenant holds, not what the whole cache holds.
--
-- Reads try L1, then L2 (an L2 hit refills L1). With Redis on, an L1 entry is fresh for
-- gateway.cache.near_ttl seconds, then Redis is asked again, which bounds how late an
-- instance sees another's change or clear. While Redis is unreachable the calls go on from
-- L1, stale copies included (one warning per outage, from the Redis client, which
-- reconnects with backoff); a lost Redis degrades sharing, never a call. Values must be
-- JSON-encodable.
-- Calls that reach Redis yield.
local core = require "smg.core"
local metrics = require "smg.metrics"
local LRU = require "smg.cache.lru"
-- (smg requires this module, so the binding's pieces are taken from smg.core directly.)
local json = { encode = core.json_encode, decode = core.json_decode, null = core.json_null }

local M = {}

local PREFIX = "smg:c:"
local INDEX_PAGE, INDEX_LIMIT = 500, 100000 -- index members one clear asks for per call, and at most
-- A key's group: its namespace (one character) and tenant, "smg:c:<ns>:<h(tenant)>:".
local GROUP_LEN = #PREFIX + 2 + 17
-- The namespaces whose Redis keys are indexed per tenant (counted and cleared by tenant).
local INDEXED = { d = true }

local l1 = LRU.new(64 * 1024 * 1024, 100000)
local near_ttl = 30
local backend -- nil (L1 only) | { redis = client }
local stats = { hits = 0, l2_hits = 0, misses = 0, sets = 0 }

local errors = metrics.counter("smg_cache_backend_errors_total", "Cache calls Redis could not serve (answered from L1)",
  { "op" })
local lookups = metrics.counter("smg_cache_lookups_total", "Two-level cache lookups by the level that answered",
  { "level" })

local now = require("smg.async").now

---------------------------------------------------------------------------- keys
local short = {} -- tenant or server name -> its 16-digit hash (config-bounded; reset if not)
local nshort = 0
local function h16(s)
  s = s or ""
  local v = short[s]
  if not v then
    if nshort >= 4096 then short, nshort = {}, 0 end
    v = core.hex(core.sha256(s)):sub(1, 16)
    short[s], nshort = v, nshort + 1
  end
  return v
end

-- The prefix of every key of `ns` (and of one tenant, and of one server of it).
function M.prefix(ns, tenant, server)
  assert(#ns == 1, "a cache namespace is one character")
  local p = PREFIX .. ns .. ":"
  if tenant == nil then return p end
  p = p .. h16(tenant) .. ":"
  if server == nil then return p end
  return p .. h16(server) .. ":"
end

-- The full key of `name` in namespace `ns` for `tenant` and `server` (either may be nil).
function M.key(ns, tenant, server, name)
  return M.prefix(ns, tenant or "", server or "") .. core.hex(core.sha256(name))
end

local function group_of(k) return k:sub(1, GROUP_LEN) end

-- The Redis index of a group (nil: the namespace has none).
local function index_of(group)
  if INDEXED[group:sub(#PREFIX + 1, #PREFIX + 1)] then return "smg:ci:" .. group:sub(#PREFIX + 1) end
  return nil
end

local function millis(t) return ("%d"):format(math.floor(t * 1000)) end

---------------------------------------------------------------------------- levels
-- One Redis call of the cache, timed in the timeout manager's "cache" category.
local function l2(...)
  local t0 = core.hrtime()
  local v, err = backend.redis:call(...)
  metrics.operation("cache", core.hrtime() - t0, backend.redis.timeout, v == nil and err == "redis call timed out")
  return v, err
end

local function failed(op, err)
  errors:inc(1, op)
  core.log(0, ("cache: redis %s failed (%s); answered from L1"):format(op, tostring(err)))
end

-- Behind a shared L2, an L1 entry is fresh for near_ttl seconds; past that Redis is asked
-- again, and the L1 copy is served only while Redis cannot answer.
local function l1_store(k, value, size, expires)
  local e = l1:set(k, value, size, expires, group_of(k))
  if e and backend then e.fresh_until = now() + near_ttl end
end

local function hit(e, level)
  stats.hits = stats.hits + 1
  lookups:inc(1, level)
  return e.value, e.expires
end

-- fetch(k) -> value, expires (wall seconds | nil) | nil. Yields on an L1 miss (or a stale
-- L1 entry) with Redis on.
function M.fetch(k)
  local t = now()
  local e = l1:entry(k, t)
  if e and (not backend or (e.fresh_until or 0) > t) then return hit(e, "l1") end
  if backend then
    local v, err = l2("GET", k)
    if v == nil then
      failed("get", err)
      if e then return hit(e, "l1_stale") end
    elseif v ~= false then
      local decoded = json.decode(v)
      if type(decoded) == "table" and decoded[1] ~= nil then
        local expires = type(decoded[2]) == "number" and decoded[2] or nil
        if not expires or expires > t then
          stats.l2_hits = stats.l2_hits + 1
          lookups:inc(1, "l2")
          l1_store(k, decoded[1], #v, expires)
          return decoded[1], expires
        end
      end
    end
    if e then l1:del(k) end -- Redis no longer has it: another instance cleared or replaced it
  end
  stats.misses = stats.misses + 1
  lookups:inc(1, "miss")
  return nil
end

-- The L1 entry of k without asking Redis or counting: value, expires | nil.
function M.peek(k)
  local e = l1:peek(k, now())
  if e then return e.value, e.expires end
  return nil
end

-- store(k, value[, ttl_seconds[, local_only]]) -> true. `local_only` keeps it out of
-- Redis (entries private to this process: a session's own upstream's lists).
function M.store(k, value, ttl, local_only)
  if value == nil then return M.drop(k) end
  local expires = ttl and ttl > 0 and now() + ttl or nil
  local enc = json.encode({ value, expires or json.null })
  if not enc then error("smg.cache: the value is not JSON-encodable", 2) end
  stats.sets = stats.sets + 1
  l1_store(k, value, #enc, expires)
  if backend and not local_only then
    local ok, err
    if expires then
      ok, err = l2("SET", k, enc, "PX", tostring(math.max(1, math.floor(ttl * 1000))))
    else
      ok, err = l2("SET", k, enc)
    end
    local idx = index_of(group_of(k))
    if ok and idx then
      ok, err = l2("ZADD", idx, expires and millis(expires) or "+inf", k)
      -- (Pruned on every add: the index holds the live keys, not every key ever stored.)
      if ok then ok, err = l2("ZREMRANGEBYSCORE", idx, "-inf", "(" .. millis(now())) end
      -- The index outlives its longest-lived key, and no more (a tenant that is gone
      -- leaves nothing behind).
      if ok and expires then
        local left = l2("PTTL", idx)
        local want = math.max(1, math.floor(ttl * 1000))
        if type(left) == "number" and left < want then ok, err = l2("PEXPIRE", idx, tostring(want)) end
      elseif ok then
        ok, err = l2("PERSIST", idx)
      end
    end
    if not ok then failed("set", err) end
  end
  return true
end

function M.drop(k)
  l1:del(k)
  if backend then
    -- Out of the index first: a key another instance stores again in between stays indexed.
    local idx = index_of(group_of(k))
    local ok, err = true, nil
    if idx then ok, err = l2("ZREM", idx, k) end
    if ok then ok, err = l2("DEL", k) end
    if not ok then failed("del", err) end
  end
  return true
end

-- The indexed Redis keys of a group that start with `prefix`, at most INDEX_LIMIT:
-- list | nil, err. (ZSCAN: members that stay in the index for the whole walk are all
-- seen, whatever other instances add or prune meanwhile.)
local function indexed(idx, prefix)
  local keys, n, cursor = {}, #prefix, "0"
  repeat
    local r, err = l2("ZSCAN", idx, cursor, "COUNT", tostring(INDEX_PAGE))
    if type(r) ~= "table" or type(r[2]) ~= "table" then return nil, err or "bad ZSCAN reply" end
    cursor = r[1]
    local page = r[2]
    for i = 1, #page, 2 do -- member, score, member, score...
      local k = page[i]
      if k:sub(1, n) == prefix then keys[#keys + 1] = k end
    end
  until cursor == "0" or #keys >= INDEX_LIMIT
  return keys
end

-- Forgets every entry of `tenant` in namespace `ns` (or of one of its servers), in both
-- levels. Returns how many went (Redis's count when it answered, else L1's).
function M.clear(ns, tenant, server)
  local group = M.prefix(ns, tenant)
  local prefix = server and M.prefix(ns, tenant, server) or group
  local n = 0
  l1:each(group, prefix, now(), function(k)
    l1:del(k)
    n = n + 1
  end)
  local idx = backend and index_of(group)
  if not idx then return n end
  local keys, err = indexed(idx, prefix)
  if not keys then
    failed("clear", err)
    return n
  end
  local gone = 0
  for i = 1, #keys, 60 do -- (a command takes at most 64 arguments)
    local zrem, del = { "ZREM", idx }, { "DEL" }
    for j = i, math.min(i + 59, #keys) do
      zrem[#zrem + 1] = keys[j]
      del[#del + 1] = keys[j]
    end
    -- Out of the index first (as drop does), then gone.
    local z, zerr = l2(unpack(zrem))
    local d, derr
    if type(z) == "number" then d, derr = l2(unpack(del)) end
    if type(d) ~= "number" then
      failed("clear", derr or zerr)
      return math.max(n, gone)
    end
    gone = gone + d
  end
  return math.max(n, gone)
end

-- How many entries `tenant` holds in namespace `ns`: { l1 = n, l2 = n | nil } (l2: its
-- live indexed keys, when Redis answers).
function M.count(ns, tenant)
  local group = M.prefix(ns, tenant)
  local out = { l1 = l1:group_size(group) }
  local idx = backend and index_of(group)
  if idx and l2("ZREMRANGEBYSCORE", idx, "-inf", "(" .. millis(now())) then
    local n = l2("ZCARD", idx)
    if type(n) == "number" then out.l2 = n end
  end
  return out
end

-- The Redis time to live of k in seconds (status reports), or nil.
function M.l2_expiry(k)
  if not backend then return nil end
  local ms = l2("PTTL", k)
  if type(ms) == "number" and ms > 0 then return now() + ms / 1000 end
  return nil
end

---------------------------------------------------------------------------- the binding
-- smg.cache.get/set/del: plugins' keys, in a namespace of their own.
local function pkey(key) return M.key("p", nil, nil, tostring(key)) end

function M.get(key) return (M.fetch(pkey(key))) end
function M.set(key, value, ttl) return M.store(pkey(key), value, ttl) end
function M.del(key) return M.drop(pkey(key)) end

function M.stats()
  return { backend = backend and "redis" or "local", cache_type = backend and "external" or "local",
    l1 = { entries = l1.n, bytes = l1.bytes, max_bytes = l1.max_bytes, max_entries = l1.max_entries,
      evictions = l1.evictions },
    -- (kept for callers of the one-level cache)
    entries = l1.n, max_entries = l1.max_entries,
    hits = stats.hits, l2_hits = stats.l2_hits, misses = stats.misses, sets = stats.sets,
    near_ttl = backend and near_ttl or nil, redis_state = backend and backend.redis.state or nil }
end

---------------------------------------------------------------------------- configuration
-- Applies the config (on start and on every reload): `common` is common_mcp_gateway_config,
-- `opts` gateway.cache. L1's bounds change in place (entries beyond them go at the next
-- store); a changed Redis target reconnects.
function M.configure(common, opts)
  opts = opts or {}
  l1.max_bytes = opts.max_bytes or l1.max_bytes
  l1.max_entries = opts.max_entries or l1.max_entries
  near_ttl = opts.near_ttl or near_ttl
  local want = common and common.enkrypt_mcp_use_external_cache
  local target
  if want then
    if opts.url then
      target = require("smg.config").parse_redis_url(opts.url)
    else
      local pass = common.enkrypt_cache_password
      target = { host = common.enkrypt_cache_host, port = common.enkrypt_cache_port, db = common.enkrypt_cache_db or 0,
        password = pass ~= json.null and pass or nil }
    end
    target.timeout = common.timeout_settings and common.timeout_settings.cache_timeout or 5
    if target.tls or opts.tls then
      target.tls = { ca_file = opts.tls_ca_file, cert_file = opts.tls_cert_file, key_file = opts.tls_key_file,
        server_name = opts.tls_server_name }
    end
  end
  if backend then
    local r = backend.redis
    if target and r.host == target.host and r.port == target.port and r.db == target.db
      and r.password == target.password and r.username == target.username
      and json.encode(r.tls or false) == json.encode(target.tls or false) then
      r.timeout = target.timeout
      return
    end
    r:close()
    backend = nil
  end
  if target then backend = { redis = require("smg.redis").new(target) } end
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

-- Empties L1 (tests; a process that wants a cold start).
function M.flush_local() l1 = LRU.new(l1.max_bytes, l1.max_entries) end

return M

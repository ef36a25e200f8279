-- The discovery cache: what an upstream listed (tools, prompts, resources, templates),
-- all pages merged and screened, kept in the two-level cache (smg.cache) for the
-- configured time (the seed's enkrypt_tool_cache_expiration), or less when the upstream's
-- 2026 ttlMs says so.
--
-- Scope. A shared upstream's lists are shared by every instance that runs the same server
-- spec under the same plugins (the key holds a digest of both, so a changed config never
-- reads an older list); a list the upstream marked cacheScope "private" is kept per caller
-- identity; a per-session upstream's lists stay in this process, private to that client
-- (namespace "s"). An upstream's list_changed or restart invalidates what it said.
local smg = require "smg"
local async = require "smg.async"
local cache = require "smg.cache"
local metrics = require "smg.metrics"

local Discovery = {}
Discovery.__index = Discovery

local hits_total = metrics.counter("smg_cache_hits_total", "Discovery cache hits", { "kind" })
local misses_total = metrics.counter("smg_cache_misses_total", "Discovery cache misses", { "kind" })

local METHODS = { "tools/list", "prompts/list", "resources/list", "resources/templates/list" }

-- Which cached lists a list_changed notification makes stale.
local STALE = {
  ["notifications/tools/list_changed"] = { "tools/list" },
  ["notifications/prompts/list_changed"] = { "prompts/list" },
  ["notifications/resources/list_changed"] = { "resources/list", "resources/templates/list" },
}

function Discovery.new()
  return setmetatable({ memo = setmetatable({}, { __mode = "k" }), salt = "", seq = 0, hits = 0, misses = 0,
    clearing = {} }, Discovery)
end

-- What the screened lists also depend on besides the server's spec: the plugins section
-- (set on every config load).
function Discovery:set_salt(salt) self.salt = salt or "" end

local function per_session(up) return up.session ~= nil end

-- up's key facts, recomputed when its spec or the salt changed: { ns, base, private = {} }.
local function facts(self, up)
  local m = self.memo[up]
  if m and m.spec == up.spec and m.salt == self.salt then return m end
  local base
  if per_session(up) then
    self.seq = self.seq + 1
    base = "session#" .. self.seq
  else
    base = smg.hash(smg.json.canonical(up.spec) .. "\0" .. self.salt)
  end
  m = { spec = up.spec, salt = self.salt, ns = per_session(up) and "s" or "d", base = base, keys = {},
    private = m and m.private or {} }
  self.memo[up] = m
  return m
end

-- The cache key of `method` on `up` for `session` (a private list: per identity).
local function key_of(self, up, method, session)
  local f = facts(self, up)
  if f.private[method] then
    local who = session and session.identity_key or "anonymous"
    return cache.key(f.ns, up.config_id, up.name, method .. "\0" .. f.base .. "\0" .. who), f
  end
  local k = f.keys[method]
  if not k then
    k = cache.key(f.ns, up.config_id, up.name, method .. "\0" .. f.base)
    f.keys[method] = k
  end
  return k, f
end

-- The cached list of `method` on `up` as `session` may see it, or nil (counted as a hit or
-- a miss). Yields when the first level misses and Redis is on.
function Discovery:get(up, method, session)
  local v = cache.fetch((key_of(self, up, method, session)))
  if v ~= nil then
    self.hits = self.hits + 1
    hits_total:inc(1, method)
    return v
  end
  self.misses = self.misses + 1
  misses_total:inc(1, method)
  return nil
end

-- The cached list from this process's first level only, without counting (meta tools
-- report what is known; a call's schema check reads it).
function Discovery:peek(up, method, session)
  return (cache.peek((key_of(self, up, method, session))))
end

-- Keeps `value` for `ttl` seconds; `hints` are the upstream's 2026 caching hints
-- { ttl_ms, scope }: a smaller ttlMs shortens the stay (0: not kept), "private" keeps the
-- list per identity.
function Discovery:put(up, method, value, ttl, session, hints)
  if hints and hints.ttl_ms then ttl = math.min(ttl, hints.ttl_ms / 1000) end
  if ttl <= 0 then return end
  local f = facts(self, up)
  if hints and hints.scope == "private" then f.private[method] = true end
  local k = key_of(self, up, method, session)
  cache.store(k, value, ttl, f.ns == "s")
end

-- Forgets what `up` listed: everything, or what a list_changed `notification` names. The
-- first level at once; Redis in the background (this may run outside a coroutine).
function Discovery:invalidate(up, notification)
  local methods = notification and STALE[notification] or (not notification and METHODS) or {}
  local f = facts(self, up)
  local keys, any_private = {}, false
  for _, m in ipairs(methods) do
    keys[#keys + 1] = key_of(self, up, m, nil)
    if f.private[m] then any_private = true end
  end
  async.spawn(function()
    for _, k in ipairs(keys) do cache.drop(k) end
    -- Private lists are keyed per identity: the server's lists all go, once per burst of
    -- notifications (one clear runs per server, and one more if any came meanwhile).
    if any_private then self:_clear_coalesced(f.ns, up.config_id or "", up.name) end
  end)
end

function Discovery:_clear_coalesced(ns, tenant, server)
  local id = ns .. "\0" .. tenant .. "\0" .. server
  if self.clearing[id] then
    self.clearing[id] = "again"
    return
  end
  repeat
    self.clearing[id] = true
    local ok, err = pcall(cache.clear, ns, tenant, server)
    if not ok then smg.log.error("cache: clearing private lists failed: " .. tostring(err)) end
  until not ok or self.clearing[id] ~= "again"
  self.clearing[id] = nil
end

-- Clears the lists of tenant `tenant` (an mcp_config id), or of one of its servers, in
-- both levels. Yields. Returns how many lists went.
function Discovery:clear(tenant, server_name)
  return cache.clear("d", tenant, server_name) + cache.clear("s", tenant, server_name)
end

-- The `method` list of `up` as the status reports see it (this process's first level, then
-- Redis): { exists, items, expires_at } . `up` may be a stand-in { spec, name, config_id }
-- for a shared upstream not started here.
function Discovery:entry(up, method, session)
  local k = key_of(self, up, method, session)
  local v, expires = cache.peek(k)
  if v == nil then v, expires = cache.fetch(k) end
  if v == nil then return { exists = false } end
  if not expires then expires = cache.l2_expiry(k) end
  return { exists = true, items = type(v) == "table" and #v or 0, expires_at = expires }
end

-- How many lists one tenant has cached (both levels, a list counted once).
function Discovery:count(tenant)
  local d, s = cache.count("d", tenant), cache.count("s", tenant)
  return math.max(d.l1, d.l2 or 0) + s.l1
end

return Discovery

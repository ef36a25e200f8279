-- The discovery cache: what an upstream listed (tools, prompts, resources, templates),
-- all pages merged, for the configured time (the seed's enkrypt_tool_cache_expiration).
-- Keyed by the upstream client, weakly: a client that was retired takes its entries with
-- it. An upstream's list_changed or restart invalidates what it said.
local smg = require "smg"
local metrics = require "smg.metrics"

local Discovery = {}
Discovery.__index = Discovery

local hits_total = metrics.counter("smg_cache_hits_total", "Discovery cache hits", { "kind" })
local misses_total = metrics.counter("smg_cache_misses_total", "Discovery cache misses", { "kind" })

-- Which cached lists a list_changed notification makes stale.
local STALE = {
  ["notifications/tools/list_changed"] = { "tools/list" },
  ["notifications/prompts/list_changed"] = { "prompts/list" },
  ["notifications/resources/list_changed"] = { "resources/list", "resources/templates/list" },
}

function Discovery.new()
  return setmetatable({ entries = setmetatable({}, { __mode = "k" }), hits = 0, misses = 0 }, Discovery)
end

-- The cached list of `method` on `up`, or nil (counted as a hit or a miss).
function Discovery:get(up, method)
  local c = self.entries[up]
  local e = c and c[method]
  if e and e.expires > smg.now() then
    self.hits = self.hits + 1
    hits_total:inc(1, method)
    return e.value
  end
  self.misses = self.misses + 1
  misses_total:inc(1, method)
  return nil
end

-- The cached list without counting or fetching (meta tools report what is known).
function Discovery:peek(up, method)
  local c = self.entries[up]
  local e = c and c[method]
  if e and e.expires > smg.now() then return e.value end
  return nil
end

function Discovery:put(up, method, value, ttl)
  local c = self.entries[up]
  if not c then
    c = {}
    self.entries[up] = c
  end
  local now = smg.now()
  c[method] = { value = value, expires = now + ttl, at = now }
end

-- Forgets what `up` listed: everything, or what a list_changed `notification` names.
function Discovery:invalidate(up, notification)
  if not notification then
    self.entries[up] = nil
    return
  end
  local c = self.entries[up]
  for _, m in ipairs(c and STALE[notification] or {}) do c[m] = nil end
end

-- Clears the entries of one server (by name) or of all. Returns how many lists went.
function Discovery:clear(server_name)
  local n = 0
  for up, c in pairs(self.entries) do
    if not server_name or up.name == server_name then
      for _ in pairs(c) do n = n + 1 end
      self.entries[up] = nil
    end
  end
  return n
end

-- { hits, misses, entries = { {server_name, kind, items, age_seconds, expires_in_seconds} } }
function Discovery:stats()
  local list, now = smg.json.array({}), smg.now()
  for up, c in pairs(self.entries) do
    for method, e in pairs(c) do
      list[#list + 1] = { server_name = up.name, kind = method, items = #e.value,
        age_seconds = math.floor(now - e.at), expires_in_seconds = math.floor(e.expires - now) }
    end
  end
  return { backend = "local", hits = self.hits, misses = self.misses, entries = list }
end

return Discovery

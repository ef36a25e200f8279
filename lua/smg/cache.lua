-- smg.cache: the gateway-wide key/value cache plugins share (tool pins, verdicts, tokens).
-- Local and in-process for now, with per-entry TTLs and a bound on entries; calls may
-- yield (a Redis backend will), so call them from a hook or a smg.spawn'ed coroutine.
-- Values must be JSON-encodable so that backends can be swapped without plugin changes.
local core = require "smg.core"

local M = {}

local MAX_ENTRIES = 100000
local store, count = {}, 0

local function now() return core.hrtime() end

-- get(key) -> value | nil
function M.get(key)
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

-- set(key, value[, ttl_seconds]) -> true
function M.set(key, value, ttl)
  if value == nil then return M.del(key) end
  if not store[key] then
    if count >= MAX_ENTRIES then evict() end
    count = count + 1
  end
  store[key] = { value = value, expires = ttl and ttl > 0 and now() + ttl or nil }
  return true
end

-- del(key) -> true
function M.del(key)
  if store[key] then
    store[key] = nil
    count = count - 1
  end
  return true
end

function M.stats()
  return { backend = "local", entries = count, max_entries = MAX_ENTRIES }
end

return M

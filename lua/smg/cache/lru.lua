-- The cache's first level: an in-process LRU whose entries expire, bounded both in
-- entries and in bytes (each entry's size is given by the caller, who knows it: the length
-- of its JSON plus its key). An entry may belong to a group (the cache's tenant prefix),
-- which is counted in O(1) and walked without touching the other groups' entries: a
-- tenant's status or clear never walks the whole cache. Every other operation is O(1).
-- Expiry uses the caller's clock (wall seconds), so an entry filled from Redis keeps the
-- expiry Redis gave it.
local LRU = {}
LRU.__index = LRU

-- A fixed cost per entry on top of its size: the entry table and the map slot.
local OVERHEAD = 96

function LRU.new(max_bytes, max_entries)
  local head = {}
  head.prev, head.next = head, head
  return setmetatable({ map = {}, head = head, bytes = 0, n = 0, max_bytes = max_bytes,
    max_entries = max_entries, evictions = 0, groups = {} }, LRU)
end

local function unlink(e)
  e.prev.next, e.next.prev = e.next, e.prev
end

local function push_front(head, e)
  e.prev, e.next = head, head.next
  head.next.prev = e
  head.next = e
end

local function remove(self, e)
  unlink(e)
  self.map[e.key] = nil
  self.bytes = self.bytes - e.size
  self.n = self.n - 1
  local g = e.group and self.groups[e.group]
  if g then
    g.keys[e.key] = nil
    g.n = g.n - 1
    if g.n == 0 then self.groups[e.group] = nil end
  end
end

-- The live entry of `key` (made the most recent), or nil. An expired one goes.
function LRU:entry(key, now)
  local e = self.map[key]
  if not e then return nil end
  if e.expires and e.expires <= now then
    remove(self, e)
    return nil
  end
  if self.head.next ~= e then
    unlink(e)
    push_front(self.head, e)
  end
  return e
end

-- The live entry without touching its recency (status reports).
function LRU:peek(key, now)
  local e = self.map[key]
  if e and not (e.expires and e.expires <= now) then return e end
  return nil
end

-- Stores `value` under `key` (replacing), `size` bytes, expiring at `expires` (wall
-- seconds, nil: never), in `group` (optional). The least recent entries go until both
-- bounds hold; an entry larger than the whole budget is not kept at all. Returns the
-- entry, or nil if not kept.
function LRU:set(key, value, size, expires, group)
  local old = self.map[key]
  if old then remove(self, old) end
  size = size + #key + OVERHEAD
  if size > self.max_bytes then return nil end
  local head = self.head
  while self.n > 0 and (self.bytes + size > self.max_bytes or self.n >= self.max_entries) do
    remove(self, head.prev)
    self.evictions = self.evictions + 1
  end
  local e = { key = key, value = value, size = size, expires = expires, group = group }
  push_front(head, e)
  self.map[key] = e
  self.bytes = self.bytes + size
  self.n = self.n + 1
  if group then
    local g = self.groups[group]
    if not g then
      g = { n = 0, keys = {} }
      self.groups[group] = g
    end
    g.keys[key] = e
    g.n = g.n + 1
  end
  return e
end

function LRU:del(key)
  local e = self.map[key]
  if e then remove(self, e) end
  return e ~= nil
end

-- How many entries `group` holds (an expired one counts until it is next touched).
function LRU:group_size(group)
  local g = self.groups[group]
  return g and g.n or 0
end

-- fn(key, entry) for every live entry of `group` whose key starts with `prefix` (expired
-- ones go). fn may delete the entry it is given.
function LRU:each(group, prefix, now, fn)
  local g = self.groups[group]
  if not g then return end
  local n, list = #prefix, {}
  for k in pairs(g.keys) do list[#list + 1] = k end -- (fn may change the group)
  for _, k in ipairs(list) do
    local e = self.map[k]
    if e then
      if e.expires and e.expires <= now then
        remove(self, e)
      elseif n == 0 or k:sub(1, n) == prefix then
        fn(k, e)
      end
    end
  end
end

return LRU

-- The cache's first level: an in-process LRU whose entries expire, bounded both in
-- entries and in bytes (each entry's size is given by the caller, who knows it: the length
-- of its JSON plus its key). Every operation is O(1) except the prefix scans, which only
-- the admin paths use (status, clear). Expiry uses the caller's clock (wall seconds), so
-- an entry filled from Redis keeps the expiry Redis gave it.
local LRU = {}
LRU.__index = LRU

-- A fixed cost per entry on top of its size: the entry table and the map slot.
local OVERHEAD = 96

function LRU.new(max_bytes, max_entries)
  local head = {}
  head.prev, head.next = head, head
  return setmetatable({ map = {}, head = head, bytes = 0, n = 0, max_bytes = max_bytes,
    max_entries = max_entries, evictions = 0 }, LRU)
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
-- seconds, nil: never). The least recent entries go until both bounds hold; an entry
-- larger than the whole budget is not kept at all. Returns the entry, or nil if not kept.
function LRU:set(key, value, size, expires)
  local old = self.map[key]
  if old then remove(self, old) end
  size = size + #key + OVERHEAD
  if size > self.max_bytes then return nil end
  local head = self.head
  while self.n > 0 and (self.bytes + size > self.max_bytes or self.n >= self.max_entries) do
    remove(self, head.prev)
    self.evictions = self.evictions + 1
  end
  local e = { key = key, value = value, size = size, expires = expires }
  push_front(head, e)
  self.map[key] = e
  self.bytes = self.bytes + size
  self.n = self.n + 1
  return e
end

function LRU:del(key)
  local e = self.map[key]
  if e then remove(self, e) end
  return e ~= nil
end

-- fn(key, entry) for every live entry whose key starts with `prefix` (expired ones go).
-- fn may delete the entry it is given.
function LRU:each(prefix, now, fn)
  local e, head, n = self.head.next, self.head, #prefix
  while e ~= head do
    local nxt = e.next
    if e.expires and e.expires <= now then
      remove(self, e)
    elseif e.key:sub(1, n) == prefix then
      fn(e.key, e)
    end
    e = nxt
  end
end

return LRU

-- The open client sessions and what each tenant holds: sessions per identity and per peer
-- address under their limits, idle expiry. A tenant is a project/user, or the peer
-- address when there is no auth.
local smg = require "smg"

local Tenants = {}
Tenants.__index = Tenants

function Tenants.new()
  -- n counts sessions and what is held like one (homes: `held`), against the limits.
  return setmetatable({ sessions = {}, n = 0, held = 0, by_identity = {}, by_peer = {} }, Tenants)
end

local function bump(counts, key, by)
  local n = (counts[key] or 0) + by
  counts[key] = n > 0 and n or nil
end

-- The tenant key of an identity (or, without auth, of a peer address). Memoized: a 2026
-- request needs it on every request. The peer memo is bounded (emptied when full).
local by_identity = setmetatable({}, { __mode = "k" })
local by_peer, npeers = {}, 0
function Tenants.key(identity, peer)
  if identity then
    local k = by_identity[identity]
    if not k then
      k = "id:" .. tostring(identity.project_id) .. "/" .. tostring(identity.user_id)
      by_identity[identity] = k
    end
    return k
  end
  local k = by_peer[peer or false]
  if not k then
    if npeers >= 4096 then by_peer, npeers = {}, 0 end
    k = "peer:" .. tostring(peer)
    by_peer[peer or false], npeers = k, npeers + 1
  end
  return k
end

-- nil when one more session fits the global, per-identity and per-peer limits; else the
-- limit's name and a message.
function Tenants:refusal(limits, identity_key, peer)
  if self.n >= limits.max_sessions then return "sessions", "Too many sessions" end
  if (self.by_identity[identity_key] or 0) >= limits.max_sessions_per_identity then
    return "sessions_per_identity", "Too many sessions for this identity"
  end
  if (self.by_peer[peer] or 0) >= limits.max_sessions_per_peer then
    return "sessions_per_peer", "Too many sessions from this address"
  end
  return nil
end

-- Counts `s` (by +1 or -1) against the global, per-identity and per-peer limits.
local function tally(self, s, by)
  self.n = self.n + by
  bump(self.by_identity, s.identity_key, by)
  if s.peer then bump(self.by_peer, s.peer, by) end
end

function Tenants:add(s)
  self.sessions[s.id] = s
  tally(self, s, 1)
end

-- Something that is not a session but holds what one does (an identity's home, which
-- owns per_session upstreams for 2026 requests) counts against the same limits.
function Tenants:hold(s, by)
  tally(self, s, by)
  self.held = self.held + by
end

-- Client sessions (listen streams included), not homes.
function Tenants:count() return self.n - self.held end

function Tenants:get(id) return self.sessions[id] end

-- Forgets and closes `s` (its close tells the host, which closes its upstreams).
function Tenants:remove(s, reason)
  if s.id and self.sessions[s.id] == s then
    self.sessions[s.id] = nil
    tally(self, s, -1)
  end
  s:close(reason)
end

-- Sessions idle past the limit (no request in flight, no open GET stream) are dropped;
-- one that never made a call after initialize goes sooner (clients that end without
-- DELETE leave exactly those behind).
function Tenants:sweep(limits)
  local now = smg.monotime()
  for _, s in pairs(self.sessions) do
    local limit = s.calls > 0 and limits.session_idle_timeout or limits.unused_session_timeout
    if now - s.last_seen > limit and next(s.inflight) == nil then
      local live = false
      for _, g in ipairs(s.get_streams) do if g:open() then live = true end end
      if not live then self:remove(s, "idle") end
    end
  end
end

return Tenants

-- The upstream clients of one gateway: one shared client per (mcp_config, server), and
-- for `per_session` servers one client per client session, bounded per tenant (each may
-- be a process). The pool creates, finds, retires and closes clients; it never decides
-- what a message means.
local Client = require "smg.upstream.client"
local limits = require "smg.limits"

local Pool = {}
Pool.__index = Pool

-- events: the sink every client reports to (see upstream/client.lua). settings(): the
-- current { limits, timeouts } (read per client creation, so a reload applies to new ones).
function Pool.new(events, settings)
  return setmetatable({
    events = events, settings = settings,
    shared = {},            -- "config_id/server" -> client
    by_session = {},        -- session -> { server name -> client }
    per_identity = {},      -- identity key -> per-session clients open
  }, Pool)
end

-- What a session gets for a per-session upstream past its tenant's limit: a client that
-- refuses every call with the limit's error, so callers need no second path. It is not
-- kept: the next request tries again.
local Refused = {}
Refused.__index = Refused
function Refused:ensure_ready() return nil, self.err end
function Refused:call() return nil, self.err end
function Refused:start() end
function Refused:close() end
function Refused:notify() end
function Refused:cancel() end
function Refused:describe() return { name = self.name, state = "refused", last_error = self.err.message } end

-- "config/name", made once per pair (the key is looked up on every call).
local keys = {}
local function shared_key(config_id, name)
  local by_name = keys[config_id or false]
  if not by_name then
    by_name = {}
    keys[config_id or false] = by_name
  end
  local k = by_name[name]
  if not k then
    k = tostring(config_id) .. "/" .. name
    by_name[name] = k
  end
  return k
end

-- The shared client of `spec` in mcp_config `config_id`, created on first use.
function Pool:shared_client(config_id, spec)
  local key = shared_key(config_id, spec.server_name)
  local up = self.shared[key]
  if not up then
    local s = self.settings()
    up = Client.new(spec, { events = self.events, limits = s.limits, timeouts = s.timeouts })
    up.config_id = config_id
    self.shared[key] = up
  end
  return up
end

-- The shared client if one exists (no creation): health, metrics.
function Pool:find_shared(config_id, name) return self.shared[shared_key(config_id, name)] end

-- The session's own client of `spec`. `capabilities` are the client capabilities the
-- upstream may use (what the session's client declared).
function Pool:session_client(session, spec, capabilities)
  local mine = self.by_session[session]
  local up = mine and mine[spec.server_name]
  if up then return up end
  local s = self.settings()
  local key = session.identity_key or "stdio"
  local open = self.per_identity[key] or 0
  if open >= s.limits.max_session_upstreams_per_identity then
    return setmetatable({ name = spec.server_name, spec = spec, state = "refused", err = limits.refused(
      "session_upstreams_per_identity",
      ("Too many per-session upstreams for this identity (%d); close other sessions first"):format(open)) }, Refused)
  end
  self.per_identity[key] = open + 1
  if not mine then
    mine = {}
    self.by_session[session] = mine
  end
  up = Client.new(spec, { events = self.events, limits = s.limits, timeouts = s.timeouts, session = session,
    protocol_version = session.protocol_version, client_capabilities = capabilities })
  up.config_id = session.config_id
  up.identity_key = key
  mine[spec.server_name] = up
  return up
end

-- The session's clients (server name -> client), possibly empty.
function Pool:clients_of(session) return self.by_session[session] or {} end

local function release(self, up)
  local key = up.identity_key
  local left = (self.per_identity[key] or 0) - 1
  self.per_identity[key] = left > 0 and left or nil
end

-- Takes one of a session's clients out (the caller closes or retires it).
function Pool:drop_session_client(session, name)
  local mine = self.by_session[session]
  local up = mine and mine[name]
  if not up then return nil end
  mine[name] = nil
  release(self, up)
  return up
end

-- Closes every client of a session (it ended, expired or moved to another mcp_config);
-- its tenant may open as many again.
function Pool:close_session(session)
  local mine = self.by_session[session]
  if not mine then return end
  self.by_session[session] = nil
  for _, up in pairs(mine) do
    release(self, up)
    up:close()
  end
end

-- Takes a shared client out of the pool (the caller closes or retires it).
function Pool:drop_shared(key)
  local up = self.shared[key]
  self.shared[key] = nil
  return up
end

function Pool:close_all()
  for key, up in pairs(self.shared) do
    up:close()
    self.shared[key] = nil
  end
  for session in pairs(self.by_session) do self:close_session(session) end
end

return Pool

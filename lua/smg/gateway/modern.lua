-- The gateway's side of 2026-07-28 (mcp/modern.lua has the revision's rules): what
-- server/discover answers for the configured mode, subscriptions/listen on the session
-- machinery (a listen stream is a registered session that receives list_changed and
-- resources/updated like any other, filtered and tagged), and the finishing of every
-- result: resultType, serverInfo, caching hints, and -32021 for a call whose upstream
-- needed a client capability the request did not declare.
local smg = require "smg"
local async = require "smg.async"
local modern = require "smg.mcp.modern"
local version = require "smg.mcp.version"
local rpc = require "smg.mcp.jsonrpc"

local M = {}

-- Extension capabilities (the Tasks extension, any other) belong to the upstreams: the
-- aggregate offers each one that some upstream offers (the requests that use it reach
-- the upstream that owns them). nil when none does.
local function upstream_extensions(gw, session)
  local jobs, specs = {}, gw.pipeline:servers(session)
  for i, spec in ipairs(specs) do
    jobs[i] = function()
      local init = gw.pipeline:ready(session, spec)
      return init and type(init.capabilities) == "table" and init.capabilities.extensions or nil
    end
  end
  local ext, found = nil, async.all(jobs)
  for i = 1, #specs do
    local e = found[i]
    if type(e) == "table" then
      for k, v in pairs(e) do
        ext = ext or {}
        if ext[k] == nil then ext[k] = v end
      end
    end
  end
  return ext
end

-- server/discover: the mode's capabilities (the aggregate's, or the passthrough upstream's)
-- and the revisions served.
function M.discover(gw, session, params)
  local init, err = gw.router.initialize(gw.pipeline, session, params)
  if not init then return nil, err end
  local caps = {}
  for k, v in pairs(init.capabilities or {}) do
    if k ~= "logging" then caps[k] = v end -- no logging/setLevel in this revision
  end
  if caps.resources then
    -- resources/subscribe is gone: subscriptions/listen's resourceSubscriptions replace it.
    local r = {}
    for k, v in pairs(caps.resources) do r[k] = v end
    caps.resources = r
  end
  if gw.mode ~= "passthrough" then caps.extensions = upstream_extensions(gw, session) end
  return { supportedVersions = version.ALL, capabilities = caps, instructions = init.instructions,
    serverInfo = init.serverInfo }
end

-- subscriptions/listen: the acknowledgement first, then the notifications the filter asks
-- for until the client closes the stream (the transport then removes the session). Never
-- returns a result: the stream is the answer.
-- (The transport made the session a listen stream's, Session:listen, before registering it.)
function M.listen(gw, session, params)
  session:notify("notifications/subscriptions/acknowledged", { notifications = params.notifications or {} }, nil)
  -- The resources it watches: each owner's upstream is subscribed (counted; released when
  -- the stream closes). A URI no server owns is watched for nothing.
  local filter = type(params.notifications) == "table" and params.notifications or {}
  local owner = gw.router.resource_owner
  for i, uri in ipairs(owner and type(filter.resourceSubscriptions) == "table" and filter.resourceSubscriptions or {}) do
    if i > 256 then break end -- (as many as a session may watch)
    local spec = type(uri) == "string" and owner(gw.pipeline, session, uri)
    if spec then
      local ok, err = gw.pipeline:subscribe(session, spec, uri, nil)
      if not ok then smg.log.debug(("listen: cannot watch %s: %s"):format(uri, tostring(err and err.message))) end
    end
  end
  smg.log.debug(("listen stream %s open (%d session(s))"):format(tostring(session.id), gw.tenants:count()))
  return nil, nil
end

-- The caching hints the gateway can vouch for: nothing it relays from a 2025 upstream
-- comes with a lifetime, so 0 (revalidate) unless the upstream gave one; private when
-- what a client sees depends on who it is (auth on).
local PRIVATE, PUBLIC = { ttl_ms = 0, scope = "private" }, { ttl_ms = 0, scope = "public" }
local function hints(gw) return gw.plugins.auth_enabled and PRIVATE or PUBLIC end

-- The gateway's identity in results, made once per config version (results only read it).
local infos = setmetatable({}, { __mode = "k" })
local function gateway_info(gw)
  local info = infos[gw.cfg]
  if not info then
    info = gw.pipeline:gateway_info()
    infos[gw.cfg] = info
  end
  return info
end

-- The result (or error) a modern request ends with.
function M.finish(gw, session, call, method, res, err)
  if call.missing_capability then return nil, modern.missing_capability(call.missing_capability) end
  if res == nil then
    if err and err.code == rpc.RESOURCE_NOT_FOUND then err.code = rpc.INVALID_PARAMS end -- moved in 2026
    return nil, err
  end
  -- In aggregate and meta modes the gateway is the server the client sees; in passthrough,
  -- the upstream (whose own serverInfo, when it is a 2026 server, is kept).
  local info = gateway_info(gw)
  if gw.mode ~= "passthrough" and type(res._meta) == "table" and res._meta[modern.META_SERVER_INFO] then
    res._meta[modern.META_SERVER_INFO] = info
  end
  return modern.finish(method, res, info, hints(gw))
end

return M

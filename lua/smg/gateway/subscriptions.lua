-- Resource subscriptions through the gateway. Many clients may watch one URI through one
-- upstream (a shared one above all), so they are counted per upstream and URI: the first
-- subscriber subscribes the upstream, the last one to leave (unsubscribe, or its session
-- or listen stream closing) unsubscribes it, and a restarted upstream is subscribed
-- again. A 2025 upstream gets resources/subscribe and resources/unsubscribe; a 2026-only
-- one has neither: its listen stream is opened again with the URIs in
-- resourceSubscriptions. A 2025 session subscribes with resources/subscribe; a 2026
-- client names the URIs in its subscriptions/listen filter.
local async = require "smg.async"
local log = require("smg").log

local M = {}

local held = setmetatable({}, { __mode = "k" }) -- session -> { [upstream] = { [uri] = true } }

local MAX_PER_SESSION = 256 -- URIs one session (or listen stream) may watch

local function count(mine)
  local n = 0
  for _, uris in pairs(mine) do
    for _ in pairs(uris) do n = n + 1 end
  end
  return n
end

-- `session` watches `uri` of `spec`'s upstream. Returns {} | nil, err.
function M.subscribe(pipeline, session, spec, uri, call)
  local up = pipeline:upstream(session, spec)
  local mine = held[session] or {}
  held[session] = mine
  local uris = mine[up] or {}
  mine[up] = uris
  if uris[uri] then return {} end
  if count(mine) >= MAX_PER_SESSION then
    return nil, { code = -32602, message = ("Invalid params: at most %d resource subscriptions"):format(MAX_PER_SESSION) }
  end
  local n = up.resource_uris[uri] or 0
  if n == 0 and not up:listens_for_resources() then
    local res, err = pipeline:forward(session, spec, "resources/subscribe", { uri = uri }, call)
    if res == nil then return nil, err end
  end
  up.resource_uris[uri] = (up.resource_uris[uri] or 0) + 1
  uris[uri] = true
  if n == 0 and up:listens_for_resources() then up:relisten() end
  return {}
end

-- One watcher of `uri` on `up` leaves; the last one unsubscribes the upstream.
local function release(up, uri, send)
  local n = (up.resource_uris[uri] or 1) - 1
  up.resource_uris[uri] = n > 0 and n or nil
  if n > 0 or up.state ~= "ready" then return end
  if up:listens_for_resources() then return up:relisten() end
  send(up, uri)
end

function M.unsubscribe(pipeline, session, spec, uri, call)
  local up = pipeline:upstream(session, spec)
  local uris = held[session] and held[session][up]
  if not (uris and uris[uri]) then return {} end
  uris[uri] = nil
  local res, err = {}, nil
  release(up, uri, function()
    res, err = pipeline:forward(session, spec, "resources/unsubscribe", { uri = uri }, call)
  end)
  return res, err
end

-- A session or listen stream closed: what it watched is released (unsubscribing in the
-- background where it was the last watcher).
function M.release_all(session)
  local mine = held[session]
  if not mine then return end
  held[session] = nil
  for up, uris in pairs(mine) do
    for uri in pairs(uris) do
      release(up, uri, function()
        async.spawn(function()
          local _, err = up:call("resources/unsubscribe", { uri = uri }, { timeout = 10 })
          if err then log.debug(("upstream %s: resources/unsubscribe %s: %s"):format(up.name, uri, tostring(err.message))) end
        end)
      end)
    end
  end
end

-- A 2025 upstream that (re)started has forgotten its subscriptions: asked again.
function M.restore(up)
  if up:listens_for_resources() or next(up.resource_uris) == nil then return end
  async.spawn(function()
    for uri in pairs(up.resource_uris) do
      local _, err = up:call("resources/subscribe", { uri = uri }, { timeout = 10 })
      if err then log.warn(("upstream %s: cannot subscribe again to %s: %s"):format(up.name, uri, tostring(err.message))) end
    end
  end)
end

return M

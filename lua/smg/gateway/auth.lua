-- Client authentication through the configured auth plugin (plugins.auth.provider).
-- Every HTTP request is authenticated, not only initialize: a session id is never a
-- credential. Verdicts for a credential are cached briefly so the hot path pays a table
-- lookup; a failed verdict is never cached.
local smg = require "smg"
local plugins = require "smg.plugins"
local log = smg.log

local M = {}

local CACHE_SECONDS = 30
local MAX_CACHE = 10000

-- Loads the provider; returns true when auth is configured, false when not.
function M.setup(gw)
  local ref = gw.cfg.plugins.auth
  if type(ref.provider) ~= "string" or ref.provider == "" then return false end
  local p, err = plugins.load("auth", ref.provider, ref.config)
  if not p then
    -- Fail closed: every request is refused until the config is fixed.
    gw.auth_error = err
    log.error("auth plugin not loaded (all requests will be refused): " .. tostring(err))
  end
  gw.auth_plugin = p
  gw.auth_cache, gw.auth_cache_n = {}, 0
  return true
end

-- The request's credentials as the plugin sees them, and a cache key for them.
function M.credentials(req)
  local h = { apikey = req:header("apikey"), ["x-api-key"] = req:header("x-api-key"),
    authorization = req:header("authorization") }
  return { headers = h, transport = "http" },
    (h.apikey or "") .. "\0" .. (h["x-api-key"] or "") .. "\0" .. (h.authorization or "")
end

function M.cached(gw, key)
  local hit = gw.auth_cache[key]
  if hit and hit.expires > smg.monotime() then return hit.identity end
  return nil
end

-- Runs the plugin (yields). Returns identity | nil, status, reason.
function M.authenticate(gw, creds, key)
  if gw.auth_error then return nil, 503, "authentication is unavailable" end
  local p = gw.auth_plugin
  local ok, res, why = plugins.run_hook_multi(p, "authenticate", gw.timeouts.auth_timeout, creds, p.config, gw.cfg)
  if not ok then return nil, 503, "authentication failed: " .. tostring(res) end
  if type(res) ~= "table" then return nil, 401, why or "unauthorized" end
  if key then
    if gw.auth_cache_n >= MAX_CACHE then gw.auth_cache, gw.auth_cache_n = {}, 0 end
    gw.auth_cache[key] = { identity = res, expires = smg.monotime() + CACHE_SECONDS }
    gw.auth_cache_n = gw.auth_cache_n + 1
  end
  return res
end

return M

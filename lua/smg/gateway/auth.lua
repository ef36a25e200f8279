-- Client authentication through the configured auth plugin (plugins.auth.provider).
-- Every HTTP request is authenticated, not only initialize: a session id is never a
-- credential. Verdicts for a credential are cached briefly so the hot path pays a table
-- lookup; a failed verdict is never cached, and a reload starts a new cache (a disabled key
-- stops working at once).
local smg = require "smg"
local plugins = require "smg.plugins"
local metrics = require "smg.metrics"

local M = {}

local CACHE_SECONDS = 30
local MAX_CACHE = 10000

local failures = metrics.counter("smg_auth_failures_total", "Requests refused by authentication", { "reason" })

-- The cache key of a request's credentials: all a cache hit needs.
function M.cache_key(req)
  return (req:header("apikey") or "") .. "\0" .. (req:header("x-api-key") or "") .. "\0"
    .. (req:header("authorization") or "")
end

-- The request's credentials as the plugin sees them (built only on a cache miss).
function M.credentials(req)
  return { headers = { apikey = req:header("apikey"), ["x-api-key"] = req:header("x-api-key"),
    authorization = req:header("authorization") }, transport = "http", host = req:header("host"), path = req:path() }
end

function M.cached(gw, key)
  local hit = gw.plugins.auth_cache[key]
  if hit and hit.expires > smg.monotime() then return hit.identity end
  return nil
end

-- The caller's validated bearer token an auth plugin handed over (identity.subject_token,
-- for token exchange) is taken out of the identity, which guardrail, audit and telemetry
-- plugins see: only the upstream OAuth client reads it, through subject_of.
local subjects = setmetatable({}, { __mode = "k" }) -- identity -> token

function M.subject_of(identity) return identity and subjects[identity] end

-- Runs the plugin (yields). Returns identity | nil, status, reason, challenge.
function M.authenticate(gw, creds, key)
  local set = gw.plugins
  if set.auth_error then
    failures:inc(1, "unavailable")
    return nil, 503, "authentication is unavailable"
  end
  local p = set.auth
  local t0 = smg.monotime()
  local ok, res, why = plugins.run_hook(p, "authenticate", gw.timeouts.auth_timeout, creds, p.config, gw.cfg)
  gw.budgets:record(gw.timeouts, "auth", smg.monotime() - t0, gw.timeouts.auth_timeout, not ok and res == "timeout")
  if not ok then
    failures:inc(1, res)
    return nil, 503, "authentication failed: " .. tostring(res)
  end
  if type(res) ~= "table" then
    failures:inc(1, "rejected")
    -- A reason may be {message, status}: 403 for a valid token lacking scope (RFC 6750 3.1).
    local status = 401
    if type(why) == "table" then status, why = tonumber(why.status) or 401, why.message end
    why = why and tostring(why) or "unauthorized"
    local ok2, challenge = true, 'Bearer realm="smg"'
    if p.challenge then ok2, challenge = pcall(p.challenge, creds, p.config, why) end
    return nil, status, why, ok2 and challenge or 'Bearer realm="smg"'
  end
  if res.subject_token ~= nil then
    if type(res.subject_token) == "string" then subjects[res] = res.subject_token end
    res.subject_token = nil
  end
  if key and set == gw.plugins then
    local cache = set.auth_cache
    if set.auth_cache_n >= MAX_CACHE then
      cache = {}
      set.auth_cache, set.auth_cache_n = cache, 0
    end
    -- A token that expires sooner than the cache entry must not outlive its expiry here.
    local ttl = CACHE_SECONDS
    if type(res.expires_at) == "number" then ttl = math.min(ttl, res.expires_at - smg.now()) end
    if ttl > 0 then
      cache[key] = { identity = res, expires = smg.monotime() + ttl }
      set.auth_cache_n = set.auth_cache_n + 1
    end
  end
  return res
end

return M

-- `smg serve`: the command line, start-up (config, listener or stdio, signals, hot
-- reload, the session sweeper, upstreams started ahead of need) and the graceful stop.
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local config = require "smg.config"
local plugins = require "smg.plugins"
local reload = require "smg.gateway.reload"
local Session = require "smg.mcp.session"
local parking = require "smg.gateway.parking"
local log = smg.log

local M = {}

-- Developer knob: LuaJIT's sampling profiler (jit.p) from start to shutdown.
local PROFILE = os.getenv("SMG_JIT_PROFILE")

local function parse_args(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function val()
      i = i + 1
      if args[i] == nil then error("option " .. a .. " needs a value", 0) end
      return args[i]
    end
    if a == "--config" or a == "-c" then o.config = val()
    elseif a == "--stdio" then o.stdio = true
    elseif a == "--host" then o.host = val()
    elseif a == "--port" or a == "-p" then o.port = tonumber(val())
    elseif a == "--mode" then o.mode = val()
    elseif a == "--log-level" then o.log_level = val()
    elseif a == "--insecure" then o.insecure = true
    else error("unknown option " .. a, 0) end
    i = i + 1
  end
  return o
end

-- Calls whose client still waits for an answer: sessions' calls, and 2026 requests (each
-- on a session of its own) but those parked after answering input_required.
local function count_inflight(gw)
  local n = Session.requests_alone() - parking.answered(gw)
  gw:each_session(function(s) n = n + s.ninflight end)
  return n
end

-- Graceful stop: refuse new work, let calls in flight finish (up to shutdown_grace),
-- then end sessions and stop every upstream (stdin close -> SIGTERM -> SIGKILL).
-- Upstream OAuth tokens configured to go with the process (OAUTH_REVOKE_ON_SHUTDOWN).
local function revoke_tokens(gw)
  local oauth = require "smg.upstream.oauth"
  for id, mc in pairs(gw.cfg.mcp_configs) do
    for _, spec in ipairs(mc.mcp_config or {}) do
      local c = oauth.of(spec)
      if c and c.OAUTH_REVOKE_ON_SHUTDOWN then
        local ok, err = oauth.revoke(spec, id, 5)
        if not ok then log.warn(("oauth %s: revocation at shutdown failed: %s"):format(spec.server_name, err)) end
      end
    end
  end
end

function M.shutdown(gw, reason)
  if gw.draining then return end
  gw.draining = true
  log.info("shutting down (" .. tostring(reason) .. "); draining " .. count_inflight(gw) .. " call(s)")
  if gw.http_server then gw.http_server:close() end
  if gw.admin_server then gw.admin_server:close() end
  if gw.sweeper then gw.sweeper:close() end
  async.spawn(function()
    local deadline = smg.monotime() + gw.cfg.gateway.shutdown_grace
    while count_inflight(gw) > 0 and smg.monotime() < deadline do smg.sleep(0.05) end
    local left = count_inflight(gw)
    if left > 0 then log.warn(left .. " call(s) still running at the end of the grace period") end
    for _, p in ipairs(gw.plugins.telemetry) do
      if p.shutdown then plugins.run_hook(p, "shutdown", 5) end
    end
    if gw.audit then
      -- The chain's head, for anchoring it elsewhere: an edit to the very last line is only
      -- visible against a head recorded outside the file.
      local a = gw.audit
      a:close(5)
      log.info(("audit log %s: %d records, head %s"):format(a.cfg.path, a.seq, a.prev))
    end
    revoke_tokens(gw)
    for _, s in pairs(gw.tenants.sessions) do gw:remove_session(s, "shutdown") end
    parking.close_all(gw)
    if gw.stdio_session then gw.stdio_session:close("shutdown") end
    gw.pool:close_all()
    require("smg.gateway.cluster").stop(gw.cluster)
    smg.cache.close()
    local n = smg.http.cancel_all("smg is shutting down")
    if n > 0 then log.info(("cancelled %d plugin HTTP request(s) still in flight"):format(n)) end
    for _, sig in ipairs(gw.signals or {}) do sig:close() end
    for _, w in ipairs(gw.watches or {}) do w:close() end
    if gw.reload_timer then gw.reload_timer:close() end
    if gw.stdio_session then core.stdio_close() end
    if M.profile_fd then
      require("jit.p").stop()
      core.close_fd(M.profile_fd)
      M.profile_fd = nil
    end
    log.info("stopped")
  end)
end

function M.run(Gateway, args)
  local okp, o = pcall(parse_args, args)
  if not okp then return nil, o, 2 end -- a usage error
  local cfg, list, source = config.load({ path = o.config })
  if not cfg then
    return nil, source .. " is invalid:\n  " .. table.concat(list, "\n  ")
  end
  for _, w in ipairs(list) do log.warn(source .. ": " .. w) end
  local lvl = (o.log_level or cfg.common_mcp_gateway_config.enkrypt_log_level or "INFO"):lower()
  if not pcall(core.log_level, lvl) then log.warn("unknown log level " .. lvl) end
  if o.host then cfg.gateway.host = o.host end
  if o.port then cfg.gateway.port = o.port end
  if o.mode then
    if not Gateway.ROUTERS[o.mode] then return nil, "unknown mode " .. o.mode end
    cfg.gateway.mode = o.mode
  end
  local ephemeral_key
  if not o.stdio and cfg.is_default and cfg.plugins.auth.provider == "local_apikey" and next(cfg.apikeys) == nil then
    -- The embedded default ships no keys: mint one for this run and show it once.
    ephemeral_key = "smg-" .. smg.random_hex(24)
    cfg.apikeys[ephemeral_key] = { project_id = "default_project", user_id = "default_user", disabled = false }
    cfg.ephemeral_key = ephemeral_key
  end
  -- Telemetry that writes to stdout must not corrupt the MCP stream in stdio mode.
  smg.stdio_transport = o.stdio == true
  -- A plugin must not be able to end the gateway: os.exit becomes an error it can catch
  -- (and the hook runner logs). smg itself stops through core.stop.
  os.exit = function() -- luacheck: ignore 122
    error("os.exit is not available inside the gateway; return an error from the hook instead", 2)
  end
  if PROFILE and PROFILE ~= "" then
    -- e.g. SMG_JIT_PROFILE=Fl or fv, until shutdown. The output file is created like every
    -- file smg writes (0600, no symlink); jit.p writes through the descriptor's path.
    local out = os.getenv("SMG_JIT_PROFILE_OUT") or "smg-profile.txt"
    local fd, ferr = core.open_private(out, true)
    if not fd then return nil, "SMG_JIT_PROFILE_OUT: " .. ferr end
    M.profile_fd = fd
    require("jit.p").start(PROFILE, "/proc/self/fd/" .. fd)
  end
  local gw = Gateway.new(cfg)
  if gw.audit_error then return nil, gw.audit_error end
  gw.insecure = o.insecure == true
  local rok, rerr = gw.router.check(gw.pipeline)
  if not rok then return nil, rerr end
  gw.signals = {
    core.signal("SIGINT", function()
      if gw.draining then core.stop(130) else gw:shutdown("SIGINT") end
    end),
    core.signal("SIGTERM", function() gw:shutdown("SIGTERM") end),
    core.signal("SIGHUP", function() reload.request(gw, "SIGHUP") end),
  }
  if cfg.gateway.watch then reload.watch(gw) end
  gw.cluster = require("smg.gateway.cluster").start(gw)
  if o.stdio then return require("smg.gateway.stdio").serve(gw) end
  local server, err = require("smg.gateway.http").listen(gw)
  if not server then return nil, err end
  gw.http_server = server
  local every = math.max(1, math.min(15, cfg.gateway.limits.unused_session_timeout / 4))
  gw.sweeper = smg.timer(every, function() gw:sweep_sessions() end, every)
  local g = cfg.gateway
  local host = g.host:find(":") and ("[" .. g.host .. "]") or g.host
  log.info(("smg %s serving MCP on http://%s:%d%s (mode %s, %d server(s), config %s)"):format(smg.version, host,
    server:port(), g.path, gw.mode, #gw.pipeline:servers(nil), cfg.is_default and "embedded default" or cfg.source))
  if ephemeral_key then
    -- Printed for the operator once, outside the log, which never carries keys.
    io.stderr:write(("\nAPI key for this run (send it as X-API-Key or Authorization: Bearer): %s\n\n"):format(ephemeral_key))
    io.stderr:flush()
  elseif not gw.plugins.auth_enabled then
    log.warn("no auth plugin configured (plugins.auth.provider): every local client is trusted")
  end
  -- Start shared upstreams ahead of need so the first call does not pay for the spawn.
  for _, spec in ipairs(gw.pipeline:servers(nil)) do
    if spec.sharing ~= "per_session" then gw.pipeline:upstream(nil, spec):start() end
  end
  return true, gw
end

return M

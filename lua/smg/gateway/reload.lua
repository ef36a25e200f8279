-- Hot reload: the config file and the plugin directories are watched (uv_fs_event),
-- SIGHUP asks for a reload, and so can the admin API (reload.run). A reload reads and
-- validates the new config and loads every plugin it names beside the running version;
-- only when all of that succeeded is the new version swapped in, in one step, for new
-- requests. Calls in flight finish on the version they started with. Anything broken
-- leaves the running version in place and is reported (log, telemetry, return value).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local config = require "smg.config"
local plugins = require "smg.plugins"
local plugin_set = require "smg.gateway.plugin_set"
local telemetry = require "smg.gateway.telemetry"
local metrics = require "smg.metrics"
local json = smg.json
local log = smg.log

local M = {}

local reloads = metrics.counter("smg_reloads_total", "Config and plugin reloads by outcome", { "result" })

-- What identifies an upstream process: a change here means a new process.
local function fingerprint(spec)
  local c = spec.config
  return json.encode({ c.command or json.null, c.args or {}, c.env or {}, c.cwd or json.null, c.url or json.null,
    c.headers or {}, spec.sharing, spec.oauth_config or json.null, spec.sandbox or json.null,
    c.transport or json.null }) or ""
end

-- Closes an upstream once its calls in flight are done (or the tool timeout passed).
local function retire(gw, up)
  async.spawn(function()
    local deadline = smg.monotime() + gw.timeouts.tool_execution_timeout
    while (up.npending or 0) > 0 and smg.monotime() < deadline do smg.sleep(0.05) end
    up:close()
  end)
end

-- Keeps `up` when its server is still configured the same (it reads its spec, with the new
-- policies and tool lists, from here on), else retires it. Returns whether it was kept.
local function keep_or_retire(gw, up, spec)
  if spec and fingerprint(spec) == fingerprint(up.spec) then
    up.spec = spec
    return true
  end
  retire(gw, up)
  return false
end

-- Upstreams whose server left the config or changed are taken out of the pool (new calls
-- get a fresh one) and closed once their in-flight calls are done.
local function spec_in(gw, config_id, name)
  local mc = config_id and gw.cfg.mcp_configs[config_id]
  for _, s in ipairs(mc and mc.mcp_config or {}) do
    if s.server_name == name then return s end
  end
  return nil
end

local function retire_changed(gw)
  local pool = gw.pool
  for key, up in pairs(pool.shared) do
    local spec = spec_in(gw, up.config_id, up.name)
    if not keep_or_retire(gw, up, spec) then
      pool:drop_shared(key)
      log.info(("upstream %s changed in the config: starting the new one, retiring the old"):format(up.name))
      if spec and spec.sharing ~= "per_session" then pool:shared_client(up.config_id, spec):start() end
    end
  end
  for session, mine in pairs(pool.by_session) do
    for name, up in pairs(mine) do
      local spec = spec_in(gw, session.config_id, name)
      if not (spec and fingerprint(spec) == fingerprint(up.spec)) then
        retire(gw, pool:drop_session_client(session, name))
      else
        up.spec = spec
      end
    end
  end
end

-- What a session of mcp_config `id` can see, as a string: its servers and everything that
-- decides their lists. Equal strings, equal views.
local function view(cfg, id)
  local mc = cfg.mcp_configs[id or ""]
  if not mc then return "" end
  local parts = {}
  for _, s in ipairs(mc.mcp_config) do
    parts[#parts + 1] = json.encode({ s.server_name, fingerprint(s), s.allow_tools, s.deny_tools, s.tools,
      s.enable_tool_guardrails }) or ""
  end
  return table.concat(parts, "\n")
end

-- After a swap: each open session follows its project to the mcp_config the new version
-- gives it (its per-session upstreams of the old one close), and every session whose
-- view changed is told, once per list kind (coalesced by Session:list_changed).
local function follow_and_notify(gw, old_cfg)
  local old_views, new_views = {}, {}
  local function changed(id)
    if old_views[id] == nil then old_views[id] = view(old_cfg, id) end
    if new_views[id] == nil then new_views[id] = view(gw.cfg, id) end
    return old_views[id] ~= new_views[id]
  end
  gw:each_session(function(s)
    -- A session that moves is told by follow; one that stays, when its view changed.
    if not gw:follow(s, gw:config_for(s.identity)) and gw.mode ~= "meta" and s.initialized
      and changed(s.config_id) then
      for _, m in ipairs(gw.LIST_CHANGED) do s:list_changed(m) end
    end
  end)
end

-- Settings the running listener was built with; a change needs a restart.
local FIXED = { "host", "port", "path", "mode", "passthrough_server", "metrics_path" }

-- Loads and validates the next version. Returns true | nil, errors (a list).
function M.run(gw, why)
  if gw.watched then M.watch(gw) end -- a folder plugin may have appeared
  local old = gw.cfg
  local cfg, list = config.load({ path = old.is_default and nil or old.source })
  if not cfg then
    reloads:inc(1, "invalid")
    log.error(("reload (%s) refused: %s is invalid; still running the previous version:\n  %s"):format(why,
      old.source, table.concat(list, "\n  ")))
    telemetry.reloaded(gw, false, table.concat(list, "; "))
    return nil, list
  end
  -- The listener, the mode and command-line overrides stay as they are.
  for _, k in ipairs(FIXED) do
    if old.raw.gateway and cfg.raw.gateway and cfg.gateway[k] ~= old.gateway[k]
      and json.encode(cfg.raw.gateway[k]) ~= json.encode(old.raw.gateway[k]) then
      log.warn(("reload: gateway.%s changed; that takes a restart (keeping %s)"):format(k, tostring(old.gateway[k])))
    end
  end
  cfg.gateway = old.gateway
  if old.ephemeral_key then
    cfg.ephemeral_key = old.ephemeral_key
    cfg.apikeys[old.ephemeral_key] = old.apikeys[old.ephemeral_key]
  end
  local set, errors = plugin_set.build(cfg)
  if #errors > 0 then
    reloads:inc(1, "plugin_error")
    log.error(("reload (%s) refused: %d plugin(s) failed to load; still running the previous version:\n  %s"):format(
      why, #errors, table.concat(errors, "\n  ")))
    telemetry.reloaded(gw, false, table.concat(errors, "; "))
    return nil, errors
  end
  for _, w in ipairs(list) do log.warn(cfg.source .. ": " .. w) end
  local old_set = gw.plugins
  gw:apply(cfg, set)
  retire_changed(gw)
  follow_and_notify(gw, old)
  for _, p in ipairs(old_set.telemetry) do
    if p.shutdown then async.spawn(plugins.run_hook, p, "shutdown", 5) end
  end
  reloads:inc(1, "ok")
  if gw.cluster then require("smg.gateway.cluster").changed(gw.cluster, gw) end
  log.info(("reloaded (%s): config generation %d, %d guardrail(s), %d telemetry provider(s)"):format(why,
    gw.generation, #set.guardrail_list, #set.telemetry))
  telemetry.reloaded(gw, true)
  return true
end

-- Coalesces requests: those arriving before the debounce timer fires share one reload,
-- which reads the files when it runs, so the last change is always seen.
function M.request(gw, why)
  if gw.reload_timer then return end
  gw.reload_timer = smg.timer(gw.cfg.gateway.reload_debounce, function()
    gw.reload_timer:close()
    gw.reload_timer = nil
    if gw.draining then return end
    local ok, err = xpcall(M.run, debug.traceback, gw, why)
    if not ok then log.error("reload failed: " .. tostring(err)) end
  end)
end

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

-- Watches the config file's directory (editors replace files by rename, which a watch on
-- the file itself would lose) and every plugin kind directory, plus folder plugins; called
-- again after each reload so a folder plugin created meanwhile is watched too.
function M.watch(gw)
  gw.watches = gw.watches or {}
  gw.watched = gw.watched or {}
  local function add(dir, filter)
    if gw.watched[dir] then return end
    local w = core.fs_watch(dir, function(name)
      if filter(name) then M.request(gw, "changed: " .. name) end
    end)
    if w then
      gw.watched[dir] = true
      gw.watches[#gw.watches + 1] = w
    end
  end
  -- The pins file: a decision made with `smg pins` applies to running sessions.
  local pins = smg.pins.path()
  local pins_dir, pins_base = pins and dirname(pins), pins and pins:match("([^/]+)$")
  local function pins_event(name)
    if name == pins_base then gw:pins_changed() end
  end
  if not gw.cfg.is_default then
    local base = gw.cfg.source:match("([^/]+)$")
    local dir = dirname(gw.cfg.source)
    add(dir, function(name)
      if dir == pins_dir then pins_event(name) end
      return name == base
    end)
  end
  if pins_dir and (gw.cfg.is_default or pins_dir ~= dirname(gw.cfg.source)) then
    add(pins_dir, function(name)
      pins_event(name)
      return false
    end)
  end
  for _, dir in ipairs(plugins.dirs()) do
    for _, kind in ipairs({ "auth", "guardrails", "telemetry" }) do
      local kdir = dir .. "/" .. kind
      add(kdir, function(name) return name:match("%.lua$") ~= nil or not name:find("%.") end)
      for _, e in ipairs(core.fs_list(kdir) or {}) do
        if e.type == "dir" then add(kdir .. "/" .. e.name, function(n) return n:match("%.lua$") ~= nil end) end
      end
    end
  end
  return #gw.watches
end

return M

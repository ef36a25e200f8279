-- `smg system ...`: the seed's health check, backup, restore and reset of the config file,
-- and start-api / stop-api for the admin REST API on its own.
local smg = require "smg"
local core = require "smg.core"
local config = require "smg.config"
local store = require "smg.store"

local json = smg.json

-- Whether `cmd` can be run: a path that is an executable file, or a name found on PATH.
local function runnable(cmd)
  if type(cmd) ~= "string" or cmd == "" then return false end
  if cmd:find("/", 1, true) then return os.execute("test -x '" .. cmd:gsub("'", "'\\''") .. "'") == 0 end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if os.execute("test -x '" .. (dir .. "/" .. cmd):gsub("'", "'\\''") .. "'") == 0 then return true end
  end
  return false
end

local C = {}

C["health-check"] = { flags = {}, help = "Check the config file, its plugins and every stdio server's command",
  text = function(v)
    local lines = { ("status: %s"):format(v.status) }
    for _, c in ipairs(v.checks) do lines[#lines + 1] = ("  %-4s %s"):format(c.ok and "ok" or "FAIL", c.check) end
    return table.concat(lines, "\n")
  end,
  run = function(_, ctx)
    local checks = json.array({})
    local function check(name, ok, detail)
      checks[#checks + 1] = { check = name, ok = ok and true or false, detail = detail }
    end
    local cfg, errs = config.load({ path = ctx.path })
    check("config " .. ctx.path .. " is valid", cfg ~= nil, cfg and nil or table.concat(errs, "; "))
    if cfg then
      local _, perrs = require("smg.gateway.plugin_set").build(cfg)
      check("plugins load", #perrs == 0, #perrs > 0 and table.concat(perrs, "; ") or nil)
      local ids = {}
      for id in pairs(cfg.mcp_configs) do ids[#ids + 1] = id end
      table.sort(ids)
      for _, id in ipairs(ids) do
        for _, s in ipairs(cfg.mcp_configs[id].mcp_config) do
          if s.config.command then
            check(("server %s/%s: command %s"):format(id, s.server_name, s.config.command), runnable(s.config.command))
          end
        end
      end
    end
    local ok = true
    for _, c in ipairs(checks) do ok = ok and c.ok end
    local v = { status = ok and "healthy" or "unhealthy", checks = checks }
    if not ok then core.set_exit_code(1) end
    return v
  end }

C.backup = { flags = { { "--output-file", required = true, help = "where to write the copy (0600; `-`: print it)" } },
  help = "Copy the whole config file", text = function(v)
    return v.output_file and ("backed up to " .. v.output_file) or core.json_pretty(json.canonical(v.config)) end,
  run = function(opts, ctx)
    local text, err = smg.read_file(ctx.path)
    if not text then return nil, err end
    if opts.output_file == "-" then
      local doc, derr = json.decode(text)
      if type(doc) ~= "table" then return nil, ctx.path .. ": " .. tostring(derr) end
      return { config_path = ctx.path, config = doc }
    end
    local ok, werr = core.write_durable(opts.output_file, text)
    if not ok then return nil, werr end
    return { config_path = ctx.path, output_file = opts.output_file, bytes = #text }
  end }

-- How many entries each section of a config document holds (what a restore reports).
local function sections(doc)
  local n = {}
  for _, k in ipairs({ "mcp_configs", "projects", "users", "apikeys" }) do
    local c = 0
    for _ in pairs(type(doc[k]) == "table" and doc[k] or {}) do c = c + 1 end
    n[k] = c
  end
  return n
end

-- The current file's admin_apikey, if any: kept by restore and reset when the new document
-- has none, so that an admin API that runs either does not lock itself out.
local function current_admin_key(path)
  local doc = store.read(path)
  return type(doc) == "table" and type(doc.admin_apikey) == "string" and doc.admin_apikey ~= "" and doc.admin_apikey or nil
end

C.restore = { flags = { { "--input-file", help = "a backup to restore" }, { "--input", help = "the backup itself, JSON" } },
  one_of = { { "--input-file", "--input" } },
  help = "Replace the config with a backup (validated first; the current one is kept as <config>.bak.1;\n"
    .. "a backup without admin_apikey keeps the current one)",
  text = function(v)
    return ("restored %s: %d config(s), %d project(s), %d user(s), %d API key(s)%s"):format(v.config_path,
      v.sections.mcp_configs, v.sections.projects, v.sections.users, v.sections.apikeys,
      v.admin_apikey_kept and "; admin_apikey kept" or "")
  end,
  run = function(opts, ctx)
    local source = opts.input and "--input" or ("--input-file " .. tostring(opts.input_file))
    local text, err = opts.input, nil
    if not text then text, err = smg.read_file(opts.input_file) end
    if not text then return nil, source .. ": " .. tostring(err) end
    local doc, jerr = json.decode(text)
    if type(doc) ~= "table" or json.is_array(doc) then
      return nil, source .. ": not a JSON object: " .. tostring(jerr or "an array"), 2
    end
    -- Every section has a default, so `{}` would validate and wipe every server, user and
    -- key: a backup must at least hold the servers.
    if type(doc.mcp_configs) ~= "table" or json.is_array(doc.mcp_configs) then
      return nil, source .. ": not a config backup (it has no mcp_configs object); nothing was changed", 2
    end
    local kept = false
    if doc.admin_apikey == nil then
      doc.admin_apikey = current_admin_key(ctx.path)
      kept = doc.admin_apikey ~= nil
    end
    local ok, serr = store.create(ctx.path, doc)
    if not ok then return nil, "refused: " .. tostring(serr) end
    return { config_path = ctx.path, input_file = opts.input_file, sections = sections(doc),
      admin_apikey_kept = kept }
  end }

C.reset = { flags = { { "--confirm", boolean = true, help = "really replace the config" } },
  help = "Replace the config with a fresh default one (the current one is kept as <config>.bak.1;\n"
    .. "the current admin_apikey is kept)",
  text = function(v)
    return ("reset %s\ngateway_key: %s%s"):format(v.config_path, v.gateway_key,
      v.admin_apikey and ("\nadmin_apikey: " .. v.admin_apikey) or "")
  end,
  run = function(opts, ctx)
    if not opts.confirm then return nil, "reset replaces the whole config: run it again with --confirm", 2 end
    local doc, ids = require("smg.cli.generate").document()
    local old_admin = current_admin_key(ctx.path)
    doc.admin_apikey = old_admin or doc.admin_apikey
    local ok, err = store.create(ctx.path, doc)
    if not ok then return nil, err end
    local cli = require "smg.cli"
    -- As generate-config: the new gateway key whole, a new admin key masked unless --show-secrets.
    return { config_path = ctx.path, gateway_key = ids.gateway_key,
      admin_apikey = not old_admin and cli.key_out(ctx, doc.admin_apikey) or nil }
  end }

---------------------------------------------------------------------------- the admin API
local function pid_file(path, port) return ("%s.admin-%s.pid"):format(path, tostring(port)) end

C["start-api"] = { flags = { { "--host", help = "address to listen on (default gateway.admin.host: 127.0.0.1)" },
  { "--port", help = "port (default gateway.admin.port: 8001)" },
  { "--reload", boolean = true, help = "accepted for the seed's scripts: the config is always reread when it changes" } },
  help = "Run the admin REST API alone (no gateway), until SIGINT or SIGTERM", run = function(opts, ctx)
    local cfg, errs = config.load({ path = ctx.path })
    if not cfg then return nil, ctx.path .. " is invalid: " .. table.concat(errs, "; ") end
    local port = tonumber(opts.port or cfg.gateway.admin.port)
    if not port then return nil, "--port: not a number", 2 end
    if not ctx.start_admin then return nil, "the admin API is not available here" end
    local state = { key = cfg.admin_apikey }
    -- (The admin layer sits above this one: smg's main hands its starter in.)
    local server, err = ctx.start_admin(cfg, { host = opts.host, port = port, admin_key = function() return state.key end })
    if not server then return nil, err end
    -- The key follows the file: a rotated admin_apikey applies without a restart.
    local dir, base = ctx.path:match("^(.*)/([^/]+)$")
    state.watch = core.fs_watch(dir or ".", function(name)
      if name == (base or ctx.path) then
        local fresh = config.load({ path = ctx.path })
        if fresh then state.key = fresh.admin_apikey end
      end
    end)
    local pidf = pid_file(ctx.path, server:port())
    core.write_durable(pidf, tostring(core.getpid()) .. "\n")
    local function stop()
      os.remove(pidf)
      server:close()
      if state.watch then state.watch:close() end
      core.stop(0)
    end
    state.signals = { core.signal("SIGINT", stop), core.signal("SIGTERM", stop) }
    io.stderr:write(("smg admin API on http://%s:%d (config %s)\n"):format(opts.host or cfg.gateway.admin.host,
      server:port(), ctx.path))
    return true
  end }

C["stop-api"] = { flags = { { "--port", help = "the port it listens on (default 8001)" },
  { "--force", boolean = true, help = "SIGKILL instead of SIGTERM" } },
  help = "Stop an admin API `smg system start-api` started", text = function(v) return "stopped pid " .. v.pid end,
  run = function(opts, ctx)
    local pidf = pid_file(ctx.path, opts.port or 8001)
    local text = smg.read_file(pidf)
    local pid = text and tonumber(text:match("%d+"))
    if not pid then return nil, ("no admin API of %s runs on port %s"):format(ctx.path, tostring(opts.port or 8001)) end
    if os.execute(("kill -%s %d 2>/dev/null"):format(opts.force and "KILL" or "TERM", pid)) ~= 0 then
      os.remove(pidf)
      return nil, ("pid %d is not running"):format(pid)
    end
    if opts.force then os.remove(pidf) end
    return { pid = pid }
  end }

return { summary = "Health check, backup, restore and reset of the config file; the admin API.", commands = C }

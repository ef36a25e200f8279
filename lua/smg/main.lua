-- The smg command line. C hands argv here; every subcommand is Lua. Long-running ones
-- (serve, run) set things up and return, and the C side runs the loop.
local core = require "smg.core"
local async = require "smg.async"

local M = {}

local USAGE = [[
usage: smg <command> [options]

  serve [--config PATH] [--stdio] [--host H] [--port N] [--mode meta|aggregate|passthrough]
        [--log-level L] [--insecure]
                           run the gateway (HTTP on 127.0.0.1:8000/mcp by default; --insecure
                           allows a non-loopback bind without auth; `smg serve --help`)
  run FILE.lua [args...]   run a Lua script with the smg binding (example MCP servers)
  test [DIR|FILE...]       run busted specs inside the smg runtime (default tests/lua)
  config validate [PATH]   check a config file (and the plugins it names); report every problem with its path
  config show [PATH]       print the effective config (defaults applied, secrets masked)
  config <command> [flags] the seed's config commands: mcp_configs, servers, policies (`smg config --help`)
  audit verify FILE...     check an audit log's hash chain (rotated files oldest first, e.g. log.2 log.1 log)
  pins list [--config PATH] [--json]
                           the pins of tools, prompts, resources, templates and server instructions:
                           approved, pending (changed or new since first seen), rejected
  pins approve|reject SERVER/TOOL | SERVER/KIND:NAME... | --all [--config PATH]
                           decide on pending items (KIND: prompt, resource, template,
                           instructions); a running gateway applies it at once
  generate-config [--overwrite] [--config PATH] [--json] [--show-secrets]
                           write a first config: auth, a default project, user and key, the echo
                           server, an admin API key (printed whole with --show-secrets)
  install --client claude-desktop|claude|cursor|claude-code [--config PATH]
                           make an MCP client run smg (merged into its config; a backup kept)
  system <command> [flags] health-check, backup, restore, reset of the config file; start-api,
                           stop-api (the admin REST API alone)
  cache status|clear [flags]
                           a running gateway's discovery cache
  user <command> [flags]   the seed's user commands: users, memberships, API keys (`smg user --help`)
  project <command> [flags]
                           the seed's project commands: projects, their config and users
  version                  print the version

Commands that change the config go through the config store: locked, validated, backed
up (<config>.bak.1..5), written atomically. --json prints JSON; --show-secrets prints API
keys whole. Exit codes: 0 ok, 1 failed, 2 usage.

Config: --config PATH, else $SMG_CONFIG, else ~/.smg/config.json, else the embedded default.
]]

local function die(msg, code)
  io.stderr:write("smg: ", msg, "\n")
  core.set_exit_code(code or 2)
end

-- Runs fn in the main coroutine, so top-level code can wait on I/O.
local function in_coroutine(fn, ...)
  async.spawn(function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    if not ok then
      -- busted signals failures on Lua 5.1 with error(nil): exit 1 without a message.
      if err ~= nil then io.stderr:write("smg: ", tostring(err), "\n") end
      core.stop(1)
    end
  end, ...)
end

local commands = {}

function commands.version()
  local smg = require "smg"
  io.stdout:write(("smg %s (api_version %d.%d)\n"):format(core.version, smg.api_version, smg.api_minor))
end

function commands.help()
  io.stdout:write(USAGE)
end

function commands.run(args)
  local file = args[1]
  if not file then return die("run: missing script\n" .. USAGE) end
  local chunk, err = loadfile(file)
  if not chunk then return die(err) end
  _G.arg = { [0] = file }
  for i = 2, #args do _G.arg[i - 1] = args[i] end
  in_coroutine(chunk, unpack(args, 2))
end

function commands.test(args)
  local exe, root = core.paths()
  _G.arg = {}
  if #args == 0 then args = { root .. "/tests/lua" } end
  for i, a in ipairs(args) do _G.arg[i] = a end
  _G.arg[0] = exe
  package.path = root .. "/tests/?.lua;" .. package.path
  in_coroutine(function()
    require "busted.runner" ({ standalone = false })
  end)
end

-- The admin API beside a running gateway (HTTP mode, a config file with an admin_apikey):
-- its key follows the gateway's config through hot reloads.
local function start_admin(gw)
  local cfg = gw.cfg
  if cfg.is_default or not cfg.admin_apikey or not cfg.gateway.admin.enabled then return end
  local server, err = require("smg.admin").start(cfg, { admin_key = function() return gw.cfg.admin_apikey end,
    inproc = {
      cache_status = function() return gw.pipeline:cache_status(nil) end,
      cache_clear = function(o)
        local out = gw.pipeline:clear_cache(nil, { server_name = o.server_name, cache_type = o.cache_type,
          config_id = o.config_id })
        if out.status == "error" then return nil, out.message end
        out.server_name, out.config_id = o.server_name, o.config_id
        return out
      end,
      oauth_metrics = function() return require("smg.upstream.oauth").metrics() end,
      oauth_pending = function() return require("smg.upstream.oauth").pending() end,
      oauth_callback = function(q) return require("smg.upstream.oauth").callback(q, gw.timeouts.auth_timeout) end,
      oauth_revoke = function(o)
        -- The server's token in one mcp_config, or in every one that has the server.
        -- (Every one is tried; the failures are named.)
        local oauth, found, failures = require("smg.upstream.oauth"), false, {}
        for id, mc in pairs(gw.cfg.mcp_configs) do
          if o.config_id == nil or o.config_id == id then
            for _, spec in ipairs(mc.mcp_config or {}) do
              if spec.server_name == o.server_name then
                found = true
                local ok, err = oauth.revoke(spec, id)
                if not ok then failures[#failures + 1] = ("mcp_config %s: %s"):format(id, tostring(err)) end
              end
            end
          end
        end
        if not found then
          return nil, ("no server named %s%s"):format(tostring(o.server_name),
            o.config_id and (" in mcp_config " .. tostring(o.config_id)) or "")
        end
        if #failures > 0 then table.sort(failures) return nil, table.concat(failures, "; ") end
        return { revoked = true, server_name = o.server_name, config_id = o.config_id }
      end,
    } })
  if not server then
    require("smg").log.error(tostring(err) .. "; the gateway runs without it")
    return
  end
  gw.admin_server = server
  local host = cfg.gateway.admin.host
  local base = ("http://%s:%d"):format(host:find(":") and ("[" .. host .. "]") or host, server:port())
  local oauth = require("smg.upstream.oauth")
  oauth.set_redirect_base(base)
  -- An upstream just authorized is started again now, not after its restart backoff.
  oauth.on_authorized = function(name, config_id) gw:restart_upstreams(name, config_id) end
  require("smg").log.info("admin API on " .. base)
end

local SERVE_USAGE = [[
usage: smg serve [--config PATH] [--stdio] [--host H] [--port N] [--mode meta|aggregate|passthrough]
                 [--log-level debug|info|warn|error] [--insecure]

Runs the gateway: Streamable HTTP (and the legacy SSE transport) on 127.0.0.1:8000/mcp by
default, or one client on stdin/stdout with --stdio. With an admin_apikey in the config the
admin REST API listens beside it (gateway.admin, default 127.0.0.1:8001). The config file
is reread when it changes. --insecure allows a non-loopback bind without client auth.
SIGINT/SIGTERM drain calls in flight, then stop.
]]

function commands.serve(args)
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then return io.stdout:write(SERVE_USAGE) end
  end
  local gateway = require "smg.gateway"
  in_coroutine(function()
    local ok, gw, code = gateway.serve(args)
    if not ok then
      io.stderr:write("smg: ", tostring(gw), "\n")
      if code == 2 then io.stderr:write("`smg serve --help` for its options\n") end
      core.stop(code or 1)
    elseif type(gw) == "table" and gw.http_server then
      start_admin(gw)
    end
  end)
end

commands["generate-config"] = function(args) require("smg.cli.generate").run(args) end

-- The worker (smg.worker) of the admin API and of config replication: one command as JSON
-- on stdin ({noun, verb, opts, config, show_secrets}, or {op = "cluster_apply", ...}: secrets never travel in argv, where other local users can read them),
-- its outcome as one JSON line on stdout ({ok, data} or {ok = false, error, code}). The
-- API runs each change in one of these so the store's locking and fsync never block the
-- loop that serves requests.
-- `regular_files`: files the command will read, which must be regular files (a symlink
-- in the admin files directory could lead anywhere).
local function not_regular(paths)
  for _, path in ipairs(type(paths) == "table" and paths or {}) do
    local dir, name = tostring(path):match("^(.*)/([^/]+)$")
    for _, e in ipairs(dir and core.fs_list(dir) or {}) do
      if e.name == name and e.type ~= "file" then
        return name .. " is not a regular file in the admin files directory (symlinks are not followed)"
      end
    end
  end
end

commands["cli-exec"] = function()
  local smg = require "smg"
  local cli = require "smg.cli"
  local req = smg.json.decode(io.stdin:read("*a") or "")
  local out
  local irregular = type(req) == "table" and not_regular(req.regular_files)
  if type(req) == "table" and req.op == "cluster_apply" then
    out = require("smg.gateway.cluster").apply_in_worker(req)
  elseif type(req) ~= "table" or type(req.noun) ~= "string" or type(req.verb) ~= "string" then
    out = { ok = false, error = "expected {noun, verb, opts}", code = 2 }
  elseif irregular then
    out = { ok = false, error = irregular, code = 2 }
  else
    local ok, value, err, code = pcall(cli.execute, req.noun, req.verb, type(req.opts) == "table" and req.opts or {},
      { config = req.config, show_secrets = req.show_secrets == true })
    if not ok then
      out = { ok = false, error = tostring(value), code = 1 }
    elseif value == nil then
      out = { ok = false, error = tostring(err or "failed"), code = code or 1 }
    else
      out = { ok = true, data = value }
    end
  end
  io.stdout:write(smg.json.encode(out), "\n")
end
function commands.install(args) require("smg.cli.install").run(args) end

function commands.audit(args)
  if args[1] == "--help" or args[1] == "-h" or (args[1] == "verify" and (args[2] == "--help" or args[2] == "-h")) then
    return io.stdout:write("usage: smg audit verify FILE...\n\nChecks an audit log's hash chain; rotated files go ",
      "oldest first (log.2 log.1 log).\nExit codes: 0 intact, 1 broken, 2 usage.\n")
  end
  if args[1] ~= "verify" or not args[2] then return die("audit: expected verify FILE...\n" .. USAGE) end
  local Audit = require "smg.gateway.audit"
  local files = {}
  for i = 2, #args do files[#files + 1] = args[i] end
  local ok, what, head = Audit.verify(files)
  if ok then
    io.stdout:write(("ok: %d records, chain intact; head %s\n"):format(what, head or "-"))
  else
    io.stderr:write("smg: audit chain broken: ", what, "\n")
    core.set_exit_code(1)
  end
end


function M.main(argv)
  local cmd = argv[2]
  local args = {}
  for i = 3, #argv do args[#args + 1] = argv[i] end
  if cmd == nil then -- a usage error, as for `smg user` without a command
    io.stderr:write(USAGE)
    return core.set_exit_code(2)
  end
  if cmd == "--help" or cmd == "-h" or cmd == "help" then return commands.help() end
  if cmd == "--docker" or cmd == "--docker-image" then
    -- The seed's global flags re-run its Python CLI inside its image. smg is one binary
    -- with nothing to containerize for the CLI; saying so beats running it silently on
    -- the host when the script meant a container's config.
    return die("--docker/--docker-image are the seed's: smg's CLI runs on the host against --config PATH "
      .. "(or $SMG_CONFIG); drop the flag, or run the command inside your container (docker exec)")
  end
  if cmd == "--version" then return commands.version() end
  local fn = commands[cmd]
  if not fn then
    local cli = require "smg.cli"
    if cli.is_noun(cmd) then
      -- In a coroutine: some commands wait on I/O (`cache` asks the running gateway).
      return in_coroutine(cli.run, cmd, args, { start_admin = function(...) return require("smg.admin").start(...) end })
    end
    return die("unknown command '" .. cmd .. "'\n" .. USAGE)
  end
  fn(args)
end

return M

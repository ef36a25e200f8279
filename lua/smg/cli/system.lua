-- `smg system ...`: the seed's health check, backup, restore and reset of the config file.
-- (The seed's start-api and stop-api arrive with the admin REST API.)
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

C.backup = { flags = { { "--output-file", required = true, help = "where to write the copy (0600)" } },
  help = "Copy the whole config file", text = function(v) return "backed up to " .. v.output_file end,
  run = function(opts, ctx)
    local text, err = smg.read_file(ctx.path)
    if not text then return nil, err end
    local ok, werr = core.write_durable(opts.output_file, text)
    if not ok then return nil, werr end
    return { config_path = ctx.path, output_file = opts.output_file, bytes = #text }
  end }

C.restore = { flags = { { "--input-file", required = true, help = "a backup to restore" } },
  help = "Replace the config with a backup (validated first; the current one is kept as <config>.bak.1)",
  text = function(v) return "restored " .. v.config_path .. " from " .. v.input_file end, run = function(opts, ctx)
    local text, err = smg.read_file(opts.input_file)
    if not text then return nil, "--input-file: " .. tostring(err) end
    local doc, jerr = json.decode(text)
    if type(doc) ~= "table" then return nil, "--input-file: not a config: " .. tostring(jerr) end
    local ok, serr = store.create(ctx.path, doc)
    if not ok then return nil, "refused: " .. tostring(serr) end
    return { config_path = ctx.path, input_file = opts.input_file }
  end }

C.reset = { flags = { { "--confirm", boolean = true, help = "really replace the config" } },
  help = "Replace the config with a fresh default one (the current one is kept as <config>.bak.1)",
  text = function(v) return ("reset %s\ngateway_key: %s"):format(v.config_path, v.gateway_key) end,
  run = function(opts, ctx)
    if not opts.confirm then return nil, "reset replaces the whole config: run it again with --confirm" end
    local doc, ids = require("smg.cli.generate").document()
    local ok, err = store.create(ctx.path, doc)
    if not ok then return nil, err end
    return { config_path = ctx.path, gateway_key = ids.gateway_key }
  end }

return { summary = "Health check, backup, restore and reset of the config file.", commands = C }

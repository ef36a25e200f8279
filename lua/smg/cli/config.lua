-- `smg config ...`: the seed's 23 config commands (mcp_configs and their servers, the
-- guardrail policies of each server, export and import, the Enkrypt API key, telemetry),
-- each change through the config store, plus smg's own `validate [PATH]` (the whole file,
-- with the plugins it names) and `show [PATH]` (defaults applied, secrets masked).
local smg = require "smg"
local core = require "smg.core"
local cli = require "smg.cli"
local store = require "smg.store"
local config = require "smg.config"
local model = require "smg.cli.model"

local json = smg.json

local CONFIG = { { "--config-name", help = "the mcp_config's name" }, { "--config-id", help = "the mcp_config's id" } }
local WHICH = { "--config-name", "--config-id" }
local SERVER = { { "--server-name", required = true, help = "the server's name" } }

local function flags(...)
  local out = {}
  for _, list in ipairs({ ... }) do for _, f in ipairs(list) do out[#out + 1] = f end end
  return out
end

-- What a command prints of config data: secrets masked unless --show-secrets.
local function shown(ctx, v)
  if ctx.show_secrets then return v end
  return config.masked(v)
end

-- A JSON flag: the decoded value (of the wanted type) | nil, message, 2 (a malformed
-- value is a usage error).
local function json_flag(name, text, want)
  local v, err = json.decode(text)
  if v == nil then return nil, ("%s: not JSON: %s"):format(name, tostring(err)), 2 end
  local is_array = json.is_array(v)
  if want == "object" and (type(v) ~= "table" or (is_array and #v > 0)) then
    return nil, name .. ": expected a JSON object", 2
  end
  if want == "object" and is_array then v = setmetatable({}, nil) end -- `[]` decodes as an empty array
  return v
end

-- A policy from --policy JSON or --policy-file F.
local function policy_from(json_text, file, name)
  if json_text and file then return nil, ("give %s or %s-file, not both"):format(name, name), 2 end
  if file then
    local text, err = smg.read_file(file)
    if not text then return nil, ("%s-file: %s"):format(name, tostring(err)) end
    json_text = text
  end
  if not json_text then return nil end
  return json_flag(name, json_text, "object")
end

-- The seed's add-server defaults: guardrails written out, and off.
local DETECTORS = config.DETECTORS
local function off_policy()
  return { enabled = false, policy_name = "", additional_config = {}, block = json.array({ "policy_violation" }) }
end

local function config_view(doc, id, c)
  local servers = json.array({})
  for _, s in ipairs(c.mcp_config or {}) do servers[#servers + 1] = s.server_name end
  local used = json.array({})
  for pid, p in pairs(doc.projects or {}) do
    if type(p) == "table" and p.mcp_config_id == id then used[#used + 1] = p.project_name or pid end
  end
  table.sort(used)
  return { mcp_config_id = id, mcp_config_name = c.mcp_config_name, servers = servers, used_by_projects = used }
end

local function configs_text(list)
  if #list == 0 then return "no configs" end
  local lines = {}
  for i, c in ipairs(list) do
    lines[i] = ("%s  %s  %d server(s)  used by %d project(s)"):format(c.mcp_config_id, tostring(c.mcp_config_name),
      #c.servers, #c.used_by_projects)
  end
  return table.concat(lines, "\n")
end

local function all_configs(doc, keep)
  local out = json.array({})
  for id, c in pairs(doc.mcp_configs or {}) do
    if type(c) == "table" and (not keep or keep(id, c)) then out[#out + 1] = config_view(doc, id, c) end
  end
  table.sort(out, function(a, b) return tostring(a.mcp_config_name) < tostring(b.mcp_config_name) end)
  return out
end

local function find_server(c, name)
  for i, s in ipairs(c.mcp_config or {}) do
    if s.server_name == name then return i, s end
  end
  return nil
end

local function reading(fn)
  return function(opts, ctx)
    local doc, err = store.read(ctx.path)
    if not doc then return nil, err end
    local id, c = model.mcp_config(doc, opts)
    if not id then return nil, c end
    return fn(doc, id, c, opts, ctx)
  end
end

local function changing(fn)
  return function(opts, ctx)
    return store.update(ctx.path, function(doc)
      local id, c = model.mcp_config(doc, opts)
      if not id then return nil, c end
      c.mcp_config = c.mcp_config or json.array({})
      return fn(doc, id, c, opts)
    end)
  end
end

local function name_taken(doc, name, except)
  for id, c in pairs(doc.mcp_configs or {}) do
    if id ~= except and type(c) == "table" and c.mcp_config_name == name then return true end
  end
  return false
end

local C = {}

---------------------------------------------------------------------------- the file
C.validate = { flags = CONFIG, positional = "PATH", any_config = true,
  help = "Check the config file (and the plugins it names); with --config-name|--config-id, one mcp_config",
  run = function(opts, ctx)
    if opts.config_name or opts.config_id then
      local path, is_default = config.locate(ctx.path)
      if is_default then return nil, "no config file" end
      local doc, err = store.read(path)
      if not doc then return nil, err end
      local id, c = model.mcp_config(doc, opts)
      if not id then return nil, c end
      local _, errs = config.parse(store.encode(doc), path)
      local mine = {}
      for _, e in ipairs(type(errs) == "table" and errs or {}) do
        if e:find("mcp_configs." .. id, 1, true) then mine[#mine + 1] = e end
      end
      if #mine > 0 then return nil, ("config %s is invalid:\n  %s"):format(id, table.concat(mine, "\n  ")) end
      return { mcp_config_id = id, valid = true, servers = #(c.mcp_config or {}) }
    end
    local cfg, errs, source, partial = config.load({ path = opts[1] or ctx.path })
    -- The plugins the config names must load too (what a reload would refuse): checked
    -- even when the rest has problems, so one run reports everything it can.
    local perrs = {}
    local target = cfg or partial
    if target and type(target.plugins) == "table" and type(target.mcp_configs) == "table" then
      local ok, _, list = pcall(require("smg.gateway.plugin_set").build, target)
      if ok and list then perrs = list end
    end
    local all = {}
    if not cfg then for _, e in ipairs(errs) do all[#all + 1] = e end end
    for _, e in ipairs(perrs) do all[#all + 1] = "plugin: " .. e end
    if #all > 0 then return nil, ("%s is invalid:\n  %s"):format(source or "config", table.concat(all, "\n  ")) end
    for _, w in ipairs(errs or {}) do io.stderr:write("warning: ", w, "\n") end
    return { path = source, valid = true }
  end,
  text = function(v) return v.path and (v.path .. ": ok") or ("config %s: ok"):format(v.mcp_config_id) end }

C.show = { flags = {}, positional = "PATH", any_config = true,
  help = "Print the effective config (defaults applied, secrets masked unless --show-secrets)", run = function(opts, ctx)
    local cfg, errs, source = config.load({ path = opts[1] or ctx.path })
    if not cfg then return nil, ("%s is invalid:\n  %s"):format(source or "config", table.concat(errs, "\n  ")) end
    return shown(ctx, cfg.raw)
  end }

---------------------------------------------------------------------------- mcp_configs
C.list = { flags = {}, help = "List mcp_configs", text = configs_text, run = function(_, ctx)
  local doc, err = store.read(ctx.path)
  if not doc then return nil, err end
  return all_configs(doc)
end }

C.add = { flags = { { "--config-name", required = true, help = "the new mcp_config's name" } }, help = "Create an mcp_config",
  text = function(v) return "mcp_config_id: " .. v.mcp_config_id end, run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    if name_taken(doc, opts.config_name) then return nil, ("a config named %s exists"):format(opts.config_name) end
    doc.mcp_configs = doc.mcp_configs or {}
    local id = cli.uuid()
    doc.mcp_configs[id] = { mcp_config_name = opts.config_name, mcp_config = json.array({}) }
    return { mcp_config_id = id, mcp_config_name = opts.config_name }
  end)
end }

C.copy = { flags = { { "--source-config", required = true, help = "name or id to copy" },
  { "--target-config", required = true, help = "the copy's name" } }, help = "Copy an mcp_config under a new name",
  text = function(v) return "mcp_config_id: " .. v.mcp_config_id end, run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    local id, c = model.mcp_config(doc, { config_name = opts.source_config })
    if not id then id, c = model.mcp_config(doc, { config_id = opts.source_config }) end
    if not id then return nil, ("no config named or with id %s"):format(opts.source_config) end
    if name_taken(doc, opts.target_config) then return nil, ("a config named %s exists"):format(opts.target_config) end
    local copy = json.decode(json.encode(c))
    copy.mcp_config_name = opts.target_config
    local new = cli.uuid()
    doc.mcp_configs[new] = copy
    return { mcp_config_id = new, mcp_config_name = opts.target_config, copied_from = id }
  end)
end }

C.rename = { flags = flags(CONFIG, { { "--new-name", required = true, help = "the new name" } }), one_of = { WHICH },
  help = "Rename an mcp_config", text = function(v) return "renamed to " .. v.mcp_config_name end,
  run = changing(function(doc, id, c, opts)
    if name_taken(doc, opts.new_name, id) then return nil, ("a config named %s exists"):format(opts.new_name) end
    c.mcp_config_name = opts.new_name
    return { mcp_config_id = id, mcp_config_name = opts.new_name }
  end) }

C.get = { flags = CONFIG, one_of = { WHICH }, help = "Show an mcp_config (secrets masked unless --show-secrets)",
  run = reading(function(_, id, c, _, ctx)
    return { mcp_config_id = id, mcp_config_name = c.mcp_config_name, mcp_config = shown(ctx, c.mcp_config or {}) }
  end) }

C.remove = { flags = CONFIG, one_of = { WHICH }, help = "Delete an mcp_config no project uses",
  text = function(v) return "removed config " .. v.mcp_config_id end, run = changing(function(doc, id)
    local view = config_view(doc, id, doc.mcp_configs[id])
    if #view.used_by_projects > 0 then
      return nil, ("config %s is used by %s (smg project unassign-config first)"):format(id,
        table.concat(view.used_by_projects, ", "))
    end
    doc.mcp_configs[id] = nil
    return { mcp_config_id = id }
  end) }

C["list-servers"] = { flags = CONFIG, one_of = { WHICH }, help = "The servers of an mcp_config",
  run = reading(function(_, _, c, _, ctx) return shown(ctx, c.mcp_config or json.array({})) end) }

C["list-projects"] = { flags = CONFIG, one_of = { WHICH }, help = "The projects that use an mcp_config",
  run = reading(function(doc, id, c) return config_view(doc, id, c).used_by_projects end) }

C["remove-all-servers"] = { flags = CONFIG, one_of = { WHICH }, help = "Remove every server of an mcp_config",
  text = function(v) return ("removed %d server(s)"):format(v.removed) end, run = changing(function(_, id, c)
    local n = #c.mcp_config
    c.mcp_config = json.array({})
    return { mcp_config_id = id, removed = n }
  end) }

C["get-server"] = { flags = flags(CONFIG, SERVER), one_of = { WHICH }, help = "Show one server (secrets masked unless --show-secrets)",
  run = reading(function(_, _, c, opts, ctx)
    local _, s = find_server(c, opts.server_name)
    if not s then return nil, ("no server %s in the config"):format(opts.server_name) end
    return shown(ctx, s)
  end) }

C["remove-server"] = { flags = flags(CONFIG, SERVER), one_of = { WHICH }, help = "Remove one server",
  text = function(v) return "removed server " .. v.server_name end, run = changing(function(_, id, c, opts)
    local i = find_server(c, opts.server_name)
    if not i then return nil, ("no server %s in the config"):format(opts.server_name) end
    table.remove(c.mcp_config, i)
    return { mcp_config_id = id, server_name = opts.server_name }
  end) }

local SERVER_FIELDS = {
  { "--args", help = "arguments, comma-separated (the seed's form), or a JSON array" },
  { "--env", help = "environment, a JSON object" },
  { "--tools", help = "predefined tools, a JSON object" },
  { "--description", help = "what the server is for" },
}

-- Applies --args/--env/--tools/--description to server `s`. Returns true | nil, err.
local function apply_fields(s, opts)
  if opts.args then
    local list = json.array({})
    if opts.args:match("^%s*%[") then -- a JSON array (the REST API's form): commas allowed inside
      local arr, err = json.decode(opts.args)
      if type(arr) ~= "table" then return nil, "--args: not a JSON array: " .. tostring(err), 2 end
      for i, a in ipairs(arr) do
        if type(a) ~= "string" then return nil, "--args: every argument must be a string", 2 end
        list[i] = a
      end
    else -- the seed's form: "a, b,c" is three arguments (spaces around commas dropped)
      for a in (opts.args .. ","):gmatch("([^,]*),") do
        a = a:match("^%s*(.-)%s*$")
        if a ~= "" then list[#list + 1] = a end
      end
    end
    s.config.args = list
  end
  if opts.env then
    local env, err, code = json_flag("--env", opts.env, "object")
    if not env then return nil, err, code end
    s.config.env = env
  end
  if opts.tools then
    local tools, err, code = json_flag("--tools", opts.tools, "object")
    if not tools then return nil, err, code end
    s.tools = tools
  end
  if opts.description then s.description = opts.description end
  return true
end

C["add-server"] = { flags = flags(CONFIG, SERVER, { { "--server-command", required = true, help = "the command to run" } },
  SERVER_FIELDS, { { "--input-guardrails-policy", help = "a JSON policy" }, { "--output-guardrails-policy", help = "a JSON policy" } }),
  one_of = { WHICH }, help = "Add a stdio server (the seed's defaults: guardrail policies written out, off)",
  text = function(v) return "added server " .. v.server_name end, run = changing(function(_, id, c, opts)
    if find_server(c, opts.server_name) then return nil, ("a server %s exists in the config"):format(opts.server_name) end
    local s = { server_name = opts.server_name, description = "", config = { command = opts.server_command,
      args = json.array({}) }, tools = {}, enable_server_info_validation = false,
      tool_guardrails_policy = { enabled = false, policy_name = "", block = json.array({ unpack(DETECTORS) }) },
      input_guardrails_policy = off_policy(), output_guardrails_policy = off_policy() }
    local ok, err, code = apply_fields(s, opts)
    if not ok then return nil, err, code end
    for _, dir in ipairs({ "input", "output" }) do
      local text = opts[dir .. "_guardrails_policy"]
      if text then
        local pol, perr, pcode = json_flag("--" .. dir .. "-guardrails-policy", text, "object")
        if not pol then return nil, perr, pcode end
        s[dir .. "_guardrails_policy"] = pol
      end
    end
    c.mcp_config[#c.mcp_config + 1] = s
    return { mcp_config_id = id, server_name = opts.server_name }
  end) }

C["update-server"] = { flags = flags(CONFIG, SERVER, { { "--server-command", help = "the command to run" } }, SERVER_FIELDS),
  one_of = { WHICH }, help = "Change a server's command, arguments, environment, tools or description",
  text = function(v) return "updated server " .. v.server_name end, run = changing(function(_, id, c, opts)
    local _, s = find_server(c, opts.server_name)
    if not s then return nil, ("no server %s in the config"):format(opts.server_name) end
    s.config = s.config or {}
    if opts.server_command then s.config.command = opts.server_command end
    local ok, err, code = apply_fields(s, opts)
    if not ok then return nil, err, code end
    return { mcp_config_id = id, server_name = opts.server_name }
  end) }

local function set_policies(which)
  return changing(function(_, id, c, opts)
    local _, s = find_server(c, opts.server_name)
    if not s then return nil, ("no server %s in the config"):format(opts.server_name) end
    local changed = 0
    for _, dir in ipairs(which) do
      local flag = which.single and "--policy" or ("--" .. dir .. "-policy")
      local key = which.single and "policy" or (dir .. "_policy")
      local pol, err, code = policy_from(opts[key], opts[key .. "_file"], flag)
      if err then return nil, err, code end
      if pol then
        s[dir .. "_guardrails_policy"] = pol
        changed = changed + 1
      end
    end
    if changed == 0 then return nil, "no policy given", 2 end
    return { mcp_config_id = id, server_name = opts.server_name, updated = changed }
  end)
end

local ONE_POLICY = { { "--policy", help = "the policy, JSON" }, { "--policy-file", help = "a file holding the policy" } }
C["update-server-input-guardrails"] = { flags = flags(CONFIG, SERVER, ONE_POLICY), one_of = { WHICH },
  help = "Replace a server's input guardrails policy", text = function(v) return "updated " .. v.server_name end,
  run = set_policies({ "input", single = true }) }
C["update-server-output-guardrails"] = { flags = flags(CONFIG, SERVER, ONE_POLICY), one_of = { WHICH },
  help = "Replace a server's output guardrails policy", text = function(v) return "updated " .. v.server_name end,
  run = set_policies({ "output", single = true }) }
C["update-server-guardrails"] = { flags = flags(CONFIG, SERVER, {
  { "--input-policy", help = "input policy, JSON" }, { "--input-policy-file", help = "a file holding it" },
  { "--output-policy", help = "output policy, JSON" }, { "--output-policy-file", help = "a file holding it" } }),
  one_of = { WHICH }, help = "Replace a server's input and/or output guardrails policies",
  text = function(v) return ("updated %d polic%s of %s"):format(v.updated, v.updated == 1 and "y" or "ies", v.server_name) end,
  run = set_policies({ "input", "output" }) }

---------------------------------------------------------------------------- export, import, search
C.export = { flags = flags(CONFIG, { { "--output-file", required = true, help = "where to write it (0600)" } }),
  one_of = { WHICH }, help = "Write an mcp_config to a JSON file (`-`: print it)",
  text = function(v) return v.output_file and ("exported to " .. v.output_file) or core.json_pretty(json.canonical(v)) end,
  run = reading(function(_, id, c, opts)
    local export = { mcp_config_id = id, mcp_config_name = c.mcp_config_name, mcp_config = c.mcp_config or json.array({}) }
    if opts.output_file == "-" then return export end
    local ok, err = core.write_durable(opts.output_file, store.encode(export))
    if not ok then return nil, err end
    return { mcp_config_id = id, output_file = opts.output_file }
  end) }

C.import = { flags = { { "--input-file", help = "a file `config export` wrote" },
  { "--input", help = "the export itself, JSON" },
  { "--config-name", required = true, help = "the name to import it as" } }, one_of = { { "--input-file", "--input" } },
  help = "Add an mcp_config from an export", text = function(v) return "mcp_config_id: " .. v.mcp_config_id end,
  run = function(opts, ctx)
  local text, rerr = opts.input, nil
  if not text then text, rerr = smg.read_file(opts.input_file) end
  if not text then return nil, ("--input-file: %s"):format(tostring(rerr)) end
  local source = opts.input and "--input" or ("--input-file " .. opts.input_file)
  local v, jerr, code = json_flag(source, text, "object")
  if not v then return nil, jerr, code end
  local servers = v.mcp_config
  if type(servers) ~= "table" then return nil, source .. ": no mcp_config list in it", 2 end
  return store.update(ctx.path, function(doc)
    if name_taken(doc, opts.config_name) then return nil, ("a config named %s exists"):format(opts.config_name) end
    doc.mcp_configs = doc.mcp_configs or {}
    local id = cli.uuid()
    doc.mcp_configs[id] = { mcp_config_name = opts.config_name, mcp_config = servers }
    return { mcp_config_id = id, mcp_config_name = opts.config_name }
  end)
end }

C.search = { flags = { { "--search-term", required = true, help = "text to look for" } },
  help = "Find mcp_configs by id, name or server name", text = configs_text, run = function(opts, ctx)
  local doc, err = store.read(ctx.path)
  if not doc then return nil, err end
  local term = opts.search_term:lower()
  return all_configs(doc, function(id, c)
    if id:lower():find(term, 1, true) or tostring(c.mcp_config_name):lower():find(term, 1, true) then return true end
    for _, s in ipairs(c.mcp_config or {}) do
      if tostring(s.server_name):lower():find(term, 1, true) then return true end
    end
    return false
  end)
end }

---------------------------------------------------------------------------- settings
C["set-enkrypt-api-key"] = { flags = { { "--api-key", required = true, help = "the Enkrypt API key" } },
  help = "Set the enkrypt guardrail provider's API key", text = function() return "Enkrypt API key set" end,
  run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    doc.plugins = doc.plugins or {}
    local g = doc.plugins.guardrails or {}
    doc.plugins.guardrails = g
    if g.provider == nil or g.provider == "enkrypt" then
      g.provider = "enkrypt"
      g.config = g.config or {}
      g.config.api_key = opts.api_key
    else
      g.providers = g.providers or json.array({})
      local entry
      for _, p in ipairs(g.providers) do if p.name == "enkrypt" then entry = p end end
      if not entry then
        entry = { name = "enkrypt", config = {} }
        g.providers[#g.providers + 1] = entry
      end
      entry.config = entry.config or {}
      entry.config.api_key = opts.api_key
    end
    return { set = true }
  end)
end }

C["get-enkrypt-api-key"] = { flags = {}, help = "Print the Enkrypt API key (masked unless --show-secrets)",
  text = function(v) return "api_key: " .. tostring(v.api_key) end, run = function(_, ctx)
  local doc, err = store.read(ctx.path)
  if not doc then return nil, err end
  local g = (doc.plugins or {}).guardrails or {}
  local key = g.provider == "enkrypt" and (g.config or {}).api_key
  for _, p in ipairs(g.providers or {}) do
    if p.name == "enkrypt" then key = key or (p.config or {}).api_key end
  end
  if not key then return nil, "no Enkrypt API key is set (smg config set-enkrypt-api-key)" end
  return { api_key = cli.key_out(ctx, key) }
end }

C["configure-telemetry"] = { flags = { { "--enabled", help = "true or false" },
  { "--url", help = "the OTLP collector (smg exports OTLP over HTTP: http://host:4318)" },
  { "--insecure", help = "true or false (accepted for the seed's scripts; a plain http:// URL is what makes it insecure)" } },
  help = "Turn OTLP export on or off, or point it elsewhere", text = function(v)
    return v.enabled and ("telemetry: otlp to %s"):format(v.url) or "telemetry: off" end,
  run = function(opts, ctx)
  if not (opts.enabled or opts.url or opts.insecure) then return nil, "give --enabled, --url or --insecure", 2 end
  for _, k in ipairs({ "enabled", "insecure" }) do
    if opts[k] and opts[k] ~= "true" and opts[k] ~= "false" then return nil, ("--%s: true or false"):format(k), 2 end
  end
  return store.update(ctx.path, function(doc)
    doc.plugins = doc.plugins or {}
    local t = doc.plugins.telemetry or {}
    local on = opts.enabled == "true" or (opts.enabled == nil and t.provider == "otlp") or (opts.enabled == nil and opts.url)
    if not on then
      doc.plugins.telemetry = nil
      return { enabled = false }
    end
    local url = opts.url or (t.provider == "otlp" and t.config and t.config.endpoint) or "http://127.0.0.1:4318"
    doc.plugins.telemetry = { provider = "otlp", config = { endpoint = url } }
    return { enabled = true, url = url }
  end)
end }

return { summary = "mcp_configs and their servers, guardrail policies, export and import, settings.", commands = C }

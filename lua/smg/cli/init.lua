-- The seed's CLI, one file per noun (lua/smg/cli/<noun>.lua), run by the smg binary: a
-- script written for `secure-mcp-gateway user create --email x` works as
-- `smg user create --email x`. This file holds what every noun shares: flag parsing with
-- usage errors, --help at every level, --json output, secret masking, the config file a
-- command edits (through the config store), and the exit codes: 0 ok, 1 failed, 2 usage.
--
-- A noun module returns { summary = "...", commands = { [verb] = { flags = {...},
-- help = "...", run = function(opts, ctx) } } }. A flag spec: { "--email", required = true,
-- help = "..." } or { "--force", boolean = true }; `one_of = { "--user-id", "--email" }`
-- on a command names flags of which exactly one is needed. run returns a value to print
-- (a table: JSON with --json, text otherwise via the command's `text` function) or
-- nil, message, exit code.
local smg = require "smg"
local core = require "smg.core"
local config = require "smg.config"

local M = {}

M.NOUNS = { "user", "project", "config", "system", "pins", "cache", "oauth" }

local function write(fh, ...) fh:write(...) end

-- A usage error: exit 2.
local function usage(msg, help)
  write(io.stderr, "smg: ", msg, "\n")
  if help then write(io.stderr, "\n", help, "\n") end
  core.set_exit_code(2)
end

-- A failure: exit 1.
function M.fail(msg)
  write(io.stderr, "smg: ", msg, "\n")
  core.set_exit_code(1)
end

-- A random UUID (version 4) from the CSPRNG: the seed's ids.
function M.uuid()
  local b = { core.random_bytes(16):byte(1, 16) }
  b[7] = b[7] % 16 + 0x40
  b[9] = b[9] % 64 + 0x80
  local h = {}
  for i = 1, 16 do h[i] = ("%02x"):format(b[i]) end
  return table.concat(h, "", 1, 4) .. "-" .. table.concat(h, "", 5, 6) .. "-" .. table.concat(h, "", 7, 8) .. "-"
    .. table.concat(h, "", 9, 10) .. "-" .. table.concat(h, "", 11, 16)
end

-- An API key: 36 random bytes, base64url (48 characters), as the seed's.
function M.new_api_key()
  return smg.crypto.b64url_encode(core.random_bytes(36))
end

function M.now_iso()
  local t = smg.now()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. ("%.6f"):format(t % 1):sub(2)
end

-- Masks an API key for output unless --show-secrets was given.
function M.key_out(ctx, key)
  if ctx.show_secrets then return key end
  return smg.mask(key)
end

local function help_of_command(noun, verb, cmd)
  local lines = { ("usage: smg %s %s%s%s"):format(noun, verb, cmd.positional and " [" .. cmd.positional .. "]" or "",
    #cmd.flags > 0 and " [flags]" or "") }
  if cmd.help then lines[#lines + 1] = "\n" .. cmd.help end
  if #cmd.flags > 0 then lines[#lines + 1] = "\nflags:" end
  for _, f in ipairs(cmd.flags) do
    local req = f.required and " (required)" or ""
    lines[#lines + 1] = ("  %-22s %s%s"):format(f[1] .. (f.boolean and "" or " VALUE"), f.help or "", req)
  end
  if cmd.one_of then
    for _, group in ipairs(cmd.one_of) do
      lines[#lines + 1] = ("  (one of %s is required)"):format(table.concat(group, ", "))
    end
  end
  lines[#lines + 1] = "\ncommon flags:\n  --config PATH          the config file (else $SMG_CONFIG, ~/.smg/config.json)"
    .. "\n  --json                 print JSON\n  --show-secrets         print API keys whole"
  return table.concat(lines, "\n")
end

local function help_of_noun(noun, mod)
  local verbs = {}
  for v in pairs(mod.commands) do verbs[#verbs + 1] = v end
  table.sort(verbs)
  local lines = { ("usage: smg %s <command> [flags]\n\n%s\n\ncommands:"):format(noun, mod.summary) }
  for _, v in ipairs(verbs) do
    lines[#lines + 1] = ("  %-22s %s"):format(v, (mod.commands[v].help or ""):match("^[^\n]*"))
  end
  lines[#lines + 1] = ("\n`smg %s <command> --help` for its flags."):format(noun)
  return table.concat(lines, "\n")
end

-- The config file a command works on: a real file (the embedded default is never
-- written). Returns path | nil, err.
local function config_path(common)
  local path, is_default = config.locate(common.config)
  if is_default then
    return nil, "no config file: pass --config PATH, set SMG_CONFIG, or run `smg generate-config`"
  end
  return path
end

-- Checks opts (already named: opts.email, opts.user_id) against the command's required
-- flags and one_of groups. Returns true | nil, message.
local function check_required(opts, cmd)
  for _, f in ipairs(cmd.flags) do
    if f.required and opts[f[1]:sub(3):gsub("%-", "_")] == nil then return nil, f[1] .. " is required" end
  end
  for _, group in ipairs(cmd.one_of or {}) do
    local n = 0
    for _, flag in ipairs(group) do
      if opts[flag:sub(3):gsub("%-", "_")] ~= nil then n = n + 1 end
    end
    if n == 0 then return nil, ("one of %s is required"):format(table.concat(group, " or ")) end
  end
  return true
end

-- Parses args against the command's flags. Returns opts, common | nil, message.
local function parse(args, cmd)
  local known = {}
  for _, f in ipairs(cmd.flags) do known[f[1]] = f end
  local opts, common = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    if name == "--json" then
      common.json = true
    elseif name == "--show-secrets" then
      common.show_secrets = true
    elseif name == "--config" then
      local v = inline or args[i + 1]
      if not v then return nil, "--config needs a value" end
      common.config = v
      if not inline then i = i + 1 end
    elseif cmd.positional and a:sub(1, 1) ~= "-" and (opts[1] == nil or cmd.many) then
      opts[#opts + 1] = a -- positional arguments (`config validate PATH`, `pins approve ID...`)
    elseif known[name] then
      local f = known[name]
      local key = name:sub(3):gsub("%-", "_")
      if f.boolean then
        opts[key] = true
      else
        local v = inline or args[i + 1]
        if v == nil then return nil, name .. " needs a value" end
        opts[key] = v
        if not inline then i = i + 1 end
      end
    else
      return nil, ("unknown flag %s"):format(a)
    end
    i = i + 1
  end
  local ok, err = check_required(opts, cmd)
  if not ok then return nil, err end
  return opts, common
end

-- The command `noun verb`, or nil.
function M.command(noun, verb)
  if not M.is_noun(noun) then return nil end
  local mod = require("smg.cli." .. noun)
  return mod.commands[verb], mod
end

-- Runs a command with named options (what the admin API sends a `smg cli-exec` child):
-- opts = { email = ..., user_id = ... } (flag names, '-' as '_'); only string values and
-- `true` for boolean flags are taken. Returns value | nil, message, exit code.
-- A REST path names a config, project or user by name or id (a user by id or email): the
-- *_ref options, resolved here into the flag the command takes.
local REFS = {
  config_ref = { "mcp_config", "config_name", "config_id" },
  project_ref = { "project", "project_name", "project_id" },
  user_ref = { "user", "email", "user_id" },
}

local function resolve_refs(opts, path)
  local doc
  for ref, how in pairs(REFS) do
    local v = opts[ref]
    if v ~= nil then
      if type(v) ~= "string" then return nil, ref .. " must be a string" end
      doc = doc or require("smg.store").read(path)
      if not doc then return nil, "cannot read " .. path end
      local model = require "smg.cli.model"
      local id = model[how[1]](doc, { [how[3]] = v })
      if id then
        opts[how[3]] = id
      elseif model[how[1]](doc, { [how[2]] = v }) then
        opts[how[2]] = v
      else
        return nil, ("no %s named or with id %s"):format(how[1]:gsub("mcp_", ""), v)
      end
      opts[ref] = nil
    end
  end
  return true
end

function M.execute(noun, verb, opts, common)
  local cmd = M.command(noun, verb)
  if not cmd then return nil, ("unknown command '%s %s'"):format(tostring(noun), tostring(verb)), 2 end
  if opts.config_ref or opts.project_ref or opts.user_ref then
    local path = config_path(common)
    local ok, err = resolve_refs(opts, path or "")
    if not ok then return nil, err, 1 end
  end
  local clean = {}
  for _, f in ipairs(cmd.flags) do
    local key = f[1]:sub(3):gsub("%-", "_")
    local v = opts[key]
    if v ~= nil then
      if f.boolean then
        if type(v) ~= "boolean" then return nil, f[1] .. " must be true or false", 2 end
        clean[key] = v or nil
      else
        if type(v) == "number" then v = tostring(v) end
        if type(v) ~= "string" then return nil, f[1] .. " must be a string", 2 end
        clean[key] = v
      end
    end
  end
  local ok, err = check_required(clean, cmd)
  if not ok then return nil, err, 2 end
  local path, perr = config_path(common)
  if not path then return nil, perr, 1 end
  return cmd.run(clean, { path = path, json = true, show_secrets = common.show_secrets })
end

local function print_value(v, cmd, common)
  if v == true then return end
  if common.json or not cmd.text then
    write(io.stdout, core.json_pretty(smg.json.canonical(v)) or "null", "\n")
  else
    write(io.stdout, cmd.text(v), "\n")
  end
end

-- Runs `smg <noun> args...`. Returns nothing; sets the exit code. `extra`: what the
-- caller lends the commands (start_admin: the admin API's starter, from a higher layer).
function M.run(noun, args, extra)
  local ok, mod = pcall(require, "smg.cli." .. noun)
  if not ok then error(mod, 0) end
  local verb = args[1]
  if verb == nil or verb == "--help" or verb == "-h" or verb == "help" then
    write(io.stdout, help_of_noun(noun, mod), "\n")
    if verb == nil then core.set_exit_code(2) end
    return
  end
  local cmd = mod.commands[verb]
  if not cmd then return usage(("unknown command '%s %s'"):format(noun, verb), help_of_noun(noun, mod)) end
  local rest = {}
  for i = 2, #args do
    if args[i] == "--help" or args[i] == "-h" then
      write(io.stdout, help_of_command(noun, verb, cmd), "\n")
      return
    end
    rest[#rest + 1] = args[i]
  end
  local opts, common = parse(rest, cmd)
  if not opts then return usage(common, help_of_command(noun, verb, cmd)) end
  local path, perr
  if cmd.any_config then
    path = common.config -- the command finds (or was given) its own file
  else
    path, perr = config_path(common)
    if not path then return M.fail(perr) end
  end
  local ctx = { path = path, json = common.json, show_secrets = common.show_secrets }
  for k, v in pairs(extra or {}) do ctx[k] = v end
  local value, err, code = cmd.run(opts, ctx)
  if value == nil then
    if code == 2 then return usage(err) end
    return M.fail(err or "failed")
  end
  print_value(value, cmd, common)
end

function M.is_noun(name)
  for _, n in ipairs(M.NOUNS) do if n == name then return true end end
  return false
end

return M

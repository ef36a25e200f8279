-- `smg install --client claude-desktop|claude|cursor|claude-code`: makes an MCP client
-- start smg as its stdio server, with the gateway key of this config in the environment.
-- For Claude Desktop and Cursor the entry is merged into the client's own config file at
-- its documented path (other servers there are kept; the previous file is kept as
-- <file>.bak; running it twice changes nothing the second time). For Claude Code,
-- `claude mcp add` is run when `claude` is on PATH, else the command is printed.
local smg = require "smg"
local core = require "smg.core"
local cli = require "smg.cli"
local config = require "smg.config"
local store = require "smg.store"

local json = smg.json

local M = {}

local function home() return os.getenv("HOME") or "" end

-- Where each client keeps its MCP servers (Linux and macOS paths; XDG_CONFIG_HOME honoured).
local function client_file(client)
  if client == "cursor" then return home() .. "/.cursor/mcp.json" end
  local mac = home() .. "/Library/Application Support/Claude"
  local f = io.open(mac .. "/.", "rb")
  if f then
    f:close()
    return mac .. "/claude_desktop_config.json"
  end
  local xdg = os.getenv("XDG_CONFIG_HOME")
  return ((xdg and xdg ~= "") and xdg or (home() .. "/.config")) .. "/Claude/claude_desktop_config.json"
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function usage()
  io.stdout:write("usage: smg install --client claude-desktop|claude|cursor|claude-code [--config PATH] [--name NAME]\n\n",
    "Adds smg (`smg serve --stdio` with this config's gateway key) to an MCP client's servers.\n")
end

-- The gateway key the client will use: the first enabled key of the config (sorted).
local function gateway_key(cfg)
  local keys = {}
  for k, e in pairs(cfg.apikeys or {}) do if not e.disabled then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys[1]
end

function M.run(args)
  local client, path, name = nil, nil, "smg"
  local i = 1
  while args[i] do
    local a, v = args[i], args[i + 1]
    if a == "--client" and v then
      client, i = v, i + 1
    elseif a == "--config" and v then
      path, i = v, i + 1
    elseif a == "--name" and v then
      name, i = v, i + 1
    elseif a == "--help" or a == "-h" then
      return usage()
    else
      io.stderr:write("smg: install: unknown argument ", a, "\n")
      return core.set_exit_code(2)
    end
    i = i + 1
  end
  if client == "claude" then client = "claude-desktop" end
  if client ~= "claude-desktop" and client ~= "cursor" and client ~= "claude-code" then
    io.stderr:write("smg: install: --client must be claude-desktop, claude, cursor or claude-code\n")
    return core.set_exit_code(2)
  end
  local cfg_path, is_default = config.locate(path)
  if is_default then return cli.fail("no config file: run `smg generate-config` first (or pass --config)") end
  local cfg, errs = config.load({ path = cfg_path })
  if not cfg then return cli.fail(cfg_path .. " is invalid: " .. table.concat(errs, "; ")) end
  local exe = core.paths()
  local entry = { command = exe, args = json.array({ "serve", "--stdio", "--config", cfg_path }), env = {} }
  local key = gateway_key(cfg)
  if cfg.plugins.auth.provider == "local_apikey" then
    if not key then return cli.fail("the config has no enabled API key (smg user generate-api-key)") end
    entry.env.SMG_API_KEY = key
  end

  if client == "claude-code" then
    local cmd = ("claude mcp add --transport stdio --scope user%s %s -- %s serve --stdio --config %s"):format(
      key and (" --env SMG_API_KEY=" .. shell_quote(key)) or "", shell_quote(name), shell_quote(exe), shell_quote(cfg_path))
    if os.execute("command -v claude >/dev/null 2>&1") == 0 then
      if os.execute(cmd) ~= 0 then return cli.fail("`claude mcp add` failed") end
      io.stdout:write("added ", name, " to Claude Code\n")
    else
      io.stdout:write("claude is not on PATH; run:\n  ", cmd, "\n")
    end
    return
  end

  local file = client_file(client)
  local dir = file:match("^(.*)/[^/]*$")
  os.execute("mkdir -p " .. shell_quote(dir))
  local text = smg.read_file(file)
  local doc = {}
  if text and text:find("%S") then
    local d, jerr = json.decode(text)
    if type(d) ~= "table" or json.is_array(d) then
      return cli.fail(("%s is not a JSON object (%s): fix it by hand, smg will not overwrite it"):format(file,
        tostring(jerr or "an array")))
    end
    doc = d
  end
  doc.mcpServers = doc.mcpServers or {}
  if json.canonical(doc.mcpServers[name]) == json.canonical(entry) then
    io.stdout:write(("%s already runs smg as %q (%s): nothing to do\n"):format(client, name, file))
    return
  end
  doc.mcpServers[name] = entry
  if text then
    local ok, err = core.write_durable(file .. ".bak", text)
    if not ok then return cli.fail("cannot keep a backup: " .. tostring(err)) end
  end
  local ok, err = core.write_durable(file, store.encode(doc))
  if not ok then return cli.fail(err) end
  io.stdout:write(("added %q to %s (%s)%s; restart the client to use it\n"):format(name, client, file,
    text and ", previous file kept as " .. file .. ".bak" or ""))
end

return M

-- `smg generate-config [--overwrite]`: a first config a new user can run at once, as the
-- seed's generate-config writes one: an admin API key (256 characters), one gateway API
-- key for a default user in a default project whose mcp_config holds the bundled echo
-- server, guarded by the embedded default's policies, with API-key auth on. The file
-- goes to --config PATH, else $SMG_CONFIG, else ~/.smg/config.json; an existing file is
-- kept unless --overwrite (and then it is kept as <config>.bak.1 by the store).
local smg = require "smg"
local core = require "smg.core"
local cli = require "smg.cli"
local store = require "smg.store"

local json = smg.json

local M = {}

local function default_path(given)
  if given then return given end
  local env = os.getenv("SMG_CONFIG")
  if env and env ~= "" then return env end
  local home = os.getenv("HOME")
  if not home or home == "" then return nil end
  os.execute("mkdir -p '" .. (home .. "/.smg"):gsub("'", "'\\''") .. "'")
  return home .. "/.smg/config.json"
end

-- The document: the embedded default's servers and policies, with ids, a user, a key.
function M.document()
  local _, root = core.paths()
  local base = assert(json.decode(assert(smg.read_file(root .. "/config/default.json"))))
  local config_id, project_id, user_id = cli.uuid(), cli.uuid(), cli.uuid()
  local key = cli.new_api_key()
  local now = cli.now_iso()
  local servers = base.mcp_configs.default.mcp_config
  base.mcp_configs = { [config_id] = { mcp_config_name = "default_config", mcp_config = servers } }
  base.projects = { [project_id] = { project_name = "default_project", mcp_config_id = config_id,
    users = json.array({ user_id }), created_at = now } }
  base.users = { [user_id] = { email = "default@example.com", created_at = now } }
  base.apikeys = { [key] = { project_id = project_id, user_id = user_id, created_at = now } }
  base.admin_apikey = smg.crypto.b64url_encode(core.random_bytes(192)) -- 256 characters
  base.plugins = base.plugins or {}
  base.plugins.auth = { provider = "local_apikey", config = {} }
  base.gateway = base.gateway or {}
  base.gateway.mcp_config_id = config_id
  return base, { gateway_key = key, project_id = project_id, user_id = user_id, mcp_config_id = config_id }
end

function M.run(args)
  local path, overwrite, as_json, show = nil, false, false, false
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--overwrite" then
      overwrite = true
    elseif a == "--json" then
      as_json = true
    elseif a == "--show-secrets" then
      show = true
    elseif a == "--config" and args[i + 1] then
      path = args[i + 1]
      i = i + 1
    elseif a == "--help" or a == "-h" then
      io.stdout:write("usage: smg generate-config [--overwrite] [--config PATH] [--json] [--show-secrets]\n\n",
        "Writes a first config: API-key auth, a default project, user and gateway key, the bundled echo\n",
        "server with the default guardrail policies, and an admin API key. An existing file is kept\n",
        "unless --overwrite (then it is backed up as <config>.bak.1).\n")
      return
    else
      io.stderr:write("smg: generate-config: unknown argument ", a, "\n")
      return core.set_exit_code(2)
    end
    i = i + 1
  end
  path = default_path(path)
  if not path then return cli.fail("no place for the config: pass --config PATH or set HOME") end
  local f = io.open(path, "rb")
  if f then
    f:close()
    if not overwrite then return cli.fail(path .. " exists; --overwrite replaces it (keeping a backup)") end
  end
  local doc, ids = M.document()
  local ok, err = store.create(path, doc)
  if not ok then return cli.fail(err) end
  local out = { config_path = path, gateway_key = ids.gateway_key, project_id = ids.project_id, user_id = ids.user_id,
    mcp_config_id = ids.mcp_config_id, admin_apikey = show and doc.admin_apikey or smg.mask(doc.admin_apikey) }
  if as_json then
    io.stdout:write(core.json_pretty(json.canonical(out)), "\n")
  else
    io.stdout:write(("wrote %s\ngateway_key: %s\nadmin_apikey: %s\n\nRun it: smg serve --config %s\n"):format(path,
      ids.gateway_key, out.admin_apikey, path))
  end
end

return M

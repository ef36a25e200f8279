-- The seed's local API-key auth: API key -> project -> user -> mcp_config, from the
-- gateway config's apikeys / projects / users. The key comes from the `apikey`,
-- `X-API-Key` or `Authorization: Bearer` header, or, for `smg serve --stdio`, from an
-- environment variable. Keys are compared in constant time against every configured key,
-- disabled keys are refused, and a key never appears in a log or an error.
local smg = require "smg"

local M = {
  name = "local_apikey",
  kind = "auth",
  version = "1.0.0",
  priority = 100,
  description = "API keys from the config's apikeys section",
  schema = {
    env_var = { type = "string", default = "SMG_API_KEY",
      description = "environment variable holding the key in stdio mode (ENKRYPT_GATEWAY_KEY is read too)" },
  },
}

local function key_of(req, config)
  local h = req.headers or {}
  local key = h.apikey or h["x-api-key"]
  if not key and h.authorization then key = h.authorization:match("^[Bb]earer%s+(%S+)%s*$") end
  if not key and req.transport == "stdio" then
    key = os.getenv(config.env_var) or os.getenv("ENKRYPT_GATEWAY_KEY")
  end
  if key == "" then key = nil end
  return key
end

-- authenticate(req, config, gateway_config) -> identity | nil, reason
function M.authenticate(req, config, gw)
  local key = key_of(req, config)
  if not key then return nil, "missing API key (apikey, X-API-Key or Authorization: Bearer)" end
  local match
  for k, entry in pairs(gw.apikeys or {}) do
    -- No early exit: the time taken does not depend on which key matched.
    if smg.secure_equal(k, key) then match = entry end
  end
  if not match then return nil, "invalid API key" end
  if match.disabled then return nil, "API key is disabled" end
  local project = gw.projects and gw.projects[match.project_id]
  if not project then return nil, "the API key's project does not exist" end
  if not project.mcp_config_id or not (gw.mcp_configs or {})[project.mcp_config_id] then
    return nil, "the API key's project has no mcp_config"
  end
  local user = match.user_id and gw.users and gw.users[match.user_id]
  return {
    project_id = match.project_id, project_name = project.project_name,
    user_id = match.user_id, email = user and user.email,
    mcp_config_id = project.mcp_config_id, key_hint = smg.mask(key),
  }
end

return M

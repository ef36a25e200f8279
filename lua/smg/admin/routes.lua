-- The admin REST API's routes: the seed's 57 (docs: enkrypt-compat §3), each one a CLI
-- command (lua/smg/cli/), so the API and the CLI are one implementation. This table
-- serves the requests and generates /openapi.json: a route cannot be served without being
-- documented, or documented without being served.
--
-- A route: { method, path, noun, verb, summary, body = { fields }, query = { name = opt },
-- message = "..." }. Path parameters: {c} a config (name or id), {p} a project (name or
-- id), {u} a user (id or email), {s} a server name, {key} an API key. Body fields are
-- passed to the command as the flag of the same name unless mapped (`field = "flag"`);
-- FILE fields name a file inside the admin files directory (never any server path), and
-- an absent output_file returns the document in `data` instead.
local M = {}

M.PARAMS = { c = "config_ref", p = "project_ref", u = "user_ref", s = "server_name", key = "api_key" }

-- Fields that name files: confined to the admin files directory.
M.FILE_FIELDS = { output_file = true, input_file = true, policy_file = true, input_policy_file = true,
  output_policy_file = true, backup_file = "input_file" }

local SERVER_BODY = { "server_command", "args", "env", "tools", "description" }

M.list = {
  -- configs
  { "GET", "/api/v1/configs", "config", "list", "List mcp_configs" },
  { "POST", "/api/v1/configs", "config", "add", "Create an mcp_config", body = { "config_name" }, status = 201 },
  { "POST", "/api/v1/configs/copy", "config", "copy", "Copy an mcp_config", body = { "source_config", "target_config" },
    status = 201 },
  { "POST", "/api/v1/configs/import", "config", "import", "Import an mcp_config from an export",
    body = { "config_name", "input_file", content = "input" }, status = 201 },
  { "POST", "/api/v1/configs/search", "config", "search", "Find mcp_configs", body = { "search_term" } },
  { "GET", "/api/v1/configs/{c}", "config", "get", "Show an mcp_config" },
  { "DELETE", "/api/v1/configs/{c}", "config", "remove", "Delete an mcp_config no project uses" },
  { "PUT", "/api/v1/configs/{c}/rename", "config", "rename", "Rename an mcp_config", body = { "new_name" } },
  { "GET", "/api/v1/configs/{c}/projects", "config", "list-projects", "The projects that use an mcp_config" },
  { "GET", "/api/v1/configs/{c}/servers", "config", "list-servers", "The servers of an mcp_config" },
  { "DELETE", "/api/v1/configs/{c}/servers", "config", "remove-all-servers", "Remove every server of an mcp_config" },
  { "POST", "/api/v1/configs/{c}/servers", "config", "add-server", "Add a server",
    body = { "server_name", "server_command", "args", "env", "tools", "description", "input_guardrails_policy",
      "output_guardrails_policy" }, status = 201 },
  { "GET", "/api/v1/configs/{c}/servers/{s}", "config", "get-server", "Show a server" },
  { "PUT", "/api/v1/configs/{c}/servers/{s}", "config", "update-server", "Change a server", body = SERVER_BODY },
  { "DELETE", "/api/v1/configs/{c}/servers/{s}", "config", "remove-server", "Remove a server" },
  { "PUT", "/api/v1/configs/{c}/servers/{s}/input-guardrails", "config", "update-server-input-guardrails",
    "Replace a server's input guardrails policy", body = { "policy", "policy_file" } },
  { "PUT", "/api/v1/configs/{c}/servers/{s}/output-guardrails", "config", "update-server-output-guardrails",
    "Replace a server's output guardrails policy", body = { "policy", "policy_file" } },
  { "PUT", "/api/v1/configs/{c}/servers/{s}/guardrails", "config", "update-server-guardrails",
    "Replace a server's input and/or output guardrails policies",
    body = { "input_policy", "input_policy_file", "output_policy", "output_policy_file" } },
  { "POST", "/api/v1/configs/{c}/validate", "config", "validate", "Validate an mcp_config" },
  { "POST", "/api/v1/configs/{c}/export", "config", "export",
    "Export an mcp_config (in `data`, or to a file in the admin files directory)", body = { "output_file" } },
  -- settings
  { "PUT", "/api/v1/settings/enkrypt-api-key", "config", "set-enkrypt-api-key", "Set the Enkrypt API key",
    body = { "api_key" } },
  { "GET", "/api/v1/settings/enkrypt-api-key", "config", "get-enkrypt-api-key", "The Enkrypt API key (masked)" },
  { "PUT", "/api/v1/settings/telemetry", "config", "configure-telemetry", "Turn OTLP export on or off",
    body = { "enabled", "url", "insecure" } },
  -- projects
  { "GET", "/api/v1/projects", "project", "list", "List projects" },
  { "POST", "/api/v1/projects", "project", "create", "Create a project", body = { "project_name" }, status = 201,
    ignore = { "mcp_config_name" } },
  { "POST", "/api/v1/projects/search", "project", "search", "Find projects", body = { "search_term" } },
  { "GET", "/api/v1/projects/{p}", "project", "get", "Show a project" },
  { "DELETE", "/api/v1/projects/{p}", "project", "remove", "Delete a project and its API keys" },
  { "GET", "/api/v1/projects/{p}/config", "project", "get-config", "The mcp_config a project uses" },
  { "POST", "/api/v1/projects/{p}/assign-config", "project", "assign-config", "Make a project use an mcp_config",
    body = { "config_name", "config_id" } },
  { "POST", "/api/v1/projects/{p}/unassign-config", "project", "unassign-config", "Make a project use no mcp_config" },
  { "GET", "/api/v1/projects/{p}/users", "project", "list-users", "A project's users" },
  { "POST", "/api/v1/projects/{p}/users", "project", "add-user", "Add a user to a project", body = { "email", "user_id" },
    status = 201 },
  { "DELETE", "/api/v1/projects/{p}/users", "project", "remove-all-users", "Remove every user from a project" },
  { "DELETE", "/api/v1/projects/{p}/users/{u}", "project", "remove-user", "Remove a user from a project" },
  { "POST", "/api/v1/projects/{p}/export", "project", "export",
    "Export a project (in `data`, or to a file in the admin files directory)", body = { "output_file" } },
  -- users
  { "GET", "/api/v1/users", "user", "list", "List users" },
  { "POST", "/api/v1/users", "user", "create", "Create a user", body = { "email" }, status = 201 },
  { "POST", "/api/v1/users/search", "user", "search", "Find users", body = { "search_term" } },
  { "GET", "/api/v1/users/{u}", "user", "get", "Show a user" },
  { "PUT", "/api/v1/users/{u}", "user", "update", "Change a user's email", body = { "new_email" } },
  { "DELETE", "/api/v1/users/{u}", "user", "delete", "Delete a user (force: with keys and memberships)",
    body = { "force" }, ignore = { "user_identifier" } },
  { "GET", "/api/v1/users/{u}/projects", "user", "list-projects", "The projects a user belongs to" },
  { "POST", "/api/v1/users/{u}/api-keys", "user", "generate-api-key", "Make an API key for a user in a project",
    body = { "project_name", "project_id" }, status = 201 },
  { "GET", "/api/v1/users/{u}/api-keys", "user", "list-api-keys", "A user's API keys",
    query = { project_identifier = "project_ref" } },
  { "DELETE", "/api/v1/users/{u}/api-keys", "user", "delete-all-api-keys", "Delete all of a user's API keys" },
  -- API keys
  { "GET", "/api/v1/api-keys", "user", "list-all-api-keys", "Every API key (masked)" },
  { "POST", "/api/v1/api-keys/rotate", "user", "rotate-api-key", "Replace an API key with a new one",
    body = { "api_key" } },
  { "GET", "/api/v1/api-keys/{key}", "user", "get-api-key", "Show an API key's project and user" },
  { "DELETE", "/api/v1/api-keys/{key}", "user", "delete-api-key", "Delete an API key" },
  { "POST", "/api/v1/api-keys/{key}/disable", "user", "disable-api-key", "Stop an API key working" },
  { "POST", "/api/v1/api-keys/{key}/enable", "user", "enable-api-key", "Let a disabled API key work again" },
  -- system
  { "GET", "/api/v1/system/health", "system", "health-check", "Check the config, its plugins and servers" },
  { "POST", "/api/v1/system/backup", "system", "backup",
    "Back up the config (in `data`, or to a file in the admin files directory)", body = { "output_file" } },
  { "POST", "/api/v1/system/restore", "system", "restore", "Restore the config from a backup",
    body = { "input_file", "backup_file", content = "input" } },
  { "POST", "/api/v1/system/reset", "system", "reset", "Replace the config with a fresh default one",
    body = { "confirm" } },
  -- smg's own: pins, and the discovery cache of the gateway this API runs in
  { "GET", "/api/v1/pins", "pins", "list", "The pins of what upstreams offer" },
  { "POST", "/api/v1/pins/approve", "pins", "approve", "Approve pending pins (applied at once)", body = { "ids", "all" } },
  { "POST", "/api/v1/pins/reject", "pins", "reject", "Reject pending pins (applied at once)", body = { "ids", "all" } },
  { "GET", "/api/v1/cache/status", nil, nil, "The two-level cache of the running gateway, every tenant",
    inproc = "cache_status" },
  { "POST", "/api/v1/cache/clear", nil, nil, "Clear cached lists (of one tenant, of one server) in both levels",
    inproc = "cache_clear", body = { "server_name", "config_id", "cache_type" } },
  { "GET", "/api/v1/oauth/metrics", nil, nil, "Upstream OAuth token metrics of the running gateway",
    inproc = "oauth_metrics" },
  { "POST", "/api/v1/oauth/revoke", nil, nil, "Revoke a server's upstream OAuth token (RFC 7009) and forget it",
    inproc = "oauth_revoke", body = { "server_name", "config_id" } },
  { "GET", "/api/v1/oauth/pending", nil, nil, "Upstream authorizations waiting for a person (the URLs to open)",
    inproc = "oauth_pending" },
}

-- Compiles each route's path into a Lua pattern and its parameter names.
for _, r in ipairs(M.list) do
  local names = {}
  r.pattern = "^" .. r[2]:gsub("[%-%.]", "%%%0"):gsub("{(%w+)}", function(n)
    names[#names + 1] = n
    return "([^/]+)"
  end) .. "$"
  r.params = names
  r.method, r.path, r.noun, r.verb, r.summary = r[1], r[2], r[3], r[4], r[5]
end

-- The route for `method` and `path`, and its path parameters. Returns route, params |
-- nil, "not_found" | "method" (the path exists with other methods: 405).
function M.match(method, path)
  local other = false
  for _, r in ipairs(M.list) do
    local caps = { path:match(r.pattern) }
    if #caps > 0 then
      if r.method == method then
        local params = {}
        for i, n in ipairs(r.params) do params[n] = caps[i] end
        return r, params
      end
      other = true
    end
  end
  return nil, other and "method" or "not_found"
end

return M

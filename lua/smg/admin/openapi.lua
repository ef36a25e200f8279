-- /openapi.json: an OpenAPI 3.1 document generated from the route table that serves the
-- requests (admin/routes.lua) and the flags of the CLI commands behind them, so what is
-- documented is what is served.
local smg = require "smg"
local core = require "smg.core"
local routes = require "smg.admin.routes"
local cli = require "smg.cli"

local json = smg.json

local M = {}

local PARAM_DOC = {
  c = "an mcp_config's name or id", p = "a project's name or id", u = "a user's id or email",
  s = "a server's name", key = "an API key (masked in every log)",
}

-- The JSON Schema type of a body field.
local OBJECT_FIELDS = { env = true, tools = true, input_guardrails_policy = true, output_guardrails_policy = true,
  policy = true, input_policy = true, output_policy = true, content = true }
local BOOL_FIELDS = { force = true, confirm = true, enabled = true, insecure = true }

local function field_schema(field)
  if field == "args" then return { type = "array", items = { type = "string" } } end
  if OBJECT_FIELDS[field] then return { type = "object" } end
  if BOOL_FIELDS[field] then return { type = "boolean" } end
  return { type = "string" }
end

local cached

function M.document()
  if cached then return cached end
  local paths = {}
  for _, r in ipairs(routes.list) do
    local cmd = r.noun and cli.command(r.noun, r.verb)
    local id = r.noun and (r.noun .. "_" .. r.verb) or r.inproc
    local op = { summary = r.summary, operationId = (id:gsub("%-", "_")),
      tags = json.array({ r.noun or "cache" }), security = json.array({ { bearer = json.array({}) } }),
      ["x-smg-command"] = r.noun and ("smg %s %s"):format(r.noun, r.verb) or ("smg " .. r.inproc:gsub("_", " ")) }
    local params = json.array({})
    for _, name in ipairs(r.params) do
      params[#params + 1] = { name = name, ["in"] = "path", required = true, description = PARAM_DOC[name],
        schema = { type = "string" } }
    end
    for q in pairs(r.query or {}) do
      params[#params + 1] = { name = q, ["in"] = "query", required = false, schema = { type = "string" } }
    end
    if #params > 0 then op.parameters = params end
    if r.body then
      local props, required = {}, json.array({})
      local flags = {}
      for _, f in ipairs(cmd and cmd.flags or {}) do flags[f[1]:sub(3):gsub("%-", "_")] = f end
      for k, v in pairs(r.body) do
        local field = type(k) == "number" and v or k
        local flag = flags[type(k) == "number" and v or v] or flags[field]
        local s = field_schema(field)
        s.description = flag and flag.help or (field == "content" and "the document itself, instead of a file") or nil
        props[field] = s
        if flag and flag.required and not routes.FILE_FIELDS[field] then required[#required + 1] = field end
      end
      table.sort(required)
      op.requestBody = { required = #required > 0, content = { ["application/json"] = { schema = {
        type = "object", properties = props, required = #required > 0 and required or nil,
        additionalProperties = false } } } }
    end
    op.responses = {
      [tostring(r.status or 200)] = { description = "done: {message, data, timestamp}",
        content = { ["application/json"] = { schema = { ["$ref"] = "#/components/schemas/Answer" } } } },
      ["400"] = { description = "invalid request", content = { ["application/json"] = { schema = { ["$ref"] = "#/components/schemas/Error" } } } },
      ["401"] = { description = "no or a wrong admin API key" },
      ["404"] = { description = "not found" },
      ["409"] = { description = "conflict (exists, in use)" },
      ["422"] = { description = "the change would make the config invalid" },
    }
    paths[r.path] = paths[r.path] or {}
    paths[r.path][r.method:lower()] = op
  end
  paths["/health"] = { get = { summary = "Liveness (no authentication)", operationId = "health",
    security = json.array({}), responses = { ["200"] = { description = "{status, version, config_path}" } } } }
  paths["/openapi.json"] = { get = { summary = "This document", operationId = "openapi", security = json.array({}),
    responses = { ["200"] = { description = "OpenAPI 3.1" } } } }
  paths["/oauth/callback"] = { get = { summary = "Where an authorization server sends a person back after they "
    .. "authorized an upstream (no admin key: the single-use state is the credential)", operationId = "oauthCallback",
    security = json.array({}), parameters = json.array({
      { name = "code", ["in"] = "query", schema = { type = "string" } },
      { name = "state", ["in"] = "query", required = true, schema = { type = "string" } },
      { name = "iss", ["in"] = "query", schema = { type = "string" } } }),
    responses = { ["200"] = { description = "authorized (a short text page)" },
      ["400"] = { description = "unknown state, iss mismatch, or the code was refused" } } } }
  cached = {
    openapi = "3.1.0",
    info = { title = "smg admin API", version = core.version,
      description = "The seed's admin REST API: every route runs the `smg` CLI command it names (x-smg-command)." },
    paths = paths,
    components = {
      securitySchemes = { bearer = { type = "http", scheme = "bearer", description = "the config's admin_apikey" } },
      schemas = {
        Answer = { type = "object", properties = { message = { type = "string" }, data = {},
          timestamp = { type = "string" } }, required = json.array({ "message", "data", "timestamp" }) },
        Error = { type = "object", properties = { detail = { type = "string" }, error = { type = "object",
          properties = { code = { type = "string" }, message = { type = "string" } } }, timestamp = { type = "string" } } },
      },
    },
  }
  return cached
end

return M

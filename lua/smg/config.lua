-- The gateway config: the seed's schema (common_mcp_gateway_config, plugins, mcp_configs,
-- projects, users, apikeys), so a seed user's file loads unchanged, plus smg's own
-- "gateway" section. Validated on load; every problem names its key path.
local smg = require "smg"
local core = require "smg.core"
local schema = require "smg.schema"
local json = smg.json

local M = {}

local function obj(fields, extra)
  local n = { type = "object", fields = fields, default = {}, unknown = "warn" }
  for k, v in pairs(extra or {}) do n[k] = v end
  return n
end
local function str(d, extra)
  local n = { type = "string", default = d }
  for k, v in pairs(extra or {}) do n[k] = v end
  return n
end
local function num(d, min) return { type = "number", default = d, min = min } end
local function int(d, min, max) return { type = "integer", default = d, min = min, max = max } end
local function bool(d) return { type = "boolean", default = d } end
local function str_array() return { type = "array", items = { type = "string" }, default = json.array({}) } end
local function map_of(node) return { type = "object", values = node, default = {} } end

-- redis[s]://[user[:password]@]host[:port][/db] -> { host, port, db, username, password,
-- tls } | nil, err. rediss:// is Redis over TLS (runtime/lua_redis_tls.c).
function M.parse_redis_url(url)
  local scheme, rest = tostring(url):match("^(%a+)://(.*)$")
  if scheme ~= "redis" and scheme ~= "rediss" then
    return nil, "expected redis[s]://[user[:password]@]host[:port][/db]"
  end
  local function unescape(v) return v and (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
  local userinfo, hostpart = rest:match("^(.*)@([^@]*)$")
  hostpart = hostpart or rest
  local user, pass
  if userinfo then
    user, pass = userinfo:match("^([^:]*):(.*)$")
    if not user then user = userinfo end
  end
  local hostport, db = hostpart:match("^([^/]*)/?(%d*)/?$")
  if not hostport then return nil, "bad database number in " .. smg.mask(url) end
  local host, port = hostport:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return nil, "no host in the Redis URL" end
  port = port ~= "" and tonumber(port) or 6379
  if port < 1 or port > 65535 then return nil, "port out of range in the Redis URL" end
  return { host = host, port = port, db = db ~= "" and tonumber(db) or 0, tls = scheme == "rediss" or nil,
    username = user ~= "" and unescape(user) or nil, password = pass ~= nil and pass ~= "" and unescape(pass) or nil }
end

-- A token bucket: `rate` tokens a second (0: no limit), up to `burst` saved (default: rate,
-- at least 1).
local function bucket(extra)
  local fields = { rate = num(0, 0), burst = int(nil, 1) }
  for k, v in pairs(extra or {}) do fields[k] = v end
  return obj(fields, { unknown = "error" })
end

-- The message kinds a guardrail policy can be switched on for (smg: `kinds`; empty: all).
-- A message's kind is its method's family (gateway/hooks.lua: kind_of); "errors" are the
-- JSON-RPC errors of either side, whatever their method.
M.MESSAGE_KINDS = { "tools", "resources", "prompts", "completions", "sampling", "elicitation", "roots", "logging",
  "progress", "instructions", "errors", "other" }

local guardrail_policy = obj({
  enabled = bool(false),
  policy_name = str(nil),
  additional_config = { type = "object", default = {}, unknown = "allow" },
  block = str_array(),
  -- smg: the guardrail providers this policy runs, by name (empty: every configured one).
  -- A name not configured under plugins.guardrails is loaded with its defaults.
  guardrails = str_array(),
  kinds = { type = "array", items = { type = "string", enum = M.MESSAGE_KINDS }, default = json.array({}) },
}, { unknown = "allow" })

-- The seed's registration-time checks (2.1.7): the detectors of `block` run on every tool's
-- description when a server is discovered; flagged tools are never listed (an empty block
-- list only reports). gateway/registration.lua maps the detectors onto providers.
M.DETECTORS = { "injection_attack", "policy_violation", "keyword_detector", "toxicity", "nsfw", "topic_detector",
  "pii", "bias", "sponge_attack" }
local tool_guardrails_policy = obj({
  enabled = bool(false),
  policy_name = str(nil),
  additional_config = { type = "object", default = {}, unknown = "allow" },
  block = { type = "array", items = { type = "string", enum = M.DETECTORS }, default = json.array({}) },
}, { unknown = "allow" })

-- Upstream OAuth 2.0/2.1 (lua/smg/upstream/oauth.lua): the seed's oauth_config keys, and
-- smg's OAUTH_TOKEN_ENDPOINT_AUTH, OAUTH_REVOKE_ON_SHUTDOWN and OAUTH_ENV_NAMES.
local URL = { pattern = "^https?://", pattern_desc = "an http:// or https:// URL" }
local oauth_schema = obj({
  enabled = bool(false),
  OAUTH_VERSION = str("2.0", { enum = { "2.0", "2.1" } }),
  -- authorization_code: a person authorizes once (the MCP authorization flow; see
  -- upstream/oauth_code.lua), the gateway keeps and refreshes the tokens.
  -- token_exchange (RFC 8693): per caller, the caller's validated inbound token is
  -- exchanged for one for this server (never passed on itself); needs sharing per_session.
  OAUTH_GRANT_TYPE = str("client_credentials", { enum = { "client_credentials", "authorization_code",
    "token_exchange" } }),
  OAUTH_SUBJECT_TOKEN_TYPE = str("urn:ietf:params:oauth:token-type:access_token"),
  OAUTH_REDIRECT_URI = str(nil, URL), -- default: the admin API's /oauth/callback
  OAUTH_CLIENT_METADATA_URL = str(nil, URL), -- a Client ID Metadata Document this gateway is known by
  OAUTH_TOKEN_URL = str(nil, URL),
  OAUTH_CLIENT_ID = str(nil),
  OAUTH_CLIENT_SECRET = str(nil),
  OAUTH_AUDIENCE = str(nil),
  OAUTH_ORGANIZATION = str(nil),
  OAUTH_SCOPE = str(nil),
  OAUTH_RESOURCE = str(nil, URL), -- RFC 8707 resource indicator
  OAUTH_TOKEN_EXPIRY_BUFFER = int(300, 0), -- seconds before expiry a token is refreshed
  OAUTH_USE_BASIC_AUTH = bool(true), -- client_secret_basic (true) or client_secret_post
  OAUTH_TOKEN_ENDPOINT_AUTH = str(nil, { enum = { "client_secret_basic", "client_secret_post", "private_key_jwt",
    "none" } }),
  -- private_key_jwt (RFC 7523): a PEM private key signs the client assertion.
  OAUTH_CLIENT_ASSERTION_KEY_PATH = str(nil),
  OAUTH_CLIENT_ASSERTION_ALG = str("RS256", { enum = { "RS256", "RS384", "RS512", "PS256", "ES256", "ES384" } }),
  OAUTH_CLIENT_ASSERTION_KID = str(nil),
  OAUTH_ENFORCE_HTTPS = bool(nil), -- default: on for 2.1
  OAUTH_TOKEN_IN_HEADER_ONLY = bool(true), -- (the seed's; smg never puts a token anywhere else)
  OAUTH_USE_MTLS = bool(false), -- RFC 8705 client certificate on the token request
  OAUTH_CLIENT_CERT_PATH = str(nil),
  OAUTH_CLIENT_KEY_PATH = str(nil),
  OAUTH_CA_BUNDLE_PATH = str(nil),
  OAUTH_REVOCATION_URL = str(nil, URL), -- RFC 7009
  OAUTH_REVOKE_ON_SHUTDOWN = bool(false),
  OAUTH_VALIDATE_SCOPES = bool(true),
  OAUTH_ADDITIONAL_PARAMS = { type = "object", values = { type = "string" }, default = {} },
  OAUTH_CUSTOM_HEADERS = { type = "object", values = { type = "string" }, default = {} },
  -- The environment variables a stdio server gets the token in (default: the seed's).
  OAUTH_ENV_NAMES = str_array(),
  -- The MCP authorization flow (remote servers): the token endpoint is found from the
  -- server's 401 challenge, its Protected Resource Metadata and the authorization server's
  -- metadata instead of OAUTH_TOKEN_URL. On by default when OAUTH_TOKEN_URL is absent.
  OAUTH_DISCOVERY = bool(nil),
  -- Discovery fetches URLs the server chose: loopback, private and link-local addresses
  -- are refused unless this is on (then plain HTTP is accepted too, for a server whose
  -- own URL is http://: a development setup).
  OAUTH_ALLOW_PRIVATE_NETWORKS = bool(false),
  OAUTH_MAX_STEP_UPS = int(2, 0, 10), -- 403 insufficient_scope re-authorizations per request
}, { default = nil, check = function(c)
  if not c.enabled then return nil end
  if c.OAUTH_DISCOVERY == nil then c.OAUTH_DISCOVERY = c.OAUTH_TOKEN_URL == nil end
  if not c.OAUTH_TOKEN_URL and not c.OAUTH_DISCOVERY then return "OAUTH_TOKEN_URL is required when enabled" end
  if c.OAUTH_GRANT_TYPE == "token_exchange" and not c.OAUTH_TOKEN_URL then
    -- The callers' own tokens go to this endpoint: never to one an upstream names.
    return "OAUTH_GRANT_TYPE token_exchange needs OAUTH_TOKEN_URL (the callers' tokens are never sent to a "
      .. "discovered endpoint)"
  end
  if c.OAUTH_GRANT_TYPE == "authorization_code" then
    if not c.OAUTH_DISCOVERY then return "OAUTH_GRANT_TYPE authorization_code needs the MCP authorization flow (OAUTH_DISCOVERY)" end
    return nil -- the client may be registered dynamically; the rest is found at run time
  end
  if not c.OAUTH_CLIENT_ID or c.OAUTH_CLIENT_ID == "" then return "OAUTH_CLIENT_ID is required for client_credentials" end
  if c.OAUTH_TOKEN_ENDPOINT_AUTH == "private_key_jwt" then
    if not c.OAUTH_CLIENT_ASSERTION_KEY_PATH then return "OAUTH_CLIENT_ASSERTION_KEY_PATH is required for private_key_jwt" end
  elseif c.OAUTH_TOKEN_ENDPOINT_AUTH == "none" then
    if c.OAUTH_CLIENT_SECRET then return "OAUTH_CLIENT_SECRET is set but OAUTH_TOKEN_ENDPOINT_AUTH is none" end
  elseif (not c.OAUTH_CLIENT_SECRET or c.OAUTH_CLIENT_SECRET == "") and not c.OAUTH_DISCOVERY then
    return "OAUTH_CLIENT_SECRET is required for client_credentials"
  end
  local https = c.OAUTH_ENFORCE_HTTPS
  if https == nil then https = c.OAUTH_VERSION == "2.1" end
  if https then
    for _, k in ipairs({ "OAUTH_TOKEN_URL", "OAUTH_REVOCATION_URL" }) do
      if c[k] and not c[k]:find("^https://") then
        return k .. " must be https:// (" .. (c.OAUTH_VERSION == "2.1" and "OAuth 2.1" or "OAUTH_ENFORCE_HTTPS") .. ")"
      end
    end
  end
  if c.OAUTH_USE_MTLS and not (c.OAUTH_CLIENT_CERT_PATH and c.OAUTH_CLIENT_KEY_PATH) then
    return "OAUTH_CLIENT_CERT_PATH and OAUTH_CLIENT_KEY_PATH are required with OAUTH_USE_MTLS"
  end
  for _, n in ipairs(c.OAUTH_ENV_NAMES) do
    if not n:match("^[%a_][%w_]*$") then return ("OAUTH_ENV_NAMES: %q is not an environment variable name"):format(n) end
  end
end })

local server_schema = obj({
  -- The server name prefixes its tools and prompts in aggregate mode ("github__create_issue"),
  -- so it must keep them valid where clients send them on: the model APIs' function names
  -- (letters, digits, '_' and '-', at most 64 or 128 characters) are stricter than MCP's
  -- rule, and a dot is not among them.
  server_name = str(nil, { required = true, pattern = "^[%w_%-]+$",
    pattern_desc = "letters, digits, '_' and '-' (no '.': the prefixed tool names must stay valid model-API function names)",
    check = function(v)
      if type(v) == "string" and #v > 48 then
        return "at most 48 characters (the prefixed tool names must stay within 64)"
      end
    end }),
  description = str(""),
  config = obj({
    command = str(nil),
    args = str_array(),
    env = { type = "object", values = { type = "string" }, default = {} },
    -- Names of smg's environment variables the server may see (a trailing '*' is a
    -- prefix), beyond HOME, LOGNAME, PATH, SHELL, TERM and USER.
    inherit_env = str_array(),
    cwd = str(nil),
    url = str(nil, { pattern = "^https?://", pattern_desc = "an http:// or https:// URL" }),
    headers = { type = "object", values = { type = "string" }, default = {} },
    -- Remote transport: unset tries Streamable HTTP and falls back to the 2024-11-05
    -- HTTP+SSE transport when initialize is refused with 400/404/405.
    transport = str(nil, { enum = { "streamable_http", "sse" } }),
  }, { required = true, default = nil, unknown = "warn", check = function(c)
    if (c.command == nil) == (c.url == nil) then return "exactly one of command (stdio) or url (Streamable HTTP) is required" end
  end }),
  tools = { type = "object", default = {}, unknown = "allow" },
  -- Absent: the policies' own `enabled` decide (seed 2.1.7 dropped the key; a config
  -- written for it must not lose its input and output policies).
  enable_tool_guardrails = bool(true),
  input_guardrails_policy = guardrail_policy,
  output_guardrails_policy = guardrail_policy,
  tool_guardrails_policy = tool_guardrails_policy,
  -- The seed checks "MCP Server: <name> - <description>" (the configured description and
  -- the server's own) with tool_guardrails_policy's block list; absent means on, as in
  -- the seed's code. A hit hides all of the server's tools.
  enable_server_info_validation = bool(true),
  oauth_config = oauth_schema,
  -- smg's own keys
  sharing = str("shared", { enum = { "shared", "per_session" } }),
  -- The MCP revision spoken to this server: "auto" (stdio: a server/discover probe, then
  -- initialize if it is not a 2026-07-28 server; HTTP: 2025 until detection is built),
  -- "legacy" (2025-11-25 and older: initialize), "modern" (2026-07-28 only).
  era = str("auto", { enum = { "auto", "legacy", "modern" } }),
  -- Confinement of a stdio server (runtime/sandbox.c); absent: none.
  sandbox = { type = "object", unknown = "error", fields = {
    enabled = bool(true), -- the seed's Docker sandbox has it; false means no sandbox
    no_new_privileges = bool(true),
    network = bool(true),
    memory_mb = int(nil, 16),
    open_files = int(nil, 16),
    processes = int(nil, 1),
    cpu_seconds = int(nil, 1),
    file_size_mb = int(nil, 1),
  } },
  allow_tools = str_array(),
  deny_tools = str_array(),
  -- The seed's newer name for a list of tools that must not be called: merged into
  -- deny_tools (a denied tool is neither listed nor callable).
  denied_tools = str_array(),
  max_restarts = int(100, 0),
  restart_backoff_max = num(30, 0.1),
}, { check = function(s)
  local o = s.oauth_config
  if type(o) == "table" and o.enabled and o.OAUTH_GRANT_TYPE == "token_exchange" and s.sharing ~= "per_session" then
    return "oauth_config: OAUTH_GRANT_TYPE token_exchange gives each caller its own token: set sharing to per_session"
  end
  if type(o) == "table" and o.enabled and o.OAUTH_DISCOVERY and not (type(s.config) == "table" and s.config.url) then
    return "oauth_config: the MCP authorization flow (OAUTH_DISCOVERY) needs a remote server (config.url); "
      .. "a stdio server needs OAUTH_TOKEN_URL"
  end
end })

local timeout_schema = obj({
  default_timeout = num(30, 0.001),
  guardrail_timeout = num(15, 0.001),
  auth_timeout = num(10, 0.001),
  tool_execution_timeout = num(60, 0.001),
  discovery_timeout = num(20, 0.001),
  cache_timeout = num(5, 0.001),
  connectivity_timeout = num(2, 0.001),
  escalation_policies = obj({
    warn_threshold = num(0.8, 0),
    timeout_threshold = num(1.0, 0),
    fail_threshold = num(1.2, 0),
  }),
})

-- The seed's { provider, config }, plus smg's list of further providers and what to do
-- when a provider's hook errors or times out (guardrails: block by default).
local plugin_ref = obj({
  provider = str(nil),
  config = { type = "object", default = {}, unknown = "allow" },
  providers = { type = "array", default = json.array({}), items = obj({
    name = str(nil, { required = true, pattern = "^[%w_%-]+$", pattern_desc = "letters, digits, '_' and '-'" }),
    config = { type = "object", default = {}, unknown = "allow" },
    priority = { type = "integer" },
  }, { unknown = "error" }) },
  on_error = str("block", { enum = { "block", "allow" } }),
}, { unknown = "allow" })

M.schema = obj({
  common_mcp_gateway_config = obj({
    enkrypt_log_level = str("INFO"),
    enkrypt_use_remote_mcp_config = bool(false),
    enkrypt_remote_mcp_gateway_name = str(nil),
    enkrypt_remote_mcp_gateway_version = str(nil),
    enkrypt_mcp_use_external_cache = bool(false),
    enkrypt_cache_host = str("localhost"),
    enkrypt_cache_port = int(6379, 1, 65535),
    enkrypt_cache_db = int(0, 0),
    enkrypt_cache_password = { type = "string", nullable = true },
    enkrypt_tool_cache_expiration = num(4, 0),
    enkrypt_gateway_cache_expiration = num(24, 0),
    enkrypt_async_input_guardrails_enabled = bool(false),
    enkrypt_async_output_guardrails_enabled = bool(false),
    enkrypt_telemetry = { type = "object", default = {}, unknown = "allow" },
    timeout_settings = timeout_schema,
  }),
  plugins = obj({ auth = plugin_ref, guardrails = plugin_ref, telemetry = plugin_ref }),
  mcp_configs = map_of(obj({
    mcp_config_name = str(""),
    mcp_config = { type = "array", items = server_schema, default = json.array({}), check = function(list)
      local seen = {}
      for i, s in ipairs(list) do
        if s and s.server_name then
          if seen[s.server_name] then return ("server_name %q appears twice (entries %d and %d)"):format(s.server_name, seen[s.server_name] - 1, i - 1) end
          seen[s.server_name] = i
        end
      end
    end },
  })),
  projects = map_of(obj({ project_name = str(""), mcp_config_id = str(nil), users = str_array(), created_at = str(nil) },
    { unknown = "allow" })),
  users = map_of(obj({ email = str(""), created_at = str(nil) }, { unknown = "allow" })),
  apikeys = map_of(obj({ project_id = str(nil), user_id = str(nil), created_at = str(nil), disabled = bool(false) },
    { unknown = "allow" })),
  -- The admin REST API's key (`Authorization: Bearer <admin_apikey>`); the seed's field.
  admin_apikey = str(nil),
  gateway = obj({
    host = str("127.0.0.1"),
    port = int(8000, 0, 65535),
    path = str("/mcp", { pattern = "^/" }),
    mode = str("meta", { enum = { "meta", "aggregate", "passthrough" } }),
    tool_prefix = str("enkrypt_", { pattern = "^[%w_%-%.]*$" }),
    -- Two servers listing one resource URI (aggregate mode): "first" in config order
    -- serves it, or "refuse": nobody does (router/aggregate.lua).
    resource_collisions = str("first", { enum = { "first", "refuse" } }),
    -- Aggregate lists longer than this are paginated with the gateway's own cursors
    -- (0: one page, as every upstream's pages are merged anyway).
    page_size = int(0, 0, 100000),
    separator = str("__", { pattern = "^[%w_%-%.]+$" }),
    mcp_config_id = str(nil),
    passthrough_server = str(nil),
    allowed_origins = str_array(),
    allowed_hosts = str_array(),
    server_name = str("smg"),
    metrics_path = str("/metrics", { pattern = "^/" }),
    watch = bool(true), -- reload when the config file or a plugin file changes
    reload_debounce = num(0.15, 0), -- seconds: one save is often several file events
    limits = obj({
      max_body_bytes = int(4 * 1024 * 1024, 1024),
      max_header_bytes = int(16 * 1024, 1024),
      max_connections = int(10000, 1),
      -- Connections on which no request has passed authentication yet ("untrusted"):
      max_untrusted_connections_per_peer = int(256, 1),
      reserved_connections = int(nil, 0), -- of max_connections, for trusted ones; default a tenth
      header_timeout = num(10, 0.1),      -- an untrusted connection's idle time and time to send headers
      idle_timeout = num(75, 0.1),
      request_timeout = num(30, 0.1),
      max_sessions = int(10000, 1),
      -- Per tenant: an identity is a project/user (or, without auth, a peer address).
      max_sessions_per_identity = int(256, 1),
      max_sessions_per_peer = int(1024, 1),
      max_session_upstreams_per_identity = int(32, 0), -- per_session upstreams (processes)
      max_calls_per_session = int(64, 1),              -- client requests in flight
      max_client_requests_per_session = int(16, 1),    -- sampling/elicitation/roots in flight
      max_calls_per_upstream = int(1024, 1),           -- requests in flight to one upstream
      max_upstream_write_queue = int(16 * 1024 * 1024, 65536), -- bytes unread by a stdio upstream
      session_idle_timeout = num(1800, 1),  -- 30 minutes
      unused_session_timeout = num(120, 1), -- a session that never made a call: 2 minutes
      max_message_bytes = int(64 * 1024 * 1024, 1024),
    }),
    shutdown_grace = num(10, 0),
    -- The admin REST API (lua/smg/admin/): on its own listener, served by `smg serve` when
    -- the config has an admin_apikey (and by `smg system start-api`). Files the API reads
    -- or writes (exports, backups, policy files) are confined to files_dir (default: an
    -- `admin-files` directory beside the config).
    -- Previous versions of the config file the CLI and the admin API keep (<config>.bak.N).
    config_backups = int(5, 0, 100),
    admin = obj({
      enabled = bool(true),
      host = str("127.0.0.1"),
      port = int(8001, 0, 65535),
      files_dir = str(nil),
    }, { unknown = "error" }),
    -- Where tool pins are kept (smg.pins); default: <config name>.pins.json beside the
    -- config file, or ~/.smg/pins.json for the embedded default.
    pins_path = str(nil),
    -- The hash-chained audit log: one JSON line per client request (off without a path).
    audit = obj({
      path = str(nil),
      max_bytes = int(64 * 1024 * 1024, 4096), -- rotate past this size
      keep = int(10, 1),                      -- rotated files kept: path.1 ... path.<keep>
    }, { unknown = "error" }),
    -- Config replication between instances (lua/smg/gateway/cluster.lua): with the external
    -- cache on and a secret set, a change to the shared sections on one instance (CLI,
    -- admin API, an edit of its file) reaches every instance that shares the Redis and
    -- the secret. Messages are authenticated with HMAC-SHA256 under the secret.
    cluster = obj({
      secret = str(nil, { check = function(v)
        if type(v) == "string" and #v < 32 then return "at least 32 characters (a shared secret, e.g. `openssl rand -hex 32`)" end
      end }),
      channel = str("smg:config", { pattern = "^[%w:_%-%.]+$" }),
    }, { unknown = "error" }),
    -- The two-level cache (lua/smg/cache/): the in-process first level's bounds; with the
    -- external cache on, how long an entry read from Redis may be served from memory
    -- before Redis is asked again (how late an instance sees another's change or clear),
    -- and optionally the Redis to use as a URL (replaces enkrypt_cache_host/port/db/password).
    cache = obj({
      max_bytes = int(64 * 1024 * 1024, 65536),
      max_entries = int(100000, 16),
      near_ttl = num(30, 0),
      -- Redis over TLS: on with a rediss:// url or `tls`; the CA that signed the server's
      -- certificate (default: the system's), and a client certificate and key when the
      -- server asks for one (Redis does by default: tls-auth-clients).
      tls = bool(false),
      tls_ca_file = str(nil),
      tls_cert_file = str(nil),
      tls_key_file = str(nil),
      tls_server_name = str(nil),
      url = str(nil, { check = function(v)
        if v == nil then return end
        local _, err = M.parse_redis_url(v)
        return err
      end }),
    }, { unknown = "error" }),
    -- Token buckets, in Redis when the external cache is on (shared by every instance).
    rate_limits = obj({
      per_key = bucket(),  -- every client request of one identity (API key's project/user, or peer)
      per_tool = bucket(), -- tools/call of one identity to one server's tool
      tools = { type = "array", default = json.array({}), -- per-tool rules; the first match wins
        items = bucket({ server = str("*"), tool = str("*"),
          scope = str("identity", { enum = { "identity", "global" } }) }) },
    }, { unknown = "error" }),
  }, { unknown = "error" }),
}, { unknown = "warn" })

-- ${VAR} in server commands, args, env, urls and headers: environment variables, plus
-- SMG_EXE (this binary) and SMG_ROOT (the runtime root).
local function expand(s)
  if type(s) ~= "string" then return s end
  local exe, root = core.paths()
  return (s:gsub("%${([%w_]+)}", function(name)
    if name == "SMG_EXE" then return exe end
    if name == "SMG_ROOT" then return root end
    return os.getenv(name) or ""
  end))
end

-- Seed shapes smg reads its own way, before validation: a disabled sandbox object (the
-- seed's Docker sandbox, whatever its keys) is no sandbox at all.
local function seed_shapes(s)
  if type(s.sandbox) == "table" and s.sandbox.enabled == false then s.sandbox = nil end
end

-- Runs before validation so that URL and path checks see the expanded values.
local function expand_servers(doc)
  if type(doc.mcp_configs) ~= "table" then return end
  for _, mc in pairs(doc.mcp_configs) do
    if type(mc) == "table" and type(mc.mcp_config) == "table" then
      for _, s in ipairs(mc.mcp_config) do
        if type(s) == "table" then seed_shapes(s) end
        local c = type(s) == "table" and s.config
        if type(c) == "table" then
          for _, k in ipairs({ "command", "url", "cwd" }) do c[k] = expand(c[k]) end
          for _, t in ipairs({ c.args, c.env, c.headers }) do
            if type(t) == "table" then for k, v in pairs(t) do t[k] = expand(v) end end
          end
        end
      end
    end
  end
end

-- Where the config comes from: explicit path, $SMG_CONFIG, ~/.smg/config.json, default.
function M.locate(path)
  if path then return path, false end
  local env = os.getenv("SMG_CONFIG")
  if env and env ~= "" then return env, false end
  local home = os.getenv("HOME")
  if home then
    local p = home .. "/.smg/config.json"
    local f = io.open(p, "rb")
    if f then f:close() return p, false end
  end
  local _, root = core.paths()
  return root .. "/config/default.json", true
end

-- Parses and validates text. Returns cfg, warnings | nil, errors, partial (the document as
-- far as it validated: what `config validate` checks the plugins of, to report all at once).
function M.parse(text, source)
  local doc, err = json.decode(text)
  if doc == nil then return nil, { (source or "config") .. ": " .. err } end
  if schema.typeof(doc) ~= "object" then return nil, { (source or "config") .. ": top level must be an object" } end
  local raw = json.decode(text) -- an untouched copy for `config show`
  expand_servers(doc)
  local cfg, errs, warns = schema.validate(M.schema, doc, "")
  -- Cross-references, checked even when the schema found problems, so that one run of
  -- `config validate` reports everything (as far as the shapes allow).
  local function tbl(v) return type(v) == "table" and v or {} end
  local xerrs = errs
  local configs, projects = tbl(cfg.mcp_configs), tbl(cfg.projects)
  for pid, p in pairs(projects) do
    if type(p) == "table" and type(p.mcp_config_id) == "string" and not configs[p.mcp_config_id] then
      xerrs[#xerrs + 1] = ("projects.%s.mcp_config_id: no mcp_config %q"):format(pid, p.mcp_config_id)
    end
  end
  for key, k in pairs(tbl(cfg.apikeys)) do
    if type(k) == "table" and type(k.project_id) == "string" and not projects[k.project_id] then
      xerrs[#xerrs + 1] = ("apikeys.%s.project_id: no project %q"):format(smg.mask(tostring(key)), k.project_id)
    end
  end
  local g = tbl(cfg.gateway)
  if type(g.mcp_config_id) == "string" and not configs[g.mcp_config_id] then
    xerrs[#xerrs + 1] = ("gateway.mcp_config_id: no mcp_config %q"):format(g.mcp_config_id)
  end
  local lim = tbl(g.limits)
  if type(lim.max_connections) == "number" then
    if lim.reserved_connections == nil then
      lim.reserved_connections = math.floor(lim.max_connections / 10)
    elseif type(lim.reserved_connections) == "number" and lim.reserved_connections >= lim.max_connections then
      xerrs[#xerrs + 1] = ("gateway.limits.reserved_connections: %d leaves no room for new connections (max_connections %d)")
        :format(lim.reserved_connections, lim.max_connections)
    end
  end
  if #xerrs > 0 then return nil, xerrs, cfg end
  for _, spec in ipairs(M.servers(cfg)) do
    for _, name in ipairs(spec.denied_tools or {}) do spec.deny_tools[#spec.deny_tools + 1] = name end
  end
  cfg.raw = raw
  return cfg, warns
end

-- The pins file of `cfg` (see gateway.pins_path), or nil when there is nowhere to keep it
-- (the embedded default without a home directory).
function M.pins_path(cfg)
  if cfg.gateway.pins_path then return cfg.gateway.pins_path end
  if cfg.is_default or not cfg.source then
    local home = os.getenv("HOME")
    if not home or home == "" then return nil end
    local dir = home .. "/.smg"
    local probe = io.open(dir .. "/.", "rb")
    if not probe then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") else probe:close() end
    return dir .. "/pins.json"
  end
  return (cfg.source:gsub("%.json$", "")) .. ".pins.json"
end

-- opts.path: explicit path. Returns cfg, warnings, source | nil, errors, source, partial.
function M.load(opts)
  opts = opts or {}
  local path, is_default = M.locate(opts.path)
  local text, err = smg.read_file(path)
  if not text then return nil, { path .. ": " .. tostring(err) }, path end
  local cfg, list, partial = M.parse(text, path)
  if cfg then
    cfg.source = path
    cfg.is_default = is_default
  end
  return cfg, list, path, partial
end

-- Every server entry of every mcp_config (a name may stand in several).
function M.servers(cfg)
  local list = {}
  for _, mc in pairs(cfg.mcp_configs or {}) do
    for _, spec in ipairs(mc.mcp_config or {}) do list[#list + 1] = spec end
  end
  return list
end

-- The mcp_config a request without an auth identity is served from.
function M.default_config_id(cfg)
  if cfg.gateway.mcp_config_id then return cfg.gateway.mcp_config_id end
  local ids = {}
  for id in pairs(cfg.mcp_configs) do ids[#ids + 1] = id end
  table.sort(ids)
  return ids[1]
end

---------------------------------------------------------------------------- masking
-- What `config show` prints: the document with every secret it may hold masked. Secrets
-- hide in more places than secret-named keys: API keys are the object keys of
-- `apikeys`; URLs carry passwords (user:pass@) and tokens in their query; args carry a
-- token after --token/--api-key style flags or inline as --token=...; and some values
-- look like credentials whatever their key (sk-..., ghp_..., JWTs, long hex or base64).
local SECRET_FLAG = { "token", "key", "secret", "password", "passwd", "auth", "credential", "bearer" }
local SECRET_SHAPES = { "^sk%-[%w_%-]+$", "^gh[pousr]_%w+$", "^xox[abpr]%-[%w%-]+$", "^AKIA%u%u%u%u%u%u%u%u%u%u%u%u%u%u%u%u$",
  "^eyJ[%w_%-]+%.[%w_%-]+%.[%w_%-]*$", "^%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x+$" }

local function looks_secret(v)
  if #v < 16 or v:find("%s") then return false end
  for _, p in ipairs(SECRET_SHAPES) do if v:match(p) then return true end end
  return false
end

local function is_secret_flag(a)
  local name = a:match("^%-%-?([%w_%-]+)")
  if not name then return false end
  name = name:lower()
  for _, f in ipairs(SECRET_FLAG) do if name:find(f, 1, true) then return true end end
  return false
end

local function mask_url(u)
  u = u:gsub("^(%a[%w+.-]*://)([^/@]*)@", function(scheme, userinfo)
    local user = userinfo:match("^([^:]*):") or userinfo
    return scheme .. (userinfo:find(":", 1, true) and (user .. ":****") or "****") .. "@"
  end)
  return (u:gsub("([?&][^=&#]+=)([^&#]*)", function(k, v) return k .. (v == "" and "" or "****") end))
end

local function mask_string(v)
  if v:match("^%a[%w+.-]*://") then return mask_url(v) end
  if looks_secret(v) then return smg.mask(v) end
  return v
end

local function mask_value(v, key, depth)
  local t = type(v)
  if t == "string" then
    if key and smg.is_secret_key(key) then return smg.mask(v) end
    return mask_string(v)
  elseif t ~= "table" or depth > 64 then
    return v
  end
  local out = {}
  if json.is_array(v) then
    out = json.array({})
    local after_flag = false
    for i, a in ipairs(v) do
      if type(a) == "string" then
        local flag, inline = a:match("^(%-%-?[%w_%-]+)=(.*)$")
        if after_flag and not a:match("^%-") then
          out[i] = smg.mask(a)
        elseif flag and is_secret_flag(flag) then
          out[i] = flag .. "=" .. smg.mask(inline)
        else
          out[i] = mask_value(a, nil, depth + 1)
        end
        after_flag = not flag and is_secret_flag(a)
      else
        out[i] = mask_value(a, nil, depth + 1)
        after_flag = false
      end
    end
    return out
  end
  for k, x in pairs(v) do
    if type(x) == "boolean" or type(x) == "number" then out[k] = x else out[k] = mask_value(x, k, depth + 1) end
  end
  return out
end

function M.masked(doc)
  local out = mask_value(doc, nil, 0)
  if type(doc) == "table" and type(doc.apikeys) == "table" then
    local keys = {}
    local n = 0
    for k, v in pairs(doc.apikeys) do
      local m = smg.mask(k)
      if keys[m] then n = n + 1 m = m .. "#" .. n end -- two keys may end alike
      keys[m] = mask_value(v, nil, 1)
    end
    out.apikeys = keys
  end
  return out
end

function M.timeouts(cfg)
  return cfg.common_mcp_gateway_config.timeout_settings
end

return M

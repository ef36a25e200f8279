-- The authorization code grant for an upstream (OAUTH_GRANT_TYPE "authorization_code"):
-- a person authorizes the gateway at the server's authorization server once; the gateway
-- then holds the access and refresh tokens. smg keeps no browser: the authorization URL
-- is logged and listed (`smg oauth pending`, GET /api/v1/oauth/pending); whoever opens
-- it is sent back to the admin API's /oauth/callback (or OAUTH_REDIRECT_URI), which
-- checks the state and RFC 9207 `iss` and redeems the code.
--
-- Client identity at the authorization server, in the MCP spec's order: a pre-registered
-- OAUTH_CLIENT_ID, a Client ID Metadata Document (OAUTH_CLIENT_METADATA_URL, when the
-- server supports them), else Dynamic Client Registration (RFC 7591), kept per issuer so
-- a server that moves to another authorization server gets a new registration there.
-- PKCE S256 always (a server that does not advertise it is refused); the resource
-- indicator (RFC 8707) on the authorization and token requests; offline_access asked for
-- when the server lists it, so a refresh token comes back.
local smg = require "smg"
local discovery = require "smg.upstream.oauth_discovery"
local json = smg.json
local log = smg.log

local M = {}

local PENDING_TTL = 600 -- seconds an authorization URL stays redeemable
local MAX_PENDING = 64

local pending = {} -- state -> { spec, tenant, view, verifier, redirect_uri, expires, url }
local registrations = {} -- oauth_config -> { [issuer] = { client_id, client_secret, method } }
M.redirect_base = nil -- "http://127.0.0.1:8001" once the admin API listens

local function listed(list, v)
  for _, x in ipairs(type(list) == "table" and list or {}) do
    if x == v then return true end
  end
  return false
end

function M.redirect_uri(c)
  if c.OAUTH_REDIRECT_URI then return c.OAUTH_REDIRECT_URI end
  if M.redirect_base then return M.redirect_base .. "/oauth/callback" end
  return nil
end

-- The client the gateway is at `issuer`: pre-registered, CIMD, or registered now (RFC
-- 7591). Returns { client_id, client_secret, method } | nil, err. Yields.
local function client_at(c, meta, issuer, redirect_uri, fetch_opts)
  if c.OAUTH_CLIENT_ID then
    local method = c.OAUTH_TOKEN_ENDPOINT_AUTH
      or ((c.OAUTH_CLIENT_SECRET and c.OAUTH_CLIENT_SECRET ~= "") and "client_secret_basic" or "none")
    return { client_id = c.OAUTH_CLIENT_ID, client_secret = c.OAUTH_CLIENT_SECRET, method = method }
  end
  if c.OAUTH_CLIENT_METADATA_URL and meta.client_id_metadata_document_supported == true then
    return { client_id = c.OAUTH_CLIENT_METADATA_URL, method = "none" }
  end
  local mine = registrations[c] or {}
  registrations[c] = mine
  if mine[issuer] then return mine[issuer] end
  if type(meta.registration_endpoint) ~= "string" then
    return nil, "the authorization server offers no way to register (no registration_endpoint, no Client ID "
      .. "Metadata Document support): set OAUTH_CLIENT_ID"
  end
  local supported = type(meta.token_endpoint_auth_methods_supported) == "table"
    and meta.token_endpoint_auth_methods_supported or { "client_secret_basic" }
  local method = "none"
  for _, m in ipairs({ "client_secret_basic", "client_secret_post", "none" }) do
    if listed(supported, m) then
      method = m
      break
    end
  end
  local res, err = smg.http.request({ method = "POST", url = meta.registration_endpoint,
    headers = { ["Content-Type"] = "application/json", Accept = "application/json" },
    body = json.encode({ client_name = "smg gateway", redirect_uris = { redirect_uri },
      grant_types = { "authorization_code", "refresh_token" }, response_types = { "code" },
      token_endpoint_auth_method = method, application_type = "web" }),
    timeout = fetch_opts.timeout or 10, max_response = 64 * 1024, public_only = not fetch_opts.allow_private })
  if not res then return nil, "client registration failed: " .. tostring(err) end
  local body = json.decode(res.body or "")
  if (res.status ~= 201 and res.status ~= 200) or type(body) ~= "table" or type(body.client_id) ~= "string" then
    return nil, ("client registration refused (HTTP %d)"):format(res.status)
  end
  local reg = { client_id = body.client_id, client_secret = type(body.client_secret) == "string" and body.client_secret
    or nil, method = type(body.token_endpoint_auth_method) == "string" and body.token_endpoint_auth_method or method }
  mine[issuer] = reg
  log.info(("oauth: registered as client %s at %s"):format(reg.client_id, issuer))
  return reg
end

local function prune()
  local now, n = smg.now(), 0
  for k, p in pairs(pending) do
    if p.expires <= now then pending[k] = nil else n = n + 1 end
  end
  return n
end

-- Starts an authorization of `spec` in mcp_config `tenant` for `view` (PKCE S256, state,
-- resource): the URL a person opens.
local function start(spec, tenant, view)
  if prune() >= MAX_PENDING then return nil, "too many authorizations pending" end
  for k, p in pairs(pending) do
    -- One at a time per tenant's server: the URL an operator may already have open stays valid.
    if p.spec.server_name == spec.server_name and p.tenant == tenant then
      if p.view.OAUTH_SCOPE == view.OAUTH_SCOPE and p.view.issuer == view.issuer then return p.url end
      pending[k] = nil
    end
  end
  local verifier = smg.random_hex(32) -- 64 unreserved characters (RFC 7636: 43 to 128)
  local challenge = smg.crypto.b64url_encode(smg.crypto.sha256(verifier))
  local state = smg.random_hex(16)
  local params = { response_type = "code", client_id = view.OAUTH_CLIENT_ID, redirect_uri = view.redirect_uri,
    state = state, code_challenge = challenge, code_challenge_method = "S256", resource = view.OAUTH_RESOURCE,
    scope = view.OAUTH_SCOPE }
  local ep = view.meta.authorization_endpoint
  local url = ep .. (ep:find("?", 1, true) and "&" or "?") .. discovery.form(params)
  pending[state] = { spec = spec, tenant = tenant, view = view, verifier = verifier, expires = smg.now() + PENDING_TTL,
    url = url }
  log.warn(("oauth %s%s: authorization needed: open %s (also listed by `smg oauth pending`)"):format(spec.server_name,
    tenant and (" (config " .. tostring(tenant) .. ")") or "", url))
  return url
end

-- The token request view of an authorization code client (see oauth.lua's discovered
-- views): its grant() is the refresh token when there is one, else an authorization is
-- started and the request fails with where to authorize.
function M.view(spec, tenant, c, meta, prm, issuer, scope, fetch_opts)
  if not listed(meta.code_challenge_methods_supported, "S256") then
    return nil, "the authorization server does not advertise PKCE S256 (code_challenge_methods_supported): refused"
  end
  if type(meta.authorization_endpoint) ~= "string" then
    return nil, "the authorization server metadata has no authorization_endpoint"
  end
  local redirect_uri = M.redirect_uri(c)
  if not redirect_uri then
    return nil, "the authorization code grant needs the admin API (its /oauth/callback) or OAUTH_REDIRECT_URI"
  end
  local reg, err = client_at(c, meta, issuer, redirect_uri, fetch_opts)
  if not reg then return nil, err end
  if listed(meta.scopes_supported, "offline_access") and not (scope or ""):find("%f[%S]offline_access%f[%s%z]") then
    scope = scope and (scope .. " offline_access") or "offline_access"
  end
  local view = setmetatable({ OAUTH_TOKEN_URL = meta.token_endpoint, OAUTH_SCOPE = scope,
    OAUTH_RESOURCE = prm.resource, OAUTH_CLIENT_ID = reg.client_id, OAUTH_CLIENT_SECRET = reg.client_secret,
    OAUTH_TOKEN_ENDPOINT_AUTH = reg.method, OAUTH_VALIDATE_SCOPES = false, discovered = true, no_share = true,
    OAUTH_REVOCATION_URL = c.OAUTH_REVOCATION_URL or meta.revocation_endpoint, meta = meta, issuer = issuer,
    redirect_uri = redirect_uri }, { __index = c })
  function view.grant()
    if view.refresh_token then
      return { grant_type = "refresh_token", refresh_token = view.refresh_token, resource = view.OAUTH_RESOURCE }
    end
    local url, serr = start(spec, tenant, view)
    if not url then return nil, serr end
    return nil, "authorization required: an operator must open the URL from `smg oauth pending` (" .. spec.server_name
      .. ")"
  end
  function view.on_token(entry)
    if entry.refresh_token then view.refresh_token = entry.refresh_token end
  end
  return view
end

-- What waits for a person: { { server_name, config_id, authorization_url, expires_in } }.
function M.list()
  prune()
  local out = json.array({})
  for _, p in pairs(pending) do
    out[#out + 1] = { server_name = p.spec.server_name, config_id = p.tenant, authorization_url = p.url,
      expires_in = math.floor(p.expires - smg.now()) }
  end
  table.sort(out, function(a, b)
    if a.server_name ~= b.server_name then return a.server_name < b.server_name end
    return tostring(a.config_id) < tostring(b.config_id)
  end)
  return out
end

-- The redirect back from the authorization server: `q` { code, state, iss, error }.
-- Checks the state (single use) and RFC 9207 `iss` (exact, no normalisation: required
-- when the server advertises it, compared whenever present), then redeems the code.
-- `store(spec, tenant, view, entry)` keeps the token. Returns server_name, tenant | nil,
-- err. Yields.
function M.complete(q, store, request_token, timeout)
  local p = type(q.state) == "string" and pending[q.state]
  if not p then return nil, "unknown or expired state" end
  pending[q.state] = nil
  if p.expires <= smg.now() then return nil, "the authorization expired; start again" end
  local view = p.view
  if q.error then return nil, "the authorization server said " .. tostring(q.error) end
  local advertised = view.meta.authorization_response_iss_parameter_supported == true
  if (advertised and q.iss == nil) or (q.iss ~= nil and q.iss ~= view.issuer) then
    log.error(("oauth %s: authorization response refused: iss %s, expected %s (RFC 9207)"):format(p.spec.server_name,
      tostring(q.iss), view.issuer))
    return nil, "the authorization response's iss does not name the authorization server (RFC 9207)"
  end
  if type(q.code) ~= "string" or q.code == "" then return nil, "no code in the authorization response" end
  local entry, err = request_token(p.spec, view, smg.random_hex(8), timeout or 10, { grant_type = "authorization_code",
    code = q.code, redirect_uri = view.redirect_uri, code_verifier = p.verifier, resource = view.OAUTH_RESOURCE })
  if not entry then return nil, err end
  view.on_token(entry)
  store(p.spec, p.tenant, view, entry)
  log.info(("oauth %s: authorized; token %s"):format(p.spec.server_name, smg.mask(entry.token)))
  return p.spec.server_name, p.tenant
end

return M

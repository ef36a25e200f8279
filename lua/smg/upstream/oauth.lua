-- OAuth 2.0/2.1 for upstreams (the seed's oauth_config, client credentials grant): the
-- gateway's own token for a remote server, never a client's. Tokens are fetched on the
-- loop (libcurl), kept per server and client, and refreshed OAUTH_TOKEN_EXPIRY_BUFFER
-- seconds before they expire; one fetch at a time per token (single flight: a hundred
-- calls during a refresh cause one token request). With the external cache on, a token
-- is shared through Redis, sealed (AES-256-GCM) under a key derived from the client
-- secret, which every instance that may use the token has: Redis never holds it in clear.
-- Transient failures (network, 429, 5xx) are retried after 2, 4 and 8 s; a refusal
-- (invalid_client, invalid_scope...) is not. A remote server gets the token as
-- `Authorization: Bearer`, a stdio server in environment variables (the seed's names, or
-- OAUTH_ENV_NAMES); a 401 from the server drops the token and the call is retried once.
local smg = require "smg"
local async = require "smg.async"
local core = require "smg.core"
local metrics = require "smg.metrics"
local discovery = require "smg.upstream.oauth_discovery"
local code = require "smg.upstream.oauth_code"
local json = smg.json
local log = smg.log

local M = {}

-- The seed's variables (services/oauth/integration.py) for stdio servers.
M.ENV_NAMES = { "ENKRYPT_ACCESS_TOKEN", "OAUTH_ACCESS_TOKEN", "AUTHORIZATION", "OAUTH_TOKEN_TYPE",
  "HTTP_HEADER_Authorization", "HTTP_HEADER_AUTHORIZATION", "AUTH_HEADER" }

local RETRIES = { 2, 4, 8 } -- seconds before each retry of a transient failure

local ops = metrics.counter("smg_oauth_tokens_total",
  "Upstream OAuth token operations: fetched, refreshed, failed, cache_hit, shared_hit, invalidated, revoked",
  { "server", "event" })
local latency = metrics.histogram("smg_oauth_token_seconds", "Upstream OAuth token request latency", { "server" })

local tokens = {} -- key -> { token, scope, expires (wall clock), life (s), flight (future while fetching) }
local exchange_view, bound_exchanged -- (defined below)
local stats = { fetched = 0, refreshed = 0, failed = 0, cache_hits = 0, shared_hits = 0, invalidated = 0,
  revoked = 0, latency_sum = 0, latency_max = 0 }

-- The enabled oauth_config of a server entry, or nil.
function M.of(spec)
  local c = spec and spec.oauth_config
  if type(c) == "table" and c.enabled then return c end
  return nil
end

-- MCP authorization discovery (OAUTH_DISCOVERY): what a server's challenges taught us,
-- per server entry: { view (the oauth_config with the discovered token endpoint, scope
-- and resource), issuer, scopes }. Until the first 401 there is none, and requests go
-- without a token.
local discovered = setmetatable({}, { __mode = "k" }) -- oauth_config -> state

-- The config a token is requested with: the configured one, or its discovered view.
local function effective(spec)
  local c = M.of(spec)
  if not c or not c.OAUTH_DISCOVERY then return c end
  local st = discovered[c]
  return st and st.view or nil
end

-- A token is held per tenant (the mcp_config the server entry belongs to: two tenants
-- configuring the same server and client never share a token, least of all a person's),
-- server, client and request; an exchanged one also per subject.
local function key_of(spec, c, tenant)
  return table.concat({ tostring(tenant or ""), spec.server_name, c.OAUTH_TOKEN_URL, c.OAUTH_CLIENT_ID,
    c.OAUTH_SCOPE or "", c.OAUTH_AUDIENCE or "", c.OAUTH_RESOURCE or "" }, "\n")
end

-- The key of the token `spec` uses in `tenant` under view `c`: a token exchange's is the
-- subject's own.
local function token_key(spec, c, tenant, subject)
  local key = key_of(spec, c, tenant)
  if c.OAUTH_GRANT_TYPE == "token_exchange" and subject then
    key = key .. "\nsubject:" .. core.hex(core.sha256(subject))
  end
  return key
end

local function shared_key(key) return "oauth-token:" .. smg.hash(key) end

-- private_key_jwt's signing key, read once per config (smg.read_file: a small local file,
-- read when the first token is needed, then kept).
local assertion_keys = setmetatable({}, { __mode = "k" })
local function assertion_key(c)
  local k = assertion_keys[c]
  if not k then
    local pem, err = smg.read_file(c.OAUTH_CLIENT_ASSERTION_KEY_PATH)
    if not pem then return nil, "OAUTH_CLIENT_ASSERTION_KEY_PATH: " .. tostring(err) end
    k = pem
    assertion_keys[c] = k
  end
  return k
end

-- What shared tokens are sealed under: a secret every instance using this client has.
local function seal_key(c)
  local secret = c.OAUTH_CLIENT_SECRET or (c.OAUTH_CLIENT_ASSERTION_KEY_PATH and assertion_key(c)) or ""
  return core.sha256("smg-oauth-token-v1\n" .. secret)
end

-- A public client (no secret, no key) has nothing to seal a shared token under: its
-- tokens stay in this process.
local function shareable(c)
  return not c.no_share and ((c.OAUTH_CLIENT_SECRET and c.OAUTH_CLIENT_SECRET ~= "")
    or c.OAUTH_CLIENT_ASSERTION_KEY_PATH ~= nil)
end

-- RFC 7523 client assertion: a short-lived JWT signed with the client's key, naming the
-- token endpoint as its audience. Returns jwt | nil, err.
local function client_assertion(c, url)
  local pem, err = assertion_key(c)
  if not pem then return nil, err end
  local b64 = smg.crypto.b64url_encode
  local now = math.floor(smg.now())
  local header = b64(json.encode({ alg = c.OAUTH_CLIENT_ASSERTION_ALG, typ = "JWT", kid = c.OAUTH_CLIENT_ASSERTION_KID }))
  local claims = b64(json.encode({ iss = c.OAUTH_CLIENT_ID, sub = c.OAUTH_CLIENT_ID, aud = url, iat = now, exp = now + 60,
    jti = smg.random_hex(16) }))
  local sig, serr = smg.crypto.sign_jws(c.OAUTH_CLIENT_ASSERTION_ALG, pem, header .. "." .. claims)
  if not sig then return nil, "client assertion: " .. tostring(serr) end
  return header .. "." .. claims .. "." .. b64(sig)
end

local urlencode, form = discovery.urlencode, discovery.form

local function words(s)
  local set = {}
  for w in tostring(s or ""):gmatch("%S+") do set[w] = true end
  return set
end

-- A request to the authorization server: the client authenticated as configured, mutual
-- TLS when on, a correlation id. Returns response | nil, err, ours (the failure is ours:
-- the client assertion could not be made).
local function post(c, url, params, correlation, timeout)
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json",
    ["X-Request-ID"] = correlation }
  for k, v in pairs(c.OAUTH_CUSTOM_HEADERS or {}) do headers[k] = v end
  local method = c.OAUTH_TOKEN_ENDPOINT_AUTH or (c.OAUTH_USE_BASIC_AUTH and "client_secret_basic" or "client_secret_post")
  if method == "client_secret_basic" then
    -- RFC 6749 2.3.1: both form-encoded before joining.
    headers.Authorization = "Basic "
      .. smg.crypto.b64encode(urlencode(c.OAUTH_CLIENT_ID) .. ":" .. urlencode(c.OAUTH_CLIENT_SECRET))
  elseif method == "none" then
    params.client_id = c.OAUTH_CLIENT_ID -- a public client: identified, not authenticated
  elseif method == "private_key_jwt" then
    -- Its audience: the authorization server's issuer when we know it (discovery, as
    -- RFC 7523bis asks), else the token endpoint (what a configured one expects).
    local jwt, err = client_assertion(c, c.assertion_audience or c.OAUTH_TOKEN_URL)
    if not jwt then return nil, err, true end -- ours, not the network's: no retry
    params.client_id = c.OAUTH_CLIENT_ID
    params.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    params.client_assertion = jwt
  else
    params.client_id, params.client_secret = c.OAUTH_CLIENT_ID, c.OAUTH_CLIENT_SECRET
  end
  return smg.http.request({ method = "POST", url = url, headers = headers, body = form(params), timeout = timeout,
    max_response = 1024 * 1024, public_only = c.discovered and not c.OAUTH_ALLOW_PRIVATE_NETWORKS or nil,
    client_cert = c.OAUTH_USE_MTLS and c.OAUTH_CLIENT_CERT_PATH or nil,
    client_key = c.OAUTH_USE_MTLS and c.OAUTH_CLIENT_KEY_PATH or nil, ca_file = c.OAUTH_CA_BUNDLE_PATH })
end

-- One token request. Returns token entry | nil, err, transient.
local function request_token(spec, c, correlation, timeout, grant)
  local params = grant or { grant_type = "client_credentials" }
  if c.OAUTH_SCOPE and params.scope == nil and params.grant_type ~= "authorization_code" then
    params.scope = c.OAUTH_SCOPE
  end
  if c.OAUTH_AUDIENCE then params.audience = c.OAUTH_AUDIENCE end
  if c.OAUTH_ORGANIZATION then params.organization = c.OAUTH_ORGANIZATION end
  if c.OAUTH_RESOURCE then params.resource = c.OAUTH_RESOURCE end
  for k, v in pairs(c.OAUTH_ADDITIONAL_PARAMS or {}) do params[k] = v end
  local t0 = smg.monotime()
  local res, err, ours = post(c, c.OAUTH_TOKEN_URL, params, correlation, timeout)
  local took = smg.monotime() - t0
  latency:observe(took, spec.server_name)
  metrics.operation("auth", took, timeout, not res and tostring(err):find("timed out", 1, true) ~= nil)
  stats.latency_sum, stats.latency_max = stats.latency_sum + took, math.max(stats.latency_max, took)
  if not res and ours then return nil, err, false end
  if not res then return nil, "token endpoint unreachable: " .. tostring(err), true end
  local body = json.decode(res.body or "")
  if res.status ~= 200 then
    local why = type(body) == "table" and type(body.error) == "string"
      and (body.error .. (type(body.error_description) == "string" and (": " .. body.error_description) or ""))
      or ("HTTP " .. res.status)
    return nil, ("token endpoint refused (HTTP %d): %s"):format(res.status, why), res.status == 429 or res.status >= 500
  end
  if type(body) ~= "table" or type(body.access_token) ~= "string" or body.access_token == "" then
    return nil, "token endpoint answered without an access_token", false
  end
  if type(body.token_type) == "string" and body.token_type:lower() ~= "bearer" then
    return nil, "token endpoint issued a " .. body.token_type .. " token; only Bearer is supported", false
  end
  if c.OAUTH_VALIDATE_SCOPES and c.OAUTH_SCOPE and type(body.scope) == "string" then
    local granted = words(body.scope)
    for w in pairs(words(c.OAUTH_SCOPE)) do
      if not granted[w] then return nil, ("token lacks the requested scope %q (granted: %s)"):format(w, body.scope), false end
    end
  end
  local life = tonumber(body.expires_in) or 3600
  return { token = body.access_token, scope = body.scope, expires = smg.now() + life, life = life,
    refresh_token = type(body.refresh_token) == "string" and body.refresh_token or nil }
end
M.request_token = request_token

local function rpc_copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function fresh(entry, c)
  return entry and entry.token and smg.now() < entry.expires - math.min(c.OAUTH_TOKEN_EXPIRY_BUFFER, entry.life / 2)
end

-- Fetches (with retries), shares and records a token. Returns entry | nil, err.
local function fetch(spec, c, key, refreshing, timeout)
  local correlation = smg.random_hex(8)
  -- A user-delegated token (authorization code) is renewed with its refresh token, and
  -- only where it was granted: never shared.
  local grant
  if c.grant then
    local gerr
    grant, gerr = c.grant()
    if not grant then return nil, gerr end
  end
  -- Another instance may have fetched it already.
  local shared = shareable(c) and smg.cache.get(shared_key(key))
  if type(shared) == "table" and type(shared.box) == "string" then
    local plain = smg.crypto.aead_open(seal_key(c), smg.crypto.b64decode(shared.box) or "", key)
    local entry = plain and json.decode(plain)
    if type(entry) == "table" and fresh(entry, c) then
      stats.shared_hits = stats.shared_hits + 1
      ops:inc(1, spec.server_name, "shared_hit")
      return entry
    end
  end
  local entry, err, transient
  for attempt = 0, #RETRIES do
    if attempt > 0 then
      log.warn(("oauth %s: token request failed (%s) [%s]; retrying in %ds"):format(spec.server_name, err, correlation,
        RETRIES[attempt]))
      async.sleep(RETRIES[attempt])
    end
    entry, err, transient = request_token(spec, c, correlation, timeout, grant and rpc_copy(grant))
    if entry or not transient then break end
  end
  if not entry then
    stats.failed = stats.failed + 1
    ops:inc(1, spec.server_name, "failed")
    log.error(("oauth %s: no token [%s]: %s"):format(spec.server_name, correlation, err))
    return nil, err
  end
  local event = refreshing and "refreshed" or "fetched"
  stats[event] = stats[event] + 1
  ops:inc(1, spec.server_name, event)
  log.info(("oauth %s: token %s [%s], expires in %ds, token %s"):format(spec.server_name, event, correlation,
    entry.life, smg.mask(entry.token)))
  if c.on_token then c.on_token(entry) end
  if shareable(c) then
    local box = smg.crypto.aead_seal(seal_key(c), json.encode(entry), key)
    smg.cache.set(shared_key(key), { box = smg.crypto.b64encode(box) }, math.max(1, entry.expires - smg.now()))
  end
  return entry
end

-- The access token for `spec` of mcp_config `tenant` (nil when it has no OAuth). Yields
-- while one is fetched. Returns token | nil, err.
function M.token(spec, tenant, timeout, subject)
  local c = effective(spec)
  if not c then return nil end
  local key = token_key(spec, c, tenant, subject)
  if c.OAUTH_GRANT_TYPE == "token_exchange" then
    -- RFC 8693: the caller's validated token is the subject; each caller (each subject)
    -- gets a token of its own, kept in this process only.
    if type(subject) ~= "string" or subject == "" then
      return nil, "token exchange needs the caller's validated bearer token (an auth plugin that returns "
        .. "subject_token, such as jwt)"
    end
    c = exchange_view(c, subject)
    if not tokens[key] then bound_exchanged() end
  end
  local entry = tokens[key]
  if fresh(entry, c) then
    stats.cache_hits = stats.cache_hits + 1
    ops:inc(1, spec.server_name, "cache_hit")
    return entry.token
  end
  if entry and entry.flight then
    local got, err = entry.flight:wait((timeout or 10) * 8)
    if got then return got.token end
    return nil, err
  end
  local flight = async.future()
  tokens[key] = { flight = flight, token = entry and entry.token, expires = entry and entry.expires or 0,
    life = entry and entry.life or 0 }
  local got, err = fetch(spec, c, key, entry ~= nil and entry.token ~= nil, timeout or 10)
  if not got and entry and entry.token and smg.now() < entry.expires then
    -- A refresh failed, but the token we hold is still good: keep using it meanwhile.
    log.warn(("oauth %s: refresh failed, the current token is valid for %ds more"):format(spec.server_name,
      math.floor(entry.expires - smg.now())))
    got, err = entry, nil
  end
  tokens[key] = got or nil
  flight:set(got, err)
  if not got then return nil, err end
  return got.token
end

-- The upstream refused token `rejected` (401): forgotten here and in the shared cache,
-- unless it was already replaced (a refresh since the request went out: the new token
-- stays, and "replaced" is returned).
function M.invalidate(spec, tenant, subject, rejected)
  local c = effective(spec)
  if not c then return end
  local key = token_key(spec, c, tenant, subject)
  local entry = tokens[key]
  if entry and (entry.flight or (rejected and entry.token ~= rejected)) then return "replaced" end
  if not rejected then return end -- (a request that carried no token had none rejected)
  tokens[key] = nil
  smg.cache.del(shared_key(key))
  stats.invalidated = stats.invalidated + 1
  ops:inc(1, spec.server_name, "invalidated")
end

-- RFC 7009: revokes the current token at OAUTH_REVOCATION_URL and forgets it.
-- Returns true | nil, err.
function M.revoke(spec, tenant, timeout)
  local c = effective(spec)
  if not c then return nil, "no OAuth configured (or no token yet) for " .. tostring(spec and spec.server_name) end
  if not c.OAUTH_REVOCATION_URL then return nil, "OAUTH_REVOCATION_URL is not set for " .. spec.server_name end
  local key = key_of(spec, c, tenant)
  local entry = tokens[key]
  if not (entry and entry.token) then return true end -- nothing held
  local res, err = post(c, c.OAUTH_REVOCATION_URL, { token = entry.token, token_type_hint = "access_token" },
    smg.random_hex(8), timeout or 10)
  tokens[key] = nil
  smg.cache.del(shared_key(key))
  if not res then return nil, "revocation endpoint unreachable: " .. tostring(err) end
  if res.status ~= 200 then return nil, ("revocation endpoint answered HTTP %d"):format(res.status) end
  stats.revoked = stats.revoked + 1
  ops:inc(1, spec.server_name, "revoked")
  log.info(("oauth %s: token revoked"):format(spec.server_name))
  return true
end

-- The client authentication to use at a discovered token endpoint: the configured one, else
-- the best the authorization server lists for the credentials we have.
local function auth_method(c, meta)
  if c.OAUTH_TOKEN_ENDPOINT_AUTH then return c.OAUTH_TOKEN_ENDPOINT_AUTH end
  if c.OAUTH_CLIENT_ASSERTION_KEY_PATH then return "private_key_jwt" end
  if not c.OAUTH_CLIENT_SECRET or c.OAUTH_CLIENT_SECRET == "" then return "none" end
  local listed = {}
  for _, m in ipairs(type(meta.token_endpoint_auth_methods_supported) == "table"
    and meta.token_endpoint_auth_methods_supported or { "client_secret_basic" }) do listed[m] = true end
  if listed.client_secret_basic then return "client_secret_basic" end
  if listed.client_secret_post then return "client_secret_post" end
  return "client_secret_basic"
end

local function union(a, b)
  local seen, out = {}, {}
  for _, s in ipairs({ a or "", b or "" }) do
    for w in s:gmatch("%S+") do
      if not seen[w] then
        seen[w] = true
        out[#out + 1] = w
      end
    end
  end
  return #out > 0 and table.concat(out, " ") or nil
end

local following = setmetatable({}, { __mode = "k" }) -- oauth_config -> future of its discovery

-- Follows a challenge in discovery mode: PRM, authorization server metadata, and the
-- token request view they make (kept in `discovered`). Returns true | nil, err.
local function follow(spec, tenant, c, status, ch, timeout)
  local st = discovered[c]
  local url = spec.config.url
  local opts = { allow_private = c.OAUTH_ALLOW_PRIVATE_NETWORKS,
    allow_http = c.OAUTH_ALLOW_PRIVATE_NETWORKS and url:find("^http://") ~= nil, timeout = timeout,
    ca_file = c.OAUTH_CA_BUNDLE_PATH }
  local prm, err, absent = discovery.protected_resource(url, ch, opts)
  local meta, issuer, legacy
  if prm then
    issuer = prm.authorization_servers[1]
    meta, err = discovery.authorization_server(issuer, opts)
    if not meta then return nil, err end
  elseif (ch and ch.resource_metadata) or not absent or (st and not st.legacy) then
    -- Metadata that exists but is refused is never bypassed, nor is a server that has
    -- published it before (a passing 404 must not send secrets to its origin instead).
    return nil, err
  else
    -- No PRM anywhere: a 2025-03-26 server (its origin authorizes; no resource indicator).
    local lerr
    meta, lerr = discovery.legacy(url, opts)
    if not meta then return nil, err .. "; 2025-03-26 discovery: " .. lerr end
    issuer, prm, legacy = meta.issuer, {}, true
    log.info(("oauth %s: no protected resource metadata; 2025-03-26 discovery at %s%s"):format(spec.server_name,
      issuer, meta.legacy_defaults and " (default endpoints)" or ""))
  end
  if st and st.issuer ~= issuer then
    log.warn(("oauth %s: the server now names authorization server %s (was %s)"):format(spec.server_name, issuer,
      st.issuer))
    st = nil -- its tokens are another issuer's: not reused
  end
  local scope
  if status == 403 then
    scope = union(st and st.scopes, ch.scope)
    if st and scope == st.scopes then
      -- Nothing new to ask for: the server refuses scopes it was already given. Asking
      -- again would loop; the call fails instead.
      return nil, ("the server still asks for scope %q, which the token already has"):format(tostring(ch.scope))
    end
  else
    scope = ch and ch.scope or (type(prm.scopes_supported) == "table" and #prm.scopes_supported > 0
      and table.concat(prm.scopes_supported, " ")) or nil
    -- A token refused later (expired, revoked) is replaced by one with the scopes held so
    -- far: a step-up is not undone by the next 401 (and no older token, held for fewer
    -- scopes and as likely dead, is taken up again).
    if st and st.scopes then scope = union(st.scopes, scope) end
  end
  if scope and c.OAUTH_SCOPE then scope = union(c.OAUTH_SCOPE, scope) end
  if not scope then scope = c.OAUTH_SCOPE end
  -- Where secrets and codes will go: HTTPS, as the metadata documents were fetched.
  for _, k in ipairs({ "token_endpoint", "registration_endpoint", "revocation_endpoint", "authorization_endpoint" }) do
    local u = meta[k]
    if u ~= nil and not (type(u) == "string" and (u:find("^https://") or (opts.allow_http and u:find("^http://")))) then
      return nil, ("authorization server metadata: %s is not an https URL"):format(k)
    end
  end
  local view
  if c.OAUTH_GRANT_TYPE == "authorization_code" then
    view, err = code.view(spec, tenant, c, meta, prm, issuer, scope, opts)
    if not view then return nil, err end
    -- A refresh token held for the same server and scopes carries over (more scope
    -- needs a new authorization: a refresh cannot widen it).
    if st and st.view and st.view.refresh_token and st.issuer == issuer and st.scopes == scope then
      view.refresh_token = st.view.refresh_token
    end
  else
    view = setmetatable({ OAUTH_TOKEN_URL = meta.token_endpoint, OAUTH_SCOPE = scope,
      -- The resource exactly as the metadata publishes it (RFC 9728: no re-serialisation).
      OAUTH_RESOURCE = prm.resource, OAUTH_TOKEN_ENDPOINT_AUTH = auth_method(c, meta), assertion_audience = issuer,
      OAUTH_REVOCATION_URL = c.OAUTH_REVOCATION_URL or meta.revocation_endpoint, OAUTH_VALIDATE_SCOPES = false,
      discovered = true }, { __index = c })
  end
  discovered[c] = { view = view, issuer = issuer, scopes = scope, legacy = legacy }
  log.info(("oauth %s: authorization server %s, token endpoint %s, scope %s"):format(spec.server_name, issuer,
    meta.token_endpoint, tostring(scope)))
  return true
end

-- The server refused a request with 401, or 403 insufficient_scope: `www_authenticate`
-- is its challenge. In discovery mode the challenge is followed (PRM, authorization
-- server metadata, its token endpoint; on 403 the union of the scopes held and those
-- challenged); in both modes the token `rejected` is dropped, and a new one fetched.
-- Returns token | nil, err.
function M.challenged(spec, tenant, status, www_authenticate, timeout, subject, rejected)
  local c = M.of(spec)
  if not c then return nil, "no OAuth configured" end
  local ch = discovery.challenge(www_authenticate)
  if status == 403 and not (ch and ch.error == "insufficient_scope") then
    return nil, "the server refused the token (403" .. (ch and ch.error and (" " .. ch.error) or "") .. ")"
  end
  -- (A 403 leaves the token: it is valid, only not enough for that request.) A token
  -- already replaced since the request went out is simply taken: the challenge was answered.
  if status == 401 and M.invalidate(spec, tenant, subject, rejected) == "replaced" then
    return M.token(spec, tenant, timeout, subject)
  end
  if not c.OAUTH_DISCOVERY then return M.token(spec, tenant, timeout, subject) end
  -- One discovery at a time per server: challenges that come meanwhile wait for it and
  -- then take the token it led to.
  local busy = following[c]
  if busy then
    local tok, err = busy:wait((timeout or 10) * 4)
    if not tok then return nil, err == "timeout" and "authorization discovery timed out" or err end
    return M.token(spec, tenant, timeout, subject)
  end
  local flight = async.future()
  following[c] = flight
  local ok, tok, err = pcall(function()
    local fine, ferr = follow(spec, tenant, c, status, ch, timeout)
    if not fine then return nil, ferr end
    return M.token(spec, tenant, timeout, subject)
  end)
  following[c] = nil
  if not ok then tok, err = nil, "authorization failed: " .. tostring(tok) end
  if not tok and not err then err = "no token" end
  flight:set(tok, err)
  return tok, err
end

-- Exchanged tokens are one per caller: past MAX_EXCHANGED held, the expired ones go, and
-- if that is not enough, all (they are exchanged again on use).
local MAX_EXCHANGED, exchanged = 10000, 0
bound_exchanged = function()
  exchanged = exchanged + 1
  if exchanged <= MAX_EXCHANGED then return end
  -- Recount; the expired go; still over the cap, every idle exchanged token goes.
  local now, live = smg.now(), {}
  for k, e in pairs(tokens) do
    if k:find("\nsubject:%x+$") and not e.flight then
      if (e.expires or 0) <= now then tokens[k] = nil else live[#live + 1] = k end
    end
  end
  if #live > MAX_EXCHANGED / 2 then
    for _, k in ipairs(live) do tokens[k] = nil end
    live = {}
  end
  exchanged = #live
end

-- The request view of a token exchange for `subject` (the subject itself is never logged
-- nor shared).
local exchange_views = setmetatable({}, { __mode = "k" })
exchange_view = function(c, subject)
  local by_subject = exchange_views[c]
  if not by_subject then
    by_subject = setmetatable({}, { __mode = "v" })
    exchange_views[c] = by_subject
  end
  local v = by_subject[subject]
  if not v then
    v = setmetatable({ no_share = true, grant = function()
      return { grant_type = "urn:ietf:params:oauth:grant-type:token-exchange", subject_token = subject,
        subject_token_type = c.OAUTH_SUBJECT_TOKEN_TYPE,
        requested_token_type = "urn:ietf:params:oauth:token-type:access_token", resource = c.OAUTH_RESOURCE,
        audience = c.OAUTH_AUDIENCE, scope = c.OAUTH_SCOPE }
    end }, { __index = c })
    by_subject[subject] = v
  end
  return v
end

-- Keeps a token obtained outside fetch (an authorization code redeemed) for `view`.
local function store(spec, tenant, view, entry)
  tokens[key_of(spec, view, tenant)] = entry
  stats.fetched = stats.fetched + 1
  ops:inc(1, spec.server_name, "fetched")
end

-- Called when a person authorized an upstream (server name, tenant): the gateway restarts
-- that tenant's clients of that server at once instead of after their backoff.
M.on_authorized = nil

-- The authorizations waiting for a person, and the redirect back from one.
function M.pending() return code.list() end
function M.callback(q, timeout)
  local name, tenant_or_err = code.complete(q, store, request_token, timeout)
  if not name then return nil, tenant_or_err end
  if M.on_authorized then M.on_authorized(name, tenant_or_err) end
  return name
end
function M.set_redirect_base(base) code.redirect_base = base end

-- The environment a stdio server gets the token in.
function M.env(spec, token)
  local c = M.of(spec)
  local names = c and #c.OAUTH_ENV_NAMES > 0 and c.OAUTH_ENV_NAMES or M.ENV_NAMES
  local env = {}
  for _, n in ipairs(names) do
    if n == "OAUTH_TOKEN_TYPE" then
      env[n] = "Bearer"
    elseif n == "AUTHORIZATION" or n:find("^HTTP_HEADER_") or n == "AUTH_HEADER" then
      env[n] = "Bearer " .. token
    else
      env[n] = token
    end
  end
  return env
end

-- For get_oauth_metrics / the CLI: the seed's shape.
function M.metrics()
  local total = stats.fetched + stats.refreshed + stats.failed
  local active = 0
  for _, e in pairs(tokens) do
    if e.token and smg.now() < (e.expires or 0) then active = active + 1 end
  end
  local lookups = stats.cache_hits + stats.fetched + stats.refreshed + stats.shared_hits
  return { token_acquisitions_total = total, token_acquisitions_success = stats.fetched + stats.refreshed,
    token_acquisitions_failure = stats.failed, token_refreshes = stats.refreshed, token_cache_hits = stats.cache_hits,
    token_cache_misses = stats.fetched + stats.refreshed + stats.shared_hits, shared_cache_hits = stats.shared_hits,
    cache_hit_ratio = lookups > 0 and stats.cache_hits / lookups or 0,
    success_rate = total > 0 and (stats.fetched + stats.refreshed) / total or 1,
    avg_latency_ms = total > 0 and stats.latency_sum / total * 1000 or 0, max_latency_ms = stats.latency_max * 1000,
    active_tokens = active, invalidations = stats.invalidated, revocations = stats.revoked }
end

return M

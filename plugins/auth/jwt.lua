-- OAuth 2.1 resource-server auth: validates JWT access tokens from an authorization server
-- (RS256/384/512, PS256, ES256/384 against a JWKS file or URL; issuer, audience, expiry,
-- not-before and scopes checked) and serves the Protected Resource Metadata of RFC 9728,
-- pointed to by the 401 challenge, so MCP clients can discover where to get a token.
-- Tokens come only from `Authorization: Bearer`. Signature checks are OpenSSL's
-- (smg.crypto.verify_jws); a JWKS URL is fetched asynchronously and cached, and refetched
-- (at most every min_refresh seconds) when a token names an unknown key id.
local smg = require "smg"
local json = smg.json

local M = {
  name = "jwt",
  kind = "auth",
  version = "1.0.0",
  priority = 100,
  description = "JWT access tokens (JWKS) + OAuth Protected Resource Metadata (RFC 9728)",
  schema = {
    issuer = { type = "string", description = "required iss claim" },
    audience = { type = "any", required = true, description = "accepted aud value(s): this server's resource URI" },
    jwks_file = { type = "string" },
    jwks_url = { type = "string", pattern = "^https?://" },
    algorithms = { type = "array", items = { type = "string", enum = { "RS256", "RS384", "RS512", "PS256", "ES256", "ES384" } },
      default = json.array({ "RS256", "ES256" }) },
    leeway = { type = "number", default = 60, min = 0, description = "clock skew allowed on exp/nbf, seconds" },
    required_scopes = { type = "array", items = { type = "string" }, default = json.array({}) },
    jwks_cache_ttl = { type = "number", default = 300, min = 1 },
    min_refresh = { type = "number", default = 10, min = 0 },
    resource = { type = "string", description = "this server's resource URI for the metadata (default from Host)" },
    authorization_servers = { type = "array", items = { type = "string" } },
    scopes_supported = { type = "array", items = { type = "string" } },
    project_claim = { type = "string", default = "project_id" },
    mcp_config_claim = { type = "string", default = "mcp_config_id" },
    mcp_config_id = { type = "string", description = "config for tokens without the claim (default: the gateway's)" },
  },
}

local keys, keys_at, last_fetch = nil, 0, -math.huge

local function load_jwks(config)
  local text, err
  if config.jwks_file then
    text, err = smg.read_file(config.jwks_file)
  elseif config.jwks_url then
    local resp, herr = smg.http.request({ url = config.jwks_url, timeout = 5, headers = { Accept = "application/json" } })
    if not resp then return nil, "JWKS fetch failed: " .. tostring(herr) end
    if resp.status ~= 200 then return nil, "JWKS fetch answered HTTP " .. resp.status end
    text = resp.body
  else
    return nil, "no jwks_file or jwks_url configured"
  end
  if not text then return nil, "JWKS: " .. tostring(err) end
  local doc = json.decode(text)
  if type(doc) ~= "table" or type(doc.keys) ~= "table" then return nil, "JWKS: no keys array" end
  return doc.keys
end

local function jwks(config, want_kid)
  local now = smg.monotime()
  local stale = not keys or now - keys_at > config.jwks_cache_ttl
  local missing = false
  if keys and want_kid then
    missing = true
    for _, k in ipairs(keys) do if k.kid == want_kid then missing = false end end
  end
  if (stale or missing) and now - last_fetch >= config.min_refresh then
    last_fetch = now
    local list, err = load_jwks(config)
    if list then
      keys, keys_at = list, now
    elseif not keys then
      return nil, err
    else
      smg.log.warn("jwt: keeping the cached JWKS: " .. tostring(err))
    end
  end
  return keys
end

local function b64json(part)
  local raw = smg.crypto.b64decode(part)
  if not raw then return nil end
  local v = json.decode(raw)
  return type(v) == "table" and v or nil
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function audience_ok(aud, accepted)
  accepted = type(accepted) == "table" and accepted or { accepted }
  local got = type(aud) == "table" and aud or { aud }
  for _, a in ipairs(got) do if has(accepted, a) then return true end end
  return false
end

local function scopes_of(claims)
  local out = {}
  if type(claims.scope) == "string" then
    for s in claims.scope:gmatch("%S+") do out[#out + 1] = s end
  elseif type(claims.scp) == "table" then
    for _, s in ipairs(claims.scp) do out[#out + 1] = tostring(s) end
  end
  return out
end

-- Verifies `token`. Returns claims | nil, reason.
function M.verify(token, config)
  local h64, p64, s64 = token:match("^([%w_%-]+)%.([%w_%-]+)%.([%w_%-]*)$")
  if not h64 then return nil, "malformed token" end
  local header, claims, sig = b64json(h64), b64json(p64), smg.crypto.b64decode(s64)
  if not header or not claims or not sig then return nil, "malformed token" end
  if type(header.alg) ~= "string" or not has(config.algorithms, header.alg) then
    return nil, "algorithm not accepted"
  end
  local list, err = jwks(config, header.kid)
  if not list then return nil, err end
  local verified = false
  for _, k in ipairs(list) do
    if (header.kid == nil or k.kid == header.kid) and (k.use == nil or k.use == "sig")
      and (k.alg == nil or k.alg == header.alg) then
      if smg.crypto.verify_jws(header.alg, k, h64 .. "." .. p64, sig) then
        verified = true
        break
      end
    end
  end
  if not verified then return nil, "bad signature or unknown key" end
  local now = smg.now()
  if type(claims.exp) ~= "number" then return nil, "token has no exp" end
  if now > claims.exp + config.leeway then return nil, "token expired" end
  if type(claims.nbf) == "number" and now < claims.nbf - config.leeway then return nil, "token not yet valid" end
  if config.issuer and claims.iss ~= config.issuer then return nil, "wrong issuer" end
  if not audience_ok(claims.aud, config.audience) then return nil, "wrong audience" end
  local scopes = scopes_of(claims)
  for _, s in ipairs(config.required_scopes) do
    if not has(scopes, s) then return nil, "insufficient scope" end
  end
  claims.scopes = scopes
  return claims
end

function M.authenticate(req, config, gw)
  local h = req.headers or {}
  local token = h.authorization and h.authorization:match("^[Bb]earer%s+(%S+)%s*$")
  if not token then return nil, "missing bearer token" end
  local claims, why = M.verify(token, config)
  if why == "insufficient scope" then return nil, { message = why, status = 403 } end
  if not claims then return nil, why end
  local cfg_id = claims[config.mcp_config_claim]
  if cfg_id ~= nil and not (gw.mcp_configs or {})[cfg_id] then return nil, "token names an unknown mcp_config" end
  return {
    user_id = claims.sub, email = claims.email, project_id = claims[config.project_claim],
    mcp_config_id = cfg_id or config.mcp_config_id, scopes = claims.scopes, client_id = claims.client_id or claims.azp,
    expires_at = claims.exp,
    -- The validated token, for upstreams that exchange it (RFC 8693); never sent upstream.
    subject_token = token,
  }
end

local function metadata_url(req, config)
  if config.resource then
    local scheme_host, path = config.resource:match("^(https?://[^/]+)(.*)$")
    if scheme_host then return scheme_host .. "/.well-known/oauth-protected-resource" .. path end
  end
  return "http://" .. tostring(req.host or "localhost") .. "/.well-known/oauth-protected-resource" .. (req.path or "/mcp")
end

-- The WWW-Authenticate value for a refused request (RFC 6750 §3, RFC 9728 §5.1).
function M.challenge(req, config, why)
  local parts = { 'Bearer realm="smg"', ('resource_metadata="%s"'):format(metadata_url(req, config)) }
  if why and why ~= "missing bearer token" then
    parts[#parts + 1] = why == "insufficient scope" and 'error="insufficient_scope"' or 'error="invalid_token"'
    parts[#parts + 1] = ('error_description="%s"'):format(why:gsub('"', "'"))
  end
  if #config.required_scopes > 0 then parts[#parts + 1] = ('scope="%s"'):format(table.concat(config.required_scopes, " ")) end
  return table.concat(parts, ", ")
end

-- RFC 9728 metadata document.
function M.resource_metadata(config, ctx)
  local doc = {
    resource = config.resource or ("http://" .. tostring(ctx.host or "localhost") .. (ctx.path or "/mcp")),
    authorization_servers = json.array(config.authorization_servers or (config.issuer and { config.issuer } or {})),
    bearer_methods_supported = json.array({ "header" }),
    resource_name = "smg MCP gateway",
  }
  if config.scopes_supported then doc.scopes_supported = json.array(config.scopes_supported) end
  return doc
end

return M

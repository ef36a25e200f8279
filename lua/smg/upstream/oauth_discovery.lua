-- The MCP authorization discovery, as a client of a protected remote server: the
-- WWW-Authenticate challenge, Protected Resource Metadata (RFC 9728: the challenge's
-- resource_metadata, else the path and root well-known forms), then the authorization
-- server's metadata (RFC 8414 and OpenID Connect discovery, path-aware, issuer checked);
-- for a 2025-03-26 server (no PRM), its origin's metadata or default endpoints.
--
-- Every URL here is chosen by the remote server, so every fetch is guarded: HTTPS (plain
-- HTTP only where the config allows it), no loopback, private or link-local address
-- (checked on the address actually connected to, unless the config allows private
-- networks), redirects followed by hand, at most three, each target checked again, and
-- bounded in size and time.
local smg = require "smg"
local json = smg.json

local M = {}

local MAX_REDIRECTS = 3
local MAX_BYTES = 256 * 1024

---------------------------------------------------------------------------- URLs
-- application/x-www-form-urlencoded: everything but the unreserved characters escaped.
function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

-- A form body or query string of `params`, in a stable order.
function M.form(params)
  local parts = {}
  for k, v in pairs(params) do parts[#parts + 1] = M.urlencode(k) .. "=" .. M.urlencode(v) end
  table.sort(parts)
  return table.concat(parts, "&")
end

-- scheme, authority, path (no query, no fragment) of an absolute http(s) URL, or nil.
local function split(url)
  local scheme, authority, rest = tostring(url):match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil end
  local path = rest:match("^([^?#]*)") or ""
  return scheme, authority, path
end
M.split = split

-- The canonical resource identifier of an MCP server URL (RFC 8707 / MCP): lowercase
-- scheme and host, the default port dropped, no query or fragment, no trailing slash.
function M.canonical(url)
  local scheme, authority, path = split(url)
  if not scheme then return nil end
  local userinfo, hostport = authority:match("^(.*@)(.*)$")
  hostport = (hostport or authority):lower()
  local host, port = hostport:match("^(.-):(%d+)$")
  if not host then host = hostport end
  if (scheme == "https" and port == "443") or (scheme == "http" and port == "80") then port = nil end
  path = path:gsub("/+$", "")
  return scheme .. "://" .. (userinfo or "") .. host .. (port and (":" .. port) or "") .. path
end

local function origin(url)
  local scheme, authority = split(url)
  return scheme and (scheme .. "://" .. authority) or nil
end

-- A relative reference (a Location header) against `base`.
local function resolve(base, ref)
  if ref:match("^%a[%w+.-]*://") then return ref end
  if ref:sub(1, 2) == "//" then return (split(base)) .. ":" .. ref end
  if ref:sub(1, 1) == "/" then return origin(base) .. ref end
  local _, _, path = split(base)
  return origin(base) .. (path:match("^(.*/)") or "/") .. ref
end

---------------------------------------------------------------------------- challenges
-- The Bearer challenge of a WWW-Authenticate header value: { resource_metadata, scope,
-- error, error_description, ... } (auth-params, quoted or not), or nil without one.
function M.challenge(header)
  if type(header) ~= "string" then return nil end
  local s, e = header:lower():find("bearer", 1, true)
  while s and s > 1 and header:sub(s - 1, s - 1):match("[%w_]") do s, e = header:lower():find("bearer", e + 1, true) end
  if not s then return nil end
  local params, rest = {}, header:sub(e + 1)
  local pos = 1
  while true do
    local k, after = rest:match("^[%s,]*([%w_%-]+)%s*=%s*()", pos)
    if not k then break end
    local v
    if rest:sub(after, after) == '"' then
      local buf, i = {}, after + 1
      while i <= #rest do
        local ch = rest:sub(i, i)
        if ch == "\\" then
          buf[#buf + 1] = rest:sub(i + 1, i + 1)
          i = i + 2
        elseif ch == '"' then
          break
        else
          buf[#buf + 1] = ch
          i = i + 1
        end
      end
      v, pos = table.concat(buf), i + 1
    else
      v = rest:match("^([^%s,]*)", after)
      pos = after + #v
    end
    -- A new scheme ("Basic realm=...") ends the Bearer challenge's parameters.
    params[k:lower()] = params[k:lower()] or v
  end
  return params
end

---------------------------------------------------------------------------- fetching
-- opts: { allow_http = bool, allow_private = bool, timeout = s, ca_file }
-- GET url (JSON), guarded. Returns doc, final url | nil, err, status.
function M.fetch_json(url, opts)
  opts = opts or {}
  for _ = 0, MAX_REDIRECTS do
    local scheme = split(url)
    if not scheme then return nil, "not an absolute http(s) URL: " .. tostring(url) end
    if scheme ~= "https" and not opts.allow_http then return nil, "refused a plain HTTP URL: " .. url end
    local res, err = smg.http.request({ method = "GET", url = url, headers = { Accept = "application/json" },
      timeout = opts.timeout or 10, max_response = MAX_BYTES, public_only = not opts.allow_private,
      ca_file = opts.ca_file })
    if not res then return nil, tostring(err) end
    local status = res.status
    if status >= 300 and status < 400 and status ~= 304 then
      local loc = res.headers.location
      if type(loc) ~= "string" or loc == "" then return nil, ("HTTP %d without a Location"):format(status), status end
      url = resolve(url, loc)
    elseif status ~= 200 then
      return nil, ("HTTP %d"):format(status), status
    else
      local doc = json.decode(res.body or "")
      if type(doc) ~= "table" or json.is_array(doc) then return nil, "not a JSON object", status end
      return doc, url
    end
  end
  return nil, "more than " .. MAX_REDIRECTS .. " redirects"
end

---------------------------------------------------------------------------- RFC 9728
-- The well-known PRM URLs of a server URL, path form first.
function M.prm_urls(server_url)
  local o = origin(server_url)
  local path = (select(3, split(server_url)) or ""):gsub("/+$", "")
  local list = {}
  if path ~= "" then list[#list + 1] = o .. "/.well-known/oauth-protected-resource" .. path end
  list[#list + 1] = o .. "/.well-known/oauth-protected-resource"
  return list
end

-- The server's Protected Resource Metadata: from the challenge's resource_metadata, else
-- the well-known forms in order. Its `resource` must name this server (the canonical URI
-- of its URL, or a prefix of it at a path boundary). Returns prm | nil, err, absent
-- (absent: every URL answered 404, as a 2025-03-26 server's do).
function M.protected_resource(server_url, challenge, opts)
  local tried, absent = {}, true
  local urls = (challenge and challenge.resource_metadata) and { challenge.resource_metadata } or M.prm_urls(server_url)
  local prm, err, status
  for _, u in ipairs(urls) do
    prm, err, status = M.fetch_json(u, opts)
    if prm then break end
    if status ~= 404 then absent = false end
    tried[#tried + 1] = u .. ": " .. err
  end
  if not prm then return nil, "no protected resource metadata (" .. table.concat(tried, "; ") .. ")", absent end
  if type(prm.resource) ~= "string" then return nil, "protected resource metadata without a resource" end
  local want, got = M.canonical(server_url), M.canonical(prm.resource)
  if not got or not (want == got or want:sub(1, #got + 1) == got .. "/") then
    return nil, ("protected resource metadata names %s, not this server (%s)"):format(prm.resource, want)
  end
  if type(prm.authorization_servers) ~= "table" or type(prm.authorization_servers[1]) ~= "string" then
    return nil, "protected resource metadata lists no authorization_servers"
  end
  return prm
end

-- Authorization server metadata fetched from `url` for `issuer`: its `issuer` must be
-- exactly the one asked for (RFC 8414 3.3), and it must name a token endpoint. Returns
-- meta | nil, err.
local function accepted(meta, issuer, url)
  if meta.issuer ~= issuer then
    return nil, ("authorization server metadata at %s names issuer %s, not %s"):format(url, tostring(meta.issuer),
      issuer)
  end
  if type(meta.token_endpoint) ~= "string" then return nil, "authorization server metadata without a token_endpoint" end
  return meta
end

---------------------------------------------------------------------------- 2025-03-26
-- The origin of a server URL as an issuer compares: lowercase scheme and host, no default
-- port, no userinfo. nil for what is not an http(s) URL.
function M.issuer_origin(server_url)
  local canon = M.canonical(server_url)
  return canon and origin((canon:gsub("^(%a[%w+.-]*://)[^/@]*@", "%1"))) or nil
end

-- A server of the 2025-03-26 revision publishes no Protected Resource Metadata: its own
-- origin is the authorization server, whose metadata is at the origin's RFC 8414
-- well-known URL, or, where there is none (404), at the default endpoints /authorize,
-- /token and /register (PKCE was already required then). Returns meta | nil, err.
function M.legacy(server_url, opts)
  local o = M.issuer_origin(server_url)
  if not o then return nil, "not an absolute http(s) URL: " .. tostring(server_url) end
  local url = o .. "/.well-known/oauth-authorization-server"
  local meta, err, status = M.fetch_json(url, opts)
  if meta then
    meta, err = accepted(meta, o, url)
    if not meta then return nil, err end
    -- The revision required PKCE of every client and server: metadata of then that does
    -- not list the methods means S256 (one that lists others without it is refused later).
    if meta.code_challenge_methods_supported == nil then meta.code_challenge_methods_supported = { "S256" } end
    return meta
  end
  if status ~= 404 then return nil, "no authorization server metadata at " .. o .. ": " .. tostring(err) end
  return { issuer = o, authorization_endpoint = o .. "/authorize", token_endpoint = o .. "/token",
    registration_endpoint = o .. "/register", code_challenge_methods_supported = { "S256" },
    grant_types_supported = { "authorization_code", "refresh_token" }, legacy_defaults = true }
end

---------------------------------------------------------------------------- RFC 8414
-- The metadata URLs of an issuer, in the MCP spec's order.
function M.as_urls(issuer)
  local o = origin(issuer)
  local path = (select(3, split(issuer)) or ""):gsub("/+$", "")
  if path == "" then
    return { o .. "/.well-known/oauth-authorization-server", o .. "/.well-known/openid-configuration" }
  end
  return { o .. "/.well-known/oauth-authorization-server" .. path, o .. "/.well-known/openid-configuration" .. path,
    o .. path .. "/.well-known/openid-configuration" }
end

-- The authorization server's metadata; its `issuer` must be exactly the issuer asked for
-- (RFC 8414 3.3). Returns meta | nil, err.
function M.authorization_server(issuer, opts)
  local tried = {}
  for _, u in ipairs(M.as_urls(issuer)) do
    local meta, err = M.fetch_json(u, opts)
    if meta then return accepted(meta, issuer, u) end
    tried[#tried + 1] = u .. ": " .. err
  end
  return nil, "no authorization server metadata (" .. table.concat(tried, "; ") .. ")"
end

return M

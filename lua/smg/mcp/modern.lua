-- MCP 2026-07-28, the stateless revision: no initialize, no sessions; every request
-- carries its protocol version and client capabilities in params._meta, and on HTTP the
-- MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, which must agree with the body.
-- This module holds the revision's rules, transport-neutral: which requests are modern,
-- how one is validated (in the order the spec's conformance probes expect), the error
-- codes and their HTTP statuses, and what every result must carry (resultType, serverInfo,
-- ttlMs and cacheScope on cacheable results).
local smg = require "smg"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local param_headers = require "smg.mcp.param_headers"
local json = smg.json

local M = {}

M.VERSION = "2026-07-28"
M.HEADER_MISMATCH = -32020
M.MISSING_CAPABILITY = -32021
M.UNSUPPORTED_VERSION = -32022

local META = "io.modelcontextprotocol/"
M.META_VERSION = META .. "protocolVersion"
M.META_CAPS = META .. "clientCapabilities"
M.META_INFO = META .. "clientInfo"
M.META_LOG_LEVEL = META .. "logLevel"
M.META_SERVER_INFO = META .. "serverInfo"
M.META_SUBSCRIPTION = META .. "subscriptionId"

-- What a modern client may ask (schema.ts ClientRequest); everything else is -32601, 404.
M.METHODS = {
  ["server/discover"] = true, ["tools/list"] = true, ["tools/call"] = true, ["prompts/list"] = true,
  ["prompts/get"] = true, ["resources/list"] = true, ["resources/templates/list"] = true,
  ["resources/read"] = true, ["subscriptions/listen"] = true, ["completion/complete"] = true,
  -- The Tasks extension: passed to the upstream that owns the task.
  ["tasks/get"] = true, ["tasks/update"] = true, ["tasks/cancel"] = true,
}

-- Results that carry caching hints (SEP-2549).
M.CACHEABLE = { ["server/discover"] = true, ["tools/list"] = true, ["prompts/list"] = true,
  ["resources/list"] = true, ["resources/templates/list"] = true, ["resources/read"] = true }

-- The request's Mcp-Name: what params names it by.
local NAMED = { ["tools/call"] = "name", ["prompts/get"] = "name", ["resources/read"] = "uri",
  ["tasks/get"] = "taskId", ["tasks/update"] = "taskId", ["tasks/cancel"] = "taskId" }
M.NAMED = NAMED

-- Whether a request on a connection without a session is a modern one: its _meta names a
-- protocol version, or the header names a modern one. `http`: the HTTP request (its
-- header is read only when the body does not say), nil on stdio.
function M.is_modern(msg, http)
  local p = msg.params
  local meta = type(p) == "table" and p._meta
  if type(meta) == "table" and meta[M.META_VERSION] ~= nil then return true end
  local header_version = http and http:header("mcp-protocol-version")
  return header_version ~= nil and version.modern(header_version)
end

local NO_PARAMS = setmetatable({}, { __newindex = function() error("read-only", 2) end })

local function refusal(status, code, message, data)
  return { status = status, code = code, message = message, data = data }
end

-- Validates a modern request. `http`: the HTTP request (its :header(name)), nil on stdio.
-- Returns what the request's session is made of (Session.new_stateless): its protocol
-- version, client capabilities, client info, log level name and Mcp-Param-* headers
-- (values, not a table: this is every request's path) | nil, refusal { status, code,
-- message, data }.
local is_array = json.is_array
local META_VERSION, META_CAPS, META_INFO, META_LOG_LEVEL = M.META_VERSION, M.META_CAPS, M.META_INFO, M.META_LOG_LEVEL
-- (Every request passes here: what it reads more than once is read once.)
function M.check(msg, http)
  local p, method = msg.params, msg.method
  local meta = type(p) == "table" and p._meta
  if type(meta) ~= "table" or is_array(meta) then
    return nil, refusal(400, rpc.INVALID_PARAMS, "Invalid params: _meta with " .. META_VERSION .. " and "
      .. META_CAPS .. " is required")
  end
  local v, caps = meta[META_VERSION], meta[META_CAPS]
  if type(v) ~= "string" then
    return nil, refusal(400, rpc.INVALID_PARAMS, "Invalid params: _meta." .. META_VERSION .. " is required")
  end
  if type(caps) ~= "table" or (is_array(caps) and #caps > 0) then
    return nil, refusal(400, rpc.INVALID_PARAMS, "Invalid params: _meta." .. META_CAPS .. " is required")
  end
  local hv, hm, hn, got
  if http then
    hv, hm, hn, got = http:header("mcp-protocol-version", "mcp-method", "mcp-name", "mcp-param-*")
    if hv ~= v then
      return nil, refusal(400, M.HEADER_MISMATCH, ("Header mismatch: MCP-Protocol-Version %s, _meta says %s"):format(
        tostring(hv or "absent"), v))
    end
  end
  if not version.modern(v) then
    return nil, refusal(400, M.UNSUPPORTED_VERSION, "Unsupported protocol version: " .. v,
      { supported = version.ALL, requested = v })
  end
  local params
  if http then
    if hm ~= method then
      return nil, refusal(400, M.HEADER_MISMATCH, ("Header mismatch: Mcp-Method %s, the body's method is %s"):format(
        tostring(hm or "absent"), method))
    end
    local field = NAMED[method]
    if field then
      local want = p[field]
      -- (The plain value matches as it is; only another one may be a Base64 sentinel.)
      if type(want) == "string" and hn ~= want and (not hn or param_headers.decode(hn) ~= want) then
        return nil, refusal(400, M.HEADER_MISMATCH, ("Header mismatch: Mcp-Name %s, the body names %s"):format(
          tostring(hn or "absent"), want))
      end
    end
    -- A tools/call's Mcp-Param-* headers, checked against the tool's declarations once
    -- the tool is known (gateway pipeline); {} on HTTP when there are none, nil on stdio.
    if method == "tools/call" then
      if got then
        local why
        params, why = param_headers.collect(got)
        if why then return nil, refusal(400, M.HEADER_MISMATCH, "Header mismatch: " .. why) end
      end
      params = params or NO_PARAMS
    end
  end
  if not M.METHODS[method] then
    return nil, refusal(404, rpc.METHOD_NOT_FOUND, "Method not found: " .. method)
  end
  local level, info = meta[META_LOG_LEVEL], meta[META_INFO]
  return v, caps, type(info) == "table" and info or nil, type(level) == "string" and level or nil, params
end

-- The HTTP status of an error a modern request ended with.
function M.status_of(err)
  local c = err and err.code
  if c == rpc.METHOD_NOT_FOUND then return 404 end
  if c == M.HEADER_MISMATCH or c == M.MISSING_CAPABILITY or c == M.UNSUPPORTED_VERSION then return 400 end
  return 200
end

-- The error of a request that needs a client capability the client did not declare.
function M.missing_capability(cap)
  return { code = M.MISSING_CAPABILITY, message = "Missing required client capability: " .. cap,
    data = { requiredCapabilities = { [cap] = {} } } }
end

-- What every modern result carries: resultType ("complete" unless the upstream said
-- otherwise: unknown values pass); server/discover's also the server's identity (a SHOULD
-- the spec puts on responses; sent once there rather than on every call's result, which
-- is the hot path), and cacheable results the caching hints (`hints`: { ttl_ms, scope },
-- the most restrictive the gateway knows).
function M.finish(method, res, server_info, hints)
  if type(res) ~= "table" then return res end
  if res.resultType == nil then res.resultType = "complete" end
  if method == "server/discover" then
    local meta = type(res._meta) == "table" and res._meta or {}
    if meta[M.META_SERVER_INFO] == nil then meta[M.META_SERVER_INFO] = server_info end
    res._meta = meta
  end
  if M.CACHEABLE[method] and res.resultType == "complete" then
    if type(res.ttlMs) ~= "number" or res.ttlMs > hints.ttl_ms then res.ttlMs = hints.ttl_ms end
    if res.cacheScope ~= "private" then res.cacheScope = hints.scope end
  end
  return res
end

return M

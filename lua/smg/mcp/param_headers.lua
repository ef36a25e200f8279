-- Mcp-Param-* headers (2026-07-28 Streamable HTTP, SEP-2243): a tool marks arguments
-- with `x-mcp-header: Name` in its inputSchema and a client mirrors their values as
-- `Mcp-Param-Name` headers, so intermediaries can route on them without the body.
-- A gateway that enforces policy checks them against the body first (a mismatch is
-- -32020, HTTP 400), and since guardrails may rewrite arguments, the headers an upstream
-- sees are rebuilt from the arguments it is sent, never copied from the client.
local smg = require "smg"
local json = smg.json

local M = {}

M.MAX = 32 -- Mcp-Param-* headers a request may carry

local SENTINEL_OPEN, SENTINEL_CLOSE = "=?base64?", "?="
local TOKEN = "^[!#$%%&'*+%-.^_`|~0-9A-Za-z]+$" -- RFC 9110 token
-- What x-mcp-header may mark (SEP-2243): strings, integers and booleans; not numbers,
-- whose text forms differ between implementations.
local TYPES = { string = true, integer = true, boolean = true }

-- The declarations of a tool's inputSchema: { {path = {...}, name, type} } reachable
-- through `properties` only; a malformed one (bad token, duplicate) is left out, as the
-- SDKs' clients leave the tool out. Memoized per schema table.
local memo = setmetatable({}, { __mode = "k" })
local collect
function M.declarations(schema)
  if type(schema) ~= "table" then return {} end
  local got = memo[schema]
  if not got then
    got = collect(schema) -- (the walk, out of this per-call path: it makes closures)
    memo[schema] = got
  end
  return got
end

collect = function(schema)
  local out, seen = {}, {}
  local function visit(node, path, depth)
    if type(node) ~= "table" or depth > 16 then return end
    local name = node["x-mcp-header"]
    if #path > 0 and type(name) == "string" and name:match(TOKEN) and TYPES[node.type] and not seen[name:lower()] then
      seen[name:lower()] = true
      out[#out + 1] = { path = path, name = name, type = node.type }
    end
    if type(node.properties) == "table" and not json.is_array(node.properties) then
      local keys = {}
      for k in pairs(node.properties) do
        if type(k) == "string" then keys[#keys + 1] = k end
      end
      table.sort(keys) -- deterministic: of two duplicates, the first key in order wins
      for _, k in ipairs(keys) do
        local p = { unpack(path) }
        p[#p + 1] = k
        visit(node.properties[k], p, depth + 1)
      end
    end
  end
  visit(schema, {}, 0)
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- Why a tool's x-mcp-header declarations are malformed (an empty or non-token name, one
-- on a non-primitive parameter, a name used twice in any case), or nil when they are all
-- well formed. A client MUST leave such a tool out (SEP-2243): the gateway, as the
-- upstream's client, does not list or call it.
function M.malformed(schema)
  if type(schema) ~= "table" then return nil end
  local seen, why = {}, nil
  local function visit(node, depth)
    if why or type(node) ~= "table" or depth > 16 then return end
    local name = node["x-mcp-header"]
    if name ~= nil and depth > 0 then
      if type(name) ~= "string" or name == "" then
        why = "an x-mcp-header that is not a non-empty string"
      elseif not name:match(TOKEN) then
        why = ("x-mcp-header %q is not a valid header name"):format(name)
      elseif not TYPES[node.type] then
        why = ("x-mcp-header %q is on a parameter of type %s, not a primitive"):format(name, tostring(node.type))
      elseif seen[name:lower()] then
        why = ("x-mcp-header %q is declared twice"):format(name)
      end
      seen[type(name) == "string" and name:lower() or ""] = true
    end
    if type(node.properties) == "table" and not json.is_array(node.properties) then
      for _, v in pairs(node.properties) do visit(v, depth + 1) end
    end
  end
  visit(schema, 0)
  return why
end

local function value_at(args, path)
  local v = args
  for _, k in ipairs(path) do
    if type(v) ~= "table" then return nil end
    v = v[k]
  end
  if v == json.null then return nil end
  return v
end

-- The string a primitive argument mirrors to, nil for what is not mirrored.
local function primitive(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" and v == v and v ~= math.huge and v ~= -math.huge then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  return nil
end

-- A field value needs the Base64 sentinel when it is not plain visible ASCII, has
-- leading or trailing whitespace, is empty, or already looks like the sentinel.
local function needs_base64(s)
  return s == "" or s:find("[^\t\32-\126]") ~= nil or s:find("^%s") ~= nil or s:find("%s$") ~= nil
    or (s:sub(1, #SENTINEL_OPEN) == SENTINEL_OPEN and s:sub(-2) == SENTINEL_CLOSE)
end

function M.encode(s)
  if needs_base64(s) then return SENTINEL_OPEN .. smg.crypto.b64encode(s) .. SENTINEL_CLOSE end
  return s
end

-- The value a header carries, the sentinel decoded; nil when the sentinel holds
-- anything but canonical Base64. (Bytes that are not UTF-8 cannot equal a JSON string,
-- so the comparison refuses them.)
function M.decode(s)
  if not (#s >= #SENTINEL_OPEN + 2 and s:sub(1, #SENTINEL_OPEN) == SENTINEL_OPEN and s:sub(-2) == SENTINEL_CLOSE) then
    return s
  end
  local b64 = s:sub(#SENTINEL_OPEN + 1, -3)
  if not b64:match("^[A-Za-z0-9+/]*=?=?$") or #b64 % 4 ~= 0 then return nil end
  local raw = smg.crypto.b64decode(b64)
  if not raw or smg.crypto.b64encode(raw) ~= b64 then return nil end
  return raw
end

-- The Mcp-Param-* headers of a request: { [lowercased name after the prefix] = value },
-- nil when there are none; nil, reason when there are too many.
function M.collect(headers)
  local out, n
  for name, value in pairs(headers) do
    if name:sub(1, 10) == "mcp-param-" then
      n = (n or 0) + 1
      if n > M.MAX then return nil, ("more than %d Mcp-Param-* headers"):format(M.MAX) end
      out = out or {}
      out[name:sub(11)] = value
    end
  end
  return out
end

-- Checks the collected headers `got` against the body's arguments: every declared
-- argument with a value must be mirrored, and agree. Returns nil | the mismatch text.
function M.check(decls, args, got)
  for _, d in ipairs(decls) do
    local s = primitive(value_at(args, d.path))
    if s then
      local header = "Mcp-Param-" .. d.name
      local raw = got and got[d.name:lower()]
      if not raw then return ("the body carries %s but the %s header is absent"):format(table.concat(d.path, "."), header) end
      local v = M.decode(raw)
      if not v then return ("the %s header carries an invalid Base64 sentinel value"):format(header) end
      local body = value_at(args, d.path)
      local equal = v == s or (type(body) == "number" and v:match("^%-?%d+%.?%d*$") and tonumber(v) == body)
      if not equal then
        return ("the %s header says %q but the body carries %s=%s"):format(header, v, table.concat(d.path, "."), s)
      end
    end
  end
  return nil
end

-- The header lines for an upstream: the declared ones rebuilt from `args` (what the
-- upstream is sent, after any guardrail), then the client's undeclared ones, which an
-- intermediary must pass on. nil when there are none.
function M.lines(decls, args, got)
  local out, declared = nil, {}
  for _, d in ipairs(decls or {}) do
    declared[d.name:lower()] = true
    local s = primitive(value_at(args, d.path))
    if s then
      out = out or {}
      out[#out + 1] = "Mcp-Param-" .. d.name .. ": " .. M.encode(s)
    end
  end
  for name, value in pairs(got or {}) do
    if not declared[name] and name:match(TOKEN) then
      out = out or {}
      out[#out + 1] = "Mcp-Param-" .. name .. ": " .. value:gsub("[%c]", "")
    end
  end
  return out
end

return M

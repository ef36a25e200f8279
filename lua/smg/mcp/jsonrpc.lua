-- JSON-RPC 2.0 envelopes and the error codes MCP uses. Every message smg writes is built
-- here; an error is a table {code, message, data} everywhere and becomes an envelope only
-- at the edge (M.error_of / M.reply).
local smg = require "smg"
local json = smg.json

local M = {
  PARSE_ERROR = -32700,
  INVALID_REQUEST = -32600,
  METHOD_NOT_FOUND = -32601,
  INVALID_PARAMS = -32602,
  INTERNAL_ERROR = -32603,
  RESOURCE_NOT_FOUND = -32002,
  SERVER_ERROR = -32000,
}

function M.result(id, result)
  return json.encode({ jsonrpc = "2.0", id = id, result = result })
end

function M.error(id, code, message, data)
  local e = { code = code, message = message, data = data }
  return json.encode({ jsonrpc = "2.0", id = id == nil and json.null or id, error = e })
end

-- The envelope of an error table ({code, message, data}); a missing code is internal.
function M.error_of(id, err)
  err = err or {}
  return M.error(id, err.code or M.INTERNAL_ERROR, tostring(err.message or "error"), err.data)
end

-- The response to request `id`: its result, or the error when res is nil. A result that
-- cannot be encoded becomes an error response (the client still gets an answer).
function M.reply(id, res, err)
  if res == nil then return M.error_of(id, err or { code = M.INTERNAL_ERROR, message = "Internal error" }) end
  local line = json.encode({ jsonrpc = "2.0", id = id, result = res })
  return line or M.error(id, M.INTERNAL_ERROR, "result could not be encoded")
end

-- A copy of a message part (params, an item of a list) with `changes` applied (none:
-- a plain copy), its metatable kept (the JSON object/array mark). The original stays as
-- it was: other layers (guardrails, the audit log, a parked call) still hold it.
function M.with(t, changes)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  for k, v in pairs(changes or {}) do o[k] = v end
  return setmetatable(o, getmetatable(t))
end

-- An error object for results: M.fail(M.INVALID_PARAMS, "...") returns nil, err.
function M.fail(code, message, data)
  return nil, { code = code, message = message, data = data }
end

function M.request(id, method, params)
  return json.encode({ jsonrpc = "2.0", id = id, method = method, params = params })
end

function M.notification(method, params)
  return json.encode({ jsonrpc = "2.0", method = method, params = params })
end

-- Classifies a decoded message: "request", "notification", "response" or nil, err.
function M.kind(msg)
  if type(msg) ~= "table" or json.is_array(msg) then return nil, "not a JSON-RPC object" end
  if msg.jsonrpc ~= "2.0" then return nil, "jsonrpc must be \"2.0\"" end
  local id = msg.id
  local tid = type(id)
  if msg.method ~= nil then
    if type(msg.method) ~= "string" then return nil, "method must be a string" end
    if msg.params ~= nil and type(msg.params) ~= "table" then return nil, "params must be an object or array" end
    if id == nil then return "notification" end
    if tid ~= "string" and tid ~= "number" then return nil, "id must be a string or an integer" end
    if tid == "number" and id ~= math.floor(id) then return nil, "id must be a string or an integer" end
    return "request"
  end
  if msg.result ~= nil or msg.error ~= nil then
    if id == nil then return nil, "response without id" end
    if msg.error ~= nil and type(msg.error) ~= "table" then return nil, "error must be an object" end
    return "response"
  end
  return nil, "neither request, notification nor response"
end

return M

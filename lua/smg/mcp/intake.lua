-- Message intake shared by the transports: a POST body or a stdio line becomes a list of
-- classified JSON-RPC messages, or one clear refusal. Nothing reaches a session unless it
-- is well-formed; what a transport does with a refusal (HTTP status, a line on stdout)
-- is the transport's business, so refusals carry both.
local smg = require "smg"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local json = smg.json

local M = {}

-- A refusal: { status = HTTP status, code = JSON-RPC code, message, id = the offending
-- message's id when it had one }.
local function refuse(status, code, message, id)
  return { status = status, code = code, message = message, id = id }
end

-- Classifies a decoded message (`msg`, or nil and the decoder's error `perr`). Returns
-- messages, kinds, is_batch, nrequests | nil, refusal. A batch may not be empty nor carry
-- initialize; whether the session's revision allows batches at all is M.batch_refusal's
-- question (the session may not exist yet).
function M.classify(msg, perr)
  if msg == nil then return nil, refuse(400, rpc.PARSE_ERROR, "Parse error: " .. tostring(perr)) end
  local is_batch = json.is_array(msg)
  local list = is_batch and msg or { msg }
  if is_batch and #list == 0 then return nil, refuse(400, rpc.INVALID_REQUEST, "Invalid Request: empty batch") end
  local kinds, nreq = {}, 0
  for i, m in ipairs(list) do
    local kind, why = rpc.kind(m)
    if not kind then
      return nil, refuse(400, rpc.INVALID_REQUEST, "Invalid Request: " .. why, type(m) == "table" and m.id or nil)
    end
    kinds[i] = kind
    if kind == "request" then
      nreq = nreq + 1
      if is_batch and m.method == "initialize" then
        return nil, refuse(400, rpc.INVALID_REQUEST, "Invalid Request: initialize must not be batched", m.id)
      end
    end
  end
  return list, kinds, is_batch, nreq
end

-- Decodes and classifies `text`: as M.classify.
function M.parse(text) return M.classify(json.decode(text)) end

-- nil when a batch is fine on a session of revision `v`, else the refusal.
function M.batch_refusal(v)
  if version.batches(v) then return nil end
  return refuse(400, rpc.INVALID_REQUEST,
    "Invalid Request: JSON-RPC batches are only allowed with protocol version 2025-03-26")
end

-- Whether this single message starts a session.
function M.is_initialize(list, kinds, is_batch)
  return not is_batch and kinds[1] == "request" and list[1].method == "initialize"
end

-- The envelope of a refusal, for transports that answer with a message (stdio).
function M.error_line(r) return rpc.error(r.id, r.code, r.message) end

return M

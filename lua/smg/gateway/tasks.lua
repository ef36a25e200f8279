-- The Tasks extension (io.modelcontextprotocol/tasks, 2026-07-28): a tools/call may
-- answer with a task handle (resultType "task") that the client then polls (tasks/get),
-- feeds input (tasks/update) or cancels (tasks/cancel). Behind one gateway many upstreams
-- issue task ids, and a shared upstream issues them for every identity; so the client
-- gets a gateway task id that names the server and the upstream's id and is bound, by an
-- HMAC, to the identity that created the task: a task id cannot be pointed at another
-- server or used by another identity. Stateless, so any instance that shares the key
-- (gateway.cluster.secret) can route it.
local smg = require "smg"
local core = require "smg.core"
local rpc = require "smg.mcp.jsonrpc"

local M = {}

M.METHODS = { ["tasks/get"] = true, ["tasks/update"] = true, ["tasks/cancel"] = true }

local PROCESS_KEY = core.random_bytes(32)
local keys = setmetatable({}, { __mode = "k" }) -- cfg -> key

local function key_of(gw)
  local k = keys[gw.cfg]
  if not k then
    local c = gw.cfg.gateway.cluster
    k = type(c) == "table" and type(c.secret) == "string" and core.sha256("smg-tasks-v1\n" .. c.secret) or PROCESS_KEY
    keys[gw.cfg] = k
  end
  return k
end

local function mac(gw, session, server, id)
  local m = smg.crypto.hmac_sha256(key_of(gw), ("%s\n%s\n%s"):format(tostring(session.identity_key), server, id))
  return core.hex(m):sub(1, 32)
end

-- The gateway's id for the upstream task `id` of `server`, for this session's identity.
function M.wrap(gw, session, server, id)
  return ("smgt1.%s.%s.%s"):format(smg.crypto.b64url_encode(server), smg.crypto.b64url_encode(id),
    mac(gw, session, server, id))
end

-- server, upstream id | nil, why.
function M.unwrap(gw, session, tid)
  local s64, i64, m = tostring(tid):match("^smgt1%.([%w_%-]+)%.([%w_%-]+)%.(%x+)$")
  local server, id = s64 and smg.crypto.b64decode(s64), i64 and smg.crypto.b64decode(i64)
  if not (server and id) or not smg.secure_equal(m, mac(gw, session, server, id)) then
    return nil, "unknown task"
  end
  return server, id
end

-- Rewrites a task handle or a task's state in a result from `server` to the gateway's id.
function M.rewrite(gw, session, server, res)
  if type(res) == "table" and type(res.taskId) == "string"
    and (res.resultType == "task" or type(res.status) == "string") then
    res.taskId = M.wrap(gw, session, server, res.taskId)
  end
  return res
end

-- tasks/get, tasks/update, tasks/cancel: to the server that issued the task, with its own
-- id; the answer names the task by the gateway's id again.
function M.request(gw, session, method, params, call)
  local server, id = M.unwrap(gw, session, type(params) == "table" and params.taskId)
  local spec = server and gw.pipeline:server(session, server)
  if not spec then
    return rpc.fail(rpc.INVALID_PARAMS, "Invalid params: unknown task", { taskId = params and params.taskId })
  end
  local res, err = gw.pipeline:forward(session, spec, method, rpc.with(params, { taskId = id }), call)
  return M.rewrite(gw, session, server, res), err
end

return M

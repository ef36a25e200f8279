-- Refusals by a resource limit, in one shape wherever they happen (sessions, calls in
-- flight, per-session upstreams, requests waiting on a client): a JSON-RPC error whose
-- data names the limit's config key, and one count in smg_limit_refusals_total.
local metrics = require "smg.metrics"
local rpc = require "smg.mcp.jsonrpc"

local M = {}

local refusals = metrics.counter("smg_limit_refusals_total",
  "Requests refused by a resource limit (sessions, calls in flight, per-session upstreams...)", { "limit" })

-- limit: the name after "max_" in gateway.limits, or a dotted config path of its own
-- ("rate_limits.per_key"); extra: more fields for data. Returns the error object.
function M.refused(limit, message, extra)
  refusals:inc(1, limit)
  local data = { reason = "limit", limit = limit:find(".", 1, true) and limit or "max_" .. limit }
  for k, v in pairs(extra or {}) do data[k] = v end
  return { code = rpc.SERVER_ERROR, message = message, data = data }
end

return M

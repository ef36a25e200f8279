-- The pipeline's hook points: every message that crosses the gateway's upstream edge
-- passes one, in both directions, and guardrail plugins that declare the point in
-- `messages` see it through `on_message(msg, policy, config)`.
--
--   c2s:request       a request forwarded to an upstream (upstream names, after routing)
--   c2s:notification  a client notification forwarded to an upstream (roots/list_changed)
--   c2s:result        the client's result for an upstream's sampling/elicitation/roots request
--   c2s:error         the client's error for one
--   s2c:request       an upstream's sampling/elicitation/roots request, before the client sees it
--   s2c:notification  progress, log messages, list_changed, resources/updated
--   s2c:result        an upstream's result (tools, resources, prompts, completions, the
--                     initialize result a passthrough client sees, discovery pages)
--   s2c:error         an upstream's JSON-RPC error
--
-- Which providers run is the server's policy: its input_guardrails_policy for c2s points,
-- its output_guardrails_policy for s2c points (enable_tool_guardrails, the policy's
-- enabled switch and its `kinds` apply), in priority order. A provider may narrow a point
-- to some methods ("c2s:request prompts/get") or leave some out ("s2c:result !tools/call"). A verdict {allowed = false, violations}
-- blocks the message (under the policy's block list, as for tool checks:
-- guardrails.judge); {redacted = value} replaces its payload for later providers and for
-- the receiver. An error or timeout blocks unless plugins.guardrails.on_error is "allow".
local plugins = require "smg.plugins"
local plugin_set = require "smg.gateway.plugin_set"
local guardrails = require "smg.gateway.guardrails"
local metrics = require "smg.metrics"

local M = {}

M.POINTS = plugins.POINTS

local blocks = metrics.counter("smg_message_blocks_total", "Messages a guardrail hook blocked, by hook point",
  { "guardrail", "point" })

-- The providers of `spec` that see `point` (memoized per policy; a reload builds a new set).
local EMPTY = {}
local function providers(set, spec, point)
  if not (spec and spec.enable_tool_guardrails) then return EMPTY end
  local policy = point:byte(1) == 99 and spec.input_guardrails_policy or spec.output_guardrails_policy -- 'c'
  if not policy.enabled then return EMPTY end
  local memo = set.hook_memo
  local per = memo[policy]
  if not per then
    per = {}
    memo[policy] = per
  end
  local list = per[point]
  if not list then
    list = {}
    for _, p in ipairs((plugin_set.guardrails_for(set, policy))) do
      if p.on_message and p.points[point] then list[#list + 1] = p end
    end
    per[point] = list
  end
  return list, policy
end

-- Whether any provider of `spec` sees `point` (callers skip building the view otherwise).
function M.active(set, spec, point) return #providers(set, spec, point) > 0 end

-- Runs `point` on `payload`. Returns nil, payload (possibly redacted) when it passes, or
-- the block: { guardrail, point, violations }.
function M.run(set, timeout, point, spec, method, payload, session, call)
  local list, policy = providers(set, spec, point)
  if #list == 0 then return nil, payload end
  local wanted = false
  for _, p in ipairs(list) do
    if plugins.sees(p, point, method) then
      wanted = true
      break
    end
  end
  if not wanted then return nil, payload end -- (no message view built for nobody)
  local dir, kind = point:match("^(%a+):(%a+)$")
  if not guardrails.covers(policy, guardrails.kind_of(method, kind == "error")) then return nil, payload end
  local msg = {
    point = point, direction = dir, kind = kind, method = method, server = spec.server_name, payload = payload,
    session = session and { id = session.id, protocol_version = session.protocol_version,
      project_id = session.identity and session.identity.project_id,
      user_id = session.identity and session.identity.user_id } or nil,
    call = call and { id = call.id, method = call.method, tool = call.tool or nil } or nil,
  }
  local fail_open = set.guardrail_on_error == "allow"
  for _, p in ipairs(list) do
    local ok, res = true, nil
    if plugins.sees(p, point, method) then ok, res = plugins.run_hook(p, "on_message", timeout, msg, policy, p.config) end
    if not (ok and res == nil) then -- nil: nothing to say about this message
      local types, redacted = guardrails.judge(p, "on_message", ok, res, policy, fail_open, point,
        spec.server_name, method)
      guardrails.note(call and call.verdicts or nil, p, point, ok, res, types)
      if types then
        blocks:inc(1, p.name, point)
        return { guardrail = p.name, point = point, violations = types }
      end
      if redacted ~= nil then
        payload = redacted
        msg.payload = payload
      end
    end
  end
  return nil, payload
end

return M

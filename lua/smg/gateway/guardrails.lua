-- Guardrails around tool calls: the policy's guardrail providers run, highest priority
-- first, on a call's arguments before it is forwarded and on its result after (the seed's
-- enable_tool_guardrails + input/output_guardrails_policy). A provider may rewrite what it
-- checked (`redacted`, e.g. PII placeholders) for the providers after it and for the
-- upstream. A violation blocks when the policy's block list names its type (or the list is
-- empty). A provider that errors or times out blocks the call unless plugins.guardrails
-- .on_error is "allow"; either way it is logged.
local smg = require "smg"
local plugins = require "smg.plugins"
local plugin_set = require "smg.gateway.plugin_set"
local Budgets = require "smg.gateway.budgets"
local metrics = require "smg.metrics"
local log = smg.log

local M = {}

local blocks = metrics.counter("smg_guardrail_blocks_total", "Tool calls blocked by a guardrail",
  { "guardrail", "direction" })
local checks = metrics.histogram("smg_guardrail_seconds", "Time spent in guardrail hooks", { "guardrail", "direction" })

local function block_types(violations, policy)
  local block = policy.block or {}
  local out = {}
  for _, v in ipairs(violations or {}) do
    local t = type(v) == "table" and tostring(v.type) or tostring(v)
    local hit = #block == 0
    for _, b in ipairs(block) do if b == t then hit = true end end
    if hit then out[#out + 1] = t end
  end
  return out
end

-- Whether `policy` is switched on for messages of `kind` (its `kinds`; empty: every kind).
local kind_sets = setmetatable({}, { __mode = "k" })
function M.covers(policy, kind)
  local kinds = policy.kinds
  if not kinds or #kinds == 0 then return true end
  local set = kind_sets[policy]
  if not set then
    set = {}
    for _, k in ipairs(kinds) do set[k] = true end
    kind_sets[policy] = set
  end
  return set[kind] == true
end

-- The kind of a message (config.MESSAGE_KINDS): its method's family; an error is "errors".
local KIND_OF = {
  initialize = "instructions", ["completion/complete"] = "completions", ["sampling/createMessage"] = "sampling",
  ["elicitation/create"] = "elicitation", ["notifications/elicitation/complete"] = "elicitation",
  ["roots/list"] = "roots", ["notifications/roots/list_changed"] = "roots",
  ["notifications/message"] = "logging", ["logging/setLevel"] = "logging", ["notifications/progress"] = "progress",
  ["notifications/tools/list_changed"] = "tools", ["notifications/prompts/list_changed"] = "prompts",
  ["notifications/resources/list_changed"] = "resources", ["notifications/resources/updated"] = "resources",
}
local FAMILY = { tools = "tools", resources = "resources", prompts = "prompts" }
function M.kind_of(method, is_error)
  if is_error then return "errors" end
  local k = KIND_OF[method]
  if k then return k end
  return type(method) == "string" and FAMILY[method:match("^(%a+)/") or ""] or "other"
end

function M.blocked(spec, direction, guardrail, types)
  blocks:inc(1, guardrail, direction)
  local text = ("Blocked by guardrail %s (%s, policy %s): %s"):format(guardrail, direction,
    tostring(spec[direction .. "_guardrails_policy"].policy_name), table.concat(types, ", "))
  return {
    content = smg.json.array({ { type = "text", text = text } }),
    isError = true,
    structuredContent = { blocked = true, guardrail = guardrail, direction = direction, violations = smg.json.array(types) },
  }
end

-- Interprets one provider's answer (`ok, res` from plugins.run_hook) under `policy`, for
-- the tool checks and the message hooks alike. `what`, `server`, `name` name the message
-- in the log ("input of server/tool"); they are formatted only when something is logged.
-- Returns the violation types when the message is blocked, else nil and the provider's
-- rewrite of it (nil: unchanged). A verdict that is not a table is an error; an error or
-- a timeout blocks unless fail_open. A refusal that names nothing still refuses; one
-- whose types the policy's block list leaves out only annotates.
function M.judge(p, hook, ok, res, policy, fail_open, what, server, name)
  if ok and (type(res) ~= "table" or (res.violations ~= nil and type(res.violations) ~= "table")) then
    log.error(("guardrail %s: %s returned %s, not a verdict table"):format(p.name, hook, type(res)))
    ok, res = false, "error"
  end
  if not ok then
    if not fail_open then return { "guardrail_" .. res } end
    log.warn(("guardrail %s %s on %s of %s/%s; allowed (on_error = allow)"):format(p.name, res, what, server,
      tostring(name)))
    return nil
  end
  if res.allowed == false then
    local types = block_types(res.violations, policy)
    if not res.violations or #res.violations == 0 then types = { "policy_violation" } end
    if #types > 0 then
      log.warn(("guardrail %s blocked %s of %s/%s: %s"):format(p.name, what, server, tostring(name),
        table.concat(types, ", ")))
      return types
    end
    log.info(("guardrail %s annotated %s of %s/%s"):format(p.name, what, server, tostring(name)))
  end
  return nil, res.redacted
end

-- What one guardrail said, for the audit log: { guardrail, at, blocked, violations }.
function M.note(list, p, at, ok, res, types)
  if not list then return end
  local kinds = {}
  if ok and type(res) == "table" and type(res.violations) == "table" then
    for _, v in ipairs(res.violations) do kinds[#kinds + 1] = type(v) == "table" and tostring(v.type) or tostring(v) end
  elseif not ok then
    kinds[1] = "guardrail_" .. tostring(res)
  end
  list[#list + 1] = { guardrail = p.name, at = at, blocked = types ~= nil, violations = smg.json.array(kinds) }
end

-- Runs the policy's providers. `call` = {server, name, arguments, state}; `value` is the
-- result for output checks. Returns blocked_result | nil, value (possibly redacted).
-- `verdicts`: a list each verdict is added to (the audit log's), or nil.
function M.check(set, timeout, spec, direction, call, value, verdicts)
  if not spec.enable_tool_guardrails then return nil, value end
  local policy = direction == "input" and spec.input_guardrails_policy or spec.output_guardrails_policy
  if not policy.enabled or not M.covers(policy, "tools") then return nil, value end
  local list, missing = plugin_set.guardrails_for(set, policy)
  local fail_open = set.guardrail_on_error == "allow"
  if #missing > 0 and not fail_open then
    return M.blocked(spec, direction, missing[1], { "guardrail_unavailable" })
  end
  local hook = direction == "input" and "check_input" or "check_output"
  for _, p in ipairs(list) do
    if p[hook] then
      local t0 = smg.monotime()
      local ok, res
      if direction == "input" then
        ok, res = plugins.run_hook(p, hook, timeout, call, policy, p.config)
      else
        ok, res = plugins.run_hook(p, hook, timeout, call, value, policy, p.config)
      end
      local took = smg.monotime() - t0
      checks:observe(took, p.name, direction)
      Budgets.note("guardrail", took, timeout, not ok and res == "timeout")
      local types, redacted = M.judge(p, hook, ok, res, policy, fail_open, direction, spec.server_name, call.name)
      M.note(verdicts, p, direction, ok, res, types)
      if types then return M.blocked(spec, direction, p.name, types) end
      if redacted ~= nil then
        value = redacted
        if direction == "input" then call.arguments = value end
      end
    end
  end
  return nil, value
end

-- The message kind of each discovered list (policy `kinds`).
local LIST_KIND = { tools = "tools", prompts = "prompts", resources = "resources", resourceTemplates = "resources",
  instructions = "instructions" }

-- Discovery check: providers with check_discovery(server, items, policy, config, list)
-- see a server's list (`list`: tools, prompts, resources, resourceTemplates or
-- instructions; a provider declares which in `discovery`) when it is discovered (not on
-- cache hits) and return { allowed, violations, tools = <the items to expose> }. The input
-- policy selects the providers. Returns the items to expose.
function M.discovery(set, timeout, spec, tools, list_name)
  list_name = list_name or "tools"
  if not spec.enable_tool_guardrails then return tools end
  local policy = spec.input_guardrails_policy
  if not policy.enabled or not M.covers(policy, LIST_KIND[list_name]) then return tools end
  local list = plugin_set.guardrails_for(set, policy)
  for _, p in ipairs(list) do
    if p.check_discovery and p.lists[list_name] then
      local ok, res = plugins.run_hook(p, "check_discovery", timeout, spec.server_name, tools, policy, p.config,
        list_name)
      if not ok then
        if set.guardrail_on_error ~= "allow" then
          log.error(("guardrail %s: discovery check %s on %s; exposing no %s"):format(p.name, res, spec.server_name,
            list_name))
          return smg.json.array({})
        end
      elseif type(res) == "table" then
        if type(res.tools) == "table" then tools = res.tools end
        for _, v in ipairs(res.violations or {}) do
          blocks:inc(1, p.name, "discovery")
          log.warn(("guardrail %s flagged %s/%s at discovery: %s"):format(p.name, spec.server_name,
            tostring(v.tool or v.item), tostring(v.type)))
        end
      end
    end
  end
  return tools
end

return M

-- Guardrails around tool calls: the configured guardrail plugins run on a call's
-- arguments before it is forwarded and on its result after, per server policy (the
-- seed's enable_tool_guardrails + input/output_guardrails_policy). A violation blocks when
-- the policy's block list names its type (or the list is empty); a plugin that errors or
-- times out blocks the call (fail closed) and is logged.
local smg = require "smg"
local plugins = require "smg.plugins"
local log = smg.log

local M = {}

-- Loads the providers named in plugins.guardrails. Returns the list | nil, err.
function M.load(cfg)
  local ref = cfg.plugins.guardrails
  local names = {}
  if type(ref.provider) == "string" and ref.provider ~= "" then names[1] = ref.provider end
  local list = {}
  for _, name in ipairs(names) do
    local p, err = plugins.load("guardrail", name, ref.config)
    if not p then return nil, err end
    list[#list + 1] = p
  end
  table.sort(list, function(a, b) return a.priority > b.priority end)
  return list
end

local function blocking(violations, policy)
  local block = policy.block or {}
  local out = {}
  for _, v in ipairs(violations or {}) do
    local t = type(v) == "table" and v.type or tostring(v)
    local hit = #block == 0
    for _, b in ipairs(block) do if b == t then hit = true end end
    if hit then out[#out + 1] = t end
  end
  return out
end

-- Runs `hook` of every provider. Returns nil when the call may proceed, else a blocked
-- CallToolResult naming the guardrail and the violation types (never the matched text).
function M.check(gw, spec, direction, call, result)
  if not spec.enable_tool_guardrails then return nil end
  local policy = direction == "input" and spec.input_guardrails_policy or spec.output_guardrails_policy
  if not policy.enabled then return nil end
  if gw.guardrail_error then
    return M.blocked(spec, direction, "unavailable", { "guardrail_unavailable" })
  end
  local hook = direction == "input" and "check_input" or "check_output"
  local timeout = gw.timeouts.guardrail_timeout
  for _, p in ipairs(gw.guardrails) do
    if p[hook] then
      local ok, res
      if direction == "input" then
        ok, res = plugins.run_hook(p, hook, timeout, call, policy, p.config)
      else
        ok, res = plugins.run_hook(p, hook, timeout, call, result, policy, p.config)
      end
      if not ok then
        gw.stats.guardrail_blocks = (gw.stats.guardrail_blocks or 0) + 1
        return M.blocked(spec, direction, p.name, { "guardrail_" .. res })
      end
      if type(res) == "table" and res.allowed == false then
        local types = blocking(res.violations, policy)
        if #types > 0 then
          gw.stats.guardrail_blocks = (gw.stats.guardrail_blocks or 0) + 1
          log.warn(("guardrail %s blocked %s of %s/%s: %s"):format(p.name, direction, spec.server_name,
            tostring(call.name), table.concat(types, ", ")))
          return M.blocked(spec, direction, p.name, types)
        end
        log.info(("guardrail %s annotated %s of %s/%s"):format(p.name, direction, spec.server_name, tostring(call.name)))
      end
    end
  end
  return nil
end

function M.blocked(spec, direction, guardrail, types)
  local text = ("Blocked by guardrail %s (%s, policy %s): %s"):format(guardrail, direction,
    tostring(spec[direction .. "_guardrails_policy"].policy_name), table.concat(types, ", "))
  return {
    content = smg.json.array({ { type = "text", text = text } }),
    isError = true,
    structuredContent = { blocked = true, guardrail = guardrail, direction = direction, violations = smg.json.array(types) },
  }
end

return M

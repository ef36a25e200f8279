-- The seed's custom_keyword guardrail: blocks a call whose arguments (input) or result
-- (output) contain one of the configured keywords, matched case-insensitively. Keywords
-- come from the plugin config and from the policy's additional_config.keywords.
local smg = require "smg"

local M = {
  name = "keyword",
  kind = "guardrail",
  version = "1.0.0",
  priority = 100,
  cpu_only = true, -- never waits for I/O: runs on the caller's coroutine (docs/plugin-api.md)
  description = "Blocks calls whose arguments or results contain listed keywords",
  schema = {
    keywords = { type = "array", items = { type = "string" }, default = smg.json.array({}),
      description = "keywords checked on every call, in addition to each policy's own" },
  },
}

local function keywords(config, policy)
  local list = {}
  for _, k in ipairs(config.keywords or {}) do list[#list + 1] = k end
  local extra = type(policy.additional_config) == "table" and policy.additional_config.keywords
  if type(extra) == "table" then for _, k in ipairs(extra) do list[#list + 1] = tostring(k) end end
  return list
end

local function scan(text, list)
  local lower = text:lower()
  local found = {}
  for _, k in ipairs(list) do
    if k ~= "" and lower:find(k:lower(), 1, true) then found[#found + 1] = { type = "keyword_detected", detail = k } end
  end
  return found
end

local function verdict(text, config, policy)
  local v = scan(text, keywords(config, policy))
  return { allowed = #v == 0, violations = v }
end

function M.check_input(call, policy, config)
  return verdict(smg.json.encode(call.arguments or {}) or "", config, policy)
end

function M.check_output(call, result, policy, config)
  return verdict(smg.json.encode(result or {}) or "", config, policy)
end

return M

-- Prompt-injection and command-injection heuristics on tool arguments (input) and tool
-- results (output): instruction-override phrases, role and delimiter spoofing, shell
-- metacharacter chains, path traversal and SQL tautologies. Each rule has a weight; a
-- category is reported when its score reaches the threshold (additional_config.threshold,
-- default 1), so one strong signal or two weak ones trip it.
local smg = require "smg"

local M = {
  name = "injection",
  kind = "guardrail",
  version = "1.0.0",
  priority = 200,
  description = "Prompt and command injection heuristics on arguments and results",
  schema = {
    threshold = { type = "number", default = 1, min = 0.1 },
    categories = { type = "array", items = { type = "string", enum = { "prompt_injection", "command_injection",
      "path_traversal", "sql_injection" } }, description = "categories checked (default: all)" },
  },
}

-- { category, weight, pattern (on lower-cased text)[, lead = literal] }. A rule with an
-- unbounded run in the middle has a `lead`: it is tried only where the literal occurs
-- (smg.find_near), so a crafted payload cannot make matching quadratic.
local RULES = {
  { "prompt_injection", 1, "ignore%s+%a*%s*%a*%s*previous%s+instructions" },
  { "prompt_injection", 1, "ignore%s+%a*%s*%a*%s*prior%s+instructions" },
  { "prompt_injection", 1, "ignore%s+%a*%s*%a*%s*above%s+instructions" },
  { "prompt_injection", 1, "disregard%s+%a*%s*%a*%s*instructions" },
  { "prompt_injection", 1, "forget%s+%a*%s*%a*%s*instructions" },
  { "prompt_injection", 1, "override%s+%a*%s*%a*%s*instructions" },
  { "prompt_injection", 1, "reveal%s+%a*%s*system%s+prompt" },
  { "prompt_injection", 1, "print%s+%a*%s*system%s+prompt" },
  { "prompt_injection", 1, "do%s+anything%s+now" },
  { "prompt_injection", 1, "developer%s+mode%s+enabled" },
  { "prompt_injection", 1, "<|im_start|>" },
  { "prompt_injection", 1, "%[/?inst%]" },
  { "prompt_injection", 1, "<</?sys>>" },
  { "prompt_injection", 0.6, "you%s+are%s+now%s+" },
  { "prompt_injection", 0.6, "new%s+instructions%s*:" },
  { "prompt_injection", 0.6, "^%s*system%s*:" },
  { "prompt_injection", 0.6, "\n%s*system%s*:" },
  { "prompt_injection", 0.5, "jailbreak" },
  { "prompt_injection", 0.5, "pretend%s+to%s+be" },
  { "prompt_injection", 0.5, "act%s+as%s+an?%s+unrestricted" },
  { "command_injection", 1, "[;&|]%s*rm%s+%-[rf]+" },
  { "command_injection", 1, "curl%s+[^|]*|%s*%a*sh", lead = "curl" },
  { "command_injection", 1, "wget%s+[^|]*|%s*%a*sh", lead = "wget" },
  { "command_injection", 1, "%$%(%s*[%a/]" },
  { "command_injection", 1, "`%s*[%a/][^`]*`" },
  { "command_injection", 1, "[;&|]%s*nc%s+%-e" },
  { "command_injection", 1, "/dev/tcp/" },
  { "command_injection", 1, "[;&|]%s*chmod%s+[0-7+]" },
  { "command_injection", 0.6, "[;&|]%s*cat%s+/etc/" },
  { "command_injection", 0.6, "&&%s*%a" },
  { "command_injection", 1, "|%s*bash" },
  { "command_injection", 0.6, "|%s*sh%f[%A]" },
  { "path_traversal", 1, "%.%./%.%./" },
  { "path_traversal", 1, "%.%.\\%.%.\\" },
  { "path_traversal", 1, "%%2e%%2e%%2f" },
  { "path_traversal", 1, "/etc/passwd" },
  { "path_traversal", 1, "/etc/shadow" },
  { "path_traversal", 0.6, "%.%./" },
  { "sql_injection", 1, "'%s*or%s*'?%d+'?%s*=%s*'?%d+" },
  { "sql_injection", 1, ";%s*drop%s+table" },
  { "sql_injection", 1, "union%s+all%s+select" },
  { "sql_injection", 1, "union%s+select" },
  { "sql_injection", 0.6, "'%s*%-%-" },
  { "sql_injection", 0.6, "sleep%s*%(%s*%d+%s*%)" },
}

local function matches(lower, r)
  if r.lead then return smg.find_near(lower, r.lead, r[3]) end
  return lower:find(r[3]) ~= nil
end

local function enabled(config)
  if not config.categories then return nil end
  local set = {}
  for _, c in ipairs(config.categories) do set[c] = true end
  return set
end

-- Scores every string of `value`; returns the violations (one per category over threshold).
function M.scan(value, config, policy)
  local ac = type(policy) == "table" and type(policy.additional_config) == "table" and policy.additional_config or {}
  local threshold = tonumber(ac.threshold) or config.threshold or 1
  local only = enabled(config)
  local score = {}
  smg.json.each_string(value, function(s)
    local lower = s:lower()
    for _, r in ipairs(RULES) do
      if (not only or only[r[1]]) and matches(lower, r) then score[r[1]] = (score[r[1]] or 0) + r[2] end
    end
  end)
  local violations = {}
  for _, cat in ipairs({ "prompt_injection", "command_injection", "path_traversal", "sql_injection" }) do
    if (score[cat] or 0) >= threshold then
      violations[#violations + 1] = { type = "injection_attack", detail = cat, score = score[cat] }
    end
  end
  return violations
end

local function verdict(v)
  return { allowed = #v == 0, violations = v }
end

function M.check_input(call, policy, config)
  return verdict(M.scan(call.arguments, config, policy))
end

function M.check_output(call, result, policy, config)
  return verdict(M.scan(result, config, policy))
end

return M

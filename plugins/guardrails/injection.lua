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

-- Rules run on folded text (smg.text.fold: lower-cased, blank runs collapsed, so a `%s*`
-- or `%s+` below matches at most one byte) and never have two unbounded runs side by
-- side; phrases with filler words between their key words are word-sequence rules
-- (smg.text.phrases), linear in the number of words. Each rule has a category and a
-- weight: a category is reported when its score reaches the threshold.
local PHRASES = {
  { "prompt_injection", 1, { "ignore|disregard|forget|skip|bypass", "*4", "previous|prior|above|earlier|preceding",
    "instructions|rules|directives|guidelines|prompts" } },
  { "prompt_injection", 1, { "disregard|forget|override|bypass", "*4", "instructions|guardrails|directives" } },
  { "prompt_injection", 1, { "reveal|print|show|repeat|leak|output", "*4", "system", "prompt|instructions" } },
  { "prompt_injection", 1, { "do", "anything", "now" } },
  { "prompt_injection", 1, { "developer|god|dan", "mode", "enabled|activated|on" } },
  { "prompt_injection", 0.6, { "you", "are", "now" } },
  { "prompt_injection", 0.5, { "pretend", "to", "be" } },
  { "prompt_injection", 0.5, { "act", "as", "a|an", "unrestricted|unfiltered|uncensored" } },
}

-- { category, weight, pattern[, lead = literal][, need = literal] }: a rule with a run of
-- unbounded length in its middle is tried only where its `lead` occurs, on a bounded
-- window (smg.find_near); `need` is a literal it cannot match without.
local PATTERNS = {
  { "prompt_injection", 1, "<|im_start|>", need = "<|im_start|>" },
  { "prompt_injection", 1, "%[/?inst%]", need = "inst]" },
  { "prompt_injection", 1, "<</?sys>>", need = "sys>>" },
  { "prompt_injection", 0.6, "new instructions ?:", need = "new instructions" },
  { "prompt_injection", 0.6, "^ ?system ?:", need = "system" },
  { "prompt_injection", 0.6, "\n ?system ?:", need = "system" },
  { "prompt_injection", 0.5, "jailbreak", need = "jailbreak" },
  { "command_injection", 1, "[;&|] ?rm %-[rf]+", need = "rm -" },
  { "command_injection", 1, "%f[%w]rm %-[rf]+ /%*?%f[^%w/.]", need = "rm -" },
  { "command_injection", 1, "curl [^|]*| ?%a*sh", lead = "curl" },
  { "command_injection", 1, "wget [^|]*| ?%a*sh", lead = "wget" },
  { "command_injection", 1, "%$%( ?[%a/]", need = "$(" },
  { "command_injection", 1, "` ?[%a/][^`]*`", lead = "`" },
  { "command_injection", 1, "[;&|] ?nc %-e", need = "nc -e" },
  { "command_injection", 1, "/dev/tcp/", need = "/dev/tcp/" },
  { "command_injection", 1, "[;&|] ?chmod [0-7+]", need = "chmod" },
  { "command_injection", 0.6, "[;&|] ?cat /etc/", need = "cat /etc/" },
  { "command_injection", 0.6, "&& ?%a", need = "&&" },
  { "command_injection", 1, "| ?bash", need = "bash" },
  { "command_injection", 0.6, "| ?sh%f[%A]", need = "|" },
  { "path_traversal", 1, "%.%./%.%./", need = "../" },
  { "path_traversal", 1, "%.%.\\%.%.\\", need = "..\\" },
  { "path_traversal", 1, "%%2e%%2e%%2f", need = "%2e" },
  { "path_traversal", 1, "%.%.%%2f", need = "..%2f" },
  { "path_traversal", 1, "%%2e%%2e/", need = "%2e" },
  { "path_traversal", 1, "/etc/passwd", need = "/etc/passwd" },
  { "path_traversal", 1, "/etc/shadow", need = "/etc/shadow" },
  { "path_traversal", 0.6, "%.%./", need = "../" },
  { "sql_injection", 1, "' ?or ?'?%d+'? ?= ?'?%d+", need = "'" },
  { "sql_injection", 1, "' ?or ?'(%w+)' ?= ?'%1", need = "'" },
  { "sql_injection", 1, "; ?drop table", need = "drop table" },
  { "sql_injection", 1, "union all select", need = "union" },
  { "sql_injection", 1, "union select", need = "union" },
  { "sql_injection", 0.6, "' ?%-%-", need = "--" },
  { "sql_injection", 0.6, "sleep ?%( ?%d+ ?%)", need = "sleep" },
}

local phrase_rules = {}
for i, r in ipairs(PHRASES) do phrase_rules[i] = { id = i, words = r[3] } end
local phrases = smg.text.phrases(phrase_rules)

-- `need`: a literal the pattern cannot match without; a plain search for it runs at
-- memchr speed, so ordinary text skips the pattern.
local function matches(text, r)
  if r.need and not text:find(r.need, 1, true) then return false end
  if r.lead then return smg.find_near(text, r.lead, r[3]) end
  return text:find(r[3]) ~= nil
end

local function enabled(config)
  if not config.categories then return nil end
  local set = {}
  for _, c in ipairs(config.categories) do set[c] = true end
  return set
end

-- Scores every key, string and number of `value`, joined (a phrase split across two
-- values counts), slice by slice; each rule counts once. Returns the violations, one per
-- category over the threshold.
function M.scan(value, config, policy)
  local ac = type(policy) == "table" and type(policy.additional_config) == "table" and policy.additional_config or {}
  local threshold = tonumber(ac.threshold) or config.threshold or 1
  local only = enabled(config)
  local hit_phrase, hit_pattern = {}, {}
  smg.text.slices(value, function(raw)
    local text = smg.text.fold(raw)
    phrases:match(text, hit_phrase)
    for i, r in ipairs(PATTERNS) do
      if not hit_pattern[i] and (not only or only[r[1]]) and matches(text, r) then hit_pattern[i] = true end
    end
  end)
  local score = {}
  for i in pairs(hit_phrase) do
    local r = PHRASES[i]
    if not only or only[r[1]] then score[r[1]] = (score[r[1]] or 0) + r[2] end
  end
  for i in pairs(hit_pattern) do
    local r = PATTERNS[i]
    score[r[1]] = (score[r[1]] or 0) + r[2]
  end
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

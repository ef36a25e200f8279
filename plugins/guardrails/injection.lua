-- Prompt-injection and command-injection heuristics on tool arguments (input) and tool
-- results (output): instruction-override phrases, role and turn-marker spoofing, persona
-- jailbreaks, hidden-instruction tags, shell metacharacter chains, path traversal, SQL
-- tautologies, and SSRF targets in URLs (cloud metadata, loopback, private and link-local
-- addresses, file:// and other local schemes). Each rule has a weight; a category is
-- reported when its score reaches the threshold (additional_config.threshold, default 1),
-- so one strong signal or two weak ones trip it.
local smg = require "smg"

local M = {
  name = "injection",
  kind = "guardrail",
  version = "1.0.0",
  priority = 200,
  cpu_only = true, -- never waits for I/O: runs on the caller's coroutine (docs/plugin-api.md)
  description = "Prompt and command injection heuristics on arguments and results",
  schema = {
    threshold = { type = "number", default = 1, min = 0.1 },
    categories = { type = "array", items = { type = "string", enum = { "prompt_injection", "command_injection",
      "path_traversal", "sql_injection", "ssrf" } }, description = "categories checked (default: all)" },
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
  -- Persona jailbreaks.
  { "prompt_injection", 1, { "you", "are", "*2", "dan|stan|aim|jailbroken|unrestricted|unfiltered" } },
  { "prompt_injection", 0.6, { "without", "*2", "restrictions|limitations|filters|guidelines|censorship" } },
  { "prompt_injection", 0.6, { "stay|remain", "in", "character" } },
  { "prompt_injection", 0.6, { "no", "longer", "bound|restricted|limited" } },
  { "prompt_injection", 0.6, { "new", "policy|rules|persona|role" } },
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
  -- Role and turn-marker spoofing: a line that claims to come from the system or assistant.
  { "prompt_injection", 0.6, "\n ?assistant ?:", need = "assistant" },
  { "prompt_injection", 0.6, "\n ?developer ?:", need = "developer" },
  { "prompt_injection", 1, "<|%a+|>", need = "<|" },
  { "prompt_injection", 1, "### ?system", need = "### " },
  { "prompt_injection", 1, "%[system%]", need = "[system]" },
  -- Hidden-instruction tags, as in poisoned tool descriptions, inside arguments or results.
  { "prompt_injection", 1, "< ?important ?>", need = "important" },
  { "prompt_injection", 1, "< ?system ?>", need = "system" },
  { "prompt_injection", 1, "< ?instructions? ?>", need = "instruction" },
  { "prompt_injection", 1, "< ?system_[%w_]* ?>", need = "system_" },
  { "prompt_injection", 1, "< ?hidden[%w_]* ?>", need = "hidden" },
  { "prompt_injection", 1, "%[instruction injection", need = "instruction injection" },
  -- Code-execution payloads (eval, pickle, template injection, YAML object construction).
  { "command_injection", 1, "__import__ ?%(", need = "__import__" },
  { "command_injection", 1, "__reduce__", need = "__reduce__" },
  { "command_injection", 1, "__globals__", need = "__globals__" },
  { "command_injection", 1, "!!python/", need = "!!python/" },
  { "command_injection", 1, "os%.system ?%(", need = "os.system" },
  { "command_injection", 1, "os%.popen ?%(", need = "os.popen" },
  { "command_injection", 1, "[;&|] ?rm %-[rf]+", need = "rm -" },
  { "command_injection", 1, "%f[%w]rm %-[rf]+ /%*?%f[^%w/.]", need = "rm -" },
  { "command_injection", 1, "curl [^|]*| ?%a*sh", lead = "curl" },
  { "command_injection", 1, "wget [^|]*| ?%a*sh", lead = "wget" },
  { "command_injection", 1, "%$%( ?[%a/]", need = "$(" },
  { "command_injection", 1, "[%w='\"]`[%a/][^`]*`", need = "`" }, -- glued into a word (name`id`); Markdown code is not
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

-- SSRF: the host of every URL-shaped value (found from each "://", on a bounded window)
-- checked against the places a server-side request must not reach.
local LOCAL_SCHEMES = { file = true, gopher = true, dict = true, ldap = true, jar = true, netdoc = true }
local METADATA = { ["169.254.169.254"] = true, ["metadata.google.internal"] = true, ["metadata"] = true,
  ["100.100.100.200"] = true, ["fd00:ec2::254"] = true, ["instance-data"] = true }

local function ipv4_of(host)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then return tonumber(a), tonumber(b), tonumber(c), tonumber(d) end
  local n = host:match("^(%d+)$") or (host:match("^0x(%x+)$") and tonumber(host:sub(3), 16))
  n = tonumber(n)
  if n and n < 2 ^ 32 then
    return math.floor(n / 2 ^ 24) % 256, math.floor(n / 2 ^ 16) % 256, math.floor(n / 2 ^ 8) % 256, n % 256
  end
end

local function internal_host(host)
  host = host:gsub("^.*@", "")
  local v6 = host:match("^%[(.-)%]")
  if v6 then
    host = v6
  elseif host:find("^[^:]*:%d+$") then
    host = host:gsub(":%d+$", "")
  end
  host = host:gsub("%.$", "")
  if METADATA[host] or host == "localhost" or host:find("%.localhost$") or host:find("%.internal$") then return true end
  if host == "::1" or host == "::" or host:find("^fe[89ab]%x:") or host:find("^f[cd]%x%x:") then return true end
  local a, b = ipv4_of(host)
  if not a then return false end
  return a == 127 or a == 10 or a == 0 or (a == 169 and b == 254) or (a == 172 and b >= 16 and b <= 31)
    or (a == 192 and b == 168) or (a == 100 and b >= 64 and b <= 127)
end

local function ssrf(text)
  local init = 1
  for _ = 1, 1000 do
    local at = text:find("://", init, true)
    if not at then return false end
    local scheme = text:sub(math.max(1, at - 16), at - 1):match("(%a[%w+.-]*)$")
    local host = text:sub(at + 3, at + 258):match("^([^/%s?#\\\"'<>]*)")
    if scheme and (LOCAL_SCHEMES[scheme] or (host and host ~= "" and internal_host(host))) then return true end
    init = at + 3
  end
  return false
end

local phrase_rules = {}
for i, r in ipairs(PHRASES) do phrase_rules[i] = { id = i, words = r[3] } end
local phrases = smg.text.phrases(phrase_rules)

-- `need`: a literal the pattern cannot match without. All of them are looked for in one
-- pass (smg.text.literals), so ordinary text skips every pattern for the price of one scan.
local need_list, need_index = {}, {}
for _, r in ipairs(PATTERNS) do
  local lit = r.need or r.lead
  if not need_index[lit] then
    need_list[#need_list + 1] = lit
    need_index[lit] = #need_list
  end
  r.need_i = need_index[lit]
end
local needs = smg.text.literals(need_list)

local function matches(text, r)
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
-- `input`: the value is a call's arguments. SSRF is an input question (a URL the tool is
-- about to fetch); a result that mentions http://localhost:3000 is documentation.
local CATEGORIES = { "prompt_injection", "command_injection", "path_traversal", "sql_injection", "ssrf" }

-- The rules on one folded text.
local function scan_text(text, st)
  local only, hit_pattern = st.only, st.pattern
  phrases:match(text, st.phrase)
  local present = {}
  if needs:scan(text, present) > 0 then
    for i = 1, #PATTERNS do
      local r = PATTERNS[i]
      if present[r.need_i] and not hit_pattern[i] and (not only or only[r[1]]) and matches(text, r) then
        hit_pattern[i] = true
      end
    end
  end
  if st.input and not st.ssrf and (not only or only.ssrf) then st.ssrf = ssrf(text) end
end

-- Encoded tokens (percent, hex, base64: smg.text.decoded) are read decoded too.
local function scan_decoded(d, _, _, st) scan_text(smg.text.fold(d), st) end

-- One slice of the joined text (module-level functions: no closure per call).
local function scan_slice(raw, st)
  local text = smg.text.fold(raw)
  scan_text(text, st)
  smg.text.decoded(raw, scan_decoded, st)
  return text
end

function M.scan(value, config, policy, input)
  local ac = type(policy) == "table" and type(policy.additional_config) == "table" and policy.additional_config or {}
  local threshold = tonumber(ac.threshold) or config.threshold or 1
  local only = enabled(config)
  local st = { only = only, phrase = {}, pattern = {}, ssrf = false, input = input }
  smg.text.slices(value, scan_slice, st)
  local hit_phrase, hit_pattern, hit_ssrf = st.phrase, st.pattern, st.ssrf
  local score = {}
  for i in pairs(hit_phrase) do
    local r = PHRASES[i]
    if not only or only[r[1]] then score[r[1]] = (score[r[1]] or 0) + r[2] end
  end
  for i in pairs(hit_pattern) do
    local r = PATTERNS[i]
    score[r[1]] = (score[r[1]] or 0) + r[2]
  end
  if hit_ssrf then score.ssrf = 1 end
  local violations = {}
  for _, cat in ipairs(CATEGORIES) do
    if (score[cat] or 0) >= threshold then
      violations[#violations + 1] = { type = "injection_attack", detail = cat, score = score[cat] }
    end
  end
  return violations
end

local function verdict(v)
  return { allowed = #v == 0, violations = v }
end

-- (A registration check reads a tool's own description: a URL there is not a request.)
function M.check_input(call, policy, config)
  return verdict(M.scan(call.arguments, config, policy, not call.registration))
end

-- Every other message kind (api_minor 1): resources, prompts, completions, errors,
-- notifications, the passthrough initialize result, the upstream's sampling and
-- elicitation requests and the client's answers. Tool calls are check_input/check_output's
-- and lists are tool_scan's (one poisoned tool must not hide the rest), so both are skipped.
-- An upstream that asks the user for a secret through elicitation is refused.
local NOT_MINE = "!tools/call !tools/list !prompts/list !resources/list !resources/templates/list"
M.messages = { "c2s:request " .. NOT_MINE, "c2s:result", "s2c:request", "s2c:notification", "s2c:result " .. NOT_MINE,
  "s2c:error" }
local SKIP = { ["tools/call"] = true, ["tools/list"] = true, ["prompts/list"] = true, ["resources/list"] = true,
  ["resources/templates/list"] = true }
local asks_secret = smg.text.phrases({ { id = 1, words = { "enter|provide|give|type|share|send|confirm|paste", "*4",
  "password|passcode|passphrase|pin|secret|token|otp|ssn|cvv" } },
  { id = 2, words = { "api|access|secret|private|ssh", "key|keys|token" } },
  { id = 3, words = { "credit|debit", "card", "number" } } })

function M.on_message(msg, policy, config)
  if SKIP[msg.method] then return nil end
  local v = M.scan(msg.payload, config, policy, msg.direction == "c2s" and msg.kind == "request")
  if msg.method == "elicitation/create" and msg.point == "s2c:request" and next(asks_secret:match(
      smg.text.fold(smg.json.text(msg.payload)), {})) then
    v[#v + 1] = { type = "credential_request", detail = "an elicitation asks the user for a secret" }
  end
  if #v == 0 then return nil end
  return verdict(v)
end

function M.check_output(call, result, policy, config)
  return verdict(M.scan(result, config, policy))
end

return M

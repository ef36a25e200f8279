-- OpenAI's moderation API (the seed's "openai" provider): POSTs the call's text to
-- /v1/moderations and turns each flagged category (harassment, hate, self-harm, sexual,
-- violence, illicit...) into a violation of that type, "/" and "-" folded to "_". The
-- request is asynchronous; a slow API delays only the call it checks.
local smg = require "smg"

local M = {
  name = "openai_moderation",
  kind = "guardrail",
  version = "1.0.0",
  priority = 100,
  description = "OpenAI moderation API",
  schema = {
    api_key = { type = "string", description = "OpenAI API key (or OPENAI_API_KEY in the environment)" },
    base_url = { type = "string", default = "https://api.openai.com", pattern = "^https?://" },
    model = { type = "string", default = "omni-moderation-latest" },
    threshold = { type = "number", description = "also flag categories scoring at least this (0..1)" },
    timeout = { type = "number", default = 10, min = 0.1 },
  },
}

function M.moderate(text, config)
  local key = config.api_key or os.getenv("OPENAI_API_KEY")
  if not key or key == "" then return nil, "no api_key configured" end
  local resp, err = smg.http.request({
    method = "POST", url = config.base_url:gsub("/+$", "") .. "/v1/moderations", timeout = config.timeout,
    headers = { ["Content-Type"] = "application/json", Authorization = "Bearer " .. key },
    body = smg.json.encode({ model = config.model, input = text }),
  })
  if not resp then return nil, "moderation API unreachable: " .. tostring(err) end
  if resp.status ~= 200 then return nil, "moderation API answered HTTP " .. resp.status end
  local doc = smg.json.decode(resp.body)
  local r = type(doc) == "table" and type(doc.results) == "table" and doc.results[1]
  if type(r) ~= "table" then return nil, "moderation API answered without results" end
  local violations, seen = {}, {}
  local function add(cat)
    local t = tostring(cat):gsub("[/%-]", "_")
    if not seen[t] then
      seen[t] = true
      violations[#violations + 1] = { type = t }
    end
  end
  for cat, flagged in pairs(type(r.categories) == "table" and r.categories or {}) do
    if flagged == true then add(cat) end
  end
  if config.threshold then
    for cat, score in pairs(type(r.category_scores) == "table" and r.category_scores or {}) do
      if type(score) == "number" and score >= config.threshold then add(cat) end
    end
  end
  if r.flagged == true and #violations == 0 then add("flagged") end
  table.sort(violations, function(a, b) return a.type < b.type end)
  return violations
end

local function verdict(v, err)
  if not v then error(err, 0) end
  return { allowed = #v == 0, violations = v }
end

function M.check_input(call, policy, config)
  return verdict(M.moderate(smg.json.text(call.arguments), config))
end

function M.check_output(call, result, policy, config)
  return verdict(M.moderate(smg.json.text(result.content or result), config))
end

return M

-- Enkrypt AI guardrails (the seed's default provider): POSTs the call's text to the
-- Enkrypt detect API with the policy's name and reads its summary, where each detector
-- reports 1 / a non-empty list when it fired (pii, injection_attack, toxicity, nsfw,
-- keyword_detector, policy_violation, bias, sponge_attack...). A detector that fired is a
-- violation of that type; the policy's block list decides which ones block. The request
-- is asynchronous (libcurl on the loop): a slow API delays only the call it checks.
local smg = require "smg"

local M = {
  name = "enkrypt",
  kind = "guardrail",
  version = "1.0.0",
  priority = 100,
  description = "Enkrypt AI guardrails API (policy detect)",
  schema = {
    api_key = { type = "string", description = "Enkrypt API key (or ENKRYPT_API_KEY in the environment)" },
    base_url = { type = "string", default = "https://api.enkryptai.com", pattern = "^https?://" },
    path = { type = "string", default = "/guardrails/policy/detect" },
    timeout = { type = "number", default = 10, min = 0.1 },
  },
}

-- Returns the violations for `text` | nil, err (the gateway then fails closed).
function M.detect(text, policy, config, mode)
  local key = config.api_key or os.getenv("ENKRYPT_API_KEY")
  if not key or key == "" then return nil, "no api_key configured" end
  local name = tostring(policy.policy_name or "")
  local resp, err = smg.http.request({
    method = "POST", url = config.base_url:gsub("/+$", "") .. config.path, timeout = config.timeout,
    headers = { ["Content-Type"] = "application/json", apikey = key, ["X-Enkrypt-Policy"] = name,
      ["X-Enkrypt-Guardrail"] = name, ["X-Enkrypt-Mode"] = mode, ["X-Enkrypt-Source-Name"] = "smg" },
    body = smg.json.encode({ text = text }),
  })
  if not resp then return nil, "enkrypt API unreachable: " .. tostring(err) end
  if resp.status ~= 200 then return nil, "enkrypt API answered HTTP " .. resp.status end
  local doc = smg.json.decode(resp.body)
  if type(doc) ~= "table" or type(doc.summary) ~= "table" then return nil, "enkrypt API answered without a summary" end
  local violations = {}
  for detector, v in pairs(doc.summary) do
    if v == 1 or v == true or (type(v) == "table" and #v > 0) then
      violations[#violations + 1] = { type = detector }
    end
  end
  table.sort(violations, function(a, b) return a.type < b.type end)
  return violations
end

local function verdict(v, err)
  if not v then error(err, 0) end -- a failed check is an error: fail closed per on_error
  return { allowed = #v == 0, violations = v }
end

function M.check_input(call, policy, config)
  return verdict(M.detect(smg.json.text(call.arguments), policy, config, "prompt"))
end

function M.check_output(call, result, policy, config)
  return verdict(M.detect(smg.json.text(result.content or result), policy, config, "response"))
end

return M

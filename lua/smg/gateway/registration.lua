-- The seed's registration-time checks (2.1.7), on smg's own providers. When a server's
-- tools are discovered:
--   * enable_server_info_validation (default on): "MCP Server: <name> - <description>",
--     for the configured description and the one the server gives in initialize, checked
--     with tool_guardrails_policy's block list; a hit hides every tool of the server.
--   * tool_guardrails_policy.enabled: every tool is checked; a tool with a detector of the
--     block list is never listed (the seed's mode "filter"). An empty list reports only.
-- The seed's detectors are remote classifiers; here each maps onto the bundled providers
-- that find the same thing (DETECTOR_PROVIDERS), and the enkrypt provider, when it is
-- configured, runs all of them as the seed does. A provider with check_discovery sees the
-- whole list (tool_scan: hidden instructions, rug pulls); the others see each tool's text
-- through check_input, in the seed's form "Tool: <name> - <description> [DESTRUCTIVE]".
local smg = require "smg"
local plugins = require "smg.plugins"
local metrics = require "smg.metrics"
local log = smg.log
local json = smg.json

local M = {}

M.DETECTOR_PROVIDERS = {
  injection_attack = { "injection", "tool_scan" },
  policy_violation = { "tool_scan" },
  keyword_detector = { "keyword" },
  pii = { "pii" },
}
-- Detectors only a remote classifier has.
M.REMOTE = { toxicity = true, nsfw = true, topic_detector = true, bias = true, sponge_attack = true }
M.LOCAL = { "injection", "tool_scan", "keyword", "pii" }

-- The seed's keyword_detector ban list for tool and server descriptions.
M.BANNED_KEYWORDS = { "exec(", "shell=true", "eval(", "sudo ", "chmod 777", "rm -rf", ".env", "mcp.json",
  "enkrypt_mcp_config.json", "id_rsa", "/etc/shadow", "claude_desktop_config.json" }

-- A provider's violation type -> the seed detectors it stands for. (A hidden instruction
-- in a description is both an injection and what "Allow only safe tools" forbids.)
local DETECTORS_OF = { injection_attack = { "injection_attack" }, keyword_detected = { "keyword_detector" },
  pii = { "pii" }, tool_poisoning = { "injection_attack", "policy_violation" }, tool_changed = { "policy_violation" } }

local flagged = metrics.counter("smg_registration_blocks_total",
  "Tools and servers hidden by the registration checks (tool_guardrails_policy)", { "server", "what" })

local function detectors_of(v)
  local t = type(v) == "table" and tostring(v.type) or tostring(v)
  return DETECTORS_OF[t] or { t } -- the enkrypt provider reports the detectors by their own names
end

-- Adds to `hits` (a set, and a list in first-seen order) the detectors of `v` that
-- `block_set` names (every one when it is empty: a report).
local function judge(hits, v, block_set)
  for _, d in ipairs(detectors_of(v)) do
    if (block_set[d] or not next(block_set)) and not hits[d] then
      hits[d] = true
      hits[#hits + 1] = d
    end
  end
end

-- Provider names a policy's block list needs (empty block: every local one, to report).
function M.providers_for(policy, remote_configured)
  local names, seen = {}, {}
  local function add(n)
    if not seen[n] then
      seen[n] = true
      names[#names + 1] = n
    end
  end
  local block = policy.block or {}
  if #block == 0 then
    for _, n in ipairs(M.LOCAL) do add(n) end
  end
  for _, d in ipairs(block) do
    for _, n in ipairs(M.DETECTOR_PROVIDERS[d] or {}) do add(n) end
  end
  if remote_configured then add("enkrypt") end
  return names
end

-- Whether `spec` has registration checks to run at all.
function M.wanted(spec)
  local pol = spec.tool_guardrails_policy
  if not pol then return false end
  return pol.enabled or (spec.enable_server_info_validation and #(pol.block or {}) > 0)
end

-- The policy the providers see: the registration policy, with the seed's ban list for
-- the keyword provider unless it names its own, and every detector type in `block`.
local function provider_policy(pol)
  local ac = {}
  for k, v in pairs(pol.additional_config or {}) do ac[k] = v end
  if ac.keywords == nil then ac.keywords = M.BANNED_KEYWORDS end
  return { enabled = true, policy_name = pol.policy_name, additional_config = ac, block = json.array({}) }
end

local function list_of(set, pol)
  local list = {}
  for _, name in ipairs(M.providers_for(pol, set.guardrails.enkrypt ~= nil)) do
    local p = set.guardrails[name]
    if p then list[#list + 1] = p end
  end
  return list
end

local function block_set_of(pol)
  local s = {}
  for _, d in ipairs(pol.block or {}) do s[d] = true end
  return s
end

-- Runs check_input of the providers without check_discovery on `text`. Returns the
-- detectors that fired, or nil, err when a provider failed (fail closed unless on_error).
local function check_text(set, timeout, list, pp, server, name, text, block_set)
  local hits = {}
  for _, p in ipairs(list) do
    if not p.check_discovery and p.check_input then
      local ok, res = plugins.run_hook(p, "check_input", timeout,
        { server = server, name = name, arguments = { text = text }, state = {}, registration = true }, pp, p.config)
      if not ok or type(res) ~= "table" then
        if set.guardrail_on_error ~= "allow" then return nil, ("%s %s"):format(p.name, tostring(res)) end
      else -- a finding counts whatever the provider would do with it on a call (pii redacts)
        for _, v in ipairs(res.violations or {}) do judge(hits, v, block_set) end
      end
    end
  end
  return hits
end

local function tool_text(tool)
  local a = type(tool.annotations) == "table" and tool.annotations or {}
  return ("Tool: %s - %s%s%s"):format(tostring(tool.name), tostring(tool.description or ""),
    a.destructiveHint and " [DESTRUCTIVE]" or "", a.readOnlyHint and " [READ-ONLY]" or "")
end

-- Server info validation, remembered per initialize result of the upstream (`init`).
-- Returns the detectors that fired (empty: passed) | nil, err.
local verdicts = setmetatable({}, { __mode = "k" })
local function check_server(set, timeout, spec, init, list, pp, block_set)
  local key = init or spec
  local hit = verdicts[key]
  if hit and hit.spec == spec then return hit.hits end
  local hits = {}
  local info = type(init) == "table" and type(init.serverInfo) == "table" and init.serverInfo or {}
  for _, desc in ipairs({ spec.description, info.description }) do
    if type(desc) == "string" and desc ~= "" then
      local h, err = check_text(set, timeout, list, pp, spec.server_name, nil,
        ("MCP Server: %s - %s"):format(spec.server_name, desc), block_set)
      if not h then return nil, err end
      for _, d in ipairs(h) do judge(hits, d, block_set) end
    end
  end
  verdicts[key] = { spec = spec, hits = hits }
  return hits
end

-- Returns the tools to list.
function M.screen(set, timeout, spec, tools, init)
  if not M.wanted(spec) then return tools end
  local pol = spec.tool_guardrails_policy
  local block_set = block_set_of(pol)
  local blocking = next(block_set) ~= nil
  local list, pp = list_of(set, pol), provider_policy(pol)
  local server = spec.server_name
  if spec.enable_server_info_validation and blocking then
    local hits, err = check_server(set, timeout, spec, init, list, pp, block_set)
    if not hits then
      log.error(("registration check of %s failed (%s); listing none of its tools"):format(server, err))
      return json.array({})
    end
    if #hits > 0 then
      flagged:inc(1, server, "server")
      log.warn(("server %s failed server info validation (%s); listing none of its tools"):format(server,
        table.concat(hits, ", ")))
      return json.array({})
    end
  end
  if not pol.enabled then return tools end
  local drop = {}
  for _, p in ipairs(list) do
    if p.check_discovery then
      local ok, res = plugins.run_hook(p, "check_discovery", timeout, server, tools, pp, p.config, "tools")
      if ok and type(res) == "table" then
        for _, v in ipairs(res.violations or {}) do
          if v.tool ~= nil then
            drop[v.tool] = drop[v.tool] or {}
            judge(drop[v.tool], v, block_set)
          end
        end
      elseif set.guardrail_on_error ~= "allow" then
        log.error(("registration check %s of %s failed (%s); listing none of its tools"):format(p.name, server,
          tostring(res)))
        return json.array({})
      end
    end
  end
  for _, tool in ipairs(tools) do
    local hits, err = check_text(set, timeout, list, pp, server, tool.name,
      tool_text(tool) .. "\n" .. (json.text(tool.inputSchema) or ""), block_set)
    if not hits then
      log.error(("registration check of %s failed (%s); listing none of its tools"):format(server, err))
      return json.array({})
    end
    if #hits > 0 then
      drop[tool.name] = drop[tool.name] or {}
      for _, d in ipairs(hits) do judge(drop[tool.name], d, block_set) end
    end
  end
  if not next(drop) then return tools end
  local keep = json.array({})
  for _, tool in ipairs(tools) do
    local why = drop[tool.name]
    if why and #why == 0 then why = nil end
    if why and blocking then
      flagged:inc(1, server, "tool")
      log.warn(("tool %s/%s not listed: %s (tool_guardrails_policy)"):format(server, tostring(tool.name),
        table.concat(why, ", ")))
    else
      if why then
        log.info(("tool %s/%s flagged: %s (tool_guardrails_policy, report only)"):format(server, tostring(tool.name),
          table.concat(why, ", ")))
      end
      keep[#keep + 1] = tool
    end
  end
  return keep
end

return M

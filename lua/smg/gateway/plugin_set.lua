-- The plugins one config version runs with: the auth provider, the guardrail providers
-- (configured ones plus any a server policy names) and the telemetry providers. A set is
-- built whole beside the running one and swapped in by the caller in one step, so a call
-- sees one version from start to end (hot reload, lua/smg/gateway/reload.lua).
local config = require "smg.config"
local plugins = require "smg.plugins"
local registration = require "smg.gateway.registration"

local M = {}

-- { {name, config, priority} } of a plugins.<kind> section: `provider` first, then `providers`.
local function refs(section)
  local list = {}
  if type(section.provider) == "string" and section.provider ~= "" then
    list[1] = { name = section.provider, config = section.config }
  end
  for _, p in ipairs(section.providers or {}) do list[#list + 1] = p end
  return list
end

local function load(kind, ref, errors)
  local p, err = plugins.load(kind, ref.name, ref.config)
  if not p then
    errors[#errors + 1] = err
    return nil, err
  end
  if ref.priority then p.priority = ref.priority end
  return p
end

local function by_priority(a, b)
  if a.priority ~= b.priority then return a.priority > b.priority end
  return a.name < b.name
end

-- Returns set, errors (a list, empty when every plugin loaded). Parts that failed are
-- recorded in the set so the caller can fail closed on exactly those.
function M.build(cfg)
  local errors = {}
  local set = {
    guardrails = {}, guardrail_errors = {}, guardrail_list = {},
    guardrail_on_error = cfg.plugins.guardrails.on_error,
    telemetry = {},
    memo = setmetatable({}, { __mode = "k" }), -- policy -> providers it runs
    hook_memo = setmetatable({}, { __mode = "k" }), -- policy -> hook point -> providers (gateway/hooks.lua)
  }

  local auth = refs(cfg.plugins.auth)
  if auth[1] then
    set.auth_enabled = true
    local p, err = load("auth", auth[1], errors)
    set.auth, set.auth_error = p, err
  end

  local wanted = {}
  for _, ref in ipairs(refs(cfg.plugins.guardrails)) do wanted[#wanted + 1] = ref end
  local named = {}
  for _, ref in ipairs(wanted) do named[ref.name] = true end
  local function want(name)
    if not named[name] then
      named[name] = true
      wanted[#wanted + 1] = { name = name, config = {} }
    end
  end
  for _, spec in ipairs(config.servers(cfg)) do
    if spec.enable_tool_guardrails then
      for _, pol in ipairs({ spec.input_guardrails_policy, spec.output_guardrails_policy }) do
        for _, name in ipairs(pol.guardrails or {}) do want(name) end
      end
    end
    if registration.wanted(spec) then
      -- Only for the registration checks: not in guardrail_list, so a policy that runs
      -- "every configured provider" does not start running these on calls too.
      for _, name in ipairs(registration.providers_for(spec.tool_guardrails_policy, false)) do
        if not named[name] then
          named[name] = true
          wanted[#wanted + 1] = { name = name, config = {}, registration_only = true }
        end
      end
    end
  end
  for _, ref in ipairs(wanted) do
    local p, err = load("guardrail", ref, errors)
    if p then
      set.guardrails[ref.name] = p
      if not ref.registration_only then set.guardrail_list[#set.guardrail_list + 1] = p end
    else
      set.guardrail_errors[ref.name] = err
    end
  end
  table.sort(set.guardrail_list, by_priority)

  for _, ref in ipairs(refs(cfg.plugins.telemetry)) do
    local p = load("telemetry", ref, errors)
    if p then set.telemetry[#set.telemetry + 1] = p end
  end
  table.sort(set.telemetry, by_priority)
  return set, errors
end

local function resolve(set, policy)
  local names = policy.guardrails
  if not names or #names == 0 then
    local missing = {}
    for name in pairs(set.guardrail_errors) do missing[#missing + 1] = name end
    return set.guardrail_list, missing
  end
  local list, missing = {}, {}
  for _, name in ipairs(names) do
    local p = set.guardrails[name]
    if p then list[#list + 1] = p else missing[#missing + 1] = name end
  end
  table.sort(list, by_priority)
  return list, missing
end

-- The guardrail providers a policy runs, by priority: those it names, or all configured.
-- Returns list, missing (names that failed to load).
function M.guardrails_for(set, policy)
  local hit = set.memo[policy]
  if hit then return hit[1], hit[2] end
  local list, missing = resolve(set, policy)
  set.memo[policy] = { list, missing }
  return list, missing
end

return M

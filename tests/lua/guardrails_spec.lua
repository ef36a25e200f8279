-- The guardrail pipeline (lua/smg/gateway/guardrails.lua) over a real plugin set built
-- from a real config and plugin files: priority order, redaction handed down the chain,
-- block lists, refusals that name nothing, malformed verdicts, missing providers and the
-- on_error switch.
local plugins = require "smg.plugins"
local config = require "smg.config"
local plugin_set = require "smg.gateway.plugin_set"
local guardrails = require "smg.gateway.guardrails"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/guardrails")

local function write(name, priority, body)
  local f = assert(io.open(dir .. "/guardrails/" .. name .. ".lua", "w"))
  f:write(("return { name = %q, kind = 'guardrail', version = '1.0.0', priority = %d, %s }"):format(name, priority, body))
  f:close()
end

write("upper", 10, [[check_input = function(call)
  local seen = call.arguments.text
  return { allowed = true, redacted = { text = seen:upper(), seen_by_upper = seen } } end]])
write("tagger", 20, [[check_input = function(call)
  return { allowed = true, redacted = { text = call.arguments.text .. "+tag" } } end]])
write("refuser", 5, [[check_input = function(call)
  if call.arguments.text:find("NO") then return { allowed = false } end
  if call.arguments.text:find("SOFT") then return { allowed = false, violations = { { type = "soft" } } } end
  return { allowed = true } end]])
write("broken", 1, [[check_input = function() return "yes" end]])

local function set_for(names, on_error)
  local doc = { mcp_configs = { c = { mcp_config = { { server_name = "s", config = { command = "x" },
    enable_tool_guardrails = true,
    input_guardrails_policy = { enabled = true, policy_name = "p", guardrails = names, block = { "policy_violation", "guardrail_error", "guardrail_unavailable" } } } } } },
    plugins = { guardrails = { on_error = on_error or "block" } } }
  local cfg = assert(config.parse(smg.json.encode(doc), "spec"))
  local set = plugin_set.build(cfg)
  return set, cfg.mcp_configs.c.mcp_config[1]
end

describe("guardrail pipeline", function()
  setup(function() table.insert(plugins.extra_dirs, dir) end)
  teardown(function()
    table.remove(plugins.extra_dirs)
    os.execute("rm -rf " .. dir)
  end)

  local function check(names, text, on_error)
    local set, spec = set_for(names, on_error)
    local call = { server = "s", name = "t", arguments = { text = text }, state = {} }
    return guardrails.check(set, 1, spec, "input", call, call.arguments)
  end

  it("runs by priority and hands each provider the previous one's rewrite", function()
    local blocked, args = check({ "upper", "tagger" }, "hi")
    assert.is_nil(blocked)
    -- tagger (20) first, then upper (10) sees tagger's output.
    assert.are.same({ text = "HI+TAG", seen_by_upper = "hi+tag" }, args)
  end)

  it("blocks a refusal that names nothing, and only block-listed violations", function()
    local blocked = check({ "upper", "refuser" }, "say no")
    assert.are.equal("refuser", blocked.structuredContent.guardrail)
    assert.are.same({ "policy_violation" }, blocked.structuredContent.violations)
    local b2, args = check({ "refuser" }, "SOFT")
    assert.is_nil(b2, "a violation not in the block list only annotates")
    assert.are.equal("SOFT", args.text)
  end)

  it("treats a malformed verdict as a plugin error: fail closed, or open when configured", function()
    local blocked = check({ "broken" }, "x")
    assert.are.same({ "guardrail_error" }, blocked.structuredContent.violations)
    local b2 = check({ "broken" }, "x", "allow")
    assert.is_nil(b2)
  end)

  it("fails closed for a provider that does not exist", function()
    local set, spec = set_for({ "nowhere" })
    assert.is_truthy(set.guardrail_errors.nowhere)
    local call = { server = "s", name = "t", arguments = {}, state = {} }
    local blocked = guardrails.check(set, 1, spec, "input", call, call.arguments)
    assert.are.same({ "guardrail_unavailable" }, blocked.structuredContent.violations)
  end)
end)

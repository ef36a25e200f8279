-- The keyword guardrail, loaded through the real loader and run through the hook runner.
local plugins = require "smg.plugins"
local smg = require "smg"

describe("keyword guardrail", function()
  local p = assert(plugins.load("guardrail", "keyword", { keywords = { "DROP TABLE" } }))

  it("loads with its schema defaults", function()
    assert.are.equal("keyword", p.name)
    local q = assert(plugins.load("guardrail", "keyword", {}))
    assert.are.same({}, q.config.keywords)
  end)

  it("rejects a bad config with the key path", function()
    local q, err = plugins.load("guardrail", "keyword", { keywords = "x" })
    assert.is_nil(q)
    assert.matches("plugins.guardrails.config.keywords: expected array", err)
    q, err = plugins.load("guardrail", "keyword", { surprise = 1 })
    assert.is_nil(q)
    assert.matches("surprise: unknown key", err)
  end)

  it("blocks configured and per-policy keywords, case-insensitively", function()
    local policy = { additional_config = { keywords = { "rm -rf" } } }
    local ok, res = plugins.run_hook(p, "check_input", 1, { arguments = { q = "please drop table users" } }, policy, p.config)
    assert.is_true(ok)
    assert.is_false(res.allowed)
    assert.are.equal("keyword_detected", res.violations[1].type)
    ok, res = plugins.run_hook(p, "check_input", 1, { arguments = { cmd = "RM -RF /" } }, policy, p.config)
    assert.is_false(res.allowed)
    ok, res = plugins.run_hook(p, "check_input", 1, { arguments = { q = "hello" } }, policy, p.config)
    assert.is_true(res.allowed)
    ok, res = plugins.run_hook(p, "check_output", 1, {}, { content = { { type = "text", text = "drop table" } } }, {}, p.config)
    assert.is_false(res.allowed)
  end)
end)

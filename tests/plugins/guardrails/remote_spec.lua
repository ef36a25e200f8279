-- The enkrypt and openai_moderation guardrails against a local HTTP server that answers in
-- the shapes those APIs document (the real services are not reachable from tests): the
-- request they send, the verdicts they draw, and failing closed on API errors.
local plugins = require "smg.plugins"
local core = require "smg.core"
local smg = require "smg"

-- A stand-in API: records requests, answers with handler(req) -> status, body.
local function fake_api(handler)
  local api = { requests = {} }
  api.server = assert(core.http_listen("127.0.0.1", 0, {}, function(req)
    local r = { path = req:path(), body = smg.json.decode(req:body()), headers = {} }
    for _, h in ipairs({ "apikey", "x-enkrypt-policy", "authorization", "content-type" }) do r.headers[h] = req:header(h) end
    api.requests[#api.requests + 1] = r
    local status, body = handler(r)
    if status == 0 then return end -- never answers
    req:respond(status, { ["Content-Type"] = "application/json" }, smg.json.encode(body))
  end, function() end))
  api.url = "http://127.0.0.1:" .. api.server:port()
  return api
end

describe("enkrypt guardrail", function()
  local api = fake_api(function(r)
    if r.headers.apikey ~= "ek-test" then return 401, { error = "bad key" } end
    local text = r.body.text
    return 200, { summary = { injection_attack = text:find("ignore") and 1 or 0, pii = text:find("@") and { "email" } or {},
      toxicity = {}, nsfw = 0 }, details = {} }
  end)
  local p = assert(plugins.load("guardrail", "enkrypt", { api_key = "ek-test", base_url = api.url }))
  local policy = { policy_name = "Airline policy", block = { "injection_attack", "pii" } }
  teardown(function() api.server:close() end)

  it("sends the text with the policy name and key, and reads the summary", function()
    local ok, res = plugins.run_hook(p, "check_input", 5, { arguments = { q = "please ignore that" } }, policy, p.config)
    assert.is_true(ok)
    assert.is_false(res.allowed)
    assert.are.same({ { type = "injection_attack" } }, res.violations)
    local req = api.requests[#api.requests]
    assert.are.equal("/guardrails/policy/detect", req.path)
    assert.are.equal("Airline policy", req.headers["x-enkrypt-policy"])
    assert.are.equal("please ignore that", req.body.text)
    ok, res = plugins.run_hook(p, "check_output", 5, {}, { content = { { type = "text", text = "mail x@y.z" } } }, policy, p.config)
    assert.are.same({ { type = "pii" } }, res.violations)
    ok, res = plugins.run_hook(p, "check_input", 5, { arguments = { q = "hello" } }, policy, p.config)
    assert.is_true(res.allowed)
  end)

  it("treats an API error as a failed check (the gateway fails closed)", function()
    local q = assert(plugins.load("guardrail", "enkrypt", { api_key = "wrong", base_url = api.url }))
    local ok, why = plugins.run_hook(q, "check_input", 5, { arguments = { q = "x" } }, policy, q.config)
    assert.is_false(ok)
    assert.are.equal("error", why)
  end)
end)

describe("openai_moderation guardrail", function()
  local api = fake_api(function(r)
    if r.path ~= "/v1/moderations" then return 404, {} end
    local bad = r.body.input:find("hurt")
    return 200, { id = "modr-1", model = r.body.model, results = { { flagged = bad and true or false,
      categories = { violence = bad and true or false, ["self-harm"] = false, ["harassment/threatening"] = bad and true or false },
      category_scores = { violence = bad and 0.9 or 0.01, sexual = 0.4 } } } }
  end)
  local p = assert(plugins.load("guardrail", "openai_moderation", { api_key = "sk-test", base_url = api.url }))
  teardown(function() api.server:close() end)

  it("turns flagged categories into violations", function()
    local ok, res = plugins.run_hook(p, "check_input", 5, { arguments = { q = "I will hurt you" } }, {}, p.config)
    assert.is_true(ok)
    assert.are.same({ { type = "harassment_threatening" }, { type = "violence" } }, res.violations)
    local req = api.requests[#api.requests]
    assert.are.equal("Bearer sk-test", req.headers.authorization)
    assert.are.equal("omni-moderation-latest", req.body.model)
    ok, res = plugins.run_hook(p, "check_input", 5, { arguments = { q = "hello" } }, {}, p.config)
    assert.is_true(res.allowed)
  end)

  it("applies a score threshold when configured", function()
    local q = assert(plugins.load("guardrail", "openai_moderation", { api_key = "sk-test", base_url = api.url, threshold = 0.3 }))
    local _, res = plugins.run_hook(q, "check_input", 5, { arguments = { q = "hello" } }, {}, q.config)
    assert.are.same({ { type = "sexual" } }, res.violations)
  end)

  it("a hanging API hits the hook timeout", function()
    local slow = fake_api(function() return 0 end)
    local q = assert(plugins.load("guardrail", "openai_moderation", { api_key = "k", base_url = slow.url }))
    local ok, why = plugins.run_hook(q, "check_input", 0.2, { arguments = { q = "x" } }, {}, q.config)
    assert.is_false(ok)
    assert.are.equal("timeout", why)
    slow.server:close()
  end)
end)
